"""A strict stand-in for CuPy, backed by NumPy, so the ``cupy`` path is tested without a GPU.

    fake = make_fake_cupy()
    x = fake.asarray(numpy.ones((2, 3)))      # host -> "device" (a copy)
    y = fake.exp(x) + 1                        # DeviceArray
    fake.asnumpy(y)                            # "device" -> host (a copy): the only way back
    fake.calls                                 # ['asarray', 'exp', 'ndarray.__add__', 'asnumpy']

Its arrays (:class:`DeviceArray`) behave like ``cupy.ndarray`` where it matters
and are stricter where CuPy is lenient:

- no implicit conversion to a host array: ``numpy.asarray(d)`` (``__array__``),
  every ``numpy.*`` function (``__array_function__``) and every NumPy ufunc
  (``__array_ufunc__ = None``) raise ``TypeError``. (Real CuPy forwards NumPy
  functions to its own; the stand-in refuses them, so code that passes must
  call the array module it was given.) Numba cannot type a DeviceArray either;
- operators, indexing and methods accept device arrays and Python/NumPy scalars
  and raise ``TypeError`` on a host ``numpy.ndarray``, as CuPy does;
- ``int()``, ``float()``, ``bool()`` and ``item()`` of a one-element array are
  allowed (CuPy allows them: an explicit scalar read).

Every module-level call and every array method/operator is appended to
``fake.calls`` (``"pad"``, ``"random.random_sample"``, ``"ndarray.argmax"``...),
so a test can check which device operations ran.
"""
from __future__ import annotations

import types

import numpy

# The cupy functions the stand-in offers (each exists in CuPy with NumPy's signature).
_FUNCTIONS = [
    "zeros", "ones", "empty", "full", "zeros_like", "ones_like", "empty_like", "full_like",
    "arange", "ascontiguousarray", "pad", "take_along_axis", "expand_dims", "broadcast_to",
    "concatenate", "stack", "reshape", "transpose", "squeeze", "where", "clip",
    "maximum", "minimum", "exp", "log", "sqrt", "abs", "square", "tanh",
    "sum", "mean", "max", "argmax", "matmul", "dot", "tensordot", "einsum",
    "allclose", "array_equal", "isfinite", "all", "any",
]
_METHODS = [
    "reshape", "transpose", "sum", "mean", "var", "std", "max", "min", "argmax", "argmin",
    "astype", "copy", "ravel", "flatten", "squeeze", "clip", "all", "any", "dot", "fill",
    "cumsum", "swapaxes",
]
_OPERATORS = [
    "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul",
    "and", "or", "xor",
]
_COMPARISONS = ["lt", "le", "gt", "ge", "eq", "ne"]
_UNARY = ["neg", "pos", "abs", "invert"]
_CONSTANTS = [
    "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool_",
    "intp", "dtype", "inf", "nan", "pi", "e", "newaxis",
]


def _refuse_host(array: numpy.ndarray, where: str):
    raise TypeError(f"{where}: a host numpy.ndarray {array.shape} mixed with device arrays; "
                    f"copy it with asarray() first")


def _to_host(value, where: str):
    """DeviceArray -> its NumPy storage (recursively in tuples/lists); refuse host arrays."""
    if isinstance(value, DeviceArray):
        return value._host
    if isinstance(value, numpy.ndarray):
        _refuse_host(value, where)
    if isinstance(value, (tuple, list)):
        return type(value)(_to_host(item, where) for item in value)
    return value


def _to_device(value, calls: list):
    """NumPy results -> DeviceArray (0-d for scalars, as CuPy returns); others unchanged."""
    if isinstance(value, numpy.ndarray):
        return DeviceArray(value, calls)
    if isinstance(value, numpy.generic):
        return DeviceArray(numpy.asarray(value), calls)
    if isinstance(value, tuple):
        return tuple(_to_device(item, calls) for item in value)
    return value


class DeviceArray:
    """An array "on the device": NumPy storage that host code cannot reach implicitly."""

    __array_ufunc__ = None  # NumPy ufuncs refuse it; NumPy operators defer to its own

    def __init__(self, host: numpy.ndarray, calls: list):
        self._host = host
        self._calls = calls

    # --- no implicit way to the host -----------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion of a device array to a NumPy array is not "
                        "allowed; copy it explicitly with asnumpy()")

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(f"numpy.{func.__name__} was called on a device array; "
                        f"use the device array module's function")

    def get(self) -> numpy.ndarray:
        """An explicit copy to the host (as ``cupy.ndarray.get``)."""
        self._calls.append("ndarray.get")
        return self._host.copy()

    # --- plain properties ----------------------------------------------------
    shape = property(lambda self: self._host.shape)
    dtype = property(lambda self: self._host.dtype)
    ndim = property(lambda self: self._host.ndim)
    size = property(lambda self: self._host.size)
    itemsize = property(lambda self: self._host.itemsize)
    nbytes = property(lambda self: self._host.nbytes)
    strides = property(lambda self: self._host.strides)

    @property
    def T(self) -> "DeviceArray":
        self._calls.append("ndarray.T")
        return DeviceArray(self._host.T, self._calls)

    def __len__(self) -> int:
        return len(self._host)

    def __repr__(self) -> str:
        return f"DeviceArray(shape={self.shape}, dtype={self.dtype})"

    # --- explicit scalar reads (allowed by CuPy for one-element arrays) -------
    def _scalar(self, kind):
        if self._host.size != 1:
            raise TypeError(f"only one-element device arrays convert to {kind.__name__}")
        self._calls.append(f"ndarray.__{kind.__name__}__")
        return kind(self._host.reshape(-1)[0])

    def __float__(self): return self._scalar(float)
    def __int__(self): return self._scalar(int)
    def __bool__(self): return self._scalar(bool)

    def item(self):
        self._calls.append("ndarray.item")
        return self._host.item()

    # --- indexing (views stay views, so in-place slice updates work) ----------
    def __getitem__(self, key):
        self._calls.append("ndarray.__getitem__")
        return _to_device(self._host[_to_host(key, "index")], self._calls)

    def __setitem__(self, key, value):
        self._calls.append("ndarray.__setitem__")
        self._host[_to_host(key, "index")] = _to_host(value, "assignment")

    def __iter__(self):
        return (self[i] for i in range(len(self)))


def _method(name):
    def method(self, *args, **kwargs):
        self._calls.append(f"ndarray.{name}")
        args, kwargs = _to_host(args, name), {k: _to_host(v, name) for k, v in kwargs.items()}
        return _to_device(getattr(self._host, name)(*args, **kwargs), self._calls)
    method.__name__ = name
    return method


def _binary(dunder):
    def operator(self, other):
        self._calls.append(f"ndarray.{dunder}")
        result = getattr(self._host, dunder)(_to_host(other, dunder))
        return result if result is NotImplemented else _to_device(result, self._calls)
    operator.__name__ = dunder
    return operator


def _in_place(dunder):
    def operator(self, other):
        self._calls.append(f"ndarray.{dunder}")
        getattr(self._host, dunder)(_to_host(other, dunder))   # numpy's in-place op on the storage
        return self
    operator.__name__ = dunder
    return operator


for _name in _METHODS:
    setattr(DeviceArray, _name, _method(_name))
for _name in _OPERATORS:
    for _dunder in (f"__{_name}__", f"__r{_name}__"):
        setattr(DeviceArray, _dunder, _binary(_dunder))
    setattr(DeviceArray, f"__i{_name}__", _in_place(f"__i{_name}__"))
for _name in _COMPARISONS + _UNARY:
    setattr(DeviceArray, f"__{_name}__", _binary(f"__{_name}__") if _name in _COMPARISONS
            else _method(f"__{_name}__"))
DeviceArray.__hash__ = None  # like every ndarray: == is elementwise


def make_fake_cupy() -> types.ModuleType:
    """A fresh stand-in module with an empty ``calls`` log and its own random state."""
    fake = types.ModuleType("fake_cupy", "NumPy-backed strict stand-in for cupy")
    calls: list[str] = []
    fake.calls = calls
    fake.ndarray = DeviceArray

    def device_function(name):
        host_function = getattr(numpy, name)

        def call(*args, **kwargs):
            calls.append(name)
            args = _to_host(args, f"cupy.{name}")
            kwargs = {k: _to_host(v, f"cupy.{name}") for k, v in kwargs.items()}
            return _to_device(host_function(*args, **kwargs), calls)
        call.__name__ = name
        return call

    for name in _FUNCTIONS:
        setattr(fake, name, device_function(name))
    for name in _CONSTANTS:
        setattr(fake, name, getattr(numpy, name))

    def array(obj, dtype=None, copy=True):
        """Host data (or a device array) -> a new device array: the host-to-device copy."""
        calls.append("array")
        host = obj._host if isinstance(obj, DeviceArray) else obj
        return DeviceArray(numpy.array(host, dtype=dtype, copy=copy), calls)

    def asarray(obj, dtype=None):
        """As ``cupy.asarray``: device arrays pass (cast if needed), host data is copied over."""
        calls.append("asarray")
        if isinstance(obj, DeviceArray):
            return obj if dtype is None or obj.dtype == dtype else obj.astype(dtype)
        return DeviceArray(numpy.array(obj, dtype=dtype), calls)

    def asnumpy(obj) -> numpy.ndarray:
        """The one explicit way back to the host: a copy."""
        calls.append("asnumpy")
        return obj._host.copy() if isinstance(obj, DeviceArray) else numpy.asarray(obj)

    fake.array, fake.asarray, fake.asnumpy = array, asarray, asnumpy
    fake.random = _fake_random(calls)
    fake.ElementwiseKernel = _elementwise_kernel_class(calls)
    return fake


def _elementwise_kernel_class(calls: list) -> type:
    """``cupy.ElementwiseKernel`` evaluated with NumPy instead of compiled with NVRTC.

    The CUDA body must be ``;``-separated statements that are also Python
    (``m += a * (g - m)``, ``dx = dy * (y > 0)``, ``sqrt``): each runs on whole
    arrays, which for an elementwise body is the same as running it per element.
    A body that is not such Python fails when the kernel is made, as CUDA
    source that does not compile fails on a GPU. Scalars are cast to the type
    ``T`` of the array arguments; outputs passed in are written in place,
    missing ones are allocated (broadcast shape, type ``T``) and returned.
    """
    class ElementwiseKernel:
        def __init__(self, in_params: str, out_params: str, operation: str, name: str = "kernel"):
            self.inputs = [param.split()[-1] for param in in_params.split(",")]
            self.outputs = [param.split()[-1] for param in out_params.split(",")]
            self.statements = [compile(statement.strip(), name, "exec")
                               for statement in operation.split(";") if statement.strip()]
            self.name = name

        def __call__(self, *args):
            calls.append(f"ElementwiseKernel.{self.name}")
            values = [_to_host(arg, self.name) for arg in args]
            arrays = [value for value in values if isinstance(value, numpy.ndarray)]
            t = arrays[0].dtype.type                                   # T
            values = [value if isinstance(value, numpy.ndarray) else t(value) for value in values]
            inputs, outputs = values[:len(self.inputs)], values[len(self.inputs):]
            if not outputs:
                shape = numpy.broadcast_shapes(*(value.shape for value in arrays))
                outputs = [numpy.empty(shape, dtype=t) for _ in self.outputs]
            names = dict(zip(self.inputs + self.outputs, inputs + outputs))
            for statement in self.statements:
                exec(statement, {"sqrt": numpy.sqrt}, names)
            for name, output in zip(self.outputs, outputs):
                output[...] = names[name]                              # results into the outputs
            results = tuple(DeviceArray(output, calls) for output in outputs)
            return results[0] if len(results) == 1 else results

    return ElementwiseKernel


def _fake_random(calls: list) -> types.SimpleNamespace:
    """``cupy.random`` (legacy API): ``seed(s)`` and ``random_sample(size, dtype)``.
    Unseeded it draws from fresh entropy, as CuPy does without CUPY_SEED."""
    state = {"generator": numpy.random.default_rng()}

    def seed(value=None):
        calls.append("random.seed")
        state["generator"] = numpy.random.default_rng(value)

    def random_sample(size=None, dtype=float):
        calls.append("random.random_sample")
        return DeviceArray(numpy.asarray(state["generator"].random(size, dtype=dtype)), calls)

    return types.SimpleNamespace(seed=seed, random_sample=random_sample)
