"""Modules: state dicts, save/load, seeds, dtype moves, train/eval."""
from __future__ import annotations

import numpy
import pytest

import tinycnn
from tinycnn import Tensor, nn


def small_model(classes=3):
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * 3 * 3, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.3),
        nn.Linear(8, classes))


def trained_a_little(model):
    """One training step so that weights and running statistics are not their initial values."""
    x = Tensor(numpy.random.default_rng(0).standard_normal((5, 1, 6, 6)))
    loss = tinycnn.functional.softmax_cross_entropy(model(x), numpy.array([0, 1, 2, 0, 1]))
    loss.backward()
    tinycnn.optim.Adam(model.parameters(), lr=0.1).step()
    return model


def test_save_load_round_trip_is_bit_exact(tmp_path):
    tinycnn.manual_seed(1)
    model = trained_a_little(small_model())
    metadata = {"arch": "small", "class_names": ["a", "b", "c"], "epoch": 3}
    path = tmp_path / "sub" / "model.npz"
    tinycnn.save(model.state_dict(), str(path), metadata)
    state, loaded_metadata = tinycnn.load(str(path))
    assert loaded_metadata == metadata
    assert list(state) == list(model.state_dict())

    tinycnn.manual_seed(2)
    fresh = small_model()
    fresh.load_state_dict(state)
    for (name, before), after in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert before.dtype == after.dtype, name
        assert before.tobytes() == after.tobytes(), name
    x = Tensor(numpy.random.default_rng(3).standard_normal((2, 1, 6, 6)))
    model.eval(), fresh.eval()
    assert model(x).numpy().tobytes() == fresh(x).numpy().tobytes()
    assert not list(tmp_path.glob("sub/*.tmp"))   # the atomic write left nothing behind


def test_loading_a_wrong_shape_names_the_parameter():
    state = small_model(classes=3).state_dict()
    with pytest.raises(ValueError, match=r"'9\.weight'.*\(3, 8\).*\(7, 8\)"):
        small_model(classes=7).load_state_dict(state)


def test_missing_and_unexpected_keys_are_errors():
    model = small_model()
    state = model.state_dict()
    missing = dict(state)
    del missing["1.running_var"]
    with pytest.raises(KeyError, match=r"missing \['1\.running_var'\]"):
        model.load_state_dict(missing)
    with pytest.raises(KeyError, match=r"unexpected \['extra'\]"):
        model.load_state_dict({**state, "extra": numpy.zeros(1)})


def assert_state_unchanged(model, before: dict) -> None:
    """Every array of ``model.state_dict()`` is bit for bit the one in ``before``."""
    for name, after in model.state_dict().items():
        assert after.tobytes() == before[name].tobytes(), name


def test_a_late_shape_error_leaves_every_parameter_untouched():
    tinycnn.manual_seed(0)
    model = small_model(classes=3)
    before = model.state_dict()
    tinycnn.manual_seed(1)
    other = small_model(classes=3).state_dict()   # fits everywhere...
    other["9.bias"] = numpy.zeros(7, numpy.float32)  # ...but the last layer, checked last
    with pytest.raises(ValueError, match=r"'9\.bias'"):
        model.load_state_dict(other)
    assert_state_unchanged(model, before)


def test_a_dtype_that_cannot_be_cast_is_refused_before_any_copy():
    model = small_model()
    before = model.state_dict()
    state = {name: value + 1 for name, value in before.items()}
    state["9.weight"] = numpy.full(before["9.weight"].shape, "x")   # strings, not weights
    with pytest.raises(ValueError, match=r"'9\.weight'.*dtype"):
        model.load_state_dict(state)
    assert_state_unchanged(model, before)


def test_loaded_state_is_copied_not_shared():
    model = small_model()
    state = model.state_dict()
    before = state["0.weight"].copy()
    model.load_state_dict(state)
    model[0].weight.data += 1.0
    model[1].running_mean += 1.0
    numpy.testing.assert_array_equal(state["0.weight"], before)
    assert not state["1.running_mean"].any()


def test_metadata_key_is_reserved(tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        tinycnn.save({"__meta__": numpy.zeros(1)}, str(tmp_path / "x.npz"))


def test_manual_seed_gives_identical_initial_weights():
    tinycnn.manual_seed(42)
    first = small_model().state_dict()
    tinycnn.manual_seed(42)
    second = small_model().state_dict()
    tinycnn.manual_seed(43)
    other = small_model().state_dict()
    for name in first:
        numpy.testing.assert_array_equal(first[name], second[name])
    assert not numpy.array_equal(first["0.weight"], other["0.weight"])


def test_state_dict_order_is_stable_and_complete():
    names = list(small_model().state_dict())
    assert names == list(small_model().state_dict())
    assert names == [name for name, _ in small_model().named_parameters()] + [
        "1.running_mean", "1.running_var", "6.running_mean", "6.running_var"]
    assert names[:4] == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_shapes_follow_pytorch():
    conv, linear = nn.Conv2d(3, 8, (3, 5)), nn.Linear(10, 4)
    assert conv.weight.shape == (8, 3, 3, 5) and conv.bias.shape == (8,)
    assert linear.weight.shape == (4, 10) and linear.bias.shape == (4,)
    assert nn.Conv2d(3, 8, 3, bias=False).bias is None
    assert [p.shape for p in nn.BatchNorm2d(6).parameters()] == [(6,), (6,)]


def test_module_to_float64_casts_parameters_and_buffers():
    model = trained_a_little(small_model())
    before = model.state_dict()
    model.to(numpy.float64)
    after = model.state_dict()
    for name in before:
        assert after[name].dtype == numpy.float64, name
        numpy.testing.assert_array_equal(after[name], before[name].astype(numpy.float64))
    assert all(p.grad is None for p in model.parameters())
    y = model.eval()(Tensor(numpy.ones((2, 1, 6, 6)), dtype=numpy.float64))
    assert y.dtype == numpy.float64 and y.shape == (2, 3)


def test_train_and_eval_reach_every_module():
    model = nn.Sequential(small_model(), nn.Sequential(nn.ReLU(), nn.Dropout(0.5)))
    assert all(module.training for module in model.modules())
    assert model.eval() is model
    assert not any(module.training for module in model.modules())
    model.train()
    assert all(module.training for module in model.modules())


def test_eval_mode_is_deterministic_and_train_mode_drops_out():
    tinycnn.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 20), nn.Dropout(0.5))
    x = Tensor(numpy.ones((4, 20)))
    model.eval()
    assert model(x).numpy().tobytes() == model(x).numpy().tobytes()
    model.train()
    assert (model(x).numpy() == 0).any()


def test_zero_grad_and_num_parameters():
    model = trained_a_little(small_model())
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    assert model.num_parameters() == (4 * 9 + 4) + 8 + (36 * 8 + 8) + 16 + (8 * 3 + 3)


def test_assigning_to_parameters_and_buffers_keeps_them_registered():
    layer = nn.BatchNorm1d(3)
    with pytest.raises(TypeError, match="parameter 'weight'"):
        layer.weight = Tensor(numpy.ones(3))
    layer.running_mean = numpy.full(3, 2.0, dtype=numpy.float32)
    assert list(layer.state_dict()) == ["weight", "bias", "running_mean", "running_var"]
    numpy.testing.assert_array_equal(layer.state_dict()["running_mean"], [2.0, 2.0, 2.0])


def test_batch_norm_in_training_refuses_one_value_per_channel():
    with pytest.raises(ValueError, match="more than one value per channel"):
        nn.BatchNorm1d(3)(Tensor(numpy.ones((1, 3), numpy.float32)))
    nn.BatchNorm2d(3)(Tensor(numpy.ones((1, 3, 2, 1), numpy.float32)))  # 2 values per channel: fine
    layer = nn.BatchNorm1d(3)
    layer.eval()
    assert layer(Tensor(numpy.ones((1, 3), numpy.float32))).shape == (1, 3)  # running statistics


def test_saved_file_is_readable_by_others(tmp_path):
    path = tmp_path / "model.npz"
    tinycnn.save(small_model().state_dict(), str(path))
    assert path.stat().st_mode & 0o044 == 0o044


@pytest.mark.parametrize("damage", ["empty", "truncated", "random bytes", "bare .npy", "bad crc"])
def test_a_damaged_file_is_one_serialization_error(tmp_path, damage):
    path = tmp_path / "model.npz"
    tinycnn.save(small_model().state_dict(), str(path), {"arch": "small"})
    data = path.read_bytes()
    if damage == "bare .npy":
        numpy.save(str(tmp_path / "bare.npy"), numpy.zeros(3))
        data = (tmp_path / "bare.npy").read_bytes()
    middle = len(data) // 2
    path.write_bytes({"empty": b"", "truncated": data[:middle], "bare .npy": data,
                      "random bytes": numpy.random.default_rng(0).bytes(len(data)),
                      "bad crc": data[:200] + bytes(255 - b for b in data[200:216])  # in 0.weight's bytes
                      + data[216:]}[damage])
    with pytest.raises(tinycnn.SerializationError, match="model.npz"):
        tinycnn.load(str(path))
