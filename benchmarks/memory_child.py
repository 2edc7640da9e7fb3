"""Peak resident memory of seed-004 training, one side per process.

    python -m benchmarks.memory_child tinycnn --backend numba --steps 4
    python -m benchmarks.memory_child keras --steps 4

Builds the model, runs ``--steps`` training steps at batch 64 and prints one
JSON line: peak MB before the first step (imports, model) and after the last.
Run by ``benchmarks.keras_compare``: both sides in one process could not be told apart.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

from fer_app.models import build_model
from tinycnn import backend, optim

from .model_steps import CLASSES, IMAGE, tinycnn_train_step, training_batch


def peak_rss_mb() -> float:
    """Peak resident set size of this process, MB. On Linux it is VmHWM: ru_maxrss
    would report the parent's peak, which a child inherits across fork."""
    status = Path("/proc/self/status")
    if status.exists():
        line = next(line for line in status.read_text().splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024                       # kB -> MB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2 ** 20 if sys.platform == "darwin" else peak / 1024   # bytes on macOS, KiB elsewhere


def training_step(side: str, backend_name: str):
    """A callable training step of seed-004 on ``side`` ("tinycnn" or "keras")."""
    x, labels = training_batch()
    backend.use(backend_name)
    model = build_model("seed004", CLASSES)
    if side == "tinycnn":
        return tinycnn_train_step(model, optim.Adam(model.parameters(), lr=1e-3), x, labels)
    from .keras_twin import keras_model_like, keras_train_step   # TensorFlow only in this branch
    return keras_train_step(keras_model_like(model, IMAGE), x, labels)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory_child",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("side", choices=["tinycnn", "keras"])
    parser.add_argument("--backend", default="numba", choices=["numba", "numpy"],
                        help="tinycnn backend (the Keras side uses it only to build the weights)")
    parser.add_argument("--steps", type=int, default=4, help="training steps to run")
    args = parser.parse_args(argv)
    step = training_step(args.side, args.backend)
    before = peak_rss_mb()
    for _ in range(args.steps):
        step()
    print(json.dumps({"side": args.side, "backend": args.backend, "steps": args.steps,
                      "peak_before_training_mb": before, "peak_mb": peak_rss_mb()}))


if __name__ == "__main__":
    main()
