"""Bad inputs that used to give silent wrong results, tracebacks or leftovers (issue 14, part B):
16-bit pictures, decompression bombs, an unwritable Numba cache, diverging or ill-posed
training, interrupted writes, and files written where nobody asked."""
from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest
from PIL import Image

import tinycnn
from fer_app import evaluate, train
from fer_app.data import data_cache
from fer_app.data.dataset import EMOTIONS, DataError
from fer_app.data.image_folder import read_image_folder
from fer_app.data.normalize import Normalizer
from fer_app.models import build_model
from fer_app.recognition import pictures
from fer_app.training.checkpoint import remove_stale_temporaries
from tests.train_samples import make_faces, train_tiny_run, write_fer_csv
from tinycnn import backend
from tinycnn.kernels import numba_cache

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- 16-bit and float pictures ------------------------------------------------------
def grey_ramp() -> np.ndarray:
    """(40, 60) uint8 with every value 0..255 somewhere."""
    return np.linspace(0, 255, 40 * 60).round().astype(np.uint8).reshape(40, 60)


def test_uint16_arrays_scale_by_their_range_not_clip():
    assert pictures.as_uint8(np.array([[0, 257, 32896, 65535]], np.uint16)).tolist() == [[0, 1, 128, 255]]
    grey8 = grey_ramp()
    np.testing.assert_array_equal(pictures.as_uint8(grey8.astype(np.uint16) * 257), grey8)


def test_other_dtypes_scale_by_the_first_range_that_holds_their_values():
    ramp = grey_ramp()
    np.testing.assert_array_equal(pictures.as_uint8(ramp.astype(np.int32)), ramp)           # 8-bit in int32
    np.testing.assert_array_equal(pictures.as_uint8(ramp.astype(np.int64) * 257), ramp)     # 16-bit in int64
    np.testing.assert_array_equal(pictures.as_uint8(ramp / 255.0), ramp)                    # floats 0..1
    np.testing.assert_array_equal(pictures.as_uint8(ramp.astype(np.float32)), ramp)         # floats 0..255
    np.testing.assert_array_equal(pictures.as_uint8(ramp * 257.0), ramp)                    # floats 0..65535
    assert pictures.as_uint8(np.array([0, 1_000_000], np.int64)).tolist() == [0, 255]      # own maximum
    assert pictures.as_uint8(np.array([-5, 255], np.int16)).tolist() == [0, 255]           # negatives: 0
    with pytest.raises(pictures.PictureError, match="NaN"):
        pictures.as_uint8(np.array([np.nan, 1.0]))
    with pytest.raises(ValueError, match="numeric"):
        pictures.as_uint8(np.zeros((2, 2), bool))


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I", "F"])
def test_high_depth_pil_pictures_read_like_their_8bit_twin(mode):
    grey8 = grey_ramp()
    depth16 = grey8.astype(np.uint16) * 257
    array = {"I;16": depth16, "I;16B": depth16.astype(">u2"), "I": depth16.astype(np.int32),
             "F": depth16.astype(np.float32)}[mode]
    picture = Image.fromarray(array)
    assert picture.mode == mode
    rgb = pictures.pil_to_array(picture)  # (H, W, 3)
    assert rgb.dtype == np.uint8 and rgb.shape == (40, 60, 3)
    np.testing.assert_array_equal(rgb[:, :, 0], grey8)


def test_a_16bit_png_file_finds_the_same_faces_as_the_8bit_one(tmp_path):
    from fer_app.recognition.faces import FaceDetector, to_grey
    from fer_app.recognition.recognizer import load_grey
    from tests.app_support import findable_faces, scene_with_faces
    scene, _ = scene_with_faces(findable_faces(1)[0])  # (H, W) uint8 grey with one face
    Image.fromarray(scene.astype(np.uint16) * 257).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as check:
        assert check.mode == "I;16"
    detector = FaceDetector()
    expected = detector.find(scene)
    assert len(expected) == 1
    np.testing.assert_array_equal(load_grey(str(tmp_path / "deep.png")), scene)     # path (CLI, API)
    np.testing.assert_array_equal(detector.find(to_grey(scene.astype(np.uint16) * 257)), expected)


# --- decompression bombs ---------------------------------------------------------------
def bomb_png(width: int, height: int) -> bytes:
    """A few hundred bytes of PNG whose header declares width x height grey pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * (width + 1) * 2)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [7_000, 10_000, 30_000])  # our limit, PIL's warning, PIL's error
def test_a_bomb_is_refused_from_its_header(tmp_path, side):
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png(side, side))
    with pytest.raises(pictures.PictureError, match="too large"):
        pictures.read_image(str(path))
    from fer_app.recognition.recognizer import load_grey
    with pytest.raises(pictures.PictureError, match="too large"):  # an opened PIL image (API)
        load_grey(Image.open(io.BytesIO(bomb_png(7_000, 7_000))))


def test_predict_names_the_bomb_in_one_line_and_goes_on(tmp_path, capsys):
    from fer_app import predict
    from tests.app_support import random_model_file
    (tmp_path / "bomb.png").write_bytes(bomb_png(30_000, 30_000))
    Image.fromarray(grey_ramp()).save(tmp_path / "fine.png")
    code = predict.main([str(tmp_path / "bomb.png"), str(tmp_path / "fine.png"),
                         "--model", random_model_file(tmp_path), "--no-tta"])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.strip().count("\n") == 0 and "Traceback" not in captured.err
    assert "bomb.png: cannot read picture: picture too large" in captured.err
    assert "fine.png: no face found" in captured.out


def test_image_folder_refuses_a_bomb_or_skips_and_counts_it(tmp_path):
    folder = tmp_path / "train" / "happy"
    folder.mkdir(parents=True)
    Image.fromarray(grey_ramp()).save(folder / "a.png")
    Image.fromarray(grey_ramp().astype(np.uint16) * 257).save(folder / "b16.png")
    (folder / "c.png").write_bytes(bomb_png(30_000, 30_000))
    with pytest.raises(DataError, match=r"c\.png: unreadable image \(picture too large"):
        read_image_folder(str(tmp_path))
    ds = read_image_folder(str(tmp_path), skip_bad=True)
    assert ds.skipped == 1 and len(ds) == 2
    np.testing.assert_array_equal(ds.images[0], ds.images[1])  # the 16-bit copy reads the same


# --- Numba's on-disk cache --------------------------------------------------------------
NUMBA_CHILD = textwrap.dedent("""
    import os
    import numpy
    import tinycnn
    from tinycnn import backend
    assert backend.current().name == "numba", backend.current().name
    y = backend.current().kernels.relu_forward(numpy.array([-1.0, 2.0], numpy.float32))
    assert y.tolist() == [0.0, 2.0], y
    print("cache:", os.environ.get("NUMBA_CACHE_DIR"))
""")


def run_with_unwritable_cache(tmp_path, private_folder_blocked: bool) -> subprocess.CompletedProcess:
    """Run NUMBA_CHILD against a copy of tinycnn where Numba can write none of its cache
    folders. Tests run as root, whom chmod does not stop, so the folders are made
    impossible instead: the copy's kernels/__pycache__ is a regular file (a read-only
    install) and HOME and XDG_CACHE_HOME lie under a regular file (an unwritable home).
    ``private_folder_blocked`` also puts a regular file where numba_cache's private
    temp folder would go."""
    pytest.importorskip("numba")
    shutil.copytree(os.path.join(REPO, "tinycnn"), tmp_path / "tinycnn",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "tinycnn" / "kernels" / "__pycache__").write_text("not a folder")
    (tmp_path / "blocker").write_text("not a folder")
    temp = tmp_path / "tmp"
    temp.mkdir()
    if private_folder_blocked:
        (temp / f"tinycnn-numba-{os.getuid()}").write_text("not a folder")
    environment = {key: value for key, value in os.environ.items() if key != "NUMBA_CACHE_DIR"}
    environment.update(HOME=str(tmp_path / "blocker" / "home"), TMPDIR=str(temp),
                       XDG_CACHE_HOME=str(tmp_path / "blocker" / "cache"),
                       PYTHONPATH=str(tmp_path), NUMBA_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", NUMBA_CHILD], cwd=tmp_path, env=environment,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="the private cache folder needs a uid")
def test_numba_kernels_cache_in_a_private_temp_folder_when_nothing_else_is_writable(tmp_path):
    result = run_with_unwritable_cache(tmp_path, private_folder_blocked=False)
    assert result.returncode == 0, result.stderr
    private = tmp_path / "tmp" / f"tinycnn-numba-{os.getuid()}"
    assert f"cache: {private}" in result.stdout
    assert any(name.endswith(".nbi") for _, _, names in os.walk(private) for name in names)


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="the private cache folder needs a uid")
def test_numba_kernels_compile_without_cache_when_no_folder_is_usable(tmp_path):
    result = run_with_unwritable_cache(tmp_path, private_folder_blocked=True)
    assert result.returncode == 0, result.stderr
    assert "cache: None" in result.stdout
    assert result.stderr.count("RuntimeWarning: Numba has no writable cache folder") == 1, result.stderr


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="ownership is checked by uid")
def test_private_cache_folder_is_refused_when_others_can_write_it(tmp_path):
    folder = numba_cache.private_cache_folder(str(tmp_path))
    assert folder == str(tmp_path / f"tinycnn-numba-{os.getuid()}")
    assert os.stat(folder).st_mode & 0o777 == 0o700
    os.chmod(folder, 0o777)
    assert numba_cache.private_cache_folder(str(tmp_path)) is None
    os.rmdir(folder)
    os.symlink(tmp_path, folder)  # a link someone planted
    assert numba_cache.private_cache_folder(str(tmp_path)) is None


def test_a_numba_backend_that_cannot_load_is_a_backend_error_and_the_default_falls_back(monkeypatch):
    def broken_import(name):
        raise RuntimeError("cannot cache function 'relu_forward': no locator available\nsecond line")
    monkeypatch.setattr(backend, "_LOADED", {"numpy": backend.get("numpy")})
    monkeypatch.setattr(backend.importlib, "import_module", broken_import)
    monkeypatch.setattr(backend, "_current", None)
    with pytest.raises(backend.BackendError, match=r"^backend 'numba' cannot load: RuntimeError: "
                                                   r"cannot cache function 'relu_forward'[^\n]*$"):
        backend.get("numba")
    if backend.importlib.util.find_spec("numba") is not None:
        with pytest.warns(RuntimeWarning, match="using the numpy backend"):
            assert backend.current().name == "numpy"


# --- training: options, data, divergence -------------------------------------------------
@pytest.mark.parametrize("option, value, message", [
    ("--seed", "-1", "--seed must be >= 0"),
    ("--momentum", "-1", r"--momentum must be in \[0, 1\)"),
    ("--momentum", "1", r"--momentum must be in \[0, 1\)"),
    ("--val-fraction", "0", "--val-fraction must be between 0 and 1"),
    ("--val-fraction", "1.5", "--val-fraction must be between 0 and 1"),
    ("--patience", "-2", "--patience must be >= 0"),
    ("--weight-decay", "-0.0001", "--weight-decay must be >= 0"),
    ("--lr", "inf", "--lr must be a finite number"),
    ("--lr", "nan", "--lr must be a finite number"),
    ("--mixup", "nan", "--mixup must be a finite number"),
    ("--shear", "nan", "--shear must be a finite number"),
])
def test_bad_training_options_are_refused(option, value, message):
    with pytest.raises(train.TrainError, match=message):
        train.choose_settings(train.parse_args([f"{option}={value}", "--out", "unused"]), None)


def run_train(capsys, data, out, *options) -> tuple[int, str]:
    code = train.main(["--data", str(data), "--arch", "seed002", "--classes", "7", "--epochs", "1",
                       "--batch-size", "16", "--backend", "numpy", "--out", str(out), *options])
    return code, capsys.readouterr().err


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def write_labelled_csv(path, labels: list[int], usage: list[str]) -> str:
    faces = make_faces(np.array(labels), seed=0)
    rows = [f"{label},{' '.join(map(str, face.ravel()))},{split}"
            for label, face, split in zip(labels, faces, usage)]
    path.write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n")
    return str(path)


def test_one_class_or_one_row_of_training_data_is_refused(tmp_path, capsys):
    one_class = write_labelled_csv(tmp_path / "one_class.csv", [3] * 20 + [3, 4],
                                   ["Training"] * 20 + ["PublicTest"] * 2)
    code, err = run_train(capsys, one_class, tmp_path / "a")
    assert code == 1 and "only one class (happy)" in one_line_error(err)
    one_row = write_labelled_csv(tmp_path / "one_row.csv", [3, 3, 4], ["Training", "PublicTest", "PublicTest"])
    code, err = run_train(capsys, one_row, tmp_path / "b")
    assert code == 1 and "need at least 2 training rows" in one_line_error(err)
    assert not os.path.exists(tmp_path / "a" / "last.npz") and not os.path.exists(tmp_path / "b" / "last.npz")


def test_classes_without_training_rows_are_named_in_a_warning(tmp_path, capsys):
    labels = [0, 3, 4] * 6
    data = write_labelled_csv(tmp_path / "three.csv", labels + [0, 3], ["Training"] * 18 + ["PublicTest"] * 2)
    code, err = run_train(capsys, data, tmp_path / "run")
    assert code == 0
    assert "warning: no training rows of disgust, fear, surprise, neutral" in err


def test_loss_limit_is_ten_times_the_larger_of_the_first_loss_and_log_k():
    assert train.loss_limit(1.0, 7) == pytest.approx(10 * np.log(7))
    assert train.loss_limit(5.0, 7) == pytest.approx(50.0)
    assert train.loss_limit(5.0, 7, factor=3.0) == pytest.approx(15.0)
    assert train.loss_limit(5.0, 7, factor=float("inf")) == float("inf")


def test_a_huge_learning_rate_stops_with_exit_1_and_no_checkpoint_named(tmp_path, capsys):
    data = write_fer_csv(tmp_path / "fer.csv", {"Training": 64, "PublicTest": 14})
    code, err = run_train(capsys, data, tmp_path / "run", "--lr", "1e6", "--optimizer", "adam")
    line = one_line_error(err)
    assert code == 1 and "training diverged" in line and "No checkpoint was written yet" in line
    assert not os.path.exists(tmp_path / "run" / "last.npz")


def test_divergence_on_resume_keeps_and_names_the_last_good_checkpoint(tmp_path, capsys):
    data = write_fer_csv(tmp_path / "fer.csv", {"Training": 64, "PublicTest": 14})
    run = train_tiny_run(tmp_path / "run", data)
    last = os.path.join(run, "last.npz")
    before = open(last, "rb").read()
    leftovers = [os.path.join(run, "tmpk1ll3d.npz.tmp"), os.path.join(run, "history.csv.tmp")]
    for path in leftovers:  # what a kill during a write leaves
        open(path, "wb").close()
    capsys.readouterr()
    code = train.main(["--resume", "--out", run, "--epochs", "2", "--lr", "1e6"])
    captured = capsys.readouterr()
    line = one_line_error(captured.err)
    assert code == 1 and f"The last good checkpoint is kept: {last} (epoch 1)" in line
    assert open(last, "rb").read() == before
    assert not any(os.path.exists(path) for path in leftovers)
    assert "tmpk1ll3d.npz.tmp, left by an interrupted write" in captured.out


def test_remove_stale_temporaries_leaves_other_files(tmp_path):
    for name in ("last.npz", "model.npz", "history.csv", "tmpab12cd34.npz.tmp", "history.csv.tmp"):
        (tmp_path / name).write_bytes(b"x")
    removed = remove_stale_temporaries(str(tmp_path))
    assert sorted(os.path.basename(path) for path in removed) == ["history.csv.tmp", "tmpab12cd34.npz.tmp"]
    assert sorted(os.listdir(tmp_path)) == ["history.csv", "last.npz", "model.npz"]


# --- evaluate: progress and where it writes -----------------------------------------------
def small_model_file(folder) -> str:
    """A random seed002 network saved as a fer_app model."""
    tinycnn.manual_seed(0)
    path = os.path.join(str(folder), "model.npz")
    tinycnn.save(build_model("seed002", 7).state_dict(), path, {
        "arch": "seed002", "num_classes": 7, "class_names": EMOTIONS,
        "normalization": Normalizer("per_image").to_dict()})
    return path


def test_evaluate_shows_progress_and_says_where_the_figure_goes(tmp_path, capsys, monkeypatch):
    data = write_fer_csv(tmp_path / "fer.csv", {"Training": 7, "PublicTest": 20})
    model = small_model_file(tmp_path / "model")
    monkeypatch.chdir(tmp_path)
    code = evaluate.main(["--model", model, "--data", data, "--json", "--out", str(tmp_path / "figures"),
                          "--backend", "numpy"])
    captured = capsys.readouterr()
    assert code == 0
    assert json.loads(captured.out)["n"] == 20  # stdout holds only the JSON
    figure = tmp_path / "figures" / "confusion_matrix_PublicTest.png"
    assert figure.is_file() and f"wrote {figure}" in captured.err
    assert "scoring with TTA (10 views)" in captured.err and "20/20" in captured.err
    assert sorted(os.listdir(tmp_path)) == ["fer.csv", "figures", "model"]


def test_evaluate_in_batches_predicts_what_one_call_predicts(tmp_path):
    from fer_app.recognition.inference import BATCH_SIZE, Classifier
    from tinycnn import nn
    tinycnn.manual_seed(0)
    network = nn.Sequential(nn.Flatten(), nn.Linear(48 * 48, 7))  # cheap: 10 TTA views of 300 faces
    classifier = Classifier(network, EMOTIONS, Normalizer("per_image"))
    data = write_fer_csv(tmp_path / "fer.csv", {"PublicTest": BATCH_SIZE + 44})
    ds = evaluate.dataset_for(classifier, data)
    report = evaluate.evaluate(classifier, ds, tta=True, progress=False)
    expected = evaluate.classification_report(ds.labels, classifier.predict(ds.images, tta=True),
                                              ds.class_names)
    assert report == expected


# --- files only where asked ------------------------------------------------------------------
def test_benchmarks_write_results_only_when_given_out():
    pytest.importorskip("cv2")
    from benchmarks import app_speed
    assert app_speed.parse_args([]).out is None
    pytest.importorskip("tensorflow", reason="keras_compare imports Keras")
    from benchmarks import keras_compare
    assert keras_compare.parse_args([]).out is None


def test_the_suite_caches_parsed_data_in_its_own_folder_not_beside_the_data(tmp_path):
    folder = os.environ.get(data_cache.CACHE_DIR_VARIABLE)
    assert folder and not folder.startswith(os.path.dirname(REPO) + os.sep + "shared")
    data = write_fer_csv(tmp_path / "fer.csv", {"Training": 3})
    assert data_cache.cache_path(data).parent == data_cache.Path(folder)
