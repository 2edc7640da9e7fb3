"""Training checkpoints: everything needed to continue a run exactly where it stopped.

``last.npz`` (a tinycnn.save file, written atomically) holds
    model/<name>          every parameter and buffer of the model
    optimizer/<key>/<i>   the optimizer's per-parameter arrays (Adam's m and v, SGD's momentum)
and, as JSON metadata, the optimizer's numbers (lr, step count), the scheduler's
progress counters, both random generators' states (tinycnn's: initialization and
dropout; the data generator: shuffling and augmentation), the history, the best
score so far and the run's settings.

Files are written to a temporary file beside their target, then renamed
(``tinycnn.save``'s ``tmp*.npz.tmp``, train.py's ``history.csv.tmp``). A run killed
during such a write leaves the temporary file behind; :func:`remove_stale_temporaries`
deletes them when the next run or ``--resume`` starts in that folder.

A last.npz that is damaged, lacks the training state or does not fit the run that
resumes from it raises :class:`CheckpointError` (one message naming the file).
"""
from __future__ import annotations

import os

import numpy as np

import tinycnn
from tinycnn import nn

from ..cli import UserError

MODEL_PREFIX = "model/"
OPTIMIZER_PREFIX = "optimizer/"
# What resuming reads from last.npz's metadata (besides the run's scores).
TRAINING_STATE = ("settings", "optimizer", "scheduler", "rng", "normalization", "epoch", "history")


class CheckpointError(UserError):
    """A last.npz that cannot be resumed: damaged, not a checkpoint, or made for another model."""


def optimizer_to_arrays(state: dict) -> tuple[dict[str, np.ndarray], dict]:
    """Split an optimizer state_dict into arrays (lists of per-parameter arrays)
    and JSON numbers. A None entry (SGD momentum not started yet) is left out of the
    arrays and remembered in ``numbers["missing"]``."""
    arrays, numbers, missing = {}, {}, {}
    for key, value in state.items():
        if isinstance(value, list):
            missing[key] = [i for i, item in enumerate(value) if item is None]
            numbers[f"{key}__count"] = len(value)
            arrays.update({f"{OPTIMIZER_PREFIX}{key}/{i}": item
                           for i, item in enumerate(value) if item is not None})
        else:
            numbers[key] = value
    numbers["missing"] = missing
    return arrays, numbers


def optimizer_from_arrays(arrays: dict[str, np.ndarray], numbers: dict) -> dict:
    """The inverse of :func:`optimizer_to_arrays`."""
    state = {key: value for key, value in numbers.items()
             if key != "missing" and not key.endswith("__count")}
    for key, missing in numbers["missing"].items():
        count = numbers[f"{key}__count"]
        state[key] = [None if i in missing else arrays[f"{OPTIMIZER_PREFIX}{key}/{i}"]
                      for i in range(count)]
    return state


# The attributes of tinycnn's schedulers that change as training goes on. Their
# settings (T_max, total_steps...) are rebuilt from the run's settings instead, so a
# resumed run given a larger --epochs stretches its schedule to the new length.
SCHEDULER_COUNTERS = ("epoch", "step_num", "best", "bad_epochs")


def scheduler_state(scheduler) -> dict:
    """The scheduler's progress counters (plain numbers)."""
    return {key: getattr(scheduler, key) for key in SCHEDULER_COUNTERS if hasattr(scheduler, key)}


def load_scheduler_state(scheduler, state: dict) -> None:
    for key, value in state.items():
        setattr(scheduler, key, value)


def remove_stale_temporaries(folder: str) -> list[str]:
    """Delete the temporary files an interrupted write left in the run folder ``folder``
    (``*.npz.tmp``, ``*.csv.tmp``); returns their paths. Call it only when no other
    process writes to ``folder``."""
    removed = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.endswith((".npz.tmp", ".csv.tmp")) and os.path.isfile(path):
            os.remove(path)
            removed.append(path)
    return removed


def save_training_state(path: str, model: nn.Module, optimizer, scheduler,
                        data_rng: np.random.Generator, metadata: dict) -> None:
    """Write last.npz: model, optimizer, scheduler, random states and ``metadata``
    (epoch, history, best score, settings...)."""
    optimizer_arrays, optimizer_numbers = optimizer_to_arrays(optimizer.state_dict())
    arrays = {MODEL_PREFIX + name: value for name, value in model.state_dict().items()}
    arrays.update(optimizer_arrays)
    metadata = dict(metadata,
                    optimizer=optimizer_numbers,
                    scheduler=None if scheduler is None else scheduler_state(scheduler),
                    rng={"tinycnn": tinycnn.random.rng().bit_generator.state,
                         "data": data_rng.bit_generator.state})
    tinycnn.save(arrays, path, metadata)


def read_checkpoint(path: str) -> tuple[dict, dict]:
    """(arrays, metadata) of a last.npz; a CheckpointError if it is damaged or lacks the
    training state."""
    try:
        arrays, metadata = tinycnn.load(path)
    except tinycnn.SerializationError as error:
        raise CheckpointError(f"{error}; this run cannot be resumed: start it again with another "
                              f"--out (its model.npz may still be intact)") from None
    missing = [key for key in TRAINING_STATE if key not in metadata]
    if missing or not isinstance(metadata["settings"], dict):
        raise CheckpointError(f"{path}: not a training checkpoint (its metadata lacks "
                              f"{', '.join(missing) or 'settings'}); it cannot be resumed")
    return arrays, metadata


def load_training_state(path: str, model: nn.Module, optimizer, scheduler,
                        data_rng: np.random.Generator) -> dict:
    """Restore what :func:`save_training_state` wrote, in place; return its metadata.
    A CheckpointError if it does not fit ``model`` and ``optimizer``."""
    arrays, metadata = read_checkpoint(path)
    try:
        model.load_state_dict({name[len(MODEL_PREFIX):]: value for name, value in arrays.items()
                               if name.startswith(MODEL_PREFIX)})
        optimizer.load_state_dict(optimizer_from_arrays(arrays, metadata["optimizer"]))
    except (KeyError, ValueError) as error:   # a name (KeyError), a shape or dtype (ValueError)
        raise CheckpointError(f"{path}: does not fit this run's model and optimizer "
                              f"({error.args[0]}); resume with the settings it was saved with, "
                              f"or start a new --out") from None
    if scheduler is not None:
        load_scheduler_state(scheduler, metadata["scheduler"])
    tinycnn.random.rng().bit_generator.state = metadata["rng"]["tinycnn"]
    data_rng.bit_generator.state = metadata["rng"]["data"]
    return metadata
