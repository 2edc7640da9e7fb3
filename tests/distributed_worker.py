"""Small data-parallel training runs for tests/test_distributed.py.

    mpiexec -n 2 python -m tests.distributed_worker OUT_FOLDER

Each rank trains tiny float64 models on its shards of the same global batches and writes
every parameter and buffer to OUT_FOLDER/rank<R>.npz as "<case>/<name>". The test trains
the same models in one process on the whole batches (:func:`train` with one rank) and
compares.
"""
from __future__ import annotations

import os
import sys

import numpy as np

import tinycnn
from tinycnn import distributed, nn, optim
from tinycnn import functional as F

STEPS = 4
# case -> (model, optimizer, rows of each global batch)
CASES = {
    "sgd": ("plain", "sgd", 12),
    "adam": ("plain", "adam", 12),
    "sgd_unequal_shards": ("plain", "sgd", 11),
    "adam_batchnorm": ("batchnorm", "adam", 16),
}


def make_model(kind: str, seed: int) -> nn.Module:
    tinycnn.manual_seed(seed)
    if kind == "plain":
        return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).to(np.float64)
    return nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(),
                         nn.Linear(5, 3)).to(np.float64)


def make_optimizer(name: str, model: nn.Module) -> optim.Optimizer:
    if name == "sgd":
        return optim.SGD(model.parameters(), 0.1, momentum=0.9, weight_decay=1e-3, nesterov=True)
    return optim.Adam(model.parameters(), 0.01)


def global_batch(step: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """x (rows, 6) float64, labels (rows,): the same on every rank."""
    rng = np.random.default_rng(step)
    return rng.normal(size=(rows, 6)), rng.integers(0, 3, rows)


def train(case: str, rank: int, size: int) -> nn.Module:
    """STEPS steps of ``case`` on this rank's shards; ranks start from different weights
    that broadcast_parameters replaces with rank 0's."""
    kind, optimizer_name, rows = CASES[case]
    model = make_model(kind, seed=rank)
    distributed.broadcast_parameters(model)
    optimizer = make_optimizer(optimizer_name, model)
    for step in range(STEPS):
        x, labels = global_batch(step, rows)
        shard = np.array_split(np.arange(rows), size)[rank]   # disjoint, sizes differ by <= 1
        logits = model(tinycnn.Tensor(x[shard], dtype=np.float64))
        loss = F.softmax_cross_entropy(logits, labels[shard])
        optimizer.zero_grad()
        loss.backward()
        distributed.allreduce_gradients(model, share=len(shard) / rows if rows % size else None)
        optimizer.step()
    distributed.average_buffers(model)
    return model


def main(out: str) -> None:
    tinycnn.backend.use("numpy")
    world = distributed.init(required=True)
    arrays = {}
    for case in CASES:
        arrays.update({f"{case}/{name}": value for name, value in
                       train(case, world.rank, world.size).state_dict().items()})
    np.savez(os.path.join(out, f"rank{world.rank}.npz"), **arrays)


if __name__ == "__main__":
    main(sys.argv[1])
