"""kernels.parallel_matmul: a stack of products shared among threads equals numpy.matmul."""
import threading

import numpy as np
import pytest

from tinycnn import threads
from tinycnn.kernels import parallel_matmul
from tinycnn.kernels.blas_threads import blas_threads, set_blas_threads


@pytest.fixture
def two_threads():
    """Two threads for the products, and OpenBLAS on one (as the numba kernel set leaves it)."""
    blas = blas_threads()
    threads.set_threads(2)
    set_blas_threads(1)
    yield
    threads.set_threads(None)
    if blas:
        set_blas_threads(blas)


@pytest.mark.parametrize("stack", [1, 2, 3, 16, 36])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stacked_matmul_equals_numpy_matmul(two_threads, stack, dtype):
    rng = np.random.default_rng(stack)
    a = rng.standard_normal((stack, 5, 7)).astype(dtype)
    b = rng.standard_normal((stack, 9, 7)).astype(dtype).transpose(0, 2, 1)   # a strided view
    out = np.full((stack, 5, 9), np.nan, dtype=dtype)
    result = parallel_matmul.stacked_matmul(a, b, out=out)
    assert result is out
    np.testing.assert_allclose(out, np.matmul(a, b), rtol=1e-6 if dtype == np.float32 else 1e-12)
    assert parallel_matmul.stacked_matmul(a, b).dtype == dtype


def test_stacked_matmul_runs_its_parts_on_several_threads(two_threads, monkeypatch):
    """With two threads allowed the parts go to the pool, not to the calling thread."""
    callers, matmul = set(), np.matmul

    def recording_matmul(a, b, out):
        callers.add(threading.get_ident())
        return matmul(a, b, out=out)

    monkeypatch.setattr(parallel_matmul.numpy, "matmul", recording_matmul)
    a, b = np.ones((8, 3, 4)), np.ones((8, 4, 2))
    out = parallel_matmul.stacked_matmul(a, b)
    assert threading.get_ident() not in callers and len(callers) >= 1
    np.testing.assert_array_equal(out, np.full((8, 3, 2), 4.0))


def test_one_thread_is_a_plain_matmul(monkeypatch):
    threads.set_threads(1)
    try:
        calls = []
        monkeypatch.setattr(parallel_matmul, "_executor", lambda: calls.append(1))
        out = parallel_matmul.stacked_matmul(np.ones((4, 2, 2)), np.ones((4, 2, 2)))
        assert not calls and out[0, 0, 0] == 2.0
    finally:
        threads.set_threads(None)


def test_a_multithreaded_blas_gets_the_whole_product(two_threads, monkeypatch):
    """If the user gave OpenBLAS several threads, BLAS splits the product, not the pool."""
    monkeypatch.setattr(parallel_matmul, "blas_threads", lambda: 4)
    calls = []
    monkeypatch.setattr(parallel_matmul, "_executor", lambda: calls.append(1))
    out = parallel_matmul.stacked_matmul(np.ones((4, 2, 3)), np.ones((4, 3, 2)))
    assert not calls and out[0, 0, 0] == 3.0
