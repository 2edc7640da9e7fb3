"""Data-parallel training: the same model on every process (rank), each on its own data.

Launched as ``mpiexec -n N python train.py``, each of the N ranks holds a whole copy of the
model. One optimizer step on a global batch B of |B| rows split into disjoint shards B_r:

    rank r:   g_r = d/dw [ (1/|B_r|) sum_{i in B_r} loss_i(w) ]      (mean over its own shard)
    all:      g   = sum_r s_r g_r                                     (one all-reduce)
    all:      w  <- optimizer(w, g)                                   (the same step everywhere)

With shares s_r = |B_r| / |B|, g = (1/|B|) sum_{i in B} d loss_i / dw: exactly the gradient of
the mean loss over the global batch, whatever the shard sizes, so N ranks take the steps one
process would take on the concatenated batch. The default share s_r = 1/N (the plain average,
as PyTorch's DistributedDataParallel does) equals it when the shards are equal-sized; with
unequal shards it weights a row of a small shard more. (A loss that divides by a total class
weight instead of |B_r| makes shares by rows close, not exact.) The ranks start from rank 0's
weights (:func:`broadcast_parameters`) and apply identical updates, so they stay equal.

Two things are not the same as one process on the global batch:
- batch norm normalizes each rank's shard with that shard's own mean and variance (per-rank
  batch statistics, DDP's default). A synchronized batch norm would add two all-reduces per
  batch-norm layer and step (forward and backward), each a wait for the slowest rank; with
  32 or more images per rank the shard's statistics are already close, so it is not offered.
  Each rank's running statistics follow its own shards: :func:`average_buffers` averages them
  (call it before evaluating or saving; the running variance becomes the ranks' mean).
- random streams (dropout, augmentation) must be each rank's own, or the ranks repeat them.

Host (NumPy) arrays travel through MPI (mpi4py); CuPy arrays through NCCL on the GPUs
(cupyx.distributed, set up over MPI on first use), with the same calls. Gradients go in one
flat buffer per step: one all-reduce, not one per tensor. A process not started by mpiexec is
a world of one (mpi4py is then not even imported) and every call is a no-op.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy

from . import backend
from .nn import Module

# Set by the MPI launchers: MPICH and Intel MPI (Hydra), Open MPI, MVAPICH.
LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


class DistributedError(RuntimeError):
    """MPI was asked for (or launched) but cannot be used here."""


@dataclass
class World:
    rank: int = 0
    size: int = 1
    host_comm: object = None     # an mpi4py communicator for host arrays (None: a world of one)
    device_comm: object = None   # a cupyx.distributed NCCL communicator, made at first use


_world = World()


def launched_by_mpi() -> bool:
    """True when an MPI launcher started this process as one of several."""
    return any(int(os.environ.get(name, "1")) > 1 for name in LAUNCHER_VARIABLES)


def init(required: bool = False) -> World:
    """Join the MPI world (COMM_WORLD) when launched by mpiexec, or always when ``required``;
    otherwise stay a world of one. Raises DistributedError when MPI is needed but missing."""
    global _world
    if not (required or launched_by_mpi()):
        return _world
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise DistributedError(f"training on several processes needs mpi4py "
                               f"(pip install 'tinycnn[mpi]'): {error}") from None
    comm = MPI.COMM_WORLD
    _world = World(comm.Get_rank(), comm.Get_size(), comm)
    return _world


def rank() -> int:
    return _world.rank


def world_size() -> int:
    return _world.size


def abort(code: int) -> None:
    """End every rank now (a rank that stops alone would leave the others waiting forever)."""
    if _world.size > 1:
        _world.host_comm.Abort(code)


def broadcast_parameters(module: Module) -> None:
    """Copy rank 0's parameters and buffers (e.g. batch norm's running statistics) to all ranks."""
    arrays = [p.data for p in module.parameters()] + [b for _, b in module.named_buffers()]
    if _world.size > 1 and arrays:
        flat = _pack(arrays)
        _communicator(flat).broadcast(flat)
        _unpack(flat, arrays)


def allreduce_gradients(module: Module, share: float | None = None) -> None:
    """Replace each gradient g_r by sum over ranks of share_r * g_r; share defaults to
    1 / world_size (the average). Parameters without a gradient (the same ones on every
    rank: they run the same model) are left out."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if _world.size > 1 and grads:
        flat = _pack(grads)                                  # (total,) one buffer per step
        flat *= 1.0 / _world.size if share is None else share
        _communicator(flat).all_reduce(flat)
        _unpack(flat, grads)


def average_buffers(module: Module) -> None:
    """Average the buffers (batch norm's running mean and variance) over the ranks."""
    buffers = [b for _, b in module.named_buffers()]
    if _world.size > 1 and buffers:
        flat = _pack(buffers)
        flat *= 1.0 / _world.size
        _communicator(flat).all_reduce(flat)
        _unpack(flat, buffers)


def sum_numbers(*values: float) -> tuple[float, ...]:
    """The sum over ranks of each number (counts, summed losses), on the host."""
    total = numpy.array(values, dtype=numpy.float64)
    if _world.size > 1:
        _communicator(total).all_reduce(total)
    return tuple(total.tolist())


# --- flat buffers and the two communicators -------------------------------------------
def _pack(arrays: list):
    """The arrays (same backend and dtype) end to end in one new 1-D array."""
    return backend.of(*arrays).xp.concatenate([array.reshape(-1) for array in arrays])


def _unpack(flat, arrays: list) -> None:
    """Write the pieces of ``flat`` back into ``arrays``, in place."""
    offset = 0
    for array in arrays:
        array[...] = flat[offset:offset + array.size].reshape(array.shape)
        offset += array.size


class _MPIArrays:
    """Sum and broadcast of host arrays, in place, over mpi4py (the buffer interface)."""

    def __init__(self, comm):
        from mpi4py import MPI
        self.comm, self.in_place, self.sum = comm, MPI.IN_PLACE, MPI.SUM

    def all_reduce(self, array) -> None:
        self.comm.Allreduce(self.in_place, array, op=self.sum)

    def broadcast(self, array) -> None:
        self.comm.Bcast(array, root=0)


class _NCCLArrays:
    """Sum and broadcast of device arrays, in place, over NCCL (cupyx.distributed)."""

    def __init__(self, nccl):
        self.nccl = nccl

    def all_reduce(self, array) -> None:
        self.nccl.all_reduce(array, array, "sum")

    def broadcast(self, array) -> None:
        self.nccl.broadcast(array, 0)


def _communicator(array):
    """MPI for host arrays; for device arrays NCCL, whose communicator is set up (over MPI)
    the first time, on the GPU that this rank uses (see :func:`use_local_gpu`)."""
    if backend.of(array).xp is numpy:
        return _MPIArrays(_world.host_comm)
    if _world.device_comm is None:
        import cupyx.distributed
        _world.device_comm = cupyx.distributed.init_process_group(_world.size, _world.rank,
                                                                  use_mpi=True)
    return _NCCLArrays(_world.device_comm)


def use_local_gpu() -> None:
    """Make this rank use its own GPU: its index among the ranks on its machine, modulo the
    machine's GPU count (NCCL needs one GPU per rank). Call it before any array is put on a GPU."""
    if _world.size > 1:
        import cupy
        from mpi4py import MPI
        local_rank = _world.host_comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()
        cupy.cuda.Device(local_rank % cupy.cuda.runtime.getDeviceCount()).use()
