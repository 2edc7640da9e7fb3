"""How many threads NumPy's BLAS (OpenBLAS) uses, read and changed at run time.

On the 2-core machine this was written on (shared with other jobs), OpenBLAS
with two threads ran a stack of 36 products (512, 128) @ (128, 576) at 5 GFLOP/s
and with one thread at 100 GFLOP/s; a 2048^3 product was no faster with two
(100 vs 112). The seed-004 training step ran 2-3x faster with one BLAS thread
(numba backend about 80 vs 27 images/s, numpy backend about 25 vs 14).
``OPENBLAS_NUM_THREADS=1`` does the same but only if it is set before NumPy is
imported; these functions work afterwards. Loading the numba kernel set
(``numba_cpu.py``) sets one thread unless OPENBLAS_NUM_THREADS says otherwise.

Linux only: the loaded OpenBLAS is found in /proc/self/maps. With another BLAS
or elsewhere they do nothing and say so (``None`` / ``False``).
"""
from __future__ import annotations

import ctypes
from functools import lru_cache

import numpy  # noqa: F401  (loads NumPy's BLAS library, which is looked up below)

# OpenBLAS's thread-count functions, under the names of its different builds
_NAMES = [("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
          ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
          ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
          ("openblas_set_num_threads", "openblas_get_num_threads")]


@lru_cache(maxsize=1)
def _openblas_functions():
    """(set_num_threads, get_num_threads) of the loaded OpenBLAS, or None."""
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower()})
    except OSError:
        return None
    for path in paths:
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for setter, getter in _NAMES:
            if hasattr(library, setter) and hasattr(library, getter):
                return getattr(library, setter), getattr(library, getter)
    return None


def blas_threads() -> int | None:
    """Threads OpenBLAS uses now; None if NumPy's BLAS is not a loaded OpenBLAS."""
    functions = _openblas_functions()
    return None if functions is None else int(functions[1]())


def set_blas_threads(count: int) -> bool:
    """Make OpenBLAS use ``count`` threads from now on; False if it could not be found."""
    if count < 1:
        raise ValueError(f"BLAS needs at least one thread, got {count}")
    functions = _openblas_functions()
    if functions is None:
        return False
    functions[0](ctypes.c_int(count))
    return True
