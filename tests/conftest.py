"""Shared fixtures: float64 mode and the CPU backends that can run here."""
from __future__ import annotations

import numpy
import pytest

import tinycnn
from tinycnn import backend


def _loads(name: str) -> bool:
    try:
        backend.get(name)
    except backend.BackendError:
        return False
    return True


# "numpy" always; "numba" once tinycnn/kernels/numba_cpu.py exists and imports.
CPU_BACKENDS = [name for name in ("numpy", "numba") if _loads(name)]


@pytest.fixture
def float64():
    """New tensors and parameters are float64 inside the test, float32 again after."""
    tinycnn.set_default_dtype(numpy.float64)
    yield numpy.float64
    tinycnn.set_default_dtype(numpy.float32)


@pytest.fixture(params=CPU_BACKENDS)
def backend_name(request):
    """Run the test once per available CPU backend, then switch back."""
    previous = backend.current().name
    backend.use(request.param)
    yield request.param
    backend.use(previous)
