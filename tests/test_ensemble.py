"""fer_app.ensemble: model files combined into one that averages their probabilities."""
from __future__ import annotations

import os

import numpy as np
import pytest

import tinycnn
from fer_app import ensemble, evaluate
from fer_app.models.ensemble import Ensemble
from fer_app.recognition.inference import ModelFileError, load_classifier
from tests.conftest import using_backend
from tests.train_samples import make_faces, train_tiny_run, write_fer_csv


def train_tiny(tmp_path, data, name, *options) -> str:
    return os.path.join(train_tiny_run(tmp_path / name, data, *options), "model.npz")


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_forward_is_the_log_of_the_mean_probability():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 5)).astype(np.float32)  # (N, features)
    with using_backend("numpy"):
        members = [tinycnn.nn.Linear(5, 3), tinycnn.nn.Linear(5, 3), tinycnn.nn.Linear(5, 3)]
        out = Ensemble(members)(tinycnn.Tensor(x)).numpy()  # (4, 3)
        expected = np.mean([softmax(m(tinycnn.Tensor(x)).numpy()) for m in members], axis=0)
        names = list(Ensemble(members).state_dict())
    np.testing.assert_allclose(np.exp(out), expected, rtol=1e-5)
    assert names[:2] == ["member0.weight", "member0.bias"] and len(names) == 6


def test_combined_file_predicts_the_mean_of_its_members(tmp_path):
    data = write_fer_csv(tmp_path / "tiny.csv", {"Training": 48, "PublicTest": 16})
    a = train_tiny(tmp_path, data, "a")
    b = train_tiny(tmp_path, data, "b", "--seed", "5")
    combined = str(tmp_path / "ab.npz")
    assert ensemble.main([a, b, "--out", combined]) == 0

    faces = make_faces(np.arange(6) % 7, seed=1)  # (6, 48, 48)
    members = [load_classifier(path, "numpy").predict_proba(faces) for path in (a, b)]
    both = load_classifier(combined, "numpy")
    np.testing.assert_allclose(both.predict_proba(faces), np.mean(members, axis=0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(both.predict_proba(faces, tta=True),
                               np.mean([load_classifier(p, "numpy").predict_proba(faces, tta=True)
                                        for p in (a, b)], axis=0), rtol=1e-5, atol=1e-7)
    assert [m["source"] for m in both.metadata["members"]] == [a, b]
    assert evaluate.main(["--model", combined, "--data", str(data), "--backend", "numpy",
                          "--out", str(tmp_path)]) == 0


def test_float16_file_is_smaller_and_predicts_almost_the_same(tmp_path):
    data = write_fer_csv(tmp_path / "tiny.csv", {"Training": 48, "PublicTest": 16})
    members = [train_tiny(tmp_path, data, name, "--seed", seed) for name, seed in (("a", "1"), ("b", "2"))]
    full, half = str(tmp_path / "full.npz"), str(tmp_path / "half.npz")
    assert ensemble.main([*members, "--out", full]) == 0
    assert ensemble.main([*members, "--float16", "--out", half]) == 0

    state, metadata = tinycnn.load(half)
    assert metadata["stored_as"] == "float16"
    assert all(v.dtype == np.float16 for v in state.values() if v.dtype.kind == "f")
    assert os.path.getsize(half) < 0.6 * os.path.getsize(full)
    faces = make_faces(np.arange(8) % 7, seed=2)  # (8, 48, 48)
    loaded = load_classifier(half, "numpy")
    assert next(iter(loaded.model.parameters())).dtype == np.float32
    np.testing.assert_allclose(loaded.predict_proba(faces),
                               load_classifier(full, "numpy").predict_proba(faces), atol=2e-3)


def test_members_must_agree_on_classes(tmp_path, capsys):
    data = write_fer_csv(tmp_path / "tiny.csv", {"Training": 48, "PublicTest": 16})
    seven = train_tiny(tmp_path, data, "seven")
    six = train_tiny(tmp_path, data, "six", "--classes", "6")
    assert ensemble.main([seven, six, "--out", str(tmp_path / "x.npz")]) == 1
    assert "class_names" in capsys.readouterr().err
    assert ensemble.main([seven, "--out", str(tmp_path / "x.npz")]) == 1
    assert "at least two" in capsys.readouterr().err
    try:
        ensemble.combine([seven, str(tmp_path / "nothing.npz")], str(tmp_path / "x.npz"))
    except ModelFileError as error:
        assert "not found" in str(error)
    else:
        raise AssertionError("a missing member file must raise ModelFileError")


def fake_model_file(path, accuracy: float, n_weights: int) -> str:
    """A model file holding n_weights float32 weights whose own validation accuracy is accuracy."""
    metadata = {"arch": "vgg_fer", "num_classes": 7, "class_names": list("abcdefg"),
                "normalization": {"mode": "per_image"}, "val": {"val_acc": accuracy}}
    tinycnn.save({"w": np.zeros(n_weights, np.float32), "steps": np.zeros(1, np.int64)}, str(path), metadata)
    return str(path)


def test_budget_rule_takes_the_most_accurate_models_that_still_fit(tmp_path):
    big = fake_model_file(tmp_path / "big.npz", 0.66, 1000)      # 4,008 bytes (2,008 as float16)
    best = fake_model_file(tmp_path / "best.npz", 0.67, 500)     # 2,008 bytes (1,008)
    small = fake_model_file(tmp_path / "small.npz", 0.64, 250)   # 1,008 bytes (508)
    worst = fake_model_file(tmp_path / "worst.npz", 0.60, 250)
    paths = [small, worst, big, best]
    assert ensemble.choose_within_budget(paths, 6_016) == [best, big]
    # big no longer fits after best: it is passed over, and the smaller ones are taken
    assert ensemble.choose_within_budget(paths, 5_000) == [best, small, worst]
    assert ensemble.choose_within_budget(paths, 3_016, float16=True) == [best, big]
    with pytest.raises(ModelFileError, match="no model fits"):
        ensemble.choose_within_budget(paths, 1_000)


def test_a_shipped_model_name_is_a_member(tmp_path):
    """'fast' names fer_app/weights/fast.npz, as it does on every other command."""
    out = str(tmp_path / "two.npz")
    assert ensemble.main(["fast", "fast", "--out", out]) == 0
    faces = make_faces(np.arange(3) % 7, seed=2)
    np.testing.assert_allclose(load_classifier(out, "numpy").predict_proba(faces),
                               load_classifier("fast", "numpy").predict_proba(faces), rtol=1e-4, atol=1e-6)
