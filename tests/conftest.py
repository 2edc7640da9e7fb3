"""Shared fixtures: float64 mode, the CPU backends that can run here, and a private
data-cache folder for the whole session."""
from __future__ import annotations

import contextlib
import os

import numpy
import pytest

import tinycnn
from fer_app.data import data_cache
from tinycnn import backend


def _loads(name: str) -> bool:
    try:
        backend.get(name)
    except backend.BackendError:
        return False
    return True


# "numpy" always; "numba" when tinycnn/kernels/numba_cpu.py imports.
CPU_BACKENDS = [name for name in ("numpy", "numba") if _loads(name)]


@contextlib.contextmanager
def using_backend(name: str):
    """Make ``name`` the active backend inside the block, then switch back.

    Numba runs on one thread here: tests make thousands of calls on tiny arrays,
    where handing work to a second thread on a busy 2-core machine costs far
    more than the work (the parallel paths are tested in test_kernels_numba.py).
    """
    previous = backend.current().name
    backend.use(name)
    threads = None
    if name == "numba":
        import numba
        threads = numba.get_num_threads()
        numba.set_num_threads(1)
    try:
        yield name
    finally:
        if threads is not None:
            numba.set_num_threads(threads)
        backend.use(previous)


@pytest.fixture(autouse=True, scope="session")
def private_data_cache(tmp_path_factory):
    """Parsed-data caches go to a temporary folder (also for CLI subprocesses, through the
    environment), never beside the data: the suite must not write 76 MB next to a shared
    FER-2013 file (fer_app/data/data_cache.py)."""
    folder = tmp_path_factory.mktemp("fer_app_cache")
    previous = os.environ.get(data_cache.CACHE_DIR_VARIABLE)
    os.environ[data_cache.CACHE_DIR_VARIABLE] = str(folder)
    yield folder
    if previous is None:
        del os.environ[data_cache.CACHE_DIR_VARIABLE]
    else:
        os.environ[data_cache.CACHE_DIR_VARIABLE] = previous


@pytest.fixture(autouse=True)
def restore_active_backend():
    """Every test starts and ends with the same active backend, whatever it switched to."""
    name = backend.current().name
    yield
    backend.use(name)


@pytest.fixture
def float64():
    """New tensors and parameters are float64 inside the test, float32 again after."""
    tinycnn.set_default_dtype(numpy.float64)
    yield numpy.float64
    tinycnn.set_default_dtype(numpy.float32)


@pytest.fixture(params=CPU_BACKENDS)
def backend_name(request):
    """Run the test once per available CPU backend."""
    with using_backend(request.param):
        yield request.param
