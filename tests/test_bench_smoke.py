"""Smoke test of benchmarks/: the per-layer and inference timing callables run once on
tiny shapes.

No time is asserted (speed belongs in ``python -m benchmarks.keras_compare``).
The Keras comparison part needs TensorFlow (the ``[bench]`` extra) and is
skipped without it.
"""
import numpy
import pytest

import tinycnn
from benchmarks.layer_cases import (case_input, output_gradient, seed004_layer_cases,
                                    tinycnn_forward, tinycnn_forward_backward)
from benchmarks.model_steps import tinycnn_fused_inference, tinycnn_inference, with_batch_norm_statistics
from benchmarks.timing import interleaved_samples
from fer_app.models import build_model
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


def tiny_model() -> nn.Sequential:
    """(N, 1, 8, 8) -> logits (N, 3), a conv block with batch norm and a dense block with one."""
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding="same"), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 5), nn.BatchNorm1d(5),
                         nn.ReLU(), nn.Linear(5, 3))


def test_fused_inference_callable_gives_the_layers_logits_and_records_its_threads():
    model = with_batch_norm_statistics(tiny_model())
    assert not model.training
    assert not numpy.allclose(model[1].running_var, 1.0)      # a batch norm that is not the identity
    x = numpy.random.default_rng(0).standard_normal((2, 1, 8, 8), dtype=numpy.float32)
    threads_used = set()
    fused = tinycnn_fused_inference(tinycnn.fuse(model), x, threads_used)()
    numpy.testing.assert_allclose(fused, tinycnn_inference(model, x)(), rtol=1e-4, atol=1e-5)
    assert len(threads_used) == 1 and min(threads_used) >= 1


def test_fused_inference_rows_compare_the_same_logits_as_the_keras_twin():
    pytest.importorskip("tensorflow", reason="TensorFlow not installed (pip install 'tinycnn[bench]')")
    from benchmarks.keras_compare import (bench_fused_inference, check_inference, inference_models,
                                          inference_threads_used)
    models = inference_models("vgg_fer", ["numpy"])
    errors = check_inference(models, ["numpy"])              # asserts each error < tolerance
    assert set(errors) == {"fused [numpy]", "layers [numpy]"}
    rows = bench_fused_inference(models, 1, ["numpy"], reps=1, warmup=1, matmul_gflops=100.0)
    assert [row["name"] for row in rows] == ["infer_vgg_fer_batch1_fused", "infer_vgg_fer_batch1_layers"]
    assert all(row["ratio"] > 0 and row["keras_api"].startswith("tf.function") for row in rows)
    assert inference_threads_used(rows).startswith("fused [numpy] tinycnn.threads ")


def test_idle_gap_times_one_face_after_each_pause(capsys):
    """benchmarks.idle_gap prints one row per architecture and pause (no time asserted)."""
    pytest.importorskip("numba")
    from benchmarks import idle_gap
    assert idle_gap.main(["--archs", "vgg_fer_small", "--pauses", "0", "1", "--reps", "2"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| vgg_fer_small")]
    assert [row.split("|")[2].strip() for row in rows] == ["0", "1"]


def test_fused_inference_steps_table_has_a_row_per_fused_step(capsys, tmp_path):
    from benchmarks import fused_inference
    out = tmp_path / "fused.md"
    assert fused_inference.main(["--archs", "seed002", "--batches", "2", "--reps", "2", "--threads", "1",
                                 "--backend", "numpy", "--steps", "--out", str(out)]) == 0
    text = out.read_text()
    steps = tinycnn.fuse(build_model("seed002")).steps
    section = text.split("Steps of fused seed002, batch 2")[1]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "median ms" not in line]
    assert [row.split(" | ")[0][2:] for row in rows] == [repr(step) for step in steps]
    in_pass, alone = ([float(row.split(" | ")[k]) for row in rows] for k in (1, 3))
    assert min(in_pass) > 0 and min(alone) > 0
    assert "GB/s (read + write)" in text
    assert "| fused, 1 thread(s) |" in text and "fused, 1 thread(s)" in capsys.readouterr().out


@pytest.mark.parametrize("option", [["--batches", "0"], ["--reps", "0"], ["--threads", "0"]])
def test_fused_inference_refuses_counts_below_one_in_one_line(option, capsys):
    from benchmarks import fused_inference
    with pytest.raises(SystemExit) as exit_info:
        fused_inference.main(["--archs", "seed002", *option])
    assert exit_info.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err
