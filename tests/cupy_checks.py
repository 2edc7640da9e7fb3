"""Checks that the ``cupy`` backend computes what the ``numpy`` backend computes.

Shared by ``test_cupy_standin.py`` (the strict NumPy-backed stand-in, runs
everywhere) and ``test_cupy_gpu.py`` (real CuPy on a CUDA device, when there is
one). Each check takes ``device``: the Backend registered as "cupy", whose
``xp`` is ``cupy`` or the stand-in module. Inputs are drawn on the host, copied
to the device with ``device.xp.asarray`` and results come back only through
``tinycnn.backend.to_numpy``.
"""
from __future__ import annotations

import numpy
import pytest

import tinycnn
from tinycnn import Tensor, backend, nn, optim
from tinycnn import functional as F
from tinycnn.backend import Backend
from tinycnn.kernels import reference

# float32 tolerances: the device kernels sum in a different order than the reference.
RTOL, ATOL = 1e-4, 1e-5


def assert_close(device_value, host_value, what: str) -> None:
    """Compare a device result (copied back explicitly) with a host result."""
    got = backend.to_numpy(device_value)
    assert isinstance(got, numpy.ndarray), what
    assert got.shape == numpy.shape(host_value), f"{what}: shape {got.shape} != {numpy.shape(host_value)}"
    numpy.testing.assert_allclose(got, host_value, rtol=RTOL, atol=ATOL, err_msg=what)


def _host_arrays(seed: int, *shapes, ties: bool = False) -> list[numpy.ndarray]:
    """float32 arrays of the given shapes; ``ties`` draws small integers (many equal maxima)."""
    rng = numpy.random.default_rng(seed)
    if ties:
        return [rng.integers(0, 3, size=shape).astype(numpy.float32) for shape in shapes]
    return [rng.standard_normal(shape).astype(numpy.float32) for shape in shapes]


# (x shape, w shape, with bias, stride, pad)
CONV_CASES = [
    ((2, 3, 7, 6), (4, 3, 3, 3), True, (1, 1), (1, 1)),
    ((2, 3, 9, 8), (5, 3, 3, 2), True, (2, 1), (0, 2)),
    ((1, 2, 8, 8), (3, 2, 5, 5), False, (1, 1), (2, 2)),
]
# (x shape, kernel, stride, pad): tiling windows (exact and cropped), overlapping, padded
POOL_CASES = [
    ((2, 3, 8, 8), (2, 2), (2, 2), (0, 0)),
    ((2, 3, 7, 9), (2, 3), (2, 3), (0, 0)),
    ((2, 2, 7, 7), (3, 3), (2, 2), (1, 1)),
]


def check_conv2d(device: Backend) -> None:
    for index, (x_shape, w_shape, with_bias, stride, pad) in enumerate(CONV_CASES):
        x, w, b = _host_arrays(index, x_shape, w_shape, (w_shape[0],))
        b = b if with_bias else None
        y, saved = reference.conv2d_forward(x, w, b, stride, pad)
        dy = _host_arrays(10 + index, y.shape)[0]
        grads = reference.conv2d_backward(dy, x, w, saved, stride, pad)

        xd, wd, dyd = (device.xp.asarray(a) for a in (x, w, dy))
        bd = None if b is None else device.xp.asarray(b)
        yd, saved_d = device.kernels.conv2d_forward(xd, wd, bd, stride, pad)
        assert_close(yd, y, f"conv2d_forward case {index}")
        grads_d = device.kernels.conv2d_backward(dyd, xd, wd, saved_d, stride, pad)
        for name, got, want in zip(("dx", "dw", "db"), grads_d, grads):
            assert_close(got, want, f"conv2d_backward {name} case {index}")


def check_max_pool2d(device: Backend) -> None:
    for index, (x_shape, kernel, stride, pad) in enumerate(POOL_CASES):
        (x,) = _host_arrays(index, x_shape, ties=True)
        y, saved = reference.max_pool2d_forward(x, kernel, stride, pad)
        (dy,) = _host_arrays(20 + index, y.shape)
        dx = reference.max_pool2d_backward(dy, x.shape, saved, kernel, stride, pad)

        xd, dyd = device.xp.asarray(x), device.xp.asarray(dy)
        yd, saved_d = device.kernels.max_pool2d_forward(xd, kernel, stride, pad)
        assert_close(yd, y, f"max_pool2d_forward case {index}")
        dxd = device.kernels.max_pool2d_backward(dyd, x.shape, saved_d, kernel, stride, pad)
        assert_close(dxd, dx, f"max_pool2d_backward case {index}")


def check_batch_norm(device: Backend) -> None:
    x, gamma, beta, dy = _host_arrays(30, (5, 4, 6), (4,), (4,), (5, 4, 6))
    y, mean, var, saved = reference.batch_norm_forward(x, gamma, beta, 1e-5)
    grads = reference.batch_norm_backward(dy, gamma, saved)

    xd, gd, bd, dyd = (device.xp.asarray(a) for a in (x, gamma, beta, dy))
    yd, mean_d, var_d, saved_d = device.kernels.batch_norm_forward(xd, gd, bd, 1e-5)
    for name, got, want in zip(("y", "mean", "var"), (yd, mean_d, var_d), (y, mean, var)):
        assert_close(got, want, f"batch_norm_forward {name}")
    grads_d = device.kernels.batch_norm_backward(dyd, gd, saved_d)
    for name, got, want in zip(("dx", "dgamma", "dbeta"), grads_d, grads):
        assert_close(got, want, f"batch_norm_backward {name}")


def check_relu(device: Backend) -> None:
    x, dy = _host_arrays(40, (3, 4, 5), (3, 4, 5))
    y = reference.relu_forward(x)
    yd = device.kernels.relu_forward(device.xp.asarray(x))
    assert_close(yd, y, "relu_forward")
    dxd = device.kernels.relu_backward(device.xp.asarray(dy), yd)
    assert_close(dxd, reference.relu_backward(dy, y), "relu_backward")


def check_adam_step(device: Backend) -> None:
    for weight_decay, decoupled in ((0.0, False), (0.01, False), (0.01, True)):
        p, g, m, v = _host_arrays(50, (4, 3), (4, 3), (4, 3), (4, 3))
        v = v * v                                      # a second moment is never negative
        pd, gd, md, vd = (device.xp.asarray(a) for a in (p, g, m, v))
        settings = (1e-2, 0.9, 0.999, 1e-8, 3, weight_decay, decoupled)
        reference.adam_step(p, g, m, v, *settings)
        device.kernels.adam_step(pd, gd, md, vd, *settings)
        for name, got, want in (("p", pd, p), ("m", md, m), ("v", vd, v)):
            assert_close(got, want, f"adam_step {name} (weight_decay={weight_decay}, decoupled={decoupled})")


# --- a full training step ------------------------------------------------------
def small_cnn() -> nn.Module:
    """Every layer type of the app's models; 12x12 inputs -> 3 classes. Layers followed by
    batch norm have no bias (its gradient would be pure rounding noise, which Adam amplifies)."""
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding="same", bias=False), nn.BatchNorm2d(4), nn.ReLU(),
        nn.MaxPool2d(2), nn.Dropout(0.25),
        nn.Conv2d(4, 6, 5, padding=2, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.Flatten(), nn.Linear(6 * 3 * 3, 16, bias=False), nn.BatchNorm1d(16), nn.ReLU(),
        nn.Dropout(0.5), nn.Linear(16, 3))


def training_batch() -> tuple[numpy.ndarray, numpy.ndarray]:
    rng = numpy.random.default_rng(7)
    images = rng.standard_normal((8, 1, 12, 12)).astype(numpy.float32)   # (N, 1, 12, 12)
    labels = rng.integers(0, 3, size=8)                                   # (N,)
    return images, labels


def same_dropout_draws(monkeypatch) -> None:
    """Dropout masks from one host generator on every backend (copied to the device),
    so that two backends can be compared number for number."""
    generator = numpy.random.default_rng(11)

    def uniform(shape, like):
        return backend.of(like).xp.asarray(generator.random(shape, dtype=numpy.float32))
    monkeypatch.setattr(tinycnn.random, "uniform", uniform)


def run_training(name: str, state: dict, steps: int = 2) -> dict:
    """``steps`` Adam steps of small_cnn (starting from ``state``) on backend ``name``.

    Returns host copies of the losses, the last gradients, the final state, the
    optimizer state and the eval-mode output, plus the live model and optimizer.
    """
    backend.use("numpy")
    model = small_cnn()
    model.load_state_dict(state)
    model.to(name)
    backend.use(name)
    # eps 1e-3: a gradient that is zero up to float32 rounding (its sign differs between
    # summation orders) must not become a full +-lr step; Adam's own kernel is checked
    # with the default eps in check_adam_step.
    optimizer = optim.Adam(model.parameters(), lr=1e-2, eps=1e-3)
    images, labels = training_batch()
    losses = []
    for _ in range(steps):
        loss = F.softmax_cross_entropy(model(Tensor(images)), labels)
        model.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    grads = {key: backend.to_numpy(p.grad) for key, p in model.named_parameters()}
    model.eval()
    with tinycnn.no_grad():
        eval_output = model(Tensor(images)).to_numpy()
    return {"losses": losses, "grads": grads, "state": model.state_dict(),
            "optimizer": optimizer.state_dict(), "eval_output": eval_output,
            "model": model, "optimizer_object": optimizer}


def check_training_step(device: Backend, monkeypatch) -> dict:
    """Two training steps on the device equal two on the numpy backend; returns the device run."""
    backend.use("numpy")
    tinycnn.manual_seed(0)
    state = small_cnn().state_dict()
    same_dropout_draws(monkeypatch)
    host = run_training("numpy", state)
    same_dropout_draws(monkeypatch)
    on_device = run_training(device.name, state)

    numpy.testing.assert_allclose(on_device["losses"], host["losses"], rtol=RTOL)
    moved = [key for key, _ in small_cnn().named_parameters()
             if not numpy.allclose(on_device["state"][key], state[key])]
    assert len(moved) == len(state) - 6, "every parameter moved (6 entries are BatchNorm buffers)"
    for key, grad in host["grads"].items():
        assert_close(on_device["grads"][key], grad, f"gradient of {key}")
    for key, value in host["state"].items():   # parameters after Adam, BatchNorm running stats
        assert isinstance(on_device["state"][key], numpy.ndarray), f"state_dict()[{key!r}] is a host copy"
        assert_close(on_device["state"][key], value, f"state {key}")
    for which in ("m", "v"):
        for index, buffer in enumerate(host["optimizer"][which]):
            assert_close(on_device["optimizer"][which][index], buffer, f"Adam {which}[{index}]")
    assert_close(on_device["eval_output"], host["eval_output"], "eval-mode output")
    check_on_device(device, on_device["model"], on_device["optimizer_object"])
    return on_device


def check_on_device(device: Backend, model: nn.Module, optimizer: optim.Adam) -> None:
    """Parameters, gradients, buffers and optimizer state all live on the device."""
    on_device = lambda array: isinstance(array, device.xp.ndarray)  # noqa: E731
    for key, p in model.named_parameters():
        assert on_device(p.data) and on_device(p.grad), key
    for key, buffer in model.named_buffers():
        assert on_device(buffer), key
    assert all(on_device(m) for m in optimizer.m) and all(on_device(v) for v in optimizer.v)


def check_dropout_uses_device_rng(device: Backend) -> None:
    """Masks are drawn on the device, are reproducible after manual_seed, and drop about p."""
    backend.use(device.name)
    x = Tensor(numpy.ones(4000, dtype=numpy.float32))
    tinycnn.manual_seed(5)
    first = F.dropout(x, 0.3)
    tinycnn.manual_seed(5)
    second = F.dropout(x, 0.3)
    assert isinstance(first.data, device.xp.ndarray)
    kept = first.to_numpy()
    numpy.testing.assert_array_equal(kept, second.to_numpy())
    assert set(numpy.unique(kept)) <= {0.0, numpy.float32(1 / 0.7)}
    assert 0.25 < (kept == 0).mean() < 0.35


def check_save_and_load(device: Backend, tmp_path) -> None:
    """A device model saves host copies; loading puts them back on the device, bit for bit."""
    backend.use("numpy")
    tinycnn.manual_seed(1)
    model = small_cnn().to(device.name)
    model.eval()
    backend.use(device.name)
    images, _ = training_batch()
    with tinycnn.no_grad():
        before = model(Tensor(images)).to_numpy()
    path = str(tmp_path / "model.npz")
    tinycnn.save(model.state_dict(), path, {"arch": "small_cnn"})

    state, metadata = tinycnn.load(path)
    restored = small_cnn()
    restored.load_state_dict(state)
    restored.eval()
    assert metadata == {"arch": "small_cnn"}
    assert all(isinstance(p.data, device.xp.ndarray) for p in restored.parameters())
    for key, value in model.state_dict().items():
        numpy.testing.assert_array_equal(restored.state_dict()[key], value, err_msg=key)
    with tinycnn.no_grad():
        numpy.testing.assert_array_equal(restored(Tensor(images)).to_numpy(), before)


def check_to_numpy(device: Backend) -> None:
    host = numpy.arange(6, dtype=numpy.float32).reshape(2, 3)
    array = device.xp.asarray(host)
    for copy in (backend.to_numpy(array), device.to_numpy(array)):
        assert type(copy) is numpy.ndarray
        numpy.testing.assert_array_equal(copy, host)
    backend.use(device.name)
    tensor = Tensor(host)
    assert isinstance(tensor.data, device.xp.ndarray)
    assert type(tensor.to_numpy()) is numpy.ndarray
    numpy.testing.assert_array_equal(tensor.to_numpy(), host)
    assert (tensor * 2).sum().item() == 30.0


def check_mixing_is_an_error(device: Backend) -> None:
    """Host and device arrays in one operation: a BackendError that says what to do."""
    host = numpy.ones((1, 1, 4, 4), dtype=numpy.float32)
    weight = device.xp.asarray(numpy.ones((2, 1, 3, 3), dtype=numpy.float32))
    with pytest.raises(backend.BackendError, match="different backends"):
        backend.of(device.xp.asarray(host), host)
    backend.use("numpy")
    x_host = Tensor(host)
    w_device = Tensor._wrap(weight)
    with pytest.raises(backend.BackendError, match=r"\.to\("):
        F.conv2d(x_host, w_device)
    with pytest.raises(backend.BackendError):
        x_host.reshape(1, 16) @ Tensor._wrap(device.xp.asarray(numpy.ones((16, 2), numpy.float32)))


def check_sgd_and_loss_options(device: Backend) -> None:
    """SGD (momentum, Nesterov, weight decay) and the loss's class weights, label smoothing
    and soft labels give the same numbers on the device as on the host."""
    rng = numpy.random.default_rng(3)
    logits_host = rng.standard_normal((6, 4)).astype(numpy.float32)     # (N, K)
    labels = rng.integers(0, 4, size=6)                                 # (N,)
    soft_labels = rng.dirichlet(numpy.ones(4), size=6)                  # (N, K) rows sum to 1
    class_weight = numpy.array([1.0, 2.0, 0.5, 1.5])
    results = {}
    for name in ("numpy", device.name):
        backend.use(name)
        logits = Tensor(logits_host.copy(), requires_grad=True)   # numpy: Tensor shares the array
        loss = (F.softmax_cross_entropy(logits, labels, label_smoothing=0.1, class_weight=class_weight)
                + F.softmax_cross_entropy(logits, soft_labels))
        loss.backward()
        optimizer = optim.SGD([logits], lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
        optimizer.step()
        optimizer.step()                                                # uses the momentum buffer
        results[name] = (loss.item(), logits.data)
    numpy.testing.assert_allclose(results[device.name][0], results["numpy"][0], rtol=RTOL)
    assert isinstance(results[device.name][1], device.xp.ndarray)
    assert_close(results[device.name][1], results["numpy"][1], "logits after two SGD steps")
