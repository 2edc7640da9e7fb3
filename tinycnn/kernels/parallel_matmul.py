"""Stacked matrix products split over threads, each thread on a one-thread BLAS.

    out[s] = a[s] @ b[s]   for s in range(S)      a (S, M, K), b (S, K, N) -> out (S, M, N)

The alpha^2 products of a Winograd convolution (``winograd.py``) are such a stack, and
they are most of a training step's time. NumPy's OpenBLAS stays on one thread
(``numba_cpu.py``): with two of its own threads the products ran 1.6x faster, but its
threads spin for a while after each product and took the cores from the Numba kernels that
came next (the tile transforms ran 2x slower), so the seed-004 step gained nothing.

Here the stack is cut along S into 2 x threads parts, which a pool of Python threads
takes one at a time. NumPy releases the GIL inside ``matmul``, so the parts run at
once, each on the one-thread BLAS, and a thread with no part left sleeps. A core that
another process keeps busy simply takes fewer parts. The thread count is
``tinycnn.threads.threads()``: the cores no other process is using (one on a busy
machine, where this is a plain ``numpy.matmul``). A user who gave OpenBLAS more than one
thread (``OPENBLAS_NUM_THREADS``) gets a plain ``numpy.matmul`` too: BLAS splits it then.
Measured on the 2-core machine, nothing else running: the seed-004 training step (batch 64)
went from 560 to 440 ms.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy

from .. import threads
from .blas_threads import blas_threads

_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    """The process's pool of ``threads.cores()`` Python threads, made on first use."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(threads.cores(), thread_name_prefix="tinycnn-matmul")
    return _pool


def _forget_pool() -> None:
    """A forked child has none of the parent's threads: it makes its own pool."""
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def stacked_matmul(a, b, out=None):
    """a (S, M, K) @ b (S, K, N) -> out (S, M, N), the S products shared among the free cores."""
    if out is None:
        out = numpy.empty((a.shape[0], a.shape[1], b.shape[2]),
                          dtype=numpy.result_type(a, b))
    count = min(threads.threads(), a.shape[0])
    if count <= 1 or (blas_threads() or 1) > 1:
        return numpy.matmul(a, b, out=out)
    parts = min(2 * count, a.shape[0])
    bounds = [(i * a.shape[0] // parts, (i + 1) * a.shape[0] // parts) for i in range(parts)]
    jobs = [_executor().submit(numpy.matmul, a[s:e], b[s:e], out=out[s:e]) for s, e in bounds]
    for job in jobs:
        job.result()
    return out
