"""Every architecture: output shape, parameter count from the layer formulas, FLOPs,
gradients reaching every parameter, and the `python -m fer_app.models` table."""
from __future__ import annotations

import numpy as np
import pytest

import tinycnn
from tinycnn import functional as F
from tinycnn import nn
from fer_app.models import ARCHITECTURES, DEFAULT_ARCH, build_model
from fer_app.models.__main__ import main as models_main
from fer_app.models.summary import summarize


def conv(c_in, c_out, k, bias=True):
    return c_out * c_in * k * k + (c_out if bias else 0)


def dense(n_in, n_out, bias=True):
    return n_in * n_out + (n_out if bias else 0)


def bn(c):
    return 2 * c  # gamma and beta (running statistics are buffers, not parameters)


def expected_parameters(name: str, k: int) -> int:
    """Parameter counts written out from each docstring's layer list."""
    if name == "seed001":
        return (conv(1, 64, 3) + bn(64) + conv(64, 128, 3) + bn(128) + conv(128, 128, 3) + bn(128)
                + conv(128, 512, 3) + bn(512) + dense(512 * 9, 4096) + dense(4096, k))
    if name == "seed002":
        return (conv(1, 15, 5) + conv(15, 15, 5) + conv(15, 10, 5) + conv(10, 5, 3)
                + dense(5 * 12 * 12, 1000) + dense(1000, k))
    if name == "seed004":
        return (conv(1, 64, 3) + bn(64) + conv(64, 128, 5) + bn(128) + conv(128, 512, 3) + bn(512)
                + conv(512, 512, 3) + bn(512) + dense(512 * 9, 256) + bn(256)
                + dense(256, 512) + bn(512) + dense(512, k))
    if name == "vgg_fer":
        widths = [(1, 32), (32, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256)]
        return (sum(conv(a, b, 3, bias=False) + bn(b) for a, b in widths)
                + dense(256 * 9, 256, bias=False) + bn(256) + dense(256, k))
    if name == "vgg_fer_wide":
        widths = [(1, 48), (48, 96), (96, 96), (96, 192), (192, 192), (192, 384), (384, 384)]
        return (sum(conv(a, b, 3, bias=False) + bn(b) for a, b in widths)
                + dense(384 * 9, 384, bias=False) + bn(384) + dense(384, k))
    if name == "vgg_fer_small":
        widths = [(1, 16), (16, 32), (32, 32), (32, 64), (64, 64), (64, 128), (128, 128)]
        return (sum(conv(a, b, 3, bias=False) + bn(b) for a, b in widths)
                + dense(128 * 9, 128, bias=False) + bn(128) + dense(128, k))
    if name == "resnet_fer":
        stem = conv(1, 32, 3, bias=False) + bn(32)
        blocks = 0
        for a, b in [(32, 64), (64, 128), (128, 256)]:
            blocks += conv(a, b, 3, bias=False) + bn(b) + conv(b, b, 3, bias=False) + bn(b)  # first block
            blocks += conv(a, b, 1, bias=False) + bn(b)                                     # its shortcut
            blocks += 2 * (conv(b, b, 3, bias=False) + bn(b))                               # second block
        return stem + blocks + dense(256 * 9, 256, bias=False) + bn(256) + dense(256, k)
    raise AssertionError(f"no expected count written for {name}")


CLASSES = {"seed001": 7, "seed002": 6, "seed004": 7, "vgg_fer": 7, "vgg_fer_wide": 7,
           "vgg_fer_small": 7, "resnet_fer": 7}


def test_every_architecture_is_listed_here():
    assert set(ARCHITECTURES) == set(CLASSES)
    assert DEFAULT_ARCH in ARCHITECTURES


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_forward_shape_and_parameter_count(name):
    tinycnn.manual_seed(0)
    k = CLASSES[name]
    model = build_model(name, k)
    assert model.num_parameters() == expected_parameters(name, k)
    model.eval()
    with tinycnn.no_grad():
        logits = model(tinycnn.Tensor(np.random.default_rng(0).random((3, 1, 48, 48), np.float32)))
    assert logits.shape == (3, k)
    assert np.all(np.isfinite(logits.numpy()))


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_gradients_reach_every_parameter(name):
    tinycnn.manual_seed(1)
    model = build_model(name, 7)
    x = tinycnn.Tensor(np.random.default_rng(1).standard_normal((4, 1, 48, 48)).astype(np.float32))
    loss = F.softmax_cross_entropy(model(x), np.array([0, 1, 2, 3]))
    loss.backward()
    for parameter_name, parameter in model.named_parameters():
        assert parameter.grad is not None, parameter_name
        assert parameter.grad.shape == parameter.shape
    assert any(np.abs(p.grad).sum() > 0 for p in model.parameters())


def test_number_of_classes_changes_only_the_last_layer():
    assert (build_model("vgg_fer", 7).num_parameters() - build_model("vgg_fer", 6).num_parameters()
            == 256 + 1)


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown architecture 'nope'"):
        build_model("nope", 7)


def test_flops_of_the_default_architecture():
    rows = summarize(build_model("vgg_fer", 7))
    convs = [(48, 1, 32), (24, 32, 64), (24, 64, 64), (12, 64, 128), (12, 128, 128),
             (6, 128, 256), (6, 256, 256)]  # (output side, in, out)
    expected = sum(2 * side * side * c_out * c_in * 9 for side, c_in, c_out in convs) \
        + 2 * 2304 * 256 + 2 * 256 * 7
    assert sum(row.flops for row in rows) == expected
    assert rows[-1].output_shape == (7,)
    assert sum(row.parameters for row in rows) == expected_parameters("vgg_fer", 7)


def test_flops_of_the_residual_architecture_count_both_branches_of_every_block():
    rows = summarize(build_model("resnet_fer", 7))
    convs = [(48, 1, 32, 3)]                                      # (output side, in, out, kernel)
    for side, a, b in [(24, 32, 64), (12, 64, 128), (6, 128, 256)]:
        convs += [(side, a, b, 3), (side, b, b, 3), (side, a, b, 1), (side, b, b, 3), (side, b, b, 3)]
    expected = sum(2 * side * side * c_out * c_in * k * k for side, c_in, c_out, k in convs) \
        + 2 * 2304 * 256 + 2 * 256 * 7
    assert sum(row.flops for row in rows) == expected
    residual_rows = [row for row in rows if row.name.startswith("Residual")]
    assert [row.name for row in residual_rows[:2]] == [
        "Residual(convs 32 -> 64 -> 64, shortcut 2 layers)",
        "Residual(convs 64 -> 64 -> 64, shortcut identity)"]
    assert sum(row.parameters for row in rows) == expected_parameters("resnet_fer", 7)


def test_flops_count_a_residual_block_nested_in_another():
    inner = nn.Residual(nn.Sequential(nn.Conv2d(2, 2, 3, padding=1)))
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1),
                          nn.Residual(nn.Sequential(inner, nn.Conv2d(2, 2, 1))),
                          nn.Flatten(), nn.Linear(2 * 8 * 8, 3))
    rows = summarize(model, (1, 8, 8))

    def conv_flops(c_in, c_out, k):
        return 2 * 8 * 8 * c_out * c_in * k * k
    assert sum(row.flops for row in rows) == (conv_flops(1, 2, 3) + conv_flops(2, 2, 3)
                                              + conv_flops(2, 2, 1) + 2 * 128 * 3)


def test_models_command_prints_a_table_per_architecture(capsys):
    models_main([])
    out = capsys.readouterr().out
    for name, k in CLASSES.items():
        assert f"== {name}" in out
        assert f"{expected_parameters(name, k):,}" in out


def test_models_command_rejects_unknown_names(capsys):
    with pytest.raises(SystemExit) as exit_info:
        models_main(["nope"])
    assert exit_info.value.code != 0
    assert "unknown architecture 'nope'" in capsys.readouterr().err
