"""Module, Parameter and Sequential: the PyTorch-like way to hold weights."""
from __future__ import annotations

from collections import OrderedDict
from typing import Iterator

import numpy

from .. import backend
from ..tensor import Tensor


class Parameter(Tensor):
    """A tensor that a Module owns and an optimizer updates (requires_grad=True)."""

    def __init__(self, data):
        super().__init__(data, requires_grad=True)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


class Module:
    """Base class of layers and models.

    Assigning a :class:`Parameter` or a Module to an attribute registers it;
    :meth:`register_buffer` registers state that is saved but not trained
    (e.g. batch norm's running statistics). Registration order is kept, so
    ``parameters()`` and ``state_dict()`` are the same on every run.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"call super().__init__() in {type(self).__name__}.__init__ first")
        if name in self._parameters and not isinstance(value, (Parameter, type(None))):
            raise TypeError(f"cannot assign {type(value).__name__} to parameter {name!r} "
                            "(a Parameter or None expected); to change its values, assign to .data")
        if name in self._buffers and not isinstance(value, (Parameter, Module, type(None))):
            object.__setattr__(self, name, value)   # a new array for a buffer stays a buffer
            return
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, array) -> None:
        """Keep ``array`` as state that is saved and moved with the module but not trained."""
        object.__setattr__(self, name, array)
        self._buffers[name] = True

    def forward(self, *args):
        raise NotImplementedError

    def __call__(self, *args):
        return self.forward(*args)

    # --- walking the tree ----------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        yield prefix, self
        for name, module in self._modules.items():
            yield from module.named_modules(f"{prefix}{name}.")

    def modules(self) -> list["Module"]:
        return [module for _, module in self.named_modules()]

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        for prefix, module in self.named_modules():
            for name, parameter in module._parameters.items():
                yield prefix + name, parameter

    def parameters(self) -> list[Parameter]:
        return [parameter for _, parameter in self.named_parameters()]

    def named_buffers(self) -> Iterator[tuple[str, object]]:
        for prefix, module in self.named_modules():
            for name in module._buffers:
                yield prefix + name, getattr(module, name)

    # --- modes and gradients -------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self) -> None:
        for parameter in self.parameters():
            parameter.grad = None

    # --- state ---------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, numpy.ndarray]":
        """Every parameter and buffer as a host NumPy copy, by dotted name."""
        state = OrderedDict()
        for name, parameter in self.named_parameters():
            state[name] = backend.to_numpy(parameter.data).copy()
        for name, buffer in self.named_buffers():
            state[name] = backend.to_numpy(buffer).copy()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Copy arrays into the parameters and buffers; names and shapes must match exactly.

        All or nothing: every name, shape and dtype is checked before anything is copied,
        so a state that does not fit (KeyError for names, ValueError for a shape or a dtype
        that cannot be cast to the model's) leaves the model as it was.
        """
        targets = self._state_targets()
        missing = [name for name in targets if name not in state]
        unexpected = [name for name in state if name not in targets]
        if missing or unexpected:
            raise KeyError(f"state does not fit {type(self).__name__}: "
                           f"missing {missing or 'nothing'}, unexpected {unexpected or 'nothing'}")
        arrays = {name: self._state_array(*target) for name, target in targets.items()}
        for name, array in arrays.items():
            value = state[name]
            if tuple(value.shape) != tuple(array.shape):
                raise ValueError(f"parameter {name!r}: saved shape {tuple(value.shape)} does not "
                                 f"fit the model's shape {tuple(array.shape)}")
            if not numpy.can_cast(value.dtype, array.dtype, casting="same_kind"):
                raise ValueError(f"parameter {name!r}: saved dtype {value.dtype} cannot become "
                                 f"the model's {array.dtype}")
        for name, (owner, attribute) in targets.items():
            array = arrays[name]
            new = backend.of(array).xp.array(state[name], dtype=array.dtype)  # a copy, never shared
            current = getattr(owner, attribute)
            if isinstance(current, Tensor):
                current.data = new
            else:
                object.__setattr__(owner, attribute, new)

    @staticmethod
    def _state_array(owner: "Module", attribute: str):
        """The array behind a parameter (its .data) or a buffer."""
        current = getattr(owner, attribute)
        return current.data if isinstance(current, Tensor) else current

    def _state_targets(self) -> "OrderedDict[str, tuple[Module, str]]":
        targets = OrderedDict()
        for prefix, module in self.named_modules():
            for name in module._parameters:
                targets[prefix + name] = (module, name)
        for prefix, module in self.named_modules():
            for name in module._buffers:
                targets[prefix + name] = (module, name)
        return targets

    def to(self, target) -> "Module":
        """Move every parameter and buffer to backend ``target`` ("numpy", "numba",
        "cupy"), or cast them to dtype ``target`` (e.g. ``numpy.float64``)."""
        for owner, attribute in self._state_targets().values():
            current = getattr(owner, attribute)
            array = current.data if isinstance(current, Tensor) else current
            if isinstance(target, str):
                new = backend.get(target).xp.asarray(backend.to_numpy(array))
            else:
                new = array.astype(target)
            if isinstance(current, Tensor):
                current.data, current.grad = new, None
            else:
                object.__setattr__(owner, attribute, new)
        return self

    def num_parameters(self) -> int:
        return sum(parameter.size for parameter in self.parameters())

    # --- printing ------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        if not self._modules:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"  ({name}): " + repr(module).replace("\n", "\n  ")
                 for name, module in self._modules.items()]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


class Sequential(Module):
    """Apply modules one after another: ``Sequential(Conv2d(1, 8, 3), ReLU())(x)``."""

    def __init__(self, *modules: Module):
        super().__init__()
        for index, module in enumerate(modules):
            setattr(self, str(index), module)

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x
