"""Keep freed memory in the process for the next large array (glibc's ``mallopt``).

A training step makes the same large arrays every time: activations, their gradients,
Winograd tiles (seed-004's first block at batch 64: 38 MB each). glibc's malloc serves
a request over 32 MB (its largest mmap threshold) with a fresh ``mmap`` and hands it back
to the kernel when it is freed, so every step faults those pages in again and the kernel
zeroes each one. Measured on this project's 2-core machine: writing a fresh 38 MB array
took 4.2 ms against 2.8 ms for one reused, and the seed-004 training step (batch 64)
took 310 ms with freed memory kept against 360-400 ms without.

:func:`keep_freed_memory` asks malloc to serve large requests from its heap too
(``M_MMAP_MAX = 0``) and to give the free top of the heap back to the kernel only beyond
``TRIM_BYTES``, so what one step frees, the next one reuses. The price: a process keeps
up to TRIM_BYTES of freed memory, and its heap does not shrink below its peak use.
PyTorch and TensorFlow keep their own caches of freed blocks for the same reason.

glibc only (Linux): elsewhere it does nothing and returns False.
"""
from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1        # glibc's malloc.h: free heap top kept up to this many bytes
M_MMAP_MAX = -4              # glibc's malloc.h: at most this many mmap'd blocks (0: none)
TRIM_BYTES = 1 << 30


def keep_freed_memory() -> bool:
    """Large arrays come from malloc's heap, and freed ones stay there for reuse; False
    where there is no glibc ``mallopt`` (or it refused)."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_BYTES))
