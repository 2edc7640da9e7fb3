"""What ``fer_app.train`` does differently on several processes (MPI ranks).

    NUMBA_NUM_THREADS=1 mpiexec -n 2 python -m fer_app.train --out runs/NAME ...

Under mpiexec (seen from the launcher's environment variables, or asked for with
``--distributed``) every rank runs the whole training loop on its own copy of the model
(tinycnn.distributed has the math):

- every rank draws the same shuffled order; each global batch (``--batch-size`` rows, so
  the recipe means the same at any number of ranks) is cut into disjoint, nearly equal
  shards, one per rank, and the gradients are summed weighted by each shard's share;
- augmentation, mixup and dropout draw from the rank's own random streams, seeded from
  (seed, rank, epoch), so a resumed run continues with the same streams;
- batch norm's running statistics are averaged over the ranks at the end of each epoch,
  so every rank validates the same model and takes the same schedule and stopping steps;
- rank 0 alone prints and writes checkpoints, history, plots and the model; every rank
  reads last.npz on --resume (so --out must be on a file system all machines share);
- a rank that raises ends the whole job at once (MPI Abort) instead of leaving the
  others waiting in the next all-reduce; a rank that is killed is noticed by mpiexec,
  which ends the others.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Callable, TypeVar

import numpy as np

import tinycnn
from tinycnn import backend as backends
from tinycnn import distributed

T = TypeVar("T")
ABORT_GRACE_SECONDS = 0.5  # see stop()


def start(required: bool) -> None:
    """Join the MPI world if launched by mpiexec (or ``required``); silence ranks > 0 and
    make an uncaught error on any rank end them all."""
    world = distributed.init(required)
    if world.size == 1:
        return
    sys.excepthook = _abort_on_uncaught
    if world.rank > 0:
        sys.stdout = open(os.devnull, "w")
    print(f"data-parallel training on {world.size} ranks (MPI)", flush=True)


def _abort_on_uncaught(kind, error, traceback) -> None:
    sys.__excepthook__(kind, error, traceback)
    stop(1)


def stop(code: int) -> int:
    """After an error on this rank: end every rank (returns ``code`` in a world of one).

    The pause before Abort lets mpiexec forward what this rank just wrote: MPICH's
    launcher stops reading a rank's output once Abort tears the job down, and without
    the pause the traceback was lost in about 1 run of 3."""
    sys.stderr.flush()
    sys.stdout.flush()
    if distributed.world_size() > 1:
        time.sleep(ABORT_GRACE_SECONDS)
        distributed.abort(code)
    return code


def is_writer() -> bool:
    """Rank 0 writes the run's files."""
    return distributed.rank() == 0


def use_backend(name: str) -> None:
    """Make ``name`` the active backend; on GPUs each rank of a machine takes its own."""
    backends.use(name)
    if name == "cupy":
        distributed.use_local_gpu()


def check(batch_size: int, train_rows: int) -> str | None:
    """The problem with these sizes at this world size, if any."""
    smallest = 2 * distributed.world_size()
    if batch_size < smallest or train_rows < smallest:
        return (f"--batch-size and the training rows must be at least {smallest} on "
                f"{distributed.world_size()} ranks: batch norm needs 2 rows in each rank's shard")
    return None


def rank_0_first(make: Callable[[], T]) -> T:
    """make() on rank 0, then on the others (so they can read what rank 0 cached on disk,
    e.g. the teacher's outputs, instead of all computing it at once)."""
    if distributed.rank() == 0:
        result = make()
    distributed.sum_numbers(0.0)                 # every rank waits here for rank 0
    return result if distributed.rank() == 0 else make()


def shard(rows: np.ndarray) -> np.ndarray:
    """This rank's part of a global batch: nearly equal, disjoint pieces in rank order."""
    return np.array_split(rows, distributed.world_size())[distributed.rank()]


def epoch_rng(data_rng: np.random.Generator, seed: int, epoch: int) -> np.random.Generator:
    """The generator for this epoch's augmentation and mixup: the run's own in a world of one;
    else the rank's, with tinycnn's (dropout) reseeded the same way."""
    if distributed.world_size() == 1:
        return data_rng
    streams = np.random.SeedSequence([seed, distributed.rank(), epoch]).spawn(2)
    tinycnn.manual_seed(int(streams[0].generate_state(1)[0]))
    return np.random.default_rng(streams[1])
