"""fer_app.compare_runs: the recipe table is read from the runs and measured."""
from __future__ import annotations

import json
import os
from pathlib import Path

from fer_app import compare_runs
from fer_app.data.load import select_split
from fer_app.evaluate import dataset_for, evaluate
from fer_app.models import build_model
from fer_app.recognition.inference import load_classifier
from tests.train_samples import train_tiny_run, write_fer_csv


def test_table_lists_differences_and_measured_scores(tmp_path, capsys):
    data = write_fer_csv(tmp_path / "tiny.csv", {"Training": 60, "PublicTest": 24})
    base = train_tiny_run(tmp_path / "base", data, epochs=2)
    smooth = train_tiny_run(tmp_path / "smooth", data, "--label-smoothing", "0.1", "--seed", "3", epochs=2)
    out = tmp_path / "table.md"
    capsys.readouterr()
    assert compare_runs.main([str(base), str(smooth), "--tta", "--data", str(data),
                              "--out", str(out)]) == 0
    lines = out.read_text().strip().splitlines()
    assert capsys.readouterr().out.strip() == out.read_text().strip()
    assert len(lines) == 4                                   # header, rule, two runs
    assert "| base | (reference) | 2 of 2 |" in lines[2]
    assert "label_smoothing=0.1, seed=3" in lines[3]

    metrics = json.loads((Path(smooth) / "metrics.json").read_text())
    classifier = load_classifier(os.path.join(smooth, "model.npz"), "numpy")
    tta = evaluate(classifier, select_split(dataset_for(classifier, str(data)), "PublicTest"), tta=True)
    cells = [cell.strip() for cell in lines[3].strip("|").split("|")]
    assert cells[6] == f"{metrics['accuracy']:.4f}" and cells[7] == f"{metrics['macro_f1']:.4f}"
    assert cells[8] == f"{tta['accuracy']:.4f}"


def test_a_folder_without_a_model_is_a_clear_error(tmp_path, capsys):
    assert compare_runs.main([str(tmp_path / "missing")]) == 1
    assert "model file not found" in capsys.readouterr().err


def test_reproduce_table_pairs_a_seed_recipe_with_ours(tmp_path, capsys):
    data = write_fer_csv(tmp_path / "tiny.csv", {"Training": 70, "PublicTest": 21})
    own = train_tiny_run(tmp_path / "own", data, "--val-split", "random", "--optimizer", "rmsprop")
    ours = train_tiny_run(tmp_path / "ours", data, "--seed", "1")
    capsys.readouterr()
    assert compare_runs.main(["--reproduce", str(own), str(ours), "--data", str(data),
                              "--figures", str(tmp_path / "docs")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    for name in ("own_curves.png", "own_confusion_matrix.png", "ours_curves.png"):
        assert (tmp_path / "docs" / name).read_bytes() == (tmp_path / name.replace("_", "/", 1)).read_bytes()
    assert len(lines) == 3                                    # header, rule, one architecture
    cells = [cell.strip() for cell in lines[2].strip("|").split("|")]
    assert cells[0] == "seed002 (7 classes)" and "89.6%" in cells[1]
    assert cells[2] == "random 20% of Training" and cells[7] == "PublicTest"

    classifier = load_classifier(os.path.join(own, "model.npz"), "numpy")
    public = evaluate(classifier, select_split(dataset_for(classifier, str(data)), "PublicTest"))
    own_metrics = json.loads((Path(own) / "metrics.json").read_text())
    ours_metrics = json.loads((Path(ours) / "metrics.json").read_text())
    assert own_metrics["n"] == 14                             # 20% of Training, not PublicTest
    assert cells[4] == f"{own_metrics['accuracy']:.4f}" and cells[5] == f"{public['accuracy']:.4f}"
    assert cells[9] == cells[10] == f"{ours_metrics['accuracy']:.4f}"  # validated on PublicTest
    assert cells[12] == f"{sum(p.data.size for p in build_model('seed002', 7).parameters()):,}"


def test_reproduce_needs_pairs_of_one_architecture(tmp_path, capsys):
    data = write_fer_csv(tmp_path / "tiny.csv", {"Training": 42, "PublicTest": 14})
    seven = train_tiny_run(tmp_path / "seven", data)
    six = train_tiny_run(tmp_path / "six", data, "--classes", "6")
    assert compare_runs.main(["--reproduce", str(seven), str(six), "--data", str(data)]) == 1
    assert "not one architecture and class set" in capsys.readouterr().err


def test_a_setting_the_reference_run_lacks_counts_as_trains_default():
    """An option added to train after the reference run (no key in its settings) is not a
    difference when the newer run left it at the default, and is one when it changed it."""
    from fer_app.compare_runs import recipe_changes
    from fer_app.training.settings import DEFAULTS
    older = {"arch": "vgg_fer", "lr": 0.01}
    newer = dict(older, divergence_factor=DEFAULTS["divergence_factor"], val_split=DEFAULTS["val_split"])
    assert recipe_changes(newer, older) == "(reference)"
    assert recipe_changes(dict(newer, divergence_factor=5.0, lr=0.03), older) == "lr=0.03, divergence_factor=5.0"
