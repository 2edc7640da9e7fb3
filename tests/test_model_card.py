"""fer_app.model_card: the card's numbers are measured from the model and the run."""
from __future__ import annotations

import json
import os

from fer_app import model_card, train
from fer_app.evaluate import dataset_for, evaluate
from fer_app.inference import load_classifier
from fer_app.data import select_split
from tests.train_samples import write_fer_csv


def test_card_reports_the_models_measured_scores(tmp_path):
    data = write_fer_csv(tmp_path / "tiny.csv", {"Training": 70, "PublicTest": 28})
    run = tmp_path / "run"
    assert train.main(["--data", str(data), "--arch", "seed002", "--classes", "7", "--epochs", "2",
                       "--batch-size", "16", "--backend", "numpy", "--out", str(run)]) == 0
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{model_card.MARKER}\n\n## next section\n")
    out = tmp_path / "card"
    model = str(run / "model.npz")
    assert model_card.main(["--run", str(run), "--model", model, "--data", str(data),
                            "--out", str(out), "--readme", str(readme)]) == 0

    card = json.loads((out / "model_card.json").read_text())
    classifier = load_classifier(model, "numpy")
    expected = evaluate(classifier, select_split(dataset_for(classifier, str(data)), "PublicTest"))
    assert card["plain"]["accuracy"] == expected["accuracy"]
    assert card["epochs_run"] == 2 and card["parameters"] == classifier.model.num_parameters()
    for name in ("confusion_matrix.png", "curves.png", "model_card.md"):
        assert os.path.getsize(out / name) > 0
    text = readme.read_text()
    assert text.count(model_card.MARKER) == 2 and "## next section" in text
    assert f"{expected['accuracy']:.4f}" in text

    # running it again replaces the section instead of adding a second one
    assert model_card.main(["--run", str(run), "--model", model, "--data", str(data),
                            "--out", str(out), "--readme", str(readme)]) == 0
    assert readme.read_text().count(model_card.MARKER) == 2
