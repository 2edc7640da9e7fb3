"""Tensor and Function: the whole autograd engine.

A :class:`Tensor` holds an array (``.data``) of the backend that made it and,
after :meth:`Tensor.backward`, the gradient of a scalar with respect to it
(``.grad``, an array of the same shape). Every operation is a
:class:`Function` with a ``forward`` on arrays and a ``backward`` that maps the
gradient of its output to the gradients of its inputs. Calling a Function on
tensors records it as the ``creator`` of its output, so the tensors form a
graph that :meth:`Tensor.backward` walks in reverse.

The walk is ordered by *generation* (the length of the longest path from a
leaf), with a heap and no recursion, as in DeZero: a Function runs only after
every Function that consumed its output, so a tensor used twice gets the sum of
both gradients before it is passed on.
"""
from __future__ import annotations

import contextlib
import heapq
import itertools

import numpy

from . import backend

_grad_enabled = True
_default_dtype = numpy.float32


@contextlib.contextmanager
def no_grad():
    """Inside this block operations record no graph (inference, optimizer steps)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled() -> bool:
    return _grad_enabled


def set_default_dtype(dtype) -> None:
    """dtype of new parameters and of tensors built from Python numbers (float32 or float64)."""
    global _default_dtype
    dtype = numpy.dtype(dtype)
    if dtype not in (numpy.float32, numpy.float64):
        raise ValueError(f"default dtype must be float32 or float64, not {dtype}")
    _default_dtype = dtype.type


def get_default_dtype():
    return _default_dtype


class Tensor:
    """An array with an optional gradient.

    ``Tensor(data)`` converts ``data`` (a list, a number or an array) to an array
    of the active backend, of the default dtype (float32) unless ``dtype`` is given.
    """

    __array_priority__ = 100  # so that ``numpy_array * tensor`` calls Tensor.__rmul__

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        xp = backend.current().xp
        self.data = xp.asarray(data, dtype=dtype or _default_dtype)
        self.grad = None
        self.requires_grad = requires_grad
        self.creator: Function | None = None   # the Function whose output this is
        self.output_index = 0                  # which of the creator's outputs
        self.generation = 0

    @classmethod
    def _wrap(cls, array, creator=None, index=0) -> "Tensor":
        """A tensor around an existing backend array, with no conversion."""
        tensor = cls.__new__(cls)
        tensor.data = array
        tensor.grad = None
        tensor.requires_grad = creator is not None
        tensor.creator = creator
        tensor.output_index = index
        tensor.generation = creator.generation + 1 if creator is not None else 0
        return tensor

    # --- plain properties --------------------------------------------------
    @property
    def shape(self) -> tuple:
        return tuple(self.data.shape)

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({backend.to_numpy(self.data)!r}{grad})"

    def numpy(self):
        """A host ``numpy.ndarray`` copy-free for CPU backends, copied from a GPU."""
        return backend.to_numpy(self.data)

    to_numpy = numpy

    def item(self) -> float:
        return float(self.numpy().reshape(-1)[0]) if self.size == 1 else _not_scalar(self)

    def detach(self) -> "Tensor":
        """The same data, cut off from the graph."""
        return Tensor._wrap(self.data)

    def to(self, name: str) -> "Tensor":
        """A copy on backend ``name`` (a new leaf); ``self`` if it is already there."""
        target = backend.get(name)
        if backend.of(self.data).xp is target.xp:
            return self
        host = backend.to_numpy(self.data)
        moved = Tensor._wrap(target.xp.asarray(host))
        moved.requires_grad = self.requires_grad
        return moved

    # --- backward ----------------------------------------------------------
    def backward(self, grad=None) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        ``grad`` (same shape as ``self``) is the gradient flowing in; it may be
        left out only when ``self`` holds a single number.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() on a tensor that does not require grad: no input of the "
                "computation had requires_grad=True, or it ran inside no_grad()")
        if grad is None:
            if self.size != 1:
                raise RuntimeError(
                    f"backward() on a tensor of shape {self.shape} needs a gradient of that "
                    "shape: only a single-number tensor (a loss) has an implied gradient of 1")
            grad = backend.of(self.data).xp.ones_like(self.data)
        else:
            grad = grad.data if isinstance(grad, Tensor) else grad
            if tuple(grad.shape) != self.shape:
                raise ValueError(f"gradient shape {tuple(grad.shape)} != tensor shape {self.shape}")
        _accumulate(self, grad)
        if self.creator is None:
            return

        order = itertools.count()  # tie-breaker so the heap never compares Functions
        heap = [(-self.creator.generation, next(order), self.creator)]
        queued = {id(self.creator)}
        while heap:
            _, _, function = heapq.heappop(heap)
            douts = function.take_output_grads()
            dins = function.backward(*douts)
            if not isinstance(dins, tuple):
                dins = (dins,)
            for tensor, din in zip(function.inputs, dins):
                if din is None or not tensor.requires_grad:
                    continue
                _accumulate(tensor, din)
                creator = tensor.creator
                if creator is not None and id(creator) not in queued:
                    queued.add(id(creator))
                    heapq.heappush(heap, (-creator.generation, next(order), creator))

    # --- operators (the Functions live in ops.py) ---------------------------
    def __add__(self, other): return ops.add(self, other)
    def __radd__(self, other): return ops.add(other, self)
    def __sub__(self, other): return ops.sub(self, other)
    def __rsub__(self, other): return ops.sub(other, self)
    def __mul__(self, other): return ops.mul(self, other)
    def __rmul__(self, other): return ops.mul(other, self)
    def __truediv__(self, other): return ops.div(self, other)
    def __rtruediv__(self, other): return ops.div(other, self)
    def __neg__(self): return ops.neg(self)
    def __pow__(self, exponent): return ops.power(self, exponent)
    def __matmul__(self, other): return ops.matmul(self, other)

    def sum(self, axis=None, keepdims=False): return ops.sum(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return ops.mean(self, axis, keepdims)
    def reshape(self, *shape): return ops.reshape(self, *shape)
    def transpose(self, *axes): return ops.transpose(self, *axes)
    def exp(self): return ops.exp(self)
    def log(self): return ops.log(self)

    @property
    def T(self): return ops.transpose(self)


def _not_scalar(tensor):
    raise ValueError(f"item() needs a single-number tensor, got shape {tensor.shape}")


def _accumulate(tensor: Tensor, grad) -> None:
    """Add ``grad`` to a leaf's ``.grad``, or to its creator's pending output gradient.

    A leaf's first gradient is copied, so two leaves never share one gradient array
    (``a + b`` hands the same ``dy`` to both).
    """
    if tensor.creator is None:
        tensor.grad = grad.copy() if tensor.grad is None else tensor.grad + grad
    else:
        tensor.creator.add_output_grad(tensor.output_index, grad)


class Function:
    """One differentiable operation.

    Subclasses implement ``forward(*arrays) -> array or tuple of arrays`` and
    ``backward(*douts) -> array or tuple`` (one gradient per input, ``None`` for
    inputs that need none). Settings such as a stride go to ``__init__``;
    whatever backward needs is saved on ``self`` during forward.
    """

    inputs: tuple
    generation: int

    def __call__(self, *inputs):
        tensors = tuple(x if isinstance(x, Tensor) else _constant_like(x, inputs) for x in inputs)
        arrays = tuple(t.data for t in tensors)
        backend.of(*arrays)  # a clear BackendError if the inputs live on different backends
        outputs = self.forward(*arrays)
        single = not isinstance(outputs, tuple)
        outputs = (outputs,) if single else outputs

        if _grad_enabled and any(t.requires_grad for t in tensors):
            self.inputs = tensors
            self.generation = max(t.generation for t in tensors)
            self.output_shapes = [y.shape for y in outputs]
            self.output_grads = [None] * len(outputs)
            results = tuple(Tensor._wrap(y, self, i) for i, y in enumerate(outputs))
        else:
            results = tuple(Tensor._wrap(y) for y in outputs)
        return results[0] if single else results

    def add_output_grad(self, index: int, grad) -> None:
        pending = self.output_grads[index]
        self.output_grads[index] = grad if pending is None else pending + grad

    def take_output_grads(self) -> list:
        """The summed gradients of the outputs (zeros for an unused output), then forget them."""
        douts = []
        for grad, shape in zip(self.output_grads, self.output_shapes):
            if grad is None:
                grad = backend.of(self.inputs[0].data).xp.zeros(shape, self.inputs[0].dtype)
            douts.append(grad)
        self.output_grads = [None] * len(douts)
        return douts

    def forward(self, *xs):
        raise NotImplementedError

    def backward(self, *douts):
        raise NotImplementedError


def _constant_like(value, inputs) -> Tensor:
    """A Python number or array next to tensors becomes a constant of their dtype and backend."""
    like = next(x for x in inputs if isinstance(x, Tensor))
    xp = backend.of(like.data).xp
    return Tensor._wrap(xp.asarray(value, dtype=like.dtype))


from . import ops  # noqa: E402  (ops needs Tensor and Function defined first)
