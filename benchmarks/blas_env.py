"""Which OpenBLAS kernels a benchmark times: the machine's overrides, unset for its own process.

Some machines export OPENBLAS_CORETYPE (with OPENBLAS_L2_SIZE) to pin OpenBLAS to one kernel
family, e.g. its Haswell (AVX2) kernels on a CPU that has AVX-512. The benchmarks that time
BLAS products (``app_speed``, ``fused_inference``, ``idle_gap``, ``keras_compare``) want the
kernels OpenBLAS picks for the CPU, so each unsets both variables for its own process, before
NumPy loads OpenBLAS, and prints what it unset and which kernel then ran (threadpoolctl).
``--keep-blas-env`` keeps them. Tests and CI never change them, nor does the library.

On an AMD EPYC with AVX-512 that sets OPENBLAS_CORETYPE=Haswell and OPENBLAS_L2_SIZE=512
(2026-12-02), ``python -m benchmarks.fused_inference --archs vgg_fer --batches 1 8 --reps 30``
gave one fused vgg_fer face (2 threads, median) 1.42 ms with them unset (SkylakeX kernels)
and 1.82 ms with them set (Haswell kernels, as ``--keep-blas-env`` now runs), one after the
other; later runs, 1.40-1.54 ms unset and 1.61-1.87 ms with ``--keep-blas-env``.

This module imports nothing that loads a BLAS, so a benchmark can import it first.
"""
from __future__ import annotations

import os
import sys

from threadpoolctl import threadpool_info   # finds loaded libraries; loads none itself

BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
KEEP_OPTION = "--keep-blas-env"
KEEP_HELP = "keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE if set (default: unset both for this run)"


def unset_overrides(argv: list[str]) -> dict[str, str]:
    """Unset BLAS_OVERRIDES in this process unless ``argv`` holds KEEP_OPTION; returns
    {name: value} of those unset. Must run before NumPy loads OpenBLAS, which reads them once."""
    if KEEP_OPTION in argv:
        return {}
    if "numpy" in sys.modules:
        raise RuntimeError("unset_overrides must run before NumPy is imported")
    return {name: os.environ.pop(name) for name in BLAS_OVERRIDES if name in os.environ}


def blas_description() -> str:
    """'openblas 0.3.x (SkylakeX kernels), 1 thread(s)' for each BLAS loaded, from threadpoolctl."""
    parts = [f"{info['internal_api']} {info.get('version') or ''} "
             f"({info.get('architecture') or '?'} kernels), {info['num_threads']} thread(s)"
             for info in threadpool_info() if info["user_api"] == "blas"]
    return "; ".join(parts) or "no BLAS found by threadpoolctl"


def unset_description(unset: dict[str, str]) -> str:
    """'unset for this run: OPENBLAS_CORETYPE=Haswell, ...', 'kept: ...' or 'neither ... set'."""
    if unset:
        return "unset for this run: " + ", ".join(f"{name}={value}" for name, value in unset.items())
    kept = [f"{name}={os.environ[name]}" for name in BLAS_OVERRIDES if name in os.environ]
    return f"kept: {', '.join(kept)}" if kept else f"neither {' nor '.join(BLAS_OVERRIDES)} set"
