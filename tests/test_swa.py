"""Weight averaging (fer_app.swa): the mean of the weights, batch-norm statistics measured
again, and fer_app.train --snapshots -> fer_app.swa end to end on tiny generated data."""
from __future__ import annotations

import numpy as np
import pytest

import tinycnn
from fer_app import swa, train
from fer_app.recognition.inference import load_classifier
from tests.train_samples import write_fer_csv
from tinycnn import nn

FAST = ["--arch", "seed002", "--classes", "7", "--batch-size", "16", "--backend", "numpy",
        "--augment", "light"]


def test_average_weights_is_the_elementwise_mean_in_each_arrays_dtype():
    states = [{"w": np.array([1.0, 2.0], np.float32), "n": np.array([3], np.int64)},
              {"w": np.array([2.0, 5.0], np.float32), "n": np.array([5], np.int64)}]
    average = swa.average_weights(states)
    np.testing.assert_array_equal(average["w"], [1.5, 3.5])
    assert average["w"].dtype == np.float32 and average["n"].dtype == np.int64 and average["n"][0] == 4


def test_refresh_batch_norm_gives_the_mean_of_the_batch_statistics_without_dropout(float64):
    """Running mean and variance = the mean over batches of each batch's mean and unbiased
    variance per channel; dropout before the batch norm stays off; momentum and eval mode
    come back."""
    tinycnn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Dropout(0.5), nn.BatchNorm2d(3), nn.ReLU())
    bn = model[2]
    bn.running_mean[...] = 7.0
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((4, 1, 5, 5)) * (k + 1) + k for k in range(3)]
    assert swa.refresh_batch_norm(model, iter(batches)) == 1
    with tinycnn.no_grad():
        conv_outputs = [model[0](tinycnn.Tensor(x)).numpy() for x in batches]   # (4, 3, 5, 5) each
    means = [z.mean(axis=(0, 2, 3)) for z in conv_outputs]
    variances = [z.var(axis=(0, 2, 3), ddof=1) for z in conv_outputs]
    np.testing.assert_allclose(bn.running_mean, np.mean(means, axis=0), rtol=1e-10)
    np.testing.assert_allclose(bn.running_var, np.mean(variances, axis=0), rtol=1e-10)
    assert bn.momentum == 0.1 and not model.training and not bn.training


def test_train_snapshots_then_swa_writes_the_averaged_network(tmp_path, capsys):
    data = write_fer_csv(tmp_path / "tiny.csv", {"Training": 48, "PublicTest": 21})
    out = tmp_path / "run"
    assert train.main(["--data", data, "--out", str(out), *FAST, "--epochs", "2", "--snapshots"]) == 0
    snapshots = [str(out / "snapshots" / f"epoch_{epoch:03d}.npz") for epoch in (1, 2)]
    states = [tinycnn.load(path)[0] for path in snapshots]
    averaged = str(tmp_path / "swa.npz")
    assert swa.main([*snapshots, "--data", data, "--out", averaged, "--backend", "numpy"]) == 0
    assert "PublicTest accuracy" in capsys.readouterr().out
    state, metadata = tinycnn.load(averaged)
    conv_weight = next(name for name in state if name.endswith("weight") and state[name].ndim == 4)
    np.testing.assert_allclose(state[conv_weight], (states[0][conv_weight] + states[1][conv_weight]) / 2,
                               rtol=1e-6)
    assert metadata["swa"]["epochs"] == [1, 2] and 0.0 <= metadata["val"]["val_acc"] <= 1.0
    classifier = load_classifier(averaged, "numpy")
    assert classifier.predict_proba(np.zeros((2, 48, 48), np.uint8)).shape == (2, 7)


def test_swa_of_one_file_recalibrates_batch_norm_and_refuses_other_networks(tmp_path, capsys):
    """One file: the same weights, the batch-norm statistics measured again; files of two
    architectures: one line, nothing written."""
    data = write_fer_csv(tmp_path / "tiny.csv", {"Training": 16, "PublicTest": 7})
    files = []
    for arch in ("seed001", "seed002"):          # seed001 has batch norm, seed002 none
        tinycnn.manual_seed(0)
        out = tmp_path / arch
        assert train.main(["--data", data, "--out", str(out), *FAST, "--arch", arch, "--epochs", "1"]) == 0
        files.append(str(out / "model.npz"))
    recalibrated = str(tmp_path / "recalibrated.npz")
    assert swa.main([files[0], "--data", data, "--out", recalibrated, "--backend", "numpy"]) == 0
    before, after = tinycnn.load(files[0])[0], tinycnn.load(recalibrated)[0]
    means = [name for name in before if name.endswith("running_mean")]
    weights = [name for name in before if name.endswith("weight")]
    assert means and all(np.array_equal(before[name], after[name]) for name in weights)
    assert any(not np.allclose(before[name], after[name]) for name in means)
    capsys.readouterr()
    assert swa.main([*files, "--data", data, "--out", str(tmp_path / "x.npz")]) == 1
    assert "its arch (seed002) differs" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize("flag, expected", [([], False), (["--snapshots"], True)])
def test_snapshots_is_a_setting_kept_for_resume(flag, expected):
    args = train.parse_args(["--out", "x", *flag])
    assert train.choose_settings(args, None)["snapshots"] is expected
