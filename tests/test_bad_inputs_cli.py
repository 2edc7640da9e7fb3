"""Every command on bad input: one clear line, the right exit code, no traceback, nothing changed.

Each case runs a command's ``main`` on a generated bad input (a missing, empty, truncated
or foreign model file, hand-edited model metadata, NaN weights, a damaged or incompatible
last.npz on --resume, a folder that cannot be written, a backend that cannot run here,
an option out of range) and checks:
  - the exit code: 2 for a bad option (argparse's own, or a value it cannot check), 1 for
    the rest;
  - stderr: exactly one line, ``error: ...`` naming the thing (argparse's errors: its usage
    lines, then ``prog: error: ...``); no "Traceback"; nothing on stdout;
  - every file in the workspace (inputs and earlier outputs) is unchanged, and no file
    was added.
Cases run in-process (an uncaught exception fails the test just as a traceback would);
SUBPROCESS_CASES run one case for each of seven commands as ``python -m fer_app.X``, to
see the real exit code and stderr.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import tinycnn
from fer_app import (compare_runs, distill_report, ensemble, evaluate, model_card, predict, train,
                     video)
from fer_app.cli import UsageError, error_boundary
from fer_app.data import data_cache
from fer_app.data import load as data
from fer_app.data.load import EMOTIONS
from fer_app.data.normalize import Normalizer
from fer_app.models import __main__ as models_cli
from fer_app.models import build_model
from tests.train_samples import train_tiny_run, write_fer_csv
from tinycnn import backend as backends

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCH = "seed002"  # the smallest network: these cases test the plumbing, not the model


def cupy_runs_here() -> bool:
    try:
        backends.get("cupy")
    except backends.BackendError:
        return False
    return True


NO_CUPY = pytest.mark.skipif(cupy_runs_here(), reason="cupy runs here, so asking for it is no error")


# --- the workspace: good inputs, bad inputs, an earlier training run --------------------------
def save_model(path, state: dict, **metadata_changes) -> str:
    metadata = {"arch": ARCH, "num_classes": 7, "class_names": EMOTIONS,
                "normalization": Normalizer("per_image").to_dict(), **metadata_changes}
    tinycnn.save(state, str(path), metadata)
    return str(path)


def save_plain(path, state: dict) -> str:
    """A tinycnn file without fer_app's metadata."""
    tinycnn.save(state, str(path))
    return str(path)


def make_bad_models(folder, good: str) -> dict[str, str]:
    """Every kind of bad --model, by name -> path."""
    state, _ = tinycnn.load(good)
    data = open(good, "rb").read()
    first = next(iter(state))
    nan_state = {**state, first: np.full_like(state[first], np.nan)}
    last = list(state)[-1]
    wrong_shape = {**state, last: np.zeros(state[last].shape[0] + 1, state[last].dtype)}
    raw = {"empty": b"", "truncated": data[:len(data) // 2],
           "random bytes": np.random.default_rng(0).bytes(4096), "text": b"not a model\n"}
    models = {}
    for name, content in raw.items():
        models[name] = str(folder / f"{name.replace(' ', '_')}.npz")
        with open(models[name], "wb") as file:
            file.write(content)
    models.update({
        "missing": str(folder / "missing.npz"),
        "a folder": str(folder),
        "no metadata": save_plain(folder / "no_meta.npz", state),
        "unknown arch": save_model(folder / "unknown_arch.npz", state, arch="resnet999"),
        "bad normalization": save_model(folder / "bad_norm.npz", state,
                                        normalization={"mode": "zscore"}),
        "dataset normalization without std": save_model(
            folder / "bad_std.npz", state, normalization={"mode": "dataset", "mean": 100, "std": 0}),
        "class names do not match num_classes": save_model(folder / "six_names.npz", state,
                                                           class_names=EMOTIONS[:6]),
        "num_classes not a number": save_model(folder / "classes_text.npz", state, num_classes="7"),
        "NaN weights": save_model(folder / "nan.npz", nan_state),
        "weights of another shape": save_model(folder / "wrong_shape.npz", wrong_shape),
        "a weight missing": save_model(folder / "missing_weight.npz",
                                       {k: v for k, v in state.items() if k != last}),
        "ensemble without members": save_model(folder / "empty_ensemble.npz", state,
                                               arch="ensemble", members=[]),
    })
    return models


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    """Paths of everything the cases read: data, a picture, a good and many bad models,
    a finished training run and damaged copies of it."""
    root = tmp_path_factory.mktemp("bad_inputs")
    csv = write_fer_csv(root / "tiny.csv", {"Training": 28, "PublicTest": 14})
    data.load_dataset(csv)  # writes the cache now, so that no case does
    bad_csv = root / "bad.csv"
    bad_csv.write_text("emotion,pixels,Usage\n0,1 2 3,Training\n")
    picture = str(root / "picture.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), np.uint8)).save(picture)
    not_a_video = root / "clip.mp4"
    not_a_video.write_bytes(np.random.default_rng(1).bytes(2048))
    a_file = root / "a_file"
    a_file.write_text("a file where a folder should be\n")

    tinycnn.manual_seed(0)
    models_folder = root / "models"
    models_folder.mkdir()
    good = save_model(models_folder / "good.npz", build_model(ARCH, 7).state_dict())
    bad_models = make_bad_models(models_folder, good)

    run = train_tiny_run(root / "run", csv)
    runs = {}
    last = open(os.path.join(run, "last.npz"), "rb").read()
    arrays, metadata = tinycnn.load(os.path.join(run, "last.npz"))
    for name, damage in {"truncated": last[:len(last) // 2], "empty": b"",
                         "random bytes": np.random.default_rng(2).bytes(4096)}.items():
        runs[name] = str(root / f"run_{name.replace(' ', '_')}")
        shutil.copytree(run, runs[name])
        with open(os.path.join(runs[name], "last.npz"), "wb") as file:
            file.write(damage)
    runs["model as last"] = str(root / "run_model_as_last")
    shutil.copytree(run, runs["model as last"])
    shutil.copyfile(good, os.path.join(runs["model as last"], "last.npz"))
    runs["weights of another shape"] = str(root / "run_wrong_shape")
    shutil.copytree(run, runs["weights of another shape"])
    name = [key for key in arrays if key.startswith("model/")][-1]
    tinycnn.save({**arrays, name: np.zeros(arrays[name].shape[0] + 1, arrays[name].dtype)},
                 os.path.join(runs["weights of another shape"], "last.npz"), metadata)
    runs["unknown arch"] = str(root / "run_unknown_arch")
    shutil.copytree(run, runs["unknown arch"])
    tinycnn.save(arrays, os.path.join(runs["unknown arch"], "last.npz"),
                 {**metadata, "settings": {**metadata["settings"], "arch": "resnet999"}})
    bad_history = str(root / "run_bad_history")
    shutil.copytree(run, bad_history)
    with open(os.path.join(bad_history, "history.csv"), "w") as file:
        file.write("epoch,lr,train_loss\n1,oops,\n")
    model_only = str(root / "run_model_only")
    os.makedirs(model_only)
    shutil.copyfile(good, os.path.join(model_only, "model.npz"))
    return dict(root=root, csv=csv, bad_csv=str(bad_csv), picture=picture, video=str(not_a_video),
                a_file=str(a_file), good=good, bad_models=bad_models, run=run, runs=runs,
                bad_history=bad_history, model_only=model_only)


def snapshot(root) -> dict[str, tuple]:
    """Every file under ``root``: size, modification time and inode (any write or
    replacement changes one of them), and the SHA-256 of small files."""
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            info = os.stat(path)
            digest = hashlib.sha256(open(path, "rb").read()).hexdigest() if info.st_size < 65536 else None
            files[os.path.relpath(path, root)] = (info.st_size, info.st_mtime_ns, info.st_ino, digest)
    return files


def run_main(main, argv: list[str], capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``main(argv)`` (argparse's errors exit via SystemExit)."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_clear_line(code: int, out: str, err: str, expected_code: int, mention: str) -> None:
    assert "Traceback" not in err, err
    assert code == expected_code, (code, err)
    assert out == "", out
    lines = err.rstrip("\n").split("\n")
    if lines[0].startswith("usage:"):   # argparse: its usage, then one error line
        assert expected_code == 2 and ": error: " in lines[-1], err
    else:
        assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert mention in lines[-1], (mention, err)


def check_case(space, capsys, main, argv, expected_code: int, mention: str) -> None:
    before = snapshot(space["root"])
    code, out, err = run_main(main, argv, capsys)
    assert_one_clear_line(code, out, err, expected_code, mention)
    assert snapshot(space["root"]) == before


# --- a bad --model, in every command that takes one ---------------------------------------------
BAD_MODEL_KINDS = ["empty", "truncated", "random bytes", "text", "missing", "a folder", "no metadata",
                   "unknown arch", "bad normalization", "dataset normalization without std",
                   "class names do not match num_classes", "num_classes not a number", "NaN weights",
                   "weights of another shape", "a weight missing", "ensemble without members"]
MENTION = {"unknown arch": "resnet999", "bad normalization": "normalization",
           "dataset normalization without std": "std", "class names do not match num_classes":
           "class_names", "num_classes not a number": "num_classes", "NaN weights": "NaN",
           "weights of another shape": "shape", "a weight missing": "missing",
           "ensemble without members": "members", "no metadata": "metadata lacks",
           "missing": "not found", "a folder": "is a folder"}


def with_model(command: str, space, model: str) -> tuple:
    """(main, argv) running ``command`` with --model ``model`` (or as a member)."""
    out = str(space["root"] / "new_output")
    return {
        "predict": (predict.main, [space["picture"], "--model", model]),
        "video": (video.main, ["--input", space["video"], "--model", model]),
        "evaluate": (evaluate.main, ["--model", model, "--data", space["csv"], "--backend", "numpy",
                                     "--out", out]),
        "ensemble": (ensemble.main, [space["good"], model, "--out", os.path.join(out, "e.npz")]),
        "model_card": (model_card.main, ["--run", space["run"], "--model", model, "--data",
                                         space["csv"], "--out", out]),
    }[command]


@pytest.mark.parametrize("kind", BAD_MODEL_KINDS)
@pytest.mark.parametrize("command", ["predict", "video", "evaluate", "ensemble", "model_card"])
def test_a_bad_model_is_one_line(space, capsys, command, kind):
    main, argv = with_model(command, space, space["bad_models"][kind])
    check_case(space, capsys, main, argv, 1, MENTION.get(kind, os.path.basename(space["bad_models"][kind])))


# --- everything else, command by command ------------------------------------------------------
# name -> (main, argv, exit code, what the error line must mention). In argv, GOOD, PICTURE,
# VIDEO, CSV, BAD_CSV, RUN, HISTORY and MODEL_ONLY stand for the workspace's files,
# BAD:<kind> for a bad model, RUN:<kind> for a damaged run, ROOT/ and UNDER_A_FILE/ for paths
# in the workspace and under a plain file (where no folder can be made).
RESUME = ["--resume", "--backend", "numpy", "--out"]
CASES = {
    "predict --backend nope": (predict.main, ["PICTURE", "--backend", "nope"], 2, "--backend"),
    "predict --min-face-size 0": (predict.main, ["PICTURE", "--model", "GOOD", "--min-face-size", "0"],
                                  2, "--min-face-size"),
    "predict --margin 5": (predict.main, ["PICTURE", "--model", "GOOD", "--margin", "5"], 2, "--margin"),
    "predict --annotate under a file": (predict.main, ["PICTURE", "--model", "GOOD", "--annotate",
                                                       "UNDER_A_FILE/out"], 1, "--annotate"),
    "predict a missing picture": (predict.main, ["ROOT/nope.png", "--model", "GOOD"], 1, "nope.png"),
    "predict random bytes as a picture": (predict.main, ["VIDEO", "--model", "GOOD"], 1, "clip.mp4"),
    "video --every 0": (video.main, ["--input", "VIDEO", "--every", "0"], 2, "--every"),
    "video --min-face-size 0": (video.main, ["--input", "VIDEO", "--min-face-size", "0"], 2,
                                "--min-face-size"),
    "video --max-frames 0": (video.main, ["--input", "VIDEO", "--max-frames", "0"], 2, "--max-frames"),
    "video a missing input": (video.main, ["--input", "ROOT/nope.mp4", "--model", "GOOD"], 1, "nope.mp4"),
    "video an input that is no video": (video.main, ["--input", "VIDEO", "--model", "GOOD"], 1,
                                        "clip.mp4"),
    "video --csv under a file": (video.main, ["--input", "VIDEO", "--model", "GOOD", "--csv",
                                              "UNDER_A_FILE/e.csv"], 1, "--csv"),
    "video --output is a folder": (video.main, ["--input", "VIDEO", "--model", "GOOD", "--output",
                                                "ROOT/"], 1, "--output"),
    "evaluate missing data": (evaluate.main, ["--model", "GOOD", "--data", "ROOT/nope.csv",
                                              "--backend", "numpy"], 1, "nope.csv"),
    "evaluate an unknown split": (evaluate.main, ["--model", "GOOD", "--data", "CSV", "--backend",
                                                  "numpy", "--split", "Nope", "--out", "ROOT/new"],
                                  1, "Nope"),
    "train --resume, truncated last.npz": (train.main, RESUME + ["RUN:truncated"], 1, "last.npz"),
    "train --resume, empty last.npz": (train.main, RESUME + ["RUN:empty"], 1, "empty"),
    "train --resume, random bytes as last.npz": (train.main, RESUME + ["RUN:random bytes"], 1,
                                                 "last.npz"),
    "train --resume, a model file as last.npz": (train.main, RESUME + ["RUN:model as last"], 1,
                                                 "not a training checkpoint"),
    "train --resume, weights of another shape": (train.main, RESUME + ["RUN:weights of another shape"],
                                                 1, "does not fit"),
    "train --resume, unknown arch": (train.main, RESUME + ["RUN:unknown arch"], 1, "resnet999"),
    "train --resume --arch other": (train.main, RESUME + ["RUN", "--arch", "vgg_fer"], 2, "--arch"),
    "train --resume --classes 6": (train.main, RESUME + ["RUN", "--classes", "6"], 2, "--classes"),
    "train --resume --optimizer sgd": (train.main, RESUME + ["RUN", "--optimizer", "sgd"], 2,
                                       "--optimizer"),
    "train --resume --val-split random": (train.main, RESUME + ["RUN", "--val-split", "random"], 2,
                                          "--val-split"),
    "train --resume, no checkpoint": (train.main, RESUME + ["ROOT/never"], 1, "no checkpoint"),
    "train into a finished run": (train.main, ["--data", "CSV", "--out", "RUN"], 1, "--resume"),
    "train --epochs 0": (train.main, ["--data", "CSV", "--epochs", "0", "--out", "ROOT/new"], 2,
                         "--epochs"),
    "train --flip 2": (train.main, ["--data", "CSV", "--flip", "2", "--out", "ROOT/new"], 2,
                       "augmentation"),
    "train missing data": (train.main, ["--data", "ROOT/nope.csv", "--out", "ROOT/new"], 1, "nope.csv"),
    "train bad data": (train.main, ["--data", "BAD_CSV", "--out", "ROOT/new"], 1, "bad.csv"),
    "train --out under a file": (train.main, ["--data", "CSV", "--arch", ARCH, "--backend", "numpy",
                                              "--out", "UNDER_A_FILE/run"], 1, "a_file/run"),
    "train --teacher, a truncated model": (train.main, ["--data", "CSV", "--arch", ARCH, "--backend",
                                                        "numpy", "--teacher", "BAD:truncated", "--out",
                                                        "ROOT/new"], 1, "truncated.npz"),
    "train --init, a model with NaN weights": (train.main, ["--data", "CSV", "--arch", ARCH, "--backend",
                                                            "numpy", "--init", "BAD:NaN weights",
                                                            "--out", "ROOT/new"], 1, "NaN"),
    "distill_report a missing model": (distill_report.main, ["ROOT/nope.npz", "--data", "CSV"], 1,
                                       "nope.npz"),
    "distill_report --plot under a file": (distill_report.main, ["GOOD", "--plot", "UNDER_A_FILE/p.png"],
                                           1, "--plot"),
    "ensemble of one model": (ensemble.main, ["GOOD", "--out", "ROOT/new.npz"], 1, "at least two"),
    "ensemble --out under a file": (ensemble.main, ["GOOD", "GOOD", "--out", "UNDER_A_FILE/e.npz"], 1,
                                    "--out"),
    "evaluate --out under a file": (evaluate.main, ["--model", "GOOD", "--data", "CSV", "--backend",
                                                    "numpy", "--out", "UNDER_A_FILE/o"], 1, "--out"),
    "model_card --out under a file": (model_card.main, ["--run", "RUN", "--model", "GOOD", "--out",
                                                        "UNDER_A_FILE/card"], 1, "--out"),
    "compare_runs a missing run": (compare_runs.main, ["ROOT/nope"], 1, "not found"),
    "compare_runs a damaged history.csv": (compare_runs.main, ["HISTORY"], 1, "history.csv"),
    "compare_runs a model not from training": (compare_runs.main, ["MODEL_ONLY"], 1, "fer_app.train"),
    "model_card --budget-mb without --ship": (model_card.main, ["--run", "RUN", "--budget-mb", "5"], 2,
                                              "--ship"),
    "model_card more runs than networks": (model_card.main, ["--run", "RUN", "RUN", "--model", "GOOD",
                                                             "--out", "ROOT/new"], 2, "--run"),
    "model_card a run without training history": (model_card.main, [
        "--run", "MODEL_ONLY", "--model", "GOOD", "--data", "CSV", "--out", "ROOT/new"], 1,
        "model_only"),
    "data missing": (data.main, ["--data", "ROOT/nope.csv"], 1, "nope.csv"),
    "data bad rows": (data.main, ["--data", "BAD_CSV", "--no-cache"], 1, "line 2"),
    "data --grid under a file": (data.main, ["--data", "CSV", "--grid", "UNDER_A_FILE/g.png"], 1,
                                 "--grid"),
    "models an unknown architecture": (models_cli.main, ["resnet999"], 2, "resnet999"),
    "models --classes 0": (models_cli.main, [ARCH, "--classes", "0"], 2, "--classes"),
}


def fill(space, arg: str) -> str:
    """An argv entry with the workspace's path put in for its placeholder (see CASES)."""
    kind, _, name = arg.partition(":")
    if kind.startswith(("ROOT/", "UNDER_A_FILE/")):
        base = space["root"] if kind.startswith("ROOT/") else space["a_file"]
        return os.path.join(str(base), kind.split("/", 1)[1])
    named = {"GOOD": space["good"], "PICTURE": space["picture"], "VIDEO": space["video"],
             "CSV": space["csv"], "BAD_CSV": space["bad_csv"], "HISTORY": space["bad_history"],
             "MODEL_ONLY": space["model_only"],
             "RUN": space["runs"].get(name) if name else space["run"],
             "BAD": space["bad_models"].get(name)}
    return named.get(kind) or arg


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_input_is_one_line(space, capsys, name):
    main, argv, expected_code, mention = CASES[name]
    check_case(space, capsys, main, [fill(space, arg) for arg in argv], expected_code, mention)


@NO_CUPY
@pytest.mark.parametrize("main, argv", [
    (predict.main, ["PICTURE", "--model", "GOOD"]),
    (video.main, ["--input", "VIDEO", "--model", "GOOD"]),
    (evaluate.main, ["--model", "GOOD", "--data", "CSV"]),
    (train.main, ["--data", "CSV", "--out", "ROOT/new"]),
], ids=["predict", "video", "evaluate", "train"])
def test_backend_cupy_without_a_gpu_is_one_line(space, capsys, main, argv):
    argv = [fill(space, arg) for arg in argv] + ["--backend", "cupy"]
    check_case(space, capsys, main, argv, 1, "cupy")


def test_a_damaged_data_cache_is_rebuilt_with_one_notice(space, tmp_path, capsys):
    csv = shutil.copy(space["csv"], tmp_path / "tiny.csv")
    data.load_dataset(str(csv))
    cache = data_cache.cache_path(str(csv))
    with open(cache, "r+b") as file:
        file.truncate(os.path.getsize(cache) // 2)
    code, out, err = run_main(data.main, ["--data", str(csv)], capsys)
    assert code == 0 and "42 images" in out
    assert err.count("\n") == 1 and "damaged" in err and "Traceback" not in err
    assert run_main(data.main, ["--data", str(csv)], capsys)[2] == ""   # rebuilt, read again


def test_the_boundary_maps_expected_errors_and_lets_bugs_through(capsys):
    @error_boundary
    def main(argv):
        if argv == ["usage"]:
            raise UsageError("--x must be positive,\n got 0")
        if argv == ["file"]:
            raise PermissionError(13, "Permission denied", "/some/file")
        raise KeyError("a bug")

    assert main(["usage"]) == 2
    assert capsys.readouterr().err == "error: --x must be positive, got 0\n"   # one line
    assert main(["file"]) == 1
    assert capsys.readouterr().err == "error: /some/file: Permission denied\n"
    with pytest.raises(KeyError, match="a bug"):   # a bug keeps its traceback
        main(["bug"])


# --- the real thing: one subprocess per command ---------------------------------------------------
# (compare_runs and model_card, maintainer tools, are left to the in-process cases: each
# subprocess spends about a second of CPU importing NumPy, OpenCV and matplotlib)
SUBPROCESS_CASES = {
    "predict": ("fer_app.predict", ["PICTURE", "--model", "BAD:truncated"], 1, "truncated.npz"),
    "video": ("fer_app.video", ["--input", "VIDEO", "--model", "BAD:missing"], 1, "missing.npz"),
    "evaluate": ("fer_app.evaluate", ["--model", "BAD:NaN weights", "--data", "CSV"], 1, "NaN"),
    "train": ("fer_app.train", ["--resume", "--out", "RUN:truncated"], 1, "last.npz"),
    "ensemble": ("fer_app.ensemble", ["GOOD", "BAD:random bytes", "--out", "ROOT/new.npz"], 1,
                 "random_bytes"),
    "data": ("fer_app.data", ["--data", "BAD_CSV", "--no-cache"], 1, "bad.csv"),
    "models": ("fer_app.models", ["--classes", "0"], 2, "--classes"),
}


def test_every_command_run_for_real_gives_one_line(space):
    """All commands at once (in parallel), as a user runs them: exit code, one line, no traceback."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=REPO)
    before = snapshot(space["root"])
    processes = {name: subprocess.Popen([sys.executable, "-m", module, *(fill(space, arg) for arg in argv)], cwd=REPO,
                                        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
                 for name, (module, argv, _, _) in SUBPROCESS_CASES.items()}
    for name, process in processes.items():
        out, err = process.communicate(timeout=120)
        _, _, expected_code, mention = SUBPROCESS_CASES[name]
        assert_one_clear_line(process.returncode, out, err, expected_code, mention)
    assert snapshot(space["root"]) == before
