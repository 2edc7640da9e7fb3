"""fer_app.train and fer_app.evaluate end to end on tiny generated data: every output
file, kill-and-resume, NaN handling, clear errors, and evaluation of any split."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import tinycnn
from fer_app import evaluate, train
from fer_app.data.normalize import Normalizer
from fer_app.models import build_model
from fer_app.recognition.inference import load_classifier
from fer_app.training.metrics import classification_report
from tests.train_samples import make_faces, write_fer_csv

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT_FILES = ["model.npz", "last.npz", "history.csv", "curves.png", "confusion_matrix.png",
                "class_distribution.png", "metrics.json"]
# seed002 is the cheapest architecture: these tests check the plumbing, not accuracy.
ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1")  # BLAS threads only spin on a shared machine
FAST = ["--arch", "seed002", "--classes", "7", "--batch-size", "16", "--backend", "numpy",
        "--augment", "light"]


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory):
    return write_fer_csv(tmp_path_factory.mktemp("data") / "tiny.csv",
                         {"Training": 70, "PublicTest": 28})


def read_history(out) -> list[dict]:
    with open(os.path.join(out, "history.csv")) as file:
        return list(csv.DictReader(file))


def run_cli(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=300)


def test_training_writes_every_output_file(tiny_csv, tmp_path, capsys):
    out = tmp_path / "run"
    options = ["--mixup", "0.2", "--label-smoothing", "0.1", "--class-weight", "balanced",
               "--optimizer", "adamw", "--weight-decay", "0.01", "--schedule", "onecycle"]
    assert train.main(["--data", tiny_csv, "--epochs", "2", "--out", str(out), *FAST, *options]) == 0
    for name in OUTPUT_FILES:
        assert (out / name).stat().st_size > 0, name
    for name in ("curves.png", "confusion_matrix.png", "class_distribution.png"):
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.width > 500 and image.height > 300, name
    assert [int(row["epoch"]) for row in read_history(out)] == [1, 2]
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) >= {"accuracy", "macro_f1", "per_class", "n"}
    assert metrics["n"] == 28 and len(metrics["per_class"]) == 7
    # model.npz alone is enough to classify
    classifier = load_classifier(str(out / "model.npz"), "numpy")
    assert classifier.class_names == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    probabilities = classifier.predict_proba(make_faces(np.arange(7), seed=5))
    assert probabilities.shape == (7, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert classifier.predict_proba(make_faces(np.arange(3), seed=6), tta=True).shape == (3, 7)
    assert "epoch   2" in capsys.readouterr().out


def test_killed_run_resumes_where_it_stopped(tiny_csv, tmp_path):
    """SIGKILL once the first checkpoint exists; --resume finishes the run with no gap in
    the history, and ends with exactly the weights of a run that was never interrupted."""
    args = ["--data", tiny_csv, "--epochs", "3", "--schedule", "cosine", *FAST]
    killed = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "fer_app.train", *args, "--out", str(killed)],
                               cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not (killed / "last.npz").exists() and process.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    stopped_after = tinycnn.load(str(killed / "last.npz"))[1]["epoch"]
    assert stopped_after < 3, "the run finished before it could be killed"

    resumed = run_cli("fer_app.train", "--resume", "--out", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming after epoch {stopped_after}" in resumed.stdout
    assert [int(row["epoch"]) for row in read_history(killed)] == [1, 2, 3]

    straight = tmp_path / "straight"  # same process setup (BLAS threads) as the killed run
    assert run_cli("fer_app.train", *args, "--out", str(straight)).returncode == 0
    assert read_history(killed)[-1]["train_loss"] == read_history(straight)[-1]["train_loss"]
    state_killed, meta_killed = tinycnn.load(str(killed / "last.npz"))
    state_straight, _ = tinycnn.load(str(straight / "last.npz"))
    assert meta_killed["epoch"] == 3
    for name, value in state_straight.items():
        np.testing.assert_array_equal(state_killed[name], value, err_msg=name)


def test_resume_with_more_epochs_stretches_the_schedule(tiny_csv, tmp_path):
    out = str(tmp_path / "run")
    common = ["--schedule", "cosine", "--lr", "0.002", *FAST]
    assert train.main(["--data", tiny_csv, "--epochs", "1", "--out", out, *common]) == 0
    assert train.main(["--resume", "--epochs", "2", "--out", out]) == 0
    # cosine over 2 epochs: epoch 2 starts at lr * (1 + cos(pi / 2)) / 2 = lr / 2 (not 0)
    assert [float(row["lr"]) for row in read_history(out)] == pytest.approx([0.002, 0.001])


def test_a_residual_network_trains_resumes_and_classifies_like_its_unfused_self(tiny_csv, tmp_path):
    """resnet_fer's nested names (blocks, bodies, shortcuts, none for an identity) survive
    checkpoints, resuming and the model file; the fused Classifier agrees with the network."""
    out = str(tmp_path / "resnet")
    options = ["--arch", "resnet_fer", "--batch-size", "16", "--backend", "numba", "--augment", "light"]
    assert train.main(["--data", tiny_csv, "--epochs", "1", "--out", out, *options]) == 0
    assert train.main(["--resume", "--epochs", "2", "--out", out]) == 0
    assert [int(row["epoch"]) for row in read_history(out)] == [1, 2]
    state, metadata = tinycnn.load(os.path.join(out, "model.npz"))
    assert metadata["arch"] == "resnet_fer" and "4.body.3.weight" in state and "4.shortcut.0.weight" in state
    classifier = load_classifier(os.path.join(out, "model.npz"), "numba")
    faces = make_faces(np.arange(5), seed=3)
    network = build_model("resnet_fer")
    network.load_state_dict(state)
    network.eval()
    with tinycnn.no_grad():
        logits = network(tinycnn.Tensor(classifier.normalizer.apply(faces))).numpy()
    np.testing.assert_allclose(classifier.predict_logits(faces), logits, rtol=1e-4, atol=1e-4)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_csv, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert train.main(["--data", tiny_csv, "--epochs", "1", "--out", str(out), *FAST]) == 0
    good = (out / "last.npz").read_bytes()

    def poisoned(images, config, rng):  # every augmented batch is NaN from now on
        return np.full(np.shape(images), np.nan, np.float32)

    monkeypatch.setattr(train, "augment_batch", poisoned)
    assert train.main(["--resume", "--epochs", "2", "--out", str(out)]) == 1
    error = capsys.readouterr().err
    assert "loss became nan at epoch 2" in error and "epoch 1" in error
    assert (out / "last.npz").read_bytes() == good
    assert tinycnn.load(str(out / "model.npz"))[1]["epoch"] == 1
    assert len(read_history(out)) == 1


def test_bad_arguments_give_one_line_errors(tiny_csv, tmp_path, capsys):
    assert train.main(["--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "a")]) == 1
    assert "missing.csv: not found" in capsys.readouterr().err
    assert train.main(["--data", tiny_csv, "--epochs", "0", "--out", str(tmp_path / "b")]) == 2
    assert "--epochs must be positive" in capsys.readouterr().err
    assert train.main(["--resume", "--out", str(tmp_path / "never")]) == 1
    assert "no checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--arch", "nope", "--out", str(tmp_path / "c")])
    assert exit_info.value.code != 0


def test_command_line_error_has_no_traceback(tmp_path):
    result = run_cli("fer_app.train", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o"))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "not found" in result.stderr


def save_untrained_model(path) -> None:
    """A seed002 model saved as train.py saves model.npz (no training needed to test evaluate)."""
    tinycnn.manual_seed(3)
    model = build_model("seed002", 7)
    metadata = {"arch": "seed002", "num_classes": 7,
                "class_names": ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"],
                "normalization": Normalizer("per_image").to_dict(), "epoch": 0}
    tinycnn.save(model.state_dict(), str(path), metadata)


def test_evaluate_json_on_a_file_with_only_private_test_rows(tmp_path, capsys):
    data = write_fer_csv(tmp_path / "private.csv", {"PrivateTest": 21}, seed=9)
    model = tmp_path / "model.npz"
    save_untrained_model(model)
    code = evaluate.main(["--model", str(model), "--data", data, "--split", "PrivateTest",
                          "--json", "--out", str(tmp_path / "eval"), "--backend", "numpy"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 21
    assert list(report["per_class"]) == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    labels = np.arange(21) % 7
    predictions = load_classifier(str(model), "numpy").predict(make_faces(labels, seed=9), tta=True)
    assert report["tta"] is True  # TTA is the default, as in fer_app.predict
    assert report["accuracy"] == pytest.approx(float((predictions == labels).mean()))
    assert os.path.getsize(tmp_path / "eval" / "confusion_matrix_PrivateTest.png") > 0


def test_evaluate_no_tta_scores_one_plain_pass(tmp_path, capsys):
    data = write_fer_csv(tmp_path / "public.csv", {"PublicTest": 35}, seed=4)
    model = tmp_path / "model.npz"
    save_untrained_model(model)
    reports = {}
    for options in ([], ["--no-tta"]):
        assert evaluate.main(["--model", str(model), "--data", data, "--json", "--out",
                              str(tmp_path), "--backend", "numpy", *options]) == 0
        reports[bool(options)] = json.loads(capsys.readouterr().out)
    classifier = load_classifier(str(model), "numpy")
    faces, labels = make_faces(np.arange(35) % 7, seed=4), np.arange(35) % 7
    for no_tta, report in reports.items():
        assert report["tta"] is not no_tta
        probabilities = classifier.predict_proba(faces, tta=not no_tta)  # (35, 7)
        expected = classification_report(labels, probabilities.argmax(axis=1), classifier.class_names)
        assert report["confusion_matrix"] == expected["confusion_matrix"]
    assert reports[True]["confusion_matrix"] != reports[False]["confusion_matrix"]  # TTA changed some


def test_evaluate_names_the_available_splits(tmp_path, capsys):
    data = write_fer_csv(tmp_path / "private.csv", {"PrivateTest": 7})
    model = tmp_path / "model.npz"
    save_untrained_model(model)
    assert evaluate.main(["--model", str(model), "--data", data, "--split", "PublicTest"]) == 1
    error = capsys.readouterr().err
    assert "no split named 'PublicTest'" in error and "PrivateTest (7 rows)" in error
