"""The one place that says which array module and which kernels are active.

A *backend* is a name, an array module (``xp``: ``numpy`` or ``cupy``) and a
*kernel set* (a module with the heavy per-op functions: convolution, pooling,
batch norm, ReLU, the Adam update). Autograd code never branches on the
backend: it asks :func:`of` for the backend that owns its input arrays and calls
that backend's kernels.

    numpy  plain reference kernels, written for any NumPy-like array module
    numba  same arrays (NumPy), Numba-compiled CPU kernels (the default when
           they load; if they cannot, a warning and numpy)
    cupy   CuPy arrays on a CUDA GPU

>>> import tinycnn
>>> tinycnn.backend.use("numpy")
>>> tinycnn.backend.current().name
'numpy'
"""
from __future__ import annotations

import importlib
import importlib.util
import warnings
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable

import numpy


class BackendError(RuntimeError):
    """A backend was asked for that cannot run here, or arrays were mixed."""


@dataclass(frozen=True)
class Backend:
    name: str          # "numpy", "numba" or "cupy"
    xp: ModuleType     # the array module: numpy or cupy
    kernels: Any       # module with the per-op kernel functions

    def to_numpy(self, array):
        """Copy an array of this backend to a host ``numpy.ndarray``."""
        if isinstance(array, (numpy.ndarray, numpy.generic)):
            return numpy.asarray(array)
        return self.xp.asnumpy(array)


# name -> function that builds the Backend (imports happen only when asked for)
_LOADERS: dict[str, Callable[[], Backend]] = {}
_LOADED: dict[str, Backend] = {}


def _default_name() -> str:
    """'numba' when its kernels load here (the fast CPU kernels), else 'numpy'."""
    if importlib.util.find_spec("numba") is None:
        return "numpy"
    try:
        get("numba")
    except BackendError as error:
        warnings.warn(f"{error}; using the numpy backend", RuntimeWarning, stacklevel=3)
        return "numpy"
    return "numba"


_current: str | None = None  # None until first asked: then _default_name()


def register(name: str, loader: Callable[[], Backend]) -> None:
    """Make a backend available to :func:`use` under ``name``."""
    _LOADERS[name] = loader
    _LOADED.pop(name, None)


def names() -> list[str]:
    """Names of all registered backends (whether or not they can run here)."""
    return list(_LOADERS)


def get(name: str) -> Backend:
    """The backend called ``name``; a one-line :class:`BackendError` if it cannot run."""
    if name not in _LOADERS:
        raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(_LOADERS)}")
    if name not in _LOADED:
        _LOADED[name] = _LOADERS[name]()
    return _LOADED[name]


def use(name: str) -> Backend:
    """Make ``name`` the active backend for new tensors and parameters."""
    global _current
    backend = get(name)
    _current = name
    return backend


def current() -> Backend:
    """The active backend (if none was chosen: numba when it loads, else numpy)."""
    global _current
    if _current is None:
        _current = _default_name()
    return get(_current)


def of(*arrays) -> Backend:
    """The backend that owns ``arrays`` (``None`` entries are ignored).

    Host NumPy arrays belong to the active CPU backend (``numba`` or ``numpy``);
    device arrays belong to the backend whose array module made them. Mixing the
    two is an error, never a silent copy.
    """
    found = None
    for array in arrays:
        if array is None:
            continue
        owner = _owner(array)
        if found is not None and owner.xp is not found.xp:
            raise BackendError(
                f"arrays from different backends in one operation: {found.name} and "
                f"{owner.name}; move the model and the data with .to({found.name!r})")
        found = owner
    return found if found is not None else current()


def _owner(array) -> Backend:
    if isinstance(array, (numpy.ndarray, numpy.generic)):
        active = current()
        return active if active.xp is numpy else get("numpy")
    for name in _LOADED:
        backend = _LOADED[name]
        if backend.xp is not numpy and isinstance(array, backend.xp.ndarray):
            return backend
    raise BackendError(f"not an array of any loaded backend: {type(array).__name__}")


def to_numpy(array):
    """Copy any backend array to a host ``numpy.ndarray`` (explicitly)."""
    return of(array).to_numpy(array)


def _load_numpy() -> Backend:
    from .kernels import reference
    return Backend("numpy", numpy, reference)


def _load_numba() -> Backend:
    try:
        kernels = importlib.import_module("tinycnn.kernels.numba_cpu")
    except ImportError as error:
        raise BackendError(f"backend 'numba' needs the numba package: {error}") from None
    except Exception as error:  # a broken Numba/llvmlite install, an unusable cache...
        raise BackendError(f"backend 'numba' cannot load: {type(error).__name__}: "
                           f"{error}".splitlines()[0]) from None
    return Backend("numba", numpy, kernels)


def _load_cupy() -> Backend:
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() == 0:
            raise RuntimeError("no CUDA device found")
    except Exception as error:  # ImportError, CUDARuntimeError, missing driver...
        raise BackendError(
            f"backend 'cupy' needs CuPy and a CUDA GPU (pip install 'tinycnn[gpu]'): "
            f"{type(error).__name__}: {error}".splitlines()[0]) from None
    kernels = importlib.import_module("tinycnn.kernels.cupy_gpu")
    return Backend("cupy", cupy, kernels)


register("numpy", _load_numpy)
register("numba", _load_numba)
register("cupy", _load_cupy)
