"""Data-parallel training speed: 1 process x 2 threads against 2 MPI ranks x 1 thread,
and a model on paper of N machines.

    python -m benchmarks.data_parallel --steps 30          # needs pip install -e ".[mpi]"

For each architecture it times training steps (forward, loss, backward, gradient
all-reduce, Adam) of a global batch of 64 random faces: once in one process with
NUMBA_NUM_THREADS=2, once under ``mpiexec -n 2`` with one thread per rank (32 faces each).
On the ranks it splits the step: waiting for the other rank (a one-number all-reduce
before the gradients' one), and the gradients' all-reduce itself.

The paper model: ring all-reduce sends and receives 2 (N - 1) / N times the gradient's
bytes G per machine and step, so with a network of B bytes/s the step costs
t_comm = 2 (N - 1) / N * G / B more than computing (nothing overlaps here). The step stays
compute-bound while t_comm <= t_compute, that is for B >= 2 (N - 1) / N * G / t_compute,
with t_compute the time of one machine on its share of the batch: from the measured
single-process speed, or from ``--images-per-second vgg_fer=338 ...`` (e.g. a quiet
machine's training speed), which ``--paper-only`` uses without measuring:

    python -m benchmarks.data_parallel --paper-only --images-per-second vgg_fer=338 vgg_fer_wide=178
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

BATCH = 64
MACHINES = (2, 4, 8, 16, 32)


def worker(arch: str, steps: int, warmup: int) -> None:
    """Time ``steps`` training steps on this rank's share of the batch; rank 0 prints JSON."""
    import tinycnn
    from fer_app.models import build_model
    from tinycnn import distributed, optim
    from tinycnn import functional as F

    world = distributed.init()
    tinycnn.manual_seed(0)
    model = build_model(arch)
    distributed.broadcast_parameters(model)
    optimizer = optim.Adam(model.parameters(), 1e-3)
    rng = np.random.default_rng(world.rank)
    rows = BATCH // world.size
    x = rng.standard_normal((rows, 1, 48, 48), dtype=np.float32)
    labels = rng.integers(0, 7, rows)
    wait = reduce = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            wait, reduce, start = 0.0, 0.0, time.perf_counter()
        loss = F.softmax_cross_entropy(model(tinycnn.Tensor(x)), labels)
        optimizer.zero_grad()
        loss.backward()
        before = time.perf_counter()
        distributed.sum_numbers(0.0)           # both ranks have their gradients
        synced = time.perf_counter()
        distributed.allreduce_gradients(model)
        wait, reduce = wait + synced - before, reduce + time.perf_counter() - synced
        optimizer.step()
    elapsed = time.perf_counter() - start
    if world.rank == 0:
        print(json.dumps({"arch": arch, "ranks": world.size, "images_per_second": steps * BATCH / elapsed,
                          "step_ms": 1000 * elapsed / steps, "wait_ms": 1000 * wait / steps,
                          "allreduce_ms": 1000 * reduce / steps}))


def measure(arch: str, ranks: int, threads: int, steps: int, warmup: int) -> dict:
    command = [sys.executable, "-m", "benchmarks.data_parallel", "--worker", "--archs", arch,
               "--steps", str(steps), "--warmup", str(warmup)]
    if ranks > 1:
        command = ["mpiexec", "-n", str(ranks)] + command
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS="1")
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "threads": threads}


def speed_table(results: list[dict]) -> str:
    lines = ["| network | processes x threads | images/s | ms per step | waiting for the other rank, ms | gradient all-reduce, ms |",
             "|---|---|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['arch']} | {r['ranks']} x {r['threads']} | {r['images_per_second']:.0f} | "
                     f"{r['step_ms']:.0f} | {r['wait_ms']:.1f} | {r['allreduce_ms']:.1f} |")
    return "\n".join(lines)


def gradient_bytes(arch: str) -> int:
    from fer_app.models import build_model
    return 4 * build_model(arch).num_parameters()                      # float32 gradients


def paper_table(images_per_second: dict[str, float]) -> str:
    """Network bandwidth (Gbit/s) needed for compute-bound steps on N machines of the given
    speeds: with 64 images per machine (the global batch grows to 64 N), and with the global
    batch held at 64 (64 / N images per machine)."""
    lines = ["| network (one machine's images/s, gradient MB) | batch | "
             + " | ".join(f"N = {n}" for n in MACHINES) + " |", "|---|---|" + "---:|" * len(MACHINES)]
    for arch, speed in images_per_second.items():
        size = gradient_bytes(arch)
        for batch, per_machine in (("64 per machine", lambda n: BATCH), ("64 in all", lambda n: BATCH / n)):
            needed = [2 * (n - 1) / n * size / (per_machine(n) / speed) * 8 / 1e9 for n in MACHINES]
            lines.append(f"| {arch} ({speed:.0f}, {size / 1e6:.1f}) | {batch} | "
                         + " | ".join(f"{gbits:.2f}" for gbits in needed) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", nargs="+", default=["vgg_fer", "vgg_fer_wide"])
    p.add_argument("--steps", type=int, default=30, help="timed steps per configuration")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (Numba compiles)")
    p.add_argument("--images-per-second", nargs="+", metavar="ARCH=N", default=[],
                   help="one machine's training speed for the paper model (default: measured)")
    p.add_argument("--paper-only", action="store_true", help="only the paper model (needs --images-per-second)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args.archs[0], args.steps, args.warmup)
        return 0
    speeds = {arch: float(n) for arch, n in (item.split("=") for item in args.images_per_second)}
    if not args.paper_only:
        load = os.getloadavg()[0]
        results = [measure(arch, ranks, threads, args.steps, args.warmup)
                   for arch in args.archs for ranks, threads in ((1, 2), (2, 1))]
        print(speed_table(results))
        print(f"\nload average (1 min) before: {load:.1f}, after: {os.getloadavg()[0]:.1f}, "
              f"on {os.cpu_count()} cores\n")
        speeds = speeds or {r["arch"]: r["images_per_second"] for r in results if r["ranks"] == 1}
    print(paper_table(speeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
