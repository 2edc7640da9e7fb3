"""Print every op and layer with its measured gradient-check error, as a Markdown table.

    python -m tests.gradcheck_report            # all CPU backends that load here
    python -m tests.gradcheck_report --backends numpy

The cases are the ones ``tests/test_engine_gradcheck.py`` asserts on; each
cell is the largest relative error over the case's inputs (see
``tests/gradcheck.py``).
"""
from __future__ import annotations

import argparse

import numpy
from tqdm import tqdm

import tinycnn
from tests.conftest import CPU_BACKENDS, using_backend
from tests.gradcheck import check_gradients
from tests.test_engine_gradcheck import CASES, TOLERANCE


def measure(backends: list[str]) -> dict[str, dict[str, float]]:
    """case name -> backend name -> max relative error over the case's inputs."""
    errors: dict[str, dict[str, float]] = {name: {} for name in CASES}
    tinycnn.set_default_dtype(numpy.float64)
    try:
        for backend_name in backends:
            with using_backend(backend_name):
                for name, build in tqdm(CASES.items(), desc=backend_name, leave=False):
                    function, inputs = build(numpy.random.default_rng(0))
                    errors[name][backend_name] = max(check_gradients(function, inputs))
    finally:
        tinycnn.set_default_dtype(numpy.float32)
    return errors


def table(errors: dict[str, dict[str, float]], backends: list[str]) -> str:
    lines = ["| op / layer | " + " | ".join(backends) + " |",
             "|---|" + "---|" * len(backends)]
    for name, by_backend in errors.items():
        cells = [f"{by_backend[b]:.1e}" for b in backends]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=CPU_BACKENDS,
                        help=f"backends to measure (default: those that load here, {CPU_BACKENDS})")
    args = parser.parse_args()
    errors = measure(args.backends)
    print(table(errors, args.backends))
    worst = max(max(by_backend.values()) for by_backend in errors.values())
    print(f"\n{len(errors)} cases, worst relative error {worst:.1e} "
          f"(tolerance {TOLERANCE:.0e}), float64, central differences with eps = 1e-6")


if __name__ == "__main__":
    main()
