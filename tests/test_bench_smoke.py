"""Smoke test of benchmarks/: the per-layer timing callables run once on tiny shapes.

No time is asserted (speed belongs in ``python -m benchmarks.keras_compare``).
The Keras comparison part needs TensorFlow (the ``[bench]`` extra) and is
skipped without it.
"""
import numpy
import pytest

from benchmarks.layer_cases import (case_input, output_gradient, seed004_layer_cases,
                                    tinycnn_forward, tinycnn_forward_backward)
from benchmarks.timing import interleaved_samples
from tinycnn import backend, nn

# seed-004's layer list, shrunk: 16x16 images, 4..8 channels, dense 6 and 5, 3 classes
TINY = dict(batch=2, size=16, widths=(4, 4, 8, 8), dense=(6, 5), classes=3)


@pytest.fixture(autouse=True)
def keep_backend():
    previous = backend.current().name
    yield
    backend.use(previous)


def test_tinycnn_layer_callables_return_outputs_and_gradients_of_the_right_shapes():
    for case in seed004_layer_cases(**TINY):
        layer = case.make_layer()
        x = case_input(case)
        dy = output_gradient(layer, x)
        y = tinycnn_forward(layer, x)()
        outputs = tinycnn_forward_backward(layer, x, dy)()
        assert y.shape == dy.shape, case.name
        assert len(outputs) == 2 + len(layer.parameters()), case.name
        assert outputs[0].shape == dy.shape and outputs[1].shape == x.shape, case.name
        for array, parameter in zip(outputs[2:], layer.parameters()):
            assert array.shape == parameter.shape, case.name
        assert all(numpy.isfinite(array).all() for array in outputs), case.name


def test_interleaved_samples_alternates_the_order_of_the_sides():
    calls = []
    samples = interleaved_samples({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                                  reps=3, warmup=1, min_sample_seconds=0.0)
    assert [len(samples["a"]), len(samples["b"])] == [3, 3]
    # one warm-up call per side, then a b | b a | a b
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]


def test_keras_twins_compute_the_same_as_tinycnn_on_tiny_shapes():
    pytest.importorskip("tensorflow", reason="TensorFlow not installed (pip install 'tinycnn[bench]')")
    from benchmarks.keras_compare import check_case, check_model, prepare_case
    from benchmarks.keras_twin import keras_model_like
    for case in seed004_layer_cases(**TINY):
        errors = check_case(prepare_case(case), "numpy")      # asserts each error < tolerance
        assert max(errors.values()) < 1e-4, case.name
    # a Linear after Flatten needs its input features reordered from (C, H, W) to (H, W, C)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding="same"), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    assert check_model(model, keras_model_like(model, (1, 8, 8)), "numpy", image=(1, 8, 8)) < 1e-4
