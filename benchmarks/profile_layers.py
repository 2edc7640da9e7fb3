"""Where the time of a seed-004 training step goes, layer by layer, per backend.

    python -m benchmarks.profile_layers --backend numba numpy

Runs the seed-004 network (built here from tinycnn.nn layers) at batch 64 on
48x48x1 inputs and prints, for every layer in the network's own order, the
median forward and backward seconds, GFLOP/s for the matrix-product layers and
their share of the machine's float32 matmul GFLOP/s (measured in the same run),
then the end-to-end training step (forward, loss, backward, Adam) in images/s
and the peak resident memory of this process. Backends named together are
timed in turns (A B, B A, ...), so that noise from other users of the machine
hits them alike; run one backend per process to compare peak memory.

BLAS threads: loading the numba kernel set puts OpenBLAS on one thread (unless
OPENBLAS_NUM_THREADS is set; see ``tinycnn/kernels/blas_threads.py``), so when
both backends run in one process both use one BLAS thread. ``--blas-threads N``
sets it explicitly; the header says which setting the layers ran with, and the
matmul speed is measured with one and with all BLAS threads.

The functions are importable: ``seed004``, ``profile_network``,
``train_step_seconds``, ``matmul_gflops``.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time

import numpy
from tqdm import tqdm

from tinycnn import Tensor, backend, nn, optim
from tinycnn.functional import softmax_cross_entropy
from tinycnn.kernels.blas_threads import blas_threads, set_blas_threads

DROPOUT = 0.25


def seed004(num_classes: int = 7) -> nn.Sequential:
    """4 blocks Conv 'same' -> BatchNorm -> ReLU -> MaxPool 2 -> Dropout (64 3x3, 128 5x5,
    512 3x3, 512 3x3), then Dense 256 and 512 with BatchNorm1d, ReLU, Dropout; Dense K.
    (N, 1, 48, 48) -> logits (N, K)."""
    layers = []
    for c, o, k in ((1, 64, 3), (64, 128, 5), (128, 512, 3), (512, 512, 3)):
        layers += [nn.Conv2d(c, o, k, padding="same"), nn.BatchNorm2d(o), nn.ReLU(),
                   nn.MaxPool2d(2), nn.Dropout(DROPOUT)]
    layers.append(nn.Flatten())
    for f_in, f_out in ((512 * 3 * 3, 256), (256, 512)):
        layers += [nn.Linear(f_in, f_out), nn.BatchNorm1d(f_out), nn.ReLU(), nn.Dropout(DROPOUT)]
    layers.append(nn.Linear(512, num_classes))
    return nn.Sequential(*layers)


def layer_flops(layer: nn.Module, x_shape: tuple, y_shape: tuple) -> int | None:
    """2 * multiply-adds of one forward call of a conv or dense layer; None for the others."""
    if isinstance(layer, nn.Conv2d):
        o, c, kh, kw = layer.weight.shape
        return 2 * y_shape[0] * y_shape[2] * y_shape[3] * o * c * kh * kw
    if isinstance(layer, nn.Linear):
        return 2 * x_shape[0] * layer.weight.shape[0] * layer.weight.shape[1]
    return None


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def profile_network(model: nn.Sequential, images: numpy.ndarray) -> list[dict]:
    """One training-mode pass, layer by layer: seconds of each layer's forward and backward.

    Every layer gets its input as a fresh leaf tensor, so its backward can be run
    (and timed) alone; the input gradient it returns is fed to the layer before.
    The loss gradient is a fixed random one. Returns one dict per layer:
    name, input shape, forward_s, backward_s, flops (forward, or None).
    """
    rows, leaves, outputs = [], [], []
    x = images
    for index, layer in enumerate(model):
        leaf = Tensor(x, requires_grad=True)
        holder = {}
        seconds = _timed(lambda: holder.update(y=layer(leaf)))
        y = holder["y"]
        rows.append({"name": f"{index:02d} {type(layer).__name__}", "input": leaf.shape,
                     "forward_s": seconds, "flops": layer_flops(layer, leaf.shape, y.shape)})
        leaves.append(leaf)
        outputs.append(y)
        x = y.data
    grad = numpy.random.default_rng(0).standard_normal(x.shape).astype(x.dtype)
    for row, leaf, y in reversed(list(zip(rows, leaves, outputs))):
        row["backward_s"] = _timed(lambda: y.backward(grad))
        grad = leaf.grad
    return rows


def train_step_seconds(model: nn.Module, optimizer: optim.Optimizer, images: numpy.ndarray,
                       labels: numpy.ndarray) -> float:
    """Seconds of one training step: forward, softmax cross-entropy, backward, optimizer step."""
    def step():
        optimizer.zero_grad()
        loss = softmax_cross_entropy(model(Tensor(images)), labels)
        loss.backward()
        optimizer.step()
    return _timed(step)


def matmul_gflops(size: int = 2048, reps: int = 5, threads: int | None = None) -> float:
    """The machine's float32 matrix-product speed (median of ``reps`` size^3 products),
    with ``threads`` BLAS threads if given (the setting is restored after)."""
    a = numpy.random.default_rng(0).standard_normal((size, size), dtype=numpy.float32)
    previous = blas_threads()
    if threads is not None:
        set_blas_threads(threads)
    try:
        a @ a
        seconds = statistics.median(_timed(lambda: a @ a) for _ in range(reps))
    finally:
        if threads is not None and previous is not None:
            set_blas_threads(previous)
    return 2 * size ** 3 / seconds / 1e9


def numba_threads() -> int | str:
    try:
        import numba
    except ImportError:
        return "no"
    return numba.get_num_threads()


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _median_rows(samples: list[list[dict]]) -> list[dict]:
    merged = []
    for position, row in enumerate(samples[0]):
        merged.append(dict(row, forward_s=statistics.median(s[position]["forward_s"] for s in samples),
                           backward_s=statistics.median(s[position]["backward_s"] for s in samples)))
    return merged


def _table(name: str, rows: list[dict], machine: float) -> str:
    lines = [f"backend {name}: median seconds per layer (batch {rows[0]['input'][0]})",
             f"{'layer':<16}{'input':<20}{'fwd ms':>9}{'bwd ms':>9}{'fwd GF/s':>10}"
             f"{'f+b GF/s':>10}{'% matmul':>10}"]
    for row in rows:
        flops = row["flops"]
        fwd, bwd = row["forward_s"], row["backward_s"]
        rates = ("", "", "")
        if flops:
            both = 3 * flops / (fwd + bwd) / 1e9
            rates = (f"{flops / fwd / 1e9:.0f}", f"{both:.0f}", f"{100 * both / machine:.0f}%")
        lines.append(f"{row['name']:<16}{str(row['input']):<20}{fwd * 1e3:>9.1f}{bwd * 1e3:>9.1f}"
                     f"{rates[0]:>10}{rates[1]:>10}{rates[2]:>10}")
    total = sum(r["forward_s"] + r["backward_s"] for r in rows)
    lines.append(f"{'sum':<36}{sum(r['forward_s'] for r in rows) * 1e3:>9.1f}"
                 f"{sum(r['backward_s'] for r in rows) * 1e3:>9.1f}   (total {total * 1e3:.0f} ms)")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", nargs="+", default=["numba"], choices=["numpy", "numba"],
                        help="backends to profile, timed in turns (default: numba)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--reps", type=int, default=5, help="samples per measurement (median)")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="threads for NumPy's OpenBLAS (default: leave as it is)")
    args = parser.parse_args(argv)

    rng = numpy.random.default_rng(0)
    images = rng.standard_normal((args.batch, 1, 48, 48), dtype=numpy.float32)
    labels = rng.integers(0, 7, args.batch)
    models, optimizers = {}, {}
    for name in args.backend:
        backend.use(name)
        models[name] = seed004().to(name)
        optimizers[name] = optim.Adam(models[name].parameters(), lr=1e-3)
        profile_network(models[name], images)                      # warm-up (compilation)
        train_step_seconds(models[name], optimizers[name], images, labels)
    # after the backends are loaded: loading the numba kernel set sets one BLAS thread
    if args.blas_threads is not None and not set_blas_threads(args.blas_threads):
        print("--blas-threads: NumPy's BLAS is not a loaded OpenBLAS; left as it is", file=sys.stderr)

    profiles = {name: [] for name in args.backend}
    steps = {name: [] for name in args.backend}
    machine = {threads: [] for threads in sorted({1, os.cpu_count() or 1})}
    order = list(args.backend)
    for rep in tqdm(range(args.reps), desc="profiling", file=sys.stderr):
        for threads, samples in machine.items():
            samples.append(matmul_gflops(reps=3, threads=threads))
        for name in order if rep % 2 == 0 else reversed(order):
            backend.use(name)
            profiles[name].append(profile_network(models[name], images))
            steps[name].append(train_step_seconds(models[name], optimizers[name], images, labels))
    for threads, samples in machine.items():
        print(f"machine float32 matmul (2048^3) with {threads} BLAS thread(s): "
              f"{statistics.median(samples):.0f} GFLOP/s (median of {args.reps}; "
              f"range {min(samples):.0f}-{max(samples):.0f})")
    gflops = max(statistics.median(samples) for samples in machine.values())
    print(f"layers ran with {blas_threads() or '?'} BLAS thread(s), {numba_threads()} Numba "
          f"thread(s); '% matmul' is of the faster matmul above, {gflops:.0f} GFLOP/s\n")
    for name in args.backend:
        print(_table(name, _median_rows(profiles[name]), gflops), "\n")
    for name in args.backend:
        step = statistics.median(steps[name])
        print(f"train step {name:>6}: {step * 1e3:7.0f} ms = {args.batch / step:6.1f} images/s "
              f"(batch {args.batch}, median of {args.reps})")
    print(f"peak resident memory of this process: {peak_memory_mb():.0f} MB")


if __name__ == "__main__":
    main()
