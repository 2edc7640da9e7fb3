"""tinycnn: a small, readable autograd engine for convolutional networks.

    import tinycnn
    from tinycnn import nn, optim, functional as F
"""
from . import backend
from .random import manual_seed
from .serialization import SerializationError, load, save
from .tensor import Function, Tensor, get_default_dtype, is_grad_enabled, no_grad, set_default_dtype
from . import functional, init, nn, optim  # noqa: E402

__version__ = "0.1.0"

__all__ = ["Tensor", "Function", "no_grad", "is_grad_enabled", "set_default_dtype",
           "get_default_dtype", "manual_seed", "save", "load", "SerializationError", "backend",
           "functional", "init", "nn", "optim"]
