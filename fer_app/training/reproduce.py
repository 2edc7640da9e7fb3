"""The seed projects' claims against runs of their own architectures: the reproduction table.

    python -m fer_app.compare_runs --reproduce runs/seed001_own runs/seed001_ours \\
        runs/seed002_own runs/seed002_ours runs/seed004_own runs/seed004_ours

Runs come in pairs of one architecture: first trained with the seed's own recipe (as far
as its write-up states it, Keras's defaults elsewhere), then with this project's recipe.
Each pair is one row: what the write-up reports, the best accuracy each run reached on its
own validation faces, both runs' accuracy on PublicTest (one plain pass), parameters,
FLOPs and hours. A run validated on a random share of Training never saw PublicTest, so
its PublicTest figure is measured here; a run validated on PublicTest chose its epoch
there, so its figure is that validation accuracy (slightly flattering).
"""
from __future__ import annotations

import os

from ..cli import UserError
from ..data.load import find_data, select_split
from ..evaluate import dataset_for, evaluate
from ..models import build_model
from ..models.summary import summarize
from ..recognition.inference import load_classifier
from . import markdown

# What each seed project's write-up says it reached (see issue 16 and the README).
CLAIMS = {
    "seed001": "almost 60% after about 20 epochs (20% of the CSV held out)",
    "seed002": "optimum nearly 89.6% (6 classes, 20% of the training faces held out)",
    "seed004": "no accuracy stated",
}


def public_test_accuracy(run_folder: str, row: dict, data: str | None) -> float:
    """Accuracy of the run's model on PublicTest in one plain pass (see the module docstring)."""
    if row["settings"].get("val_split", "PublicTest") == "PublicTest":
        return row["val_acc"]
    classifier = load_classifier(os.path.join(run_folder, "model.npz"))
    ds = select_split(dataset_for(classifier, find_data(data or row["settings"]["data"])), "PublicTest")
    return evaluate(classifier, ds, progress=False)["accuracy"]


def size(arch: str, classes: int) -> tuple[int, float]:
    """(parameters, MFLOPs per 48x48 face) of an architecture."""
    rows = summarize(build_model(arch, classes))
    return sum(row.parameters for row in rows), sum(row.flops for row in rows) / 1e6


def pair_row(own: dict, ours: dict) -> dict:
    """One table row from two compare_runs rows (with "public_test" added) of one architecture."""
    arch, classes = own["settings"]["arch"], own["settings"]["classes"]
    if (ours["settings"]["arch"], ours["settings"]["classes"]) != (arch, classes):
        raise UserError(f"{own['run']} and {ours['run']} are not one architecture and class set "
                        f"({arch}/{classes} and {ours['settings']['arch']}/{ours['settings']['classes']}); "
                        f"give --reproduce runs in pairs: the seed's recipe, then ours")
    parameters, mflops = size(arch, classes)
    return {"arch": arch, "classes": classes, "claim": CLAIMS.get(arch, "-"), "own": own, "ours": ours,
            "parameters": parameters, "mflops": mflops}


def run_cells(row: dict) -> list[str]:
    """A run's cells: validation faces, best epoch and epochs run, best val acc, PublicTest,
    training accuracy at the best epoch."""
    settings = row["settings"]
    validation = "PublicTest"
    if settings.get("val_split", "PublicTest") == "random":
        validation = f"random {settings.get('val_fraction', 0.2):.0%} of Training"
    return [validation, f"{row['best_epoch']}; {row['epochs']}", f"{row['val_acc']:.4f}",
            f"{row['public_test']:.4f}", f"{row['train_acc']:.3f}"]


def markdown_table(pairs: list[dict]) -> str:
    """The reproduction table, one row per architecture."""
    header = ["architecture", "its write-up reports",
              "its recipe: validated on", "best epoch; epochs run", "val acc", "PublicTest", "train acc",
              "our recipe: validated on", "best epoch; epochs run", "val acc", "PublicTest", "train acc",
              "parameters", "MFLOPs", "hours (its / ours)"]
    rows = [[f"{pair['arch']} ({pair['classes']} classes)", pair["claim"],
             *run_cells(pair["own"]), *run_cells(pair["ours"]),
             f"{pair['parameters']:,}", f"{pair['mflops']:.0f}",
             f"{pair['own']['hours']:.2f} / {pair['ours']['hours']:.2f}"] for pair in pairs]
    return markdown.markdown_table(header, rows)
