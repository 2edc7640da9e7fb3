"""Class sets, train/validation splits, select_split, find_data and the data CLI."""
import os

import numpy as np
import pytest

from fer_app.data import load as data
from fer_app.data.load import (EMOTIONS, DataError, Dataset, choose_classes, find_data,
                               select_split, split_dataset)


def make_dataset(counts, usage=None, seed=0):
    """A 7-class Dataset with counts[c] rows of class c; each image is filled with its row number."""
    labels = np.repeat(np.arange(len(counts)), counts).astype(np.int64)
    labels = np.random.default_rng(seed).permutation(labels)
    images = (np.arange(len(labels)) % 256).astype(np.uint8)[:, None, None] * np.ones((1, 48, 48), np.uint8)
    return Dataset(images, labels, list(EMOTIONS), usage)


def test_six_classes_drop_disgust_and_relabel():
    ds = make_dataset([3, 2, 4, 5, 1, 2, 3])
    six = choose_classes(ds, classes=6)
    assert six.class_names == ["angry", "fear", "happy", "sad", "surprise", "neutral"]
    assert len(six) == len(ds) - 2
    kept = ds.labels != 1
    np.testing.assert_array_equal(six.images, ds.images[kept])
    for old, new in zip(ds.labels[kept], six.labels):
        assert EMOTIONS[old] == six.class_names[new]


def test_merge_disgust_into_angry():
    ds = make_dataset([3, 2, 4, 5, 1, 2, 3])
    merged = choose_classes(ds, merge_disgust=True)
    assert merged.class_names == ["angry", "fear", "happy", "sad", "surprise", "neutral"]
    assert len(merged) == len(ds)
    np.testing.assert_array_equal(merged.class_counts(), [5, 4, 5, 1, 2, 3])
    np.testing.assert_array_equal(merged.labels[ds.labels == 1], 0)
    assert choose_classes(ds, classes=7) is ds
    with pytest.raises(ValueError, match="6 or 7"):
        choose_classes(ds, classes=5)


def test_stratified_split_proportions_and_determinism():
    counts = [100, 10, 50, 200, 80, 40, 60]
    ds = make_dataset(counts)
    train, val = split_dataset(ds, val_fraction=0.2, seed=3)
    np.testing.assert_array_equal(val.class_counts(), [round(0.2 * c) for c in counts])
    np.testing.assert_array_equal(train.class_counts() + val.class_counts(), counts)
    _, again_val = split_dataset(ds, val_fraction=0.2, seed=3)
    np.testing.assert_array_equal(again_val.labels, val.labels)
    np.testing.assert_array_equal(again_val.images, val.images)
    _, other_val = split_dataset(ds, val_fraction=0.2, seed=4)
    assert not np.array_equal(other_val.images, val.images)


def test_stratified_split_is_a_partition():
    ds = make_dataset([30, 5, 20, 40, 10, 15, 25])
    ds.images[:] = 0
    ds.images[:, 0, 0] = np.arange(len(ds)) % 256
    ds.images[:, 0, 1] = np.arange(len(ds)) // 256
    train, val = split_dataset(ds, val_fraction=0.25, seed=0)
    key = lambda part: set((part.images[:, 0, 1].astype(int) * 256 + part.images[:, 0, 0]).tolist())
    assert key(train).isdisjoint(key(val))
    assert key(train) | key(val) == set(range(len(ds)))


def test_usage_column_gives_training_and_public_test():
    usage = np.array(["Training"] * 20 + ["PublicTest"] * 6 + ["PrivateTest"] * 4)
    ds = make_dataset([5, 3, 4, 6, 4, 4, 4], usage=usage)
    train, val = split_dataset(ds)
    assert len(train) == 20 and len(val) == 6
    assert set(train.usage) == {"Training"} and set(val.usage) == {"PublicTest"}
    np.testing.assert_array_equal(val.images, ds.images[20:26])


def test_usage_without_public_test_is_split_and_private_test_held_out():
    usage = np.array(["Training"] * 50 + ["PrivateTest"] * 10)
    ds = make_dataset([10, 5, 10, 10, 10, 5, 10], usage=usage)
    train, val = split_dataset(ds, val_fraction=0.2)
    assert len(train) + len(val) == 50
    assert "PrivateTest" not in set(train.usage) | set(val.usage)


def test_random_split_holds_out_a_share_of_training_only():
    usage = np.array(["Training"] * 40 + ["PublicTest"] * 10 + ["PrivateTest"] * 10)
    ds = make_dataset([10, 5, 10, 10, 10, 5, 10], usage=usage)
    train, val = split_dataset(ds, val_fraction=0.25, seed=1, validate_on="random")
    assert len(train) + len(val) == 40
    assert set(train.usage) == {"Training"} and set(val.usage) == {"Training"}
    training = select_split(ds, "Training")
    np.testing.assert_array_equal(val.class_counts(), np.round(0.25 * training.class_counts()))
    with pytest.raises(ValueError, match="validate_on"):
        split_dataset(ds, validate_on="PrivateTest")


def test_select_split_and_its_error():
    usage = np.array(["Training"] * 4 + ["PublicTest"] * 3)
    ds = make_dataset([1, 1, 1, 1, 1, 1, 1], usage=usage)
    assert len(select_split(ds, "PublicTest")) == 3
    assert len(select_split(ds, "publictest")) == 3
    with pytest.raises(DataError, match=r"'PrivateTest'; available: PublicTest \(3 rows\), Training \(4 rows\)"):
        select_split(ds, "PrivateTest")
    with pytest.raises(DataError, match="no Usage column"):
        select_split(make_dataset([1] * 7), "Training")


def test_find_data_prefers_the_given_path_then_searches(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "REPO_ROOT", str(tmp_path / "repo"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as error:
        find_data()
    message = str(error.value)
    assert "challenges-in-representation-learning-facial-expression-recognition-challenge" in message
    assert "fer2013.csv" in message and os.path.join(str(tmp_path), "data", "fer2013.csv") in message
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "fer2013.csv.gz").write_bytes(b"")
    assert find_data() == os.path.join(str(tmp_path), "data", "fer2013.csv.gz")
    assert find_data(str(tmp_path / "data")) == str(tmp_path / "data")
    with pytest.raises(DataError, match="missing.csv: not found"):
        find_data(str(tmp_path / "missing.csv"))


def test_cli_prints_counts_and_writes_grid(tmp_path, capsys):
    faces = np.random.default_rng(0).integers(0, 256, (9, 48, 48))
    rows = [f"{i % 7},{' '.join(map(str, face.reshape(-1)))},{'Training' if i < 7 else 'PublicTest'}"
            for i, face in enumerate(faces)]
    path = tmp_path / "fer.csv"
    path.write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n")
    grid = tmp_path / "grid.png"
    assert data.main(["--data", str(path), "--grid", str(grid), "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "9 images, 7 classes" in out
    assert "Training" in out and "PublicTest" in out
    assert grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_reports_bad_data_without_traceback(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("emotion,pixels,Usage\n0,1 2 3,Training\n")
    assert data.main(["--data", str(path), "--no-cache"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "bad.csv: line 2: 3 pixel values" in err
    assert "Traceback" not in err
    assert data.main(["--data", str(path), "--no-cache", "--skip-bad"]) == 0
    assert "skipped 1 bad row" in capsys.readouterr().out
