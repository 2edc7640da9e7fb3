"""fer_app.train's building blocks: settings precedence, augmentation presets, class weights,
mixup and schedules."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import tinycnn
from fer_app import train
from fer_app.models import DEFAULT_ARCH
from fer_app.training import settings
from fer_app.training.mixup import mixup
from fer_app.training.optimization import build_scheduler
from tinycnn import optim
from tests.train_samples import train_tiny_run, write_fer_csv


def settings_for(argv: list[str], saved: dict | None = None) -> dict:
    return settings.choose_settings(train.parse_args(argv + ["--out", "unused"]), saved)


def test_settings_come_from_defaults_then_checkpoint_then_command_line():
    fresh = settings_for([])
    assert fresh["arch"] == DEFAULT_ARCH and fresh["classes"] == 7
    assert settings_for(["--arch", "seed002"])["classes"] == 6
    saved = dict(fresh, lr=0.05, epochs=4, optimizer="sgd")
    resumed = settings_for(["--epochs", "9"], saved)
    assert (resumed["lr"], resumed["epochs"], resumed["optimizer"]) == (0.05, 9, "sgd")


def test_bad_settings_are_train_errors():
    with pytest.raises(settings.TrainError, match="--batch-size must be positive"):
        settings_for(["--batch-size", "0"])
    with pytest.raises(settings.TrainError, match="--batch-size must be at least 2"):
        settings_for(["--batch-size", "1"])
    with pytest.raises(settings.TrainError, match="--label-smoothing"):
        settings_for(["--label-smoothing", "1.5"])
    with pytest.raises(settings.TrainError, match="augmentation"):
        settings.augment_config(settings_for(["--flip", "2"]))
    for factor in ("1", "0.5", "nan"):
        with pytest.raises(settings.TrainError, match="--divergence-factor must be above 1"):
            settings_for(["--divergence-factor", factor])
    assert settings_for(["--divergence-factor", "inf"])["divergence_factor"] == float("inf")


def test_augment_flags_override_the_preset():
    config = settings.augment_config(settings_for(["--augment", "light", "--rotation", "7"]))
    assert (config.flip, config.shift, config.rotation, config.zoom) == (0.5, 2, 7.0, 0.0)
    assert settings.augment_config(settings_for(["--augment", "none"])).shift == 0


def test_balanced_class_weight_is_n_over_k_times_count():
    labels = np.array([0, 0, 0, 1])  # class 2 absent
    np.testing.assert_allclose(train.balanced_class_weight(labels, 3), [4 / 9, 4 / 3, 0.0])


def test_mixup_blends_images_and_targets_with_the_same_weight():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 1, 48, 48)).astype(np.float32)
    labels = np.array([0, 1, 2, 0, 1, 2])
    teacher = np.log(np.random.default_rng(2).dirichlet(np.ones(3), size=6))   # (6, 3)
    mixed, targets, blended = mixup(x, labels, 3, 0.4, np.random.default_rng(1), teacher)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-6)
    # replay the generator to get lam and the partners, then check both blends
    replay = np.random.default_rng(1)
    lam, partner = replay.beta(0.4, 0.4), replay.permutation(6)
    np.testing.assert_allclose(mixed, lam * x + (1 - lam) * x[partner], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(targets, lam * np.eye(3)[labels] + (1 - lam) * np.eye(3)[labels[partner]],
                               rtol=1e-5, atol=1e-6)
    # the teacher's distributions are blended like the labels
    np.testing.assert_allclose(np.exp(blended), lam * np.exp(teacher) + (1 - lam) * np.exp(teacher[partner]),
                               rtol=1e-5)
    assert mixup(x, labels, 3, 0.4, np.random.default_rng(1))[2] is None   # no teacher


@pytest.mark.parametrize("name, kind", [("cosine", optim.CosineAnnealingLR),
                                        ("onecycle", optim.OneCycleLR), ("step", optim.StepLR),
                                        ("plateau", optim.ReduceLROnPlateau), ("none", type(None))])
def test_each_schedule_name_builds_its_scheduler(name, kind):
    parameter = tinycnn.nn.Parameter(np.zeros(2, np.float32))
    optimizer = optim.Adam([parameter], lr=0.01)
    scheduler = build_scheduler(optimizer, settings_for(["--schedule", name, "--epochs", "6"]), 10)
    assert isinstance(scheduler, kind)
    if name == "onecycle":
        assert scheduler.total_steps == 60


def test_a_last_batch_of_one_row_joins_the_batch_before_it():
    assert train.batch_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert train.batch_bounds(9, 4) == [(0, 4), (4, 9)]
    assert train.batch_bounds(8, 4) == [(0, 4), (4, 8)]
    assert train.batch_bounds(1, 4) == [(0, 1)]


def test_training_set_one_row_over_whole_batches_trains(tmp_path):
    data = write_fer_csv(tmp_path / "tiny.csv", {"Training": 33, "PublicTest": 8})  # 33 = 2 * 16 + 1
    run = train_tiny_run(tmp_path / "run", data, "--arch", "vgg_fer")  # vgg_fer has batch norm
    assert os.path.exists(os.path.join(run, "model.npz"))


def test_val_split_random_validates_on_a_share_of_training_with_rmsprop(tmp_path):
    """The seed projects' protocol: 20% of the Training rows held out (7 classes x 5 rows
    -> 1 per class); PublicTest is not used. Keras's default optimizer, RMSprop, trains."""
    data = write_fer_csv(tmp_path / "tiny.csv", {"Training": 35, "PublicTest": 14})
    run = train_tiny_run(tmp_path / "run", data, "--val-split", "random", "--optimizer", "rmsprop")
    with open(os.path.join(run, "metrics.json")) as file:
        assert json.load(file)["n"] == 7
    _, metadata = tinycnn.load(os.path.join(run, "model.npz"))
    assert metadata["settings"]["val_split"] == "random"
    assert metadata["settings"]["optimizer"] == "rmsprop"
