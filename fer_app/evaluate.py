"""Evaluate a trained model on one split of a FER-2013 file.

    python -m fer_app.evaluate --model runs/vgg_fer/model.npz --data fer2013.csv --split PublicTest
    python -m fer_app.evaluate --model default --split PrivateTest --json

Test-time augmentation (TTA, 10 views per face) is on by default, as in
``python -m fer_app.predict``; ``--no-tta`` scores the plain forward pass. Prints
accuracy, macro-F1 and the per-class table (or, with --json, one JSON object
with accuracy, macro_f1, per_class, n and the confusion matrix) and writes
confusion_matrix_<split>.png to --out (default: the model's folder; the current
folder for the shipped model), saying where on stderr. A progress bar (stderr)
counts the faces scored: the shipped three-network model with TTA takes minutes on
a CPU.
"""
from __future__ import annotations

import os

# One BLAS thread unless the variable says otherwise, set before NumPy loads OpenBLAS:
# on the shared 2-core machine OpenBLAS's threads spin against the other jobs (a vgg_fer
# training step took 3.1 CPU-s with two threads, 0.33 CPU-s with one).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import sys

import numpy as np
from tqdm import tqdm

from tinycnn import backend as backends

from .cli import error_boundary, writable_folder
from .data.load import DataError, Dataset, choose_classes, find_data, load_dataset, select_split
from .recognition.inference import BATCH_SIZE, Classifier, load_classifier
from .training import plots
from .training.metrics import classification_report, format_report


def dataset_for(classifier: Classifier, path: str, skip_bad: bool = False) -> Dataset:
    """The data at ``path`` with the class set the model was trained on (7 classes,
    6 without disgust, or 6 with disgust merged into angry, as its settings say)."""
    ds = load_dataset(path, 7, skip_bad=skip_bad)
    if classifier.class_names == ds.class_names:
        return ds
    merge = bool(classifier.metadata.get("settings", {}).get("merge_disgust", False))
    six = choose_classes(ds, 6, merge)
    if classifier.class_names != six.class_names:
        raise DataError(f"{path}: the model's classes {classifier.class_names} do not match the "
                        f"data's {ds.class_names}")
    return six


def evaluate(classifier: Classifier, ds: Dataset, tta: bool = False, progress: bool = True) -> dict:
    """Accuracy, macro-F1, per-class scores, n and confusion matrix of ``classifier`` on ``ds``.

    The faces go BATCH_SIZE at a time (each with its 10 TTA views when ``tta``), so
    the predictions are the same as one classifier.predict call, with a progress bar.
    """
    predictions = []
    with tqdm(total=len(ds), desc=f"scoring{' with TTA (10 views)' if tta else ''}", unit="face",
              disable=not progress, dynamic_ncols=True) as bar:
        for first in range(0, len(ds), BATCH_SIZE):
            faces = ds.images[first:first + BATCH_SIZE]  # (B, 48, 48)
            predictions.append(classifier.predict(faces, tta=tta))
            bar.update(len(faces))
    predictions = np.concatenate(predictions) if predictions else np.zeros(0, np.int64)  # (N,)
    return classification_report(ds.labels, predictions, ds.class_names)


@error_boundary
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer_app.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default",
                        help="model file (runs/NAME/model.npz) or 'default' (the shipped model)")
    parser.add_argument("--data", help="FER-2013 CSV or image-folder root (default: searched)")
    parser.add_argument("--split", default="PublicTest",
                        help="split name in the data's Usage column, or 'all' (default PublicTest)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction, default=True,
                        help="test-time augmentation: average over flips and shifted crops "
                             "(default on; --no-tta for one plain pass)")
    parser.add_argument("--out", help="folder for the confusion-matrix PNG (default: the model's "
                        "folder; the current folder for the shipped model)")
    parser.add_argument("--backend", choices=backends.names(), help="tinycnn backend")
    parser.add_argument("--skip-bad", action="store_true", help="skip bad rows/images")
    args = parser.parse_args(argv)
    classifier = load_classifier(args.model, args.backend)
    out = args.out or ("." if args.model == "default" else os.path.dirname(os.path.abspath(args.model)))
    writable_folder(out, "--out")   # now, not after minutes of evaluation
    path = find_data(args.data)
    ds = dataset_for(classifier, path, args.skip_bad)
    if args.split.lower() != "all":
        ds = select_split(ds, args.split)
    report = evaluate(classifier, ds, args.tta)
    report.update(split=args.split, model=args.model, tta=args.tta)
    figure = os.path.join(out, f"confusion_matrix_{args.split}.png")
    title = f"{classifier.metadata['arch']} on {args.split}{' (TTA)' if args.tta else ''}: " \
            f"accuracy {report['accuracy']:.3f}"
    plots.plot_confusion_matrix(np.array(report["confusion_matrix"]), ds.class_names, figure, title)
    print(f"wrote {figure}", file=sys.stderr)
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{args.model} on {path} [{args.split}]{' with TTA' if args.tta else ''}")
        print(format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
