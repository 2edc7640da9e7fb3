"""Compare training runs side by side: the recipe table.

    python -m fer_app.compare_runs runs/base runs/noaug runs/mixup --tta --out docs/recipes.md

Each RUN is a ``fer_app.train`` output folder. The first run is the reference: every
other row lists only the settings in which it differs from it. Columns: epochs run,
training rows, the epoch with the best validation accuracy and, at that epoch, the
training accuracy, validation accuracy and macro-F1 (from model.npz), plus the
accuracy with test-time augmentation (``--tta``, evaluated here) and the hours spent.

``--figures DIR`` copies each run's curves.png and confusion_matrix.png to
DIR/RUN_curves.png and DIR/RUN_confusion_matrix.png (for the README's docs/ folders).

``--reproduce`` prints instead the seed projects' reproduction table (fer_app/training/reproduce.py)
from runs given in pairs: each seed architecture with its own recipe, then with ours.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as train/evaluate do (see train.py)

import argparse
import shutil
import sys

from .cli import UserError, error_boundary
from .data.load import find_data, select_split
from .evaluate import dataset_for, evaluate
from .model_card import NOT_RECIPE, read_history, training_hours
from .recognition.inference import ModelFileError, load_classifier, read_model_file
from .training import markdown, reproduce
from .training.settings import DEFAULTS


def recipe_changes(settings: dict, reference: dict) -> str:
    """The settings in which ``settings`` differs from ``reference``, as "key=value, ...".

    A setting the reference run does not record (an option added to fer_app.train after it
    ran) counts as train's default, which is what that run did."""
    changes = [f"{key}={value}" for key, value in settings.items()
               if key not in NOT_RECIPE and key != "epochs"
               and reference.get(key, DEFAULTS.get(key)) != value]
    return ", ".join(changes) or "(reference)"


def run_row(run: str, reference: dict | None, tta_split: str | None, data: str | None) -> dict:
    """The facts of one run folder; with ``tta_split``, also its TTA accuracy on that split."""
    path = os.path.join(run, "model.npz")
    _, metadata = read_model_file(path)
    if "settings" not in metadata or "epoch" not in metadata:
        raise ModelFileError(f"{path}: not written by fer_app.train (no settings or epoch in its metadata)")
    settings = metadata["settings"]
    history = read_history(os.path.join(run, "history.csv"))
    best = [row for row in history if row["epoch"] == metadata["epoch"]]
    if not best:
        raise UserError(f"{run}: history.csv has no row for the model's epoch {metadata['epoch']}")
    best = best[0]
    row = {
        "run": os.path.basename(os.path.normpath(run)),
        "settings": settings,
        "changes": recipe_changes(settings, reference if reference is not None else settings),
        "epochs": f"{len(history)} of {settings['epochs']}",
        "rows": settings.get("limit") or "all",
        "best_epoch": metadata["epoch"],
        "train_acc": best["train_acc"],
        "val_acc": best["val_acc"],
        "val_macro_f1": best["val_macro_f1"],
        "hours": training_hours(history),
    }
    if tta_split:
        classifier = load_classifier(path)
        ds = select_split(dataset_for(classifier, find_data(data)), tta_split)
        row["tta_acc"] = evaluate(classifier, ds, tta=True)["accuracy"]
    return row


def copy_figures(run: str, folder: str) -> None:
    """RUN/curves.png and RUN/confusion_matrix.png -> folder/RUN_<name>.png (those that exist)."""
    os.makedirs(folder, exist_ok=True)
    name = os.path.basename(os.path.normpath(run))
    for figure in ("curves.png", "confusion_matrix.png"):
        if os.path.isfile(os.path.join(run, figure)):
            shutil.copyfile(os.path.join(run, figure), os.path.join(folder, f"{name}_{figure}"))


def markdown_table(rows: list[dict]) -> str:
    """The rows as a Markdown table (TTA column only when measured)."""
    with_tta = "tta_acc" in rows[0]
    header = ["run", "recipe (vs the first row)", "epochs", "training rows", "best epoch",
              "train acc", "val acc", "val macro-F1"] + (["val acc TTA"] if with_tta else []) + ["hours"]
    table = []
    for row in rows:
        cells = [row["run"], row["changes"], row["epochs"], str(row["rows"]), str(row["best_epoch"]),
                 f"{row['train_acc']:.3f}", f"{row['val_acc']:.4f}", f"{row['val_macro_f1']:.4f}"]
        if with_tta:
            cells.append(f"{row['tta_acc']:.4f}")
        cells.append(f"{row['hours']:.2f}")
        table.append(cells)
    return markdown.markdown_table(header, table)


@error_boundary
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer_app.compare_runs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run folders (model.npz, history.csv); the first is the reference")
    parser.add_argument("--tta", action="store_true", help="also evaluate each best model with TTA")
    parser.add_argument("--split", default="PublicTest", help="split for --tta (default PublicTest)")
    parser.add_argument("--data", help="FER-2013 file for --tta and --reproduce (default: searched)")
    parser.add_argument("--out", help="also write the table to this Markdown file")
    parser.add_argument("--figures", help="copy each run's curves and confusion matrix into this folder")
    parser.add_argument("--reproduce", action="store_true",
                        help="the seed reproduction table: runs in pairs (seed recipe, ours) per architecture")
    args = parser.parse_args(argv)
    if args.reproduce and len(args.runs) % 2:
        parser.error("--reproduce takes runs in pairs: each seed's recipe, then ours")
    rows = []
    for run in args.runs:
        reference = rows[0]["settings"] if rows else None
        rows.append(run_row(run, reference, args.split if args.tta else None, args.data))
    if args.reproduce:
        for run, row in zip(args.runs, rows):
            row["public_test"] = reproduce.public_test_accuracy(run, row, args.data)
        table = reproduce.markdown_table([reproduce.pair_row(own, ours)
                                          for own, ours in zip(rows[::2], rows[1::2])])
    else:
        table = markdown_table(rows)
    if args.figures:
        for run in args.runs:
            copy_figures(run, args.figures)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as file:
            file.write(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
