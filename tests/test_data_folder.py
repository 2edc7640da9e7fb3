"""Image-folder loader: layout, case-insensitive class names, any size/colour, every bad-input kind."""
import numpy as np
import pytest
from PIL import Image

from fer_app.data.image_folder import read_face
from fer_app.data.load import EMOTIONS, DataError, load_dataset


def save_face(path, seed, size=(48, 48), mode="L"):
    rng = np.random.default_rng(seed)
    channels = {"L": (), "RGB": (3,), "RGBA": (4,)}[mode]
    pixels = rng.integers(0, 256, size[::-1] + channels, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode).save(path)
    return pixels


def make_folder(root, layout):
    """layout: {split: {class folder: number of 48x48 grey PNGs}} -> {path name: pixels}."""
    saved = {}
    for split, classes in layout.items():
        for class_name, count in classes.items():
            for i in range(count):
                path = root / split / class_name / f"{class_name}_{i}.png"
                saved[str(path)] = save_face(path, seed=len(saved))
    return saved


def test_loads_pixels_labels_and_usage(tmp_path):
    saved = make_folder(tmp_path, {"train": {"Happy": 2, "angry": 1}, "test": {"SAD": 2}})
    ds = load_dataset(str(tmp_path), cache=False)
    assert ds.images.shape == (5, 48, 48) and ds.images.dtype == np.uint8
    assert ds.class_names == EMOTIONS
    happy, angry, sad = EMOTIONS.index("happy"), EMOTIONS.index("angry"), EMOTIONS.index("sad")
    assert list(ds.labels) == [angry, happy, happy, sad, sad]  # sorted by split, folder, file
    assert list(ds.usage) == ["Training"] * 3 + ["PublicTest"] * 2
    expected = [saved[str(tmp_path / "train" / "angry" / "angry_0.png")],
                saved[str(tmp_path / "train" / "Happy" / "Happy_0.png")]]
    np.testing.assert_array_equal(ds.images[:2], np.stack(expected))


def test_validation_folder_is_public_test_and_test_becomes_private_when_both(tmp_path):
    make_folder(tmp_path / "a", {"train": {"fear": 1}, "validation": {"fear": 1}})
    assert sorted(load_dataset(str(tmp_path / "a"), cache=False).usage) == ["PublicTest", "Training"]
    make_folder(tmp_path / "b", {"train": {"fear": 1}, "validation": {"fear": 1}, "test": {"fear": 1}})
    usage = load_dataset(str(tmp_path / "b"), cache=False).usage
    assert sorted(usage) == ["PrivateTest", "PublicTest", "Training"]


def test_any_size_and_colour_becomes_48x48_grey(tmp_path):
    save_face(tmp_path / "rgb.png", 1, size=(96, 96), mode="RGB")
    wide = save_face(tmp_path / "wide.png", 2, size=(60, 48), mode="L")
    save_face(tmp_path / "rgba.png", 3, size=(30, 40), mode="RGBA")
    for name in ("rgb.png", "wide.png", "rgba.png"):
        face = read_face(str(tmp_path / name))
        assert face.shape == (48, 48) and face.dtype == np.uint8
    np.testing.assert_array_equal(read_face(str(tmp_path / "wide.png")), wide[:, 6:54])  # centre crop
    rgb = np.asarray(Image.open(tmp_path / "rgb.png").convert("L").resize((48, 48), Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(read_face(str(tmp_path / "rgb.png")), rgb)


def test_jpeg_files_load(tmp_path):
    path = tmp_path / "train" / "neutral" / "x.jpg"
    path.parent.mkdir(parents=True)
    Image.fromarray(np.full((48, 48), 128, np.uint8)).save(path)
    ds = load_dataset(str(tmp_path), cache=False)
    assert abs(int(ds.images[0].mean()) - 128) <= 1


def test_unreadable_image_names_the_image(tmp_path):
    make_folder(tmp_path, {"train": {"happy": 2}})
    broken = tmp_path / "train" / "happy" / "broken.jpg"
    broken.write_bytes(b"not an image")
    with pytest.raises(DataError, match="broken.jpg: unreadable image") as error:
        load_dataset(str(tmp_path), cache=False)
    assert str(broken) in str(error.value)
    ds = load_dataset(str(tmp_path), skip_bad=True, cache=False)
    assert ds.skipped == 1 and len(ds) == 2


def test_empty_class_folder_names_the_folder(tmp_path):
    make_folder(tmp_path, {"train": {"happy": 2}})
    (tmp_path / "train" / "fear").mkdir()
    with pytest.raises(DataError, match="fear: empty class folder"):
        load_dataset(str(tmp_path), cache=False)
    assert len(load_dataset(str(tmp_path), skip_bad=True, cache=False)) == 2


def test_unknown_class_and_split_folders_are_named(tmp_path):
    make_folder(tmp_path / "a", {"train": {"happy": 1, "contempt": 1}})
    with pytest.raises(DataError, match="unknown class folder 'contempt'"):
        load_dataset(str(tmp_path / "a"), cache=False)
    make_folder(tmp_path / "b", {"train": {"happy": 1}, "extra": {"happy": 1}})
    with pytest.raises(DataError, match="extra: unknown split folder"):
        load_dataset(str(tmp_path / "b"), cache=False)
    (tmp_path / "c").mkdir()
    with pytest.raises(DataError, match="no train/, test/ or validation/ folder"):
        load_dataset(str(tmp_path / "c"), cache=False)


def test_hidden_files_are_ignored(tmp_path):
    make_folder(tmp_path, {"train": {"happy": 1}})
    (tmp_path / "train" / "happy" / ".DS_Store").write_bytes(b"junk")
    assert len(load_dataset(str(tmp_path), cache=False)) == 1
