"""Gradient checks (central differences, float64) for every op and layer, on every CPU backend.

``CASES`` maps a name to a builder ``rng -> (function, inputs)``;
``python -m tests.gradcheck_report`` prints the measured errors as a table.
"""
from __future__ import annotations

import numpy
import pytest

import tinycnn
from tinycnn import Function, Tensor, nn
from tinycnn import functional as F
from tests.gradcheck import check_gradients

TOLERANCE = 1e-6


def away_from_zero(rng, shape, low=0.1):
    """Random values with |x| in [low, 1]: no input sits on ReLU's kink."""
    return rng.uniform(low, 1.0, shape) * rng.choice([-1.0, 1.0], shape)


def distinct(rng, shape):
    """A shuffled grid of values in [-1, 1], at least 2/size apart: max pooling has no near-ties."""
    size = int(numpy.prod(shape))
    return (rng.permutation(size).reshape(shape) / size * 2.0 - 1.0)


# --- ops.py ----------------------------------------------------------------------
def _binary(op, a_shape, b_shape, positive_b=False):
    def build(rng):
        b = rng.uniform(0.5, 2.0, b_shape) if positive_b else rng.standard_normal(b_shape)
        return op, [rng.standard_normal(a_shape), b]
    return build


def _unary(op, shape, positive=False):
    def build(rng):
        x = rng.uniform(0.5, 2.0, shape) if positive else rng.standard_normal(shape)
        return op, [x]
    return build


OP_CASES = {
    "add (3,4)+(3,4)": _binary(lambda a, b: a + b, (3, 4), (3, 4)),
    "add broadcast (2,3,4)+(3,1)": _binary(lambda a, b: a + b, (2, 3, 4), (3, 1)),
    "add scalar 2.5+x": _unary(lambda x: 2.5 + x, (3, 4)),
    "sub broadcast (3,4)-(4,)": _binary(lambda a, b: a - b, (3, 4), (4,)),
    "sub scalar 1-x": _unary(lambda x: 1.0 - x, (3, 4)),
    "mul broadcast (2,3,4)*(1,3,1)": _binary(lambda a, b: a * b, (2, 3, 4), (1, 3, 1)),
    "mul scalar x*3": _unary(lambda x: x * 3.0, (3, 4)),
    "div broadcast (3,4)/(3,1)": _binary(lambda a, b: a / b, (3, 4), (3, 1), positive_b=True),
    "div scalar 2/x": _unary(lambda x: 2.0 / x, (3, 4), positive=True),
    "neg": _unary(lambda x: -x, (3, 4)),
    "pow x**3": _unary(lambda x: x ** 3, (3, 4)),
    "pow x**0.5": _unary(lambda x: x ** 0.5, (3, 4), positive=True),
    "pow x**-2": _unary(lambda x: x ** -2, (3, 4), positive=True),
    "exp": _unary(lambda x: x.exp(), (3, 4)),
    "log": _unary(lambda x: x.log(), (3, 4), positive=True),
    "matmul (3,4)@(4,5)": _binary(lambda a, b: a @ b, (3, 4), (4, 5)),
    "sum all": _unary(lambda x: x.sum(), (2, 3, 4)),
    "sum axis=1": _unary(lambda x: x.sum(axis=1), (2, 3, 4)),
    "sum axis=(0,2) keepdims": _unary(lambda x: x.sum(axis=(0, 2), keepdims=True), (2, 3, 4)),
    "sum axis=-1": _unary(lambda x: x.sum(axis=-1), (2, 3, 4)),
    "mean all": _unary(lambda x: x.mean(), (2, 3, 4)),
    "mean axis=0": _unary(lambda x: x.mean(axis=0), (2, 3, 4)),
    "mean axis=(1,2) keepdims": _unary(lambda x: x.mean(axis=(1, 2), keepdims=True), (2, 3, 4)),
    "reshape": _unary(lambda x: x.reshape(4, 6), (2, 3, 4)),
    "transpose .T": _unary(lambda x: x.T, (3, 4)),
    "transpose (2,0,1)": _unary(lambda x: x.transpose(2, 0, 1), (2, 3, 4)),
    "transpose (0,-1,1)": _unary(lambda x: x.transpose(0, -1, 1), (2, 3, 4)),
    "shared subexpression x*x+x": _unary(lambda x: x * x + x, (3, 4)),
}


# --- functional ------------------------------------------------------------------
def _conv(x_shape, w_shape, stride, padding, bias=True):
    def build(rng):
        x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
        if not bias:
            return (lambda x, w: F.conv2d(x, w, None, stride, padding)), [x, w]
        b = rng.standard_normal(w_shape[0])
        return (lambda x, w, b: F.conv2d(x, w, b, stride, padding)), [x, w, b]
    return build


def _pool(x_shape, kernel, stride, padding):
    def build(rng):
        return (lambda x: F.max_pool2d(x, kernel, stride, padding)), [distinct(rng, x_shape)]
    return build


def _batch_norm_train(x_shape):
    def build(rng):
        channels = x_shape[1]
        running_mean, running_var = numpy.zeros(channels), numpy.ones(channels)

        def function(x, gamma, beta):
            return F.batch_norm(x, running_mean, running_var, gamma, beta, training=True)
        x = rng.standard_normal(x_shape) * 2.0 + 0.5
        return function, [x, rng.uniform(0.5, 1.5, channels), rng.standard_normal(channels)]
    return build


def _batch_norm_eval(x_shape):
    def build(rng):
        channels = x_shape[1]
        running_mean = rng.standard_normal(channels)
        running_var = rng.uniform(0.5, 2.0, channels)

        def function(x, gamma, beta):
            return F.batch_norm(x, running_mean, running_var, gamma, beta, training=False)
        return function, [rng.standard_normal(x_shape), rng.uniform(0.5, 1.5, channels),
                          rng.standard_normal(channels)]
    return build


def _dropout(rng):
    mask = rng.random((4, 6)) >= 0.3
    return (lambda x: F.dropout(x, p=0.3, training=True, mask=mask)), [rng.standard_normal((4, 6))]


def _cross_entropy(labels_kind, label_smoothing=0.0, weighted=False):
    def build(rng):
        n, k = 5, 4
        class_weight = rng.uniform(0.5, 2.0, k) if weighted else None
        integers = rng.integers(0, k, n)
        if labels_kind == "integer":
            labels = integers
        elif labels_kind == "one-hot":
            labels = numpy.eye(k)[integers]
        else:
            labels = rng.dirichlet(numpy.ones(k), n)

        def function(logits):
            return F.softmax_cross_entropy(logits, labels, label_smoothing, class_weight)
        return function, [rng.standard_normal((n, k)) * 2.0]
    return build


def _soft_target_kl(temperature):
    def build(rng):
        teacher = rng.standard_normal((5, 4)) * 2.0
        return (lambda z: F.soft_target_kl(z, teacher, temperature)), [rng.standard_normal((5, 4)) * 2.0]
    return build


def _linear(bias):
    def build(rng):
        x, w = rng.standard_normal((3, 5)), rng.standard_normal((4, 5))
        if not bias:
            return (lambda x, w: F.linear(x, w)), [x, w]
        return (lambda x, w, b: F.linear(x, w, b)), [x, w, rng.standard_normal(4)]
    return build


FUNCTIONAL_CASES = {
    "relu": lambda rng: (F.relu, [away_from_zero(rng, (3, 4))]),
    "softmax axis=-1": _unary(lambda x: F.softmax(x), (3, 4)),
    "softmax axis=0": _unary(lambda x: F.softmax(x, axis=0), (3, 4)),
    "log_softmax axis=-1": _unary(lambda x: F.log_softmax(x), (3, 4)),
    "log_softmax axis=0": _unary(lambda x: F.log_softmax(x, axis=0), (3, 4)),
    "flatten": _unary(F.flatten, (2, 3, 2, 2)),
    "linear": _linear(bias=True),
    "linear no bias": _linear(bias=False),
    "conv2d stride 1 pad 0": _conv((2, 3, 5, 5), (4, 3, 3, 3), 1, 0),
    "conv2d stride 1 pad 1": _conv((2, 2, 5, 6), (3, 2, 3, 3), 1, 1),
    "conv2d stride 2 pad 1": _conv((2, 2, 7, 6), (3, 2, 3, 3), 2, 1),
    "conv2d stride 2 pad 2 non-square": _conv((1, 2, 6, 7), (2, 2, 3, 2), (2, 1), 2),
    "conv2d stride 2 pad 0 non-square": _conv((1, 1, 7, 9), (2, 1, 3, 3), 2, 0),
    "conv2d same 3x5 kernel": _conv((2, 2, 5, 6), (3, 2, 3, 5), 1, "same"),
    "conv2d no bias pad (1,0)": _conv((2, 3, 6, 5), (2, 3, 2, 3), 1, (1, 0), bias=False),
    "max_pool2d 2x2": _pool((2, 2, 4, 6), 2, None, 0),
    "max_pool2d 3x3 stride 2 pad 1": _pool((2, 2, 7, 7), 3, 2, 1),
    "max_pool2d 3x2 stride (2,1) non-square": _pool((1, 2, 7, 6), (3, 2), (2, 1), 0),
    "max_pool2d 3x3 stride 1 pad 1": _pool((1, 2, 5, 6), 3, 1, 1),
    "batch_norm train 2-D (N,C,H,W)": _batch_norm_train((4, 3, 3, 2)),
    "batch_norm train 1-D (N,C)": _batch_norm_train((6, 4)),
    "batch_norm eval 2-D": _batch_norm_eval((3, 3, 2, 2)),
    "batch_norm eval 1-D": _batch_norm_eval((5, 4)),
    "dropout fixed mask": _dropout,
    "cross_entropy integer labels": _cross_entropy("integer"),
    "cross_entropy one-hot": _cross_entropy("one-hot"),
    "cross_entropy soft labels": _cross_entropy("soft"),
    "cross_entropy label smoothing 0.1": _cross_entropy("integer", label_smoothing=0.1),
    "cross_entropy class weights": _cross_entropy("integer", weighted=True),
    "cross_entropy soft+smoothing+weights": _cross_entropy("soft", 0.2, weighted=True),
    "soft_target_kl T=1": _soft_target_kl(1.0),
    "soft_target_kl T=4": _soft_target_kl(4.0),
}


# --- nn layers: gradients for the input and every parameter ------------------------
def _layer(make_layer, x_shape, make_x=None, train=True):
    def build(rng):
        tinycnn.manual_seed(0)
        layer = make_layer().train(train)
        x = make_x(rng, x_shape) if make_x else rng.standard_normal(x_shape)
        return (lambda x, *params: layer(x)), [x] + layer.parameters()
    return build


def _small_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(2, 3, 3, stride=1, padding=0), nn.ReLU(), nn.Flatten(),
        nn.Linear(3, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Dropout(0.5), nn.Linear(5, 3))


def _residual(channels_in, channels_out):
    """A residual block: identity shortcut when the channels stay, else a 1x1 conv + BN."""
    body = nn.Sequential(nn.Conv2d(channels_in, channels_out, 3, padding=1), nn.BatchNorm2d(channels_out),
                         nn.ReLU(), nn.Conv2d(channels_out, channels_out, 3, padding="same"))
    if channels_in == channels_out:
        return nn.Residual(body)
    return nn.Residual(body, nn.Sequential(nn.Conv2d(channels_in, channels_out, 1, bias=False),
                                           nn.BatchNorm2d(channels_out)))


def _cnn_loss(rng):
    """A small CNN end to end: loss w.r.t. the images and all 12 parameters (train mode,
    but Dropout in eval mode so the function is deterministic)."""
    tinycnn.manual_seed(0)
    model = _small_cnn().train()
    model[10].eval()
    labels = rng.integers(0, 3, 4)

    def function(x, *params):
        return F.softmax_cross_entropy(model(x), labels)
    return function, [rng.standard_normal((4, 1, 6, 6))] + model.parameters()


LAYER_CASES = {
    "nn.Linear": _layer(lambda: nn.Linear(5, 3), (4, 5)),
    "nn.Linear no bias": _layer(lambda: nn.Linear(5, 3, bias=False), (4, 5)),
    "nn.Conv2d": _layer(lambda: nn.Conv2d(2, 3, 3, stride=2, padding=1), (2, 2, 6, 5)),
    "nn.Conv2d no bias same": _layer(lambda: nn.Conv2d(2, 2, (3, 5), padding="same", bias=False),
                                     (1, 2, 4, 6)),
    "nn.BatchNorm2d train": _layer(lambda: nn.BatchNorm2d(3), (4, 3, 2, 3)),
    "nn.BatchNorm1d train": _layer(lambda: nn.BatchNorm1d(4), (6, 4)),
    "nn.BatchNorm2d eval": _layer(lambda: nn.BatchNorm2d(3), (2, 3, 2, 2), train=False),
    "nn.MaxPool2d": _layer(lambda: nn.MaxPool2d(3, stride=2, padding=1), (1, 2, 5, 6), distinct),
    "nn.ReLU": _layer(nn.ReLU, (3, 4), away_from_zero),
    "nn.Flatten": _layer(nn.Flatten, (2, 2, 2, 3)),
    "nn.Dropout eval (identity)": _layer(lambda: nn.Dropout(0.5), (3, 4), train=False),
    "nn.Residual identity shortcut": _layer(lambda: _residual(2, 2), (2, 2, 4, 5)),
    "nn.Residual 1x1 conv shortcut": _layer(lambda: _residual(2, 3), (3, 2, 4, 4)),
    "nn.Sequential small CNN + loss": _cnn_loss,
}

CASES = {**OP_CASES, **FUNCTIONAL_CASES, **LAYER_CASES}


@pytest.mark.parametrize("name", list(CASES))
def test_gradient(name, float64, backend_name):
    function, inputs = CASES[name](numpy.random.default_rng(0))
    errors = check_gradients(function, inputs)
    assert max(errors) < TOLERANCE, f"{name}: relative errors per input {errors}"


class _WrongSquare(Function):
    """y = x^2 with a deliberately wrong backward (dx = dy * x instead of 2 dy x)."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, dy):
        return dy * self.x


def test_gradient_check_catches_a_wrong_backward(float64):
    errors = check_gradients(lambda x: _WrongSquare()(x), [numpy.linspace(-1, 1, 6)])
    assert errors[0] > 0.4


def test_gradient_check_restores_inputs_and_needs_float64(float64):
    x = Tensor(numpy.arange(6.0).reshape(2, 3))
    before = x.data.copy()
    check_gradients(lambda x: (x * x).sum(axis=0), [x])
    numpy.testing.assert_array_equal(x.data, before)
    with pytest.raises(TypeError, match="float64"):
        check_gradients(lambda x: x * x, [Tensor([1.0, 2.0], dtype=numpy.float32)])
