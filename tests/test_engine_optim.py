"""Optimizers and schedules against the published update formulas, written out in plain Python.

The problem: L(p) = sum_i a_i p_i^2 / 2 - b_i p_i, so dL/dp_i = a_i p_i - b_i.
"""
from __future__ import annotations

import math

import numpy
import pytest

from tinycnn import Tensor, nn, optim

P0, A, B = [1.0, -2.0, 0.5], [1.0, 3.0, 0.5], [0.2, -0.1, 0.4]
STEPS = 6


def engine_run(make_optimizer, steps=STEPS):
    """Parameters after ``steps`` optimizer steps on the quadratic, gradients by backward()."""
    p = nn.Parameter(numpy.array(P0))
    optimizer = make_optimizer([p])
    a, b = Tensor(numpy.array(A)), Tensor(numpy.array(B))
    for _ in range(steps):
        optimizer.zero_grad()
        loss = (a * p * p * 0.5 - b * p).sum()
        loss.backward()
        optimizer.step()
    return p.numpy()


def sgd_reference(lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    """PyTorch's SGD, one float at a time."""
    result = []
    for p, a, b in zip(P0, A, B):
        buf = None
        for _ in range(STEPS):
            g = a * p - b + weight_decay * p
            if momentum:
                buf = g if buf is None else momentum * buf + (1 - dampening) * g
                g = g + momentum * buf if nesterov else buf
            p = p - lr * g
        result.append(p)
    return result


def adam_reference(lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False):
    """Adam (Kingma & Ba, bias-corrected) and AdamW (Loshchilov & Hutter) as PyTorch computes them."""
    result = []
    for p, a, b in zip(P0, A, B):
        m = v = 0.0
        for t in range(1, STEPS + 1):
            g = a * p - b
            if decoupled:
                p = p - lr * weight_decay * p
            else:
                g = g + weight_decay * p
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g * g
            m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
            p = p - lr * m_hat / (math.sqrt(v_hat) + eps)
        result.append(p)
    return result


def rmsprop_reference(lr, rho=0.9, eps=1e-7, weight_decay=0.0):
    """RMSprop as Keras computes it: p -= lr * g / sqrt(v + eps)."""
    result = []
    for p, a, b in zip(P0, A, B):
        v = 0.0
        for _ in range(STEPS):
            g = a * p - b + weight_decay * p
            v = rho * v + (1 - rho) * g * g
            p = p - lr * g / math.sqrt(v + eps)
        result.append(p)
    return result


SGD_SETTINGS = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.1, momentum=0.9, nesterov=True),
    dict(lr=0.05, momentum=0.8, weight_decay=0.1),
    dict(lr=0.1, momentum=0.9, dampening=0.5),
    dict(lr=0.1, weight_decay=0.3),
]


@pytest.mark.parametrize("settings", SGD_SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_sgd_matches_the_formula(float64, backend_name, settings):
    result = engine_run(lambda params: optim.SGD(params, **settings))
    numpy.testing.assert_allclose(result, sgd_reference(**settings), rtol=1e-12, atol=1e-14)


ADAM_SETTINGS = [
    dict(lr=0.1),
    dict(lr=0.05, beta1=0.8, beta2=0.99, eps=1e-6),
    dict(lr=0.1, weight_decay=0.2),
]


@pytest.mark.parametrize("settings", ADAM_SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_adam_matches_the_formula(float64, backend_name, settings):
    betas = (settings.get("beta1", 0.9), settings.get("beta2", 0.999))
    result = engine_run(lambda params: optim.Adam(params, lr=settings["lr"], betas=betas,
                                                  eps=settings.get("eps", 1e-8),
                                                  weight_decay=settings.get("weight_decay", 0.0)))
    numpy.testing.assert_allclose(result, adam_reference(**settings), rtol=1e-12, atol=1e-14)


def test_adamw_matches_the_formula(float64, backend_name):
    result = engine_run(lambda params: optim.AdamW(params, lr=0.1, weight_decay=0.2))
    numpy.testing.assert_allclose(result, adam_reference(0.1, weight_decay=0.2, decoupled=True),
                                  rtol=1e-12, atol=1e-14)
    default = engine_run(lambda params: optim.AdamW(params, lr=0.1))   # PyTorch's default 0.01
    numpy.testing.assert_allclose(default, adam_reference(0.1, weight_decay=0.01, decoupled=True),
                                  rtol=1e-12, atol=1e-14)


RMSPROP_SETTINGS = [
    dict(lr=0.01),
    dict(lr=0.05, rho=0.5, eps=1e-3),
    dict(lr=0.01, weight_decay=0.2),
]


@pytest.mark.parametrize("settings", RMSPROP_SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_rmsprop_matches_the_formula(float64, backend_name, settings):
    result = engine_run(lambda params: optim.RMSprop(params, **settings))
    numpy.testing.assert_allclose(result, rmsprop_reference(**settings), rtol=1e-12, atol=1e-14)


def test_rmsprop_defaults_are_keras():
    rmsprop = optim.RMSprop([nn.Parameter(numpy.zeros(1))])
    assert (rmsprop.lr, rmsprop.rho, rmsprop.eps, rmsprop.weight_decay) == (1e-3, 0.9, 1e-7, 0)
    with pytest.raises(ValueError, match="rho"):
        optim.RMSprop([nn.Parameter(numpy.zeros(1))], rho=1.0)


def test_adam_defaults_are_pytorchs():
    adam = optim.Adam([nn.Parameter(numpy.zeros(1))])
    assert (adam.lr, adam.betas, adam.eps, adam.weight_decay) == (1e-3, (0.9, 0.999), 1e-8, 0)


def test_nesterov_needs_momentum():
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([nn.Parameter(numpy.zeros(1))], lr=0.1, nesterov=True)


@pytest.mark.parametrize("make_optimizer", [
    lambda params: optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True),
    lambda params: optim.Adam(params, lr=0.1),
    lambda params: optim.RMSprop(params, lr=0.1),
], ids=["sgd", "adam", "rmsprop"])
def test_optimizer_state_dict_resumes_exactly(float64, make_optimizer):
    """3 steps, checkpoint, 3 more == 6 steps in one go; the checkpoint is not changed by training."""
    p = nn.Parameter(numpy.array(P0))
    optimizer = make_optimizer([p])
    a, b = Tensor(numpy.array(A)), Tensor(numpy.array(B))

    def steps(optimizer, p, count):
        for _ in range(count):
            optimizer.zero_grad()
            (a * p * p * 0.5 - b * p).sum().backward()
            optimizer.step()

    steps(optimizer, p, 3)
    state, saved_p = optimizer.state_dict(), p.numpy().copy()
    frozen = {key: [None if x is None else numpy.copy(x) for x in value] if isinstance(value, list)
              else value for key, value in state.items()}
    resumed_p = nn.Parameter(saved_p.copy())
    resumed = make_optimizer([resumed_p])
    resumed.load_state_dict(state)
    steps(resumed, resumed_p, 3)
    steps(optimizer, p, 3)
    numpy.testing.assert_array_equal(resumed_p.numpy(), p.numpy())
    for key, value in frozen.items():
        if isinstance(value, list):
            for before, after in zip(value, state[key]):
                numpy.testing.assert_array_equal(before, after)


# --- learning-rate schedules ----------------------------------------------------------
def optimizer_with_lr(lr=1.0):
    return optim.SGD([nn.Parameter(numpy.zeros(1))], lr=lr)


def lrs_after_steps(scheduler, optimizer, count):
    values = []
    for _ in range(count):
        scheduler.step()
        values.append(optimizer.lr)
    return values


def test_step_lr():
    optimizer = optimizer_with_lr(1.0)
    scheduler = optim.StepLR(optimizer, step_size=2, gamma=0.5)
    assert lrs_after_steps(scheduler, optimizer, 6) == pytest.approx([1, 0.5, 0.5, 0.25, 0.25, 0.125])


def test_cosine_annealing_lr():
    optimizer = optimizer_with_lr(1.0)
    scheduler = optim.CosineAnnealingLR(optimizer, T_max=4, eta_min=0.1)
    expected = [0.1 + 0.9 * (1 + math.cos(math.pi * epoch / 4)) / 2 for epoch in range(1, 9)]
    values = lrs_after_steps(scheduler, optimizer, 8)
    assert values == pytest.approx(expected, rel=1e-12)
    assert values[1] == pytest.approx(0.55) and values[3] == pytest.approx(0.1)
    assert values[7] == pytest.approx(1.0)   # PyTorch's cosine continues past T_max


def test_one_cycle_lr():
    optimizer = optimizer_with_lr(123.0)
    scheduler = optim.OneCycleLR(optimizer, max_lr=1.0, total_steps=10, pct_start=0.3)
    assert optimizer.lr == pytest.approx(0.04)          # max_lr / div_factor
    values = lrs_after_steps(scheduler, optimizer, 9)
    assert values[0] == pytest.approx(0.52)             # halfway up the cosine from 0.04 to 1
    assert values[1] == pytest.approx(1.0)              # step 2 = pct_start * 10 - 1
    min_lr = 0.04 / 1e4
    for step in range(3, 10):                           # cosine from 1.0 down to min_lr at step 9
        fraction = (step - 2) / 7
        assert values[step - 1] == pytest.approx(min_lr + (1.0 - min_lr) * (1 + math.cos(math.pi * fraction)) / 2)
    assert values[-1] == pytest.approx(min_lr)
    scheduler.step()                                    # step 10 is allowed, as in PyTorch
    with pytest.raises(ValueError, match="total_steps"):
        scheduler.step()


def test_one_cycle_lr_linear():
    optimizer = optimizer_with_lr()
    scheduler = optim.OneCycleLR(optimizer, max_lr=1.0, total_steps=10, anneal_strategy="linear")
    values = lrs_after_steps(scheduler, optimizer, 9)
    assert values[0] == pytest.approx(0.52)
    assert values[3] == pytest.approx(1.0 + (0.04 / 1e4 - 1.0) * 2 / 7)


def test_reduce_lr_on_plateau():
    optimizer = optimizer_with_lr(1.0)
    scheduler = optim.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=1)
    values = []
    for loss in [1.0, 0.9, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, 0.79995]:
        scheduler.step(loss)
        values.append(optimizer.lr)
    # reduce after more than `patience` epochs without a relative improvement of 1e-4
    assert values == pytest.approx([1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.125])


def test_reduce_lr_on_plateau_max_mode_and_min_lr():
    optimizer = optimizer_with_lr(1.0)
    scheduler = optim.ReduceLROnPlateau(optimizer, mode="max", factor=0.1, patience=0, min_lr=0.05)
    values = []
    for accuracy in [0.5, 0.6, 0.6, 0.7, 0.7, 0.7]:
        scheduler.step(accuracy)
        values.append(optimizer.lr)
    assert values == pytest.approx([1, 1, 0.1, 0.1, 0.05, 0.05])
