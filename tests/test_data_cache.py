"""The .npz cache: hits return identical data without parsing, changes invalidate it,
read-only data folders fall back to the cache folder."""
import os

import numpy as np
import pytest
from PIL import Image

from fer_app.data import data_cache, fer_csv, image_folder
from fer_app.data.load import load_dataset


def write_csv(path, n=8, seed=0):
    rng = np.random.default_rng(seed)
    faces = rng.integers(0, 256, (n, 48, 48), dtype=np.uint8)
    rows = [f"{i % 7},{' '.join(map(str, face.reshape(-1)))},Training" for i, face in enumerate(faces)]
    path.write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n")
    return str(path)


@pytest.fixture(autouse=True)
def cache_beside_the_data(monkeypatch):
    """These tests check where the cache goes by default: without FER_APP_CACHE_DIR,
    which conftest.py sets for the rest of the suite."""
    monkeypatch.delenv(data_cache.CACHE_DIR_VARIABLE, raising=False)


@pytest.fixture
def no_parsing(monkeypatch):
    """Call it to make any further CSV/image parse fail the test."""
    def forbid():
        def fail(*args, **kwargs):
            raise AssertionError("parsed again instead of using the cache")
        monkeypatch.setattr(fer_csv, "_read_table", fail)
        monkeypatch.setattr(image_folder, "read_face", fail)
    return forbid


def test_cache_hit_returns_identical_arrays_without_parsing(tmp_path, no_parsing):
    path = write_csv(tmp_path / "fer.csv")
    first = load_dataset(path)
    assert os.path.exists(path + data_cache.CACHE_SUFFIX)
    no_parsing()
    second = load_dataset(path)
    np.testing.assert_array_equal(second.images, first.images)
    np.testing.assert_array_equal(second.labels, first.labels)
    np.testing.assert_array_equal(second.usage, first.usage)
    assert second.class_names == first.class_names
    assert second.images.dtype == np.uint8 and second.labels.dtype == np.int64


def test_cache_is_invalidated_when_the_file_changes(tmp_path):
    path = write_csv(tmp_path / "fer.csv", n=8, seed=0)
    load_dataset(path)
    write_csv(tmp_path / "fer.csv", n=5, seed=1)
    info = os.stat(path)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))  # mtime surely differs
    changed = load_dataset(path)
    np.testing.assert_array_equal(changed.images, load_dataset(path, cache=False).images)
    assert len(changed) == 5


def test_class_options_apply_after_the_cache(tmp_path, no_parsing):
    path = write_csv(tmp_path / "fer.csv", n=14)
    assert len(load_dataset(path)) == 14
    no_parsing()
    assert load_dataset(path, classes=6).class_names[1] == "fear"
    assert len(load_dataset(path, classes=6)) == 12


def test_skip_bad_is_part_of_the_key(tmp_path):
    path = tmp_path / "fer.csv"
    write_csv(path, n=4)
    with open(path, "a") as file:
        file.write("3,1 2 3,Training\n")
    assert load_dataset(str(path), skip_bad=True).skipped == 1
    with pytest.raises(fer_csv.DataError, match="line 6"):
        load_dataset(str(path))


def test_read_only_folder_falls_back_to_the_cache_folder(tmp_path, monkeypatch, no_parsing):
    folder = tmp_path / "shared"
    folder.mkdir()
    path = write_csv(folder / "fer.csv")
    fallback = tmp_path / "home-cache"
    monkeypatch.setattr(data_cache, "FALLBACK_CACHE_DIR", fallback)
    folder.chmod(0o555)
    try:
        first = load_dataset(path)
        assert os.listdir(folder) == ["fer.csv"]
        cached = os.listdir(fallback)
        assert len(cached) == 1 and cached[0].startswith("fer.csv-")
        no_parsing()
        np.testing.assert_array_equal(load_dataset(path).images, first.images)
    finally:
        folder.chmod(0o755)


def test_corrupt_cache_is_parsed_again(tmp_path):
    path = write_csv(tmp_path / "fer.csv")
    first = load_dataset(path)
    with open(path + data_cache.CACHE_SUFFIX, "wb") as file:
        file.write(b"garbage")
    np.testing.assert_array_equal(load_dataset(path).images, first.images)


def test_image_folder_cache_sees_a_new_image(tmp_path, no_parsing):
    folder = tmp_path / "train" / "happy"
    folder.mkdir(parents=True)
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(folder / "a.png")
    assert len(load_dataset(str(tmp_path))) == 1
    assert os.path.exists(tmp_path / data_cache.CACHE_SUFFIX)
    Image.fromarray(np.full((48, 48), 9, np.uint8)).save(folder / "b.png")
    assert len(load_dataset(str(tmp_path))) == 2
    no_parsing()
    assert len(load_dataset(str(tmp_path))) == 2


@pytest.mark.parametrize("damage", ["truncated", "empty", "random bytes"])
def test_a_damaged_cache_is_deleted_and_rebuilt_with_a_notice(tmp_path, capsys, no_parsing, damage):
    path = write_csv(tmp_path / "fer.csv")
    first = load_dataset(path)
    cache = tmp_path / ("fer.csv" + data_cache.CACHE_SUFFIX)
    data = cache.read_bytes()
    cache.write_bytes({"truncated": data[:len(data) // 2], "empty": b"",
                       "random bytes": np.random.default_rng(0).bytes(len(data))}[damage])
    capsys.readouterr()
    again = load_dataset(path)
    np.testing.assert_array_equal(again.images, first.images)
    notice = capsys.readouterr().err
    assert notice.count("\n") == 1 and "damaged" in notice and str(cache) in notice
    assert cache.read_bytes() == data   # rebuilt: the same cache as before the damage
    no_parsing()
    np.testing.assert_array_equal(load_dataset(path).images, first.images)
    assert capsys.readouterr().err == ""
