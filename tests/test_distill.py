"""Knowledge distillation: the loss's known values, a student that learns a teacher's soft
labels, and fer_app.train --teacher / --init end to end on tiny generated data."""
from __future__ import annotations

import os

import numpy as np
import pytest

import tinycnn
from fer_app import train
from fer_app.data.load import EMOTIONS
from fer_app.data.normalize import Normalizer
from fer_app.ensemble import combine, extract_member
from fer_app.models import build_model
from fer_app.recognition.inference import load_classifier
from fer_app.training import mixup as mixup_module
from fer_app.training.distill import blended_log_probs, distillation_loss, file_sha256, teacher_outputs
from tests.gradcheck import check_gradients
from tests.train_samples import make_faces, write_fer_csv
from tinycnn import Tensor
from tinycnn import functional as F
from tinycnn import nn, optim

FAST = ["--arch", "seed002", "--classes", "7", "--batch-size", "16", "--backend", "numpy",
        "--augment", "light", "--epochs", "1"]


def kl_by_hand(z: np.ndarray, t: np.ndarray, temperature: float) -> float:
    """mean_n sum_k p log(p / q), p = softmax(t/T), q = softmax(z/T), in float64."""
    def softmax(x):
        e = np.exp(x / temperature - (x / temperature).max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    p, q = softmax(t), softmax(z)
    return float((p * np.log(p / q)).sum(axis=1).mean())


def test_kl_matches_its_definition_and_is_zero_for_the_teacher_itself(float64):
    rng = np.random.default_rng(0)
    z, t = rng.standard_normal((6, 7)) * 3, rng.standard_normal((6, 7)) * 3
    for temperature in (1.0, 2.5, 4.0):
        value = F.soft_target_kl(Tensor(z), t, temperature).item()
        assert value == pytest.approx(kl_by_hand(z, t, temperature), rel=1e-10)
        assert value > 0
        assert F.soft_target_kl(Tensor(t), t, temperature).item() == pytest.approx(0.0, abs=1e-12)
    # log-probabilities of the teacher teach the same as its logits (softmax ignores a row shift)
    log_probs = t - np.log(np.exp(t).sum(axis=1, keepdims=True))
    assert F.soft_target_kl(Tensor(z), log_probs, 3.0).item() == pytest.approx(
        F.soft_target_kl(Tensor(z), t, 3.0).item(), rel=1e-10)


def test_alpha_zero_is_plain_cross_entropy_and_alpha_weights_the_terms(float64):
    rng = np.random.default_rng(1)
    z, t = rng.standard_normal((5, 7)), rng.standard_normal((5, 7))
    labels = rng.integers(0, 7, 5)
    plain = F.softmax_cross_entropy(Tensor(z), labels, 0.1).item()
    assert distillation_loss(Tensor(z), labels, t, 0.0, 4.0, 0.1).item() == pytest.approx(plain, rel=1e-12)
    mixed = distillation_loss(Tensor(z), labels, t, 0.3, 2.0, 0.1).item()
    assert mixed == pytest.approx(0.7 * plain + 0.3 * 4.0 * kl_by_hand(z, t, 2.0), rel=1e-10)


@pytest.mark.parametrize("alpha, temperature", [(0.5, 1.0), (0.7, 4.0), (1.0, 3.0)])
def test_distillation_loss_gradient(float64, alpha, temperature):
    rng = np.random.default_rng(2)
    t, labels = rng.standard_normal((4, 7)) * 2, rng.integers(0, 7, 4)
    errors = check_gradients(
        lambda z: distillation_loss(z, labels, t, alpha, temperature, 0.1), [rng.standard_normal((4, 7))])
    assert max(errors) < 1e-7, errors


def test_bad_teacher_shape_or_temperature_is_refused():
    z = Tensor(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="do not match"):
        F.soft_target_kl(z, np.zeros((2, 4)), 2.0)
    with pytest.raises(ValueError, match="positive"):
        F.soft_target_kl(z, np.zeros((2, 3)), 0.0)


def test_student_learns_the_teachers_soft_labels(float64):
    """A linear student trained on the KL term alone (a = 1) ends up predicting the
    teacher's class probabilities, ranking of the wrong classes included."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 5))
    teacher_logits = x @ rng.standard_normal((5, 4)) * 1.5   # a linear teacher the student can match
    tinycnn.manual_seed(0)
    student = nn.Linear(5, 4)
    optimizer = optim.Adam(student.parameters(), lr=0.05)
    labels = teacher_logits.argmax(axis=1)
    first = None
    for _ in range(300):
        loss = distillation_loss(student(Tensor(x)), labels, teacher_logits, 1.0, 2.0)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with tinycnn.no_grad():
        q = F.softmax(student(Tensor(x)), axis=1).numpy()
    p = np.exp(teacher_logits) / np.exp(teacher_logits).sum(axis=1, keepdims=True)
    assert loss.item() < 0.01 * first
    np.testing.assert_allclose(q, p, atol=0.03)


# --- fer_app.train --teacher -------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory):
    return write_fer_csv(tmp_path_factory.mktemp("data") / "tiny.csv",
                         {"Training": 48, "PublicTest": 21})


def save_model(path, arch: str, seed: int, class_names=EMOTIONS) -> str:
    tinycnn.manual_seed(seed)
    model = build_model(arch, len(class_names))
    tinycnn.save(model.state_dict(), str(path), {
        "arch": arch, "num_classes": len(class_names), "class_names": list(class_names),
        "normalization": Normalizer("per_image").to_dict(), "epoch": 0, "val": {"val_acc": 0.5}})
    return str(path)


def test_teacher_outputs_are_cached_and_recomputed_for_another_teacher(tmp_path, capsys):
    images = make_faces(np.arange(10) % 7, seed=1)
    teacher = save_model(tmp_path / "teacher.npz", "seed002", seed=0)
    cache = str(tmp_path / "cache.npz")
    first = teacher_outputs(teacher, images, EMOTIONS, cache, "numpy")
    # the cached value is log((p(face) + p(mirror)) / 2) of the teacher
    classifier = load_classifier(teacher, "numpy")
    expected = np.log((classifier.predict_proba(images) + classifier.predict_proba(images[:, :, ::-1])) / 2)
    np.testing.assert_allclose(first, expected, rtol=1e-5, atol=1e-6)
    assert "written" in capsys.readouterr().out
    np.testing.assert_array_equal(teacher_outputs(teacher, images, EMOTIONS, cache, "numpy"), first)
    assert "reusing" in capsys.readouterr().out
    save_model(teacher, "seed002", seed=1)               # the same file name, another teacher
    changed = teacher_outputs(teacher, images, EMOTIONS, cache, "numpy")
    assert "recomputing" in capsys.readouterr().out
    assert not np.allclose(changed, first)
    other_images = teacher_outputs(teacher, images[::-1].copy(), EMOTIONS, cache, "numpy")
    np.testing.assert_allclose(other_images, changed[::-1], rtol=1e-5, atol=1e-6)
    with open(cache, "r+b") as file:                       # a cache cut short is made again
        file.truncate(100)
    np.testing.assert_allclose(teacher_outputs(teacher, images[::-1].copy(), EMOTIONS, cache, "numpy"),
                               other_images, rtol=1e-6)
    assert "cannot be read" in capsys.readouterr().out


def test_train_with_a_teacher_writes_its_outputs_and_resumes(tiny_csv, tmp_path):
    teacher = save_model(tmp_path / "teacher.npz", "seed002", seed=0)
    out = tmp_path / "student"
    args = ["--data", tiny_csv, "--out", str(out), *FAST, "--teacher", teacher,
            "--distill-alpha", "0.8", "--distill-temperature", "3"]
    assert train.main(args) == 0
    assert (out / "teacher_outputs.npz").is_file() and (out / "model.npz").is_file()
    settings = tinycnn.load(str(out / "last.npz"))[1]["settings"]
    assert settings["teacher"] == teacher and settings["distill_alpha"] == 0.8
    cache_time = os.path.getmtime(out / "teacher_outputs.npz")
    assert train.main(["--out", str(out), "--resume", "--epochs", "2"]) == 0
    assert os.path.getmtime(out / "teacher_outputs.npz") == cache_time   # reused, not rewritten
    assert [row["epoch"] for row in tinycnn.load(str(out / "last.npz"))[1]["history"]] == [1, 2]


def test_blended_log_probs_are_the_log_of_the_blended_distributions():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    partner = np.array([1, 0])
    np.testing.assert_allclose(np.exp(blended_log_probs(np.log(p), 0.25, partner)),
                               [[0.25 * 0.7 + 0.75 * 0.1, 0.25 * 0.2 + 0.75 * 0.1, 0.25 * 0.1 + 0.75 * 0.8],
                                [0.25 * 0.1 + 0.75 * 0.7, 0.25 * 0.1 + 0.75 * 0.2, 0.25 * 0.8 + 0.75 * 0.1]])
    np.testing.assert_allclose(blended_log_probs(np.log(p), 1.0, partner), np.log(p))   # lam 1: itself
    np.testing.assert_allclose(blended_log_probs(np.log(p), 0.0, partner), np.log(p[partner]))


def test_train_with_a_teacher_and_mixup_learns_from_blended_teacher_targets(tiny_csv, tmp_path,
                                                                            monkeypatch):
    teacher = save_model(tmp_path / "teacher.npz", "seed002", seed=0)
    out = tmp_path / "student"
    blended, given = [], []   # per batch: the blended teacher rows, and what the loss got

    def recording_blend(*args):
        blended.append(blended_log_probs(*args))
        return blended[-1]

    def recording_loss(logits, targets, teacher_log_probs, *args):
        given.append(teacher_log_probs)
        return distillation_loss(logits, targets, teacher_log_probs, *args)

    monkeypatch.setattr(mixup_module, "blended_log_probs", recording_blend)
    monkeypatch.setattr(train, "distillation_loss", recording_loss)
    assert train.main(["--data", tiny_csv, "--out", str(out), *FAST, "--teacher", teacher,
                       "--mixup", "0.4"]) == 0
    assert len(blended) == 3 and all(a is b for a, b in zip(blended, given))   # 48 rows, batches of 16
    settings, history = (tinycnn.load(str(out / "last.npz"))[1][key] for key in ("settings", "history"))
    assert settings["mixup"] == 0.4 and settings["teacher"] == teacher
    assert len(history) == 1 and np.isfinite(history[0]["train_loss"])


def test_teacher_with_other_classes_is_a_clear_error(tiny_csv, tmp_path, capsys):
    six = [name for name in EMOTIONS if name != "disgust"]
    teacher = save_model(tmp_path / "six.npz", "seed002", seed=0, class_names=six)
    code = train.main(["--data", tiny_csv, "--out", str(tmp_path / "run"), *FAST, "--teacher", teacher])
    assert code == 1
    message = capsys.readouterr().err
    assert "same classes" in message and "Traceback" not in message
    code = train.main(["--data", tiny_csv, "--out", str(tmp_path / "run2"), *FAST,
                       "--teacher", str(tmp_path / "missing.npz")])
    assert code == 1 and "not found" in capsys.readouterr().err


@pytest.mark.parametrize("option, value", [("--distill-alpha", "1.5"), ("--distill-temperature", "0")])
def test_bad_distillation_settings_are_refused(tiny_csv, tmp_path, capsys, option, value):
    teacher = save_model(tmp_path / "teacher.npz", "seed002", seed=0)
    code = train.main(["--data", tiny_csv, "--out", str(tmp_path / "run"), *FAST,
                       "--teacher", teacher, option, value])
    assert code == 2 and option in capsys.readouterr().err   # a bad option value: exit code 2


def test_init_starts_from_a_models_weights_and_checks_its_arch(tiny_csv, tmp_path, capsys):
    start = save_model(tmp_path / "start.npz", "seed002", seed=7)
    out = tmp_path / "run"
    assert train.main(["--data", tiny_csv, "--out", str(out), *FAST, "--init", start,
                       "--lr", "1e-12", "--optimizer", "sgd", "--momentum", "0"]) == 0
    trained = tinycnn.load(str(out / "model.npz"))[0]
    initial = tinycnn.load(start)[0]
    for name, value in initial.items():   # a learning rate of 1e-12 leaves the weights where they began
        np.testing.assert_allclose(trained[name], value, atol=1e-6, err_msg=name)
    wrong = save_model(tmp_path / "wrong.npz", "vgg_fer_small", seed=0)
    assert train.main(["--data", tiny_csv, "--out", str(tmp_path / "run2"), *FAST, "--init", wrong]) == 1
    assert "cannot start a seed002" in capsys.readouterr().err


def test_an_ensemble_member_is_written_out_alone(tmp_path):
    a = save_model(tmp_path / "a.npz", "seed002", seed=0)
    b = save_model(tmp_path / "b.npz", "seed002", seed=1)
    ensemble = str(tmp_path / "ab.npz")
    combine([a, b], ensemble, float16=True)
    member = str(tmp_path / "b_again.npz")
    metadata = extract_member(ensemble, 1, member)
    assert metadata["arch"] == "seed002" and metadata["class_names"] == EMOTIONS
    faces = make_faces(np.arange(7), seed=2)
    np.testing.assert_allclose(load_classifier(member, "numpy").predict_proba(faces),
                               load_classifier(b, "numpy").predict_proba(faces), atol=2e-3)
    with pytest.raises(Exception, match="members 0 to 1"):
        extract_member(ensemble, 2, member)


def test_distill_report_scores_each_model_and_draws_the_plot(tmp_path, capsys):
    from fer_app import distill_report
    from fer_app.data.load import select_split
    from fer_app.evaluate import dataset_for, evaluate
    data = write_fer_csv(tmp_path / "tiny.csv", {"Training": 21, "PublicTest": 14})
    models = [save_model(tmp_path / "a.npz", "seed002", seed=0),
              save_model(tmp_path / "b.npz", "vgg_fer_small", seed=1)]
    plot = tmp_path / "plot" / "accuracy.png"
    assert distill_report.main([*models, "--data", data, "--repeats", "2", "--plot", str(plot)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")][1:]
    assert [row.split(" | ")[0] for row in rows] == ["| a", "| b"]
    classifier = load_classifier(models[1], "numpy")
    public_test = select_split(dataset_for(classifier, data), "PublicTest")
    cells = rows[1].split(" | ")
    assert cells[1] == "vgg_fer_small" and cells[3] == "439,991" and cells[4] == "0.049"
    assert float(cells[5]) == pytest.approx(evaluate(classifier, public_test)["accuracy"], abs=5e-5)
    assert float(cells[6]) == pytest.approx(evaluate(classifier, public_test, tta=True)["accuracy"], abs=5e-5)
    assert plot.stat().st_size > 0


def test_distill_cost_measures_the_cache_against_an_augmented_view(tiny_csv, tmp_path, capsys):
    """benchmarks.distill_cost --data: the KL of softened distributions (0 for equal ones,
    the definition otherwise), and the report's lines on generated data; a bad --data is
    one usage line."""
    from benchmarks import distill_cost
    p = np.array([[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]])
    q = np.array([[0.5, 0.3, 0.2], [0.25, 0.25, 0.5]])
    assert distill_cost.mean_kl(p, p) == 0.0
    assert distill_cost.mean_kl(p, q) == pytest.approx((0.7 * np.log(0.7 / 0.5) + 0.2 * np.log(0.2 / 0.3)
                                                        + 0.1 * np.log(0.1 / 0.2)) / 2)
    np.testing.assert_allclose(distill_cost.softened(np.log(p), 1.0), p)
    assert distill_cost.softened(np.log(p), 1e6).std(axis=1).max() < 1e-5     # T -> inf: uniform
    teacher = save_model(tmp_path / "teacher.npz", "seed002", seed=0)
    assert distill_cost.main(["--teacher", teacher, "--student", "seed002", "--batch-size", "4",
                              "--repeats", "1", "--backend", "numpy", "--data", tiny_csv,
                              "--faces", "10"]) == 0
    out = capsys.readouterr().out
    assert "(10 Training faces): mean KL" in out and "for the 48 Training faces" in out
    with pytest.raises(SystemExit):
        distill_cost.main(["--teacher", teacher, "--repeats", "1", "--batch-size", "2",
                           "--backend", "numpy", "--data", str(tmp_path / "missing.csv")])
    assert "missing.csv" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        distill_cost.main(["--teacher", str(tmp_path / "missing.npz"), "--backend", "numpy"])
    assert "missing.npz: model file not found" in capsys.readouterr().err


def test_train_records_which_init_and_teacher_files_it_used(tiny_csv, tmp_path, capsys):
    start = save_model(tmp_path / "start.npz", "seed002", seed=7)
    teacher = save_model(tmp_path / "teacher.npz", "seed002", seed=0)
    out = tmp_path / "run"
    assert train.main(["--data", tiny_csv, "--out", str(out), *FAST, "--init", start,
                       "--teacher", teacher]) == 0
    settings = tinycnn.load(str(out / "model.npz"))[1]["settings"]
    assert settings["init_sha256"] == file_sha256(start)
    assert settings["teacher_sha256"] == file_sha256(teacher)
    first_digest = settings["init_sha256"]

    save_model(tmp_path / "start.npz", "seed002", seed=8)           # --init is read at the start only
    assert train.main(["--out", str(out), "--resume", "--epochs", "2"]) == 0
    assert tinycnn.load(str(out / "last.npz"))[1]["settings"]["init_sha256"] == first_digest

    save_model(tmp_path / "teacher.npz", "seed002", seed=1)         # the teacher would change mid-run
    assert train.main(["--out", str(out), "--resume", "--epochs", "3"]) == 1
    message = capsys.readouterr().err
    assert "the file changed since this run started" in message and "Traceback" not in message
    assert len(tinycnn.load(str(out / "last.npz"))[1]["history"]) == 2


def test_a_run_without_init_or_teacher_records_no_digest(tiny_csv, tmp_path):
    out = tmp_path / "run"
    assert train.main(["--data", tiny_csv, "--out", str(out), *FAST]) == 0
    settings = tinycnn.load(str(out / "model.npz"))[1]["settings"]
    assert "init_sha256" not in settings and "teacher_sha256" not in settings


def test_distill_report_tells_two_files_of_one_name_apart():
    from fer_app.distill_report import labels
    assert labels(["runs/student_ft/swa.npz", "runs/student_ft2/swa.npz", "runs/m1/model.npz", "default"]) == \
        ["student_ft/swa", "student_ft2/swa", "m1", "default"]


def test_a_resumed_run_keeps_its_init_digest_when_the_init_file_is_gone(tiny_csv, tmp_path):
    start = save_model(tmp_path / "start.npz", "seed002", seed=7)
    out = tmp_path / "run"
    assert train.main(["--data", tiny_csv, "--out", str(out), *FAST, "--init", start]) == 0
    digest = tinycnn.load(str(out / "last.npz"))[1]["settings"]["init_sha256"]
    os.remove(start)
    assert train.main(["--out", str(out), "--resume", "--epochs", "2"]) == 0
    assert tinycnn.load(str(out / "last.npz"))[1]["settings"]["init_sha256"] == digest
