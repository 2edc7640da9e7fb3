"""Exact and near-duplicate faces in FER-2013, and how much they flatter a random split.

    python -m fer_app.near_duplicates
    python -m fer_app.near_duplicates --run runs/seed002_own --grid docs/reproduce/near_duplicates.png

FER-2013 was collected by image search, so one photograph can appear more than once:
pixel for pixel, or re-cropped, re-toned or watermarked. A validation face whose copy
is among the training faces tests memory, not recognition.

Signature of a face: its 16x16 mean-pooled image (3x3 blocks), minus its mean, divided
by its norm (256 values). The similarity of two faces is the dot product of their
signatures, i.e. the Pearson correlation of the pooled images, in [-1, 1]; a change of
brightness or contrast leaves it at 1. A face's nearest neighbour in a set is the face
of highest similarity; a near-duplicate is a neighbour at or above ``--threshold``
(default 0.9: the pairs in ``--grid`` above it are the same photograph). Exact
duplicates have identical 48x48 pixels (blank images included).

Prints, for Training against itself and PublicTest against Training, how many faces
have an exact copy and a near-duplicate at several thresholds. With ``--run`` (any
``fer_app.train`` run folder) it rebuilds the run's own split, divides its validation
faces into those with a near-duplicate among its training faces and the rest, and
scores the run's model on each part (one plain pass). ``--model`` does the same for any
model file or shipped model on PublicTest against Training.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as train/evaluate do (see train.py)

import argparse
import sys
from collections import Counter

import numpy as np

from .cli import UserError, error_boundary
from .data.load import Dataset, find_data, load_dataset, select_split, split_dataset
from .evaluate import dataset_for
from .recognition.inference import Classifier, load_classifier, read_model_file
from .training.markdown import markdown_table

THRESHOLDS = (0.9, 0.95, 0.99)
CHUNK = 2048  # query rows per similarity block: a (2048, N) float32 block


def signatures(images: np.ndarray) -> np.ndarray:
    """(N, 48, 48) uint8 -> (N, 256) float32 unit vectors (all zero for a flat image)."""
    n = len(images)
    pooled = images.astype(np.float32).reshape(n, 16, 3, 16, 3).mean(axis=(2, 4)).reshape(n, 256)
    centred = pooled - pooled.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1, keepdims=True)  # (N, 1)
    return np.divide(centred, norms, out=np.zeros_like(centred), where=norms > 1e-6)


def nearest(queries: np.ndarray, pool: np.ndarray, same: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """For each query signature (Q, 256), the similarity (Q,) and index (Q,) of its nearest
    signature in ``pool`` (P, 256). ``same``: queries and pool are one set, so a face is
    not its own neighbour."""
    similarity, index = np.empty(len(queries), np.float32), np.empty(len(queries), np.int64)
    for start in range(0, len(queries), CHUNK):
        block = queries[start:start + CHUNK] @ pool.T  # (B, P)
        if same:
            rows = np.arange(len(block))
            block[rows, start + rows] = -np.inf
        index[start:start + CHUNK] = block.argmax(axis=1)
        similarity[start:start + CHUNK] = block[np.arange(len(block)), index[start:start + CHUNK]]
    return similarity, index


def exact_copies(queries: np.ndarray, pool: np.ndarray | None = None) -> np.ndarray:
    """(Q,) bool: whether each query image's pixels occur in ``pool`` (Q, 48, 48), or,
    with no pool, elsewhere among the queries themselves."""
    keys = [image.tobytes() for image in queries]
    if pool is None:
        counts = Counter(keys)
        return np.array([counts[key] > 1 for key in keys], dtype=bool)
    pool_keys = {image.tobytes() for image in pool}
    return np.array([key in pool_keys for key in keys], dtype=bool)


def duplicate_row(name: str, exact: np.ndarray, similarity: np.ndarray) -> dict:
    """Counts of one comparison: faces, exact copies, near-duplicates per threshold."""
    row = {"comparison": name, "faces": len(exact), "exact": int(exact.sum())}
    for threshold in THRESHOLDS:
        row[f">= {threshold}"] = int((similarity >= threshold).sum())
    return row


def format_rows(rows: list[dict]) -> str:
    """A Markdown table of duplicate_row results, with shares of the faces."""
    keys = list(rows[0])
    cells = [[str(row["comparison"]), str(row["faces"])]
             + [f"{row[key]} ({row[key] / row['faces']:.1%})" for key in keys[2:]] for row in rows]
    return markdown_table(keys, cells)


def format_reports(reports: list[dict], threshold: float) -> str:
    """A Markdown table of run_report / model_report results."""
    header = ["model", "validation faces", f"with a twin (>= {threshold:g}) in its training faces",
              "accuracy", "on faces with a twin", "on the rest"]
    cells = [[r["name"], f"{r['faces']} ({r['validation']})",
              f"{r['with_twin']} ({r['with_twin'] / r['faces']:.1%})", f"{r['accuracy']:.4f}",
              f"{r['accuracy_with_twin']:.4f}", f"{r['accuracy_without_twin']:.4f}"] for r in reports]
    return markdown_table(header, cells)


def data_report(ds: Dataset) -> tuple[list[dict], dict]:
    """Rows for Training vs itself and PublicTest vs Training, and the neighbours found
    ({"similarity", "index"} of each PublicTest face's nearest Training face)."""
    train, test = select_split(ds, "Training"), select_split(ds, "PublicTest")
    train_sig = signatures(train.images)
    self_similarity, _ = nearest(train_sig, train_sig, same=True)
    test_similarity, test_index = nearest(signatures(test.images), train_sig)
    rows = [duplicate_row("Training faces with a copy elsewhere in Training",
                          exact_copies(train.images), self_similarity),
            duplicate_row("PublicTest faces with a copy in Training",
                          exact_copies(test.images, train.images), test_similarity)]
    return rows, {"similarity": test_similarity, "index": test_index}


def twin_report(classifier: Classifier, train: Dataset, val: Dataset, threshold: float) -> dict:
    """The classifier's accuracy (one plain pass) on the ``val`` faces with a
    near-duplicate (similarity >= threshold) among the ``train`` faces, and on the rest."""
    similarity, _ = nearest(signatures(val.images), signatures(train.images))
    twin = similarity >= threshold  # (V,) bool
    correct = classifier.predict(val.images) == val.labels  # (V,) bool
    report = {"faces": len(val), "with_twin": int(twin.sum()), "accuracy": float(correct.mean())}
    for name, part in (("with_twin", twin), ("without_twin", ~twin)):
        report[f"accuracy_{name}"] = float(correct[part].mean()) if part.any() else float("nan")
    return report


def run_report(run: str, data: str | None, threshold: float) -> dict:
    """twin_report of ``run``'s model on its own split (rebuilt from its settings)."""
    model_file = os.path.join(run, "model.npz")
    _, metadata = read_model_file(model_file)
    settings = metadata.get("settings")
    if settings is None:
        raise UserError(f"{model_file}: not written by fer_app.train (no settings in its metadata)")
    ds = load_dataset(find_data(data or settings["data"]), settings["classes"],
                      settings.get("merge_disgust", False))
    train, val = split_dataset(ds, settings.get("val_fraction", 0.2), settings.get("seed", 0),
                               settings.get("val_split", "PublicTest"))
    validation = settings.get("val_split", "PublicTest")
    return {"name": run, "validation": validation,
            **twin_report(load_classifier(model_file), train, val, threshold)}


def model_report(model: str, data: str | None, threshold: float) -> dict:
    """twin_report of any model file or shipped model name on PublicTest against Training."""
    classifier = load_classifier(model)
    ds = dataset_for(classifier, find_data(data))
    return {"name": model, "validation": "PublicTest",
            **twin_report(classifier, select_split(ds, "Training"), select_split(ds, "PublicTest"),
                          threshold)}


def plot_pairs(ds: Dataset, neighbours: dict, path: str, per_band: int = 6, seed: int = 0) -> None:
    """A PNG grid: rows are similarity bands, each holding ``per_band`` random pairs
    (PublicTest face, its nearest Training face), to judge the threshold by eye."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    train, test = select_split(ds, "Training"), select_split(ds, "PublicTest")
    bands = [(0.8, 0.85), (0.85, 0.9), (0.9, 0.95), (0.95, 0.99), (0.99, 1.01)]
    rng = np.random.default_rng(seed)
    figure, axes = plt.subplots(len(bands), 2 * per_band, figsize=(2 * per_band, 1.2 * len(bands)))
    for row, (low, high) in enumerate(bands):
        inside = np.flatnonzero((neighbours["similarity"] >= low) & (neighbours["similarity"] < high))
        chosen = rng.choice(inside, min(per_band, len(inside)), replace=False)
        for column, k in enumerate(chosen):
            axes[row, 2 * column].imshow(test.images[k], cmap="gray", vmin=0, vmax=255)
            axes[row, 2 * column + 1].imshow(train.images[neighbours["index"][k]], cmap="gray",
                                             vmin=0, vmax=255)
        axes[row, 0].set_ylabel(f"{low:.2f}-{min(high, 1.0):.2f}", fontsize=8)
    for axis in axes.ravel():
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle("PublicTest face | its nearest Training face, by similarity band", fontsize=10)
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)


@error_boundary
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer_app.near_duplicates", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="FER-2013 CSV with Training and PublicTest rows (default: searched)")
    parser.add_argument("--run", action="append", default=[],
                        help="a fer_app.train run folder to score with and without twins (repeatable)")
    parser.add_argument("--model", action="append", default=[],
                        help="a model file or shipped model name to score on PublicTest faces with "
                             "and without a twin in Training, one plain pass (repeatable)")
    parser.add_argument("--threshold", type=float, default=0.9,
                        help="similarity of a near-duplicate for --run and --model (default 0.9)")
    parser.add_argument("--grid", help="write the similarity-band picture grid to this PNG")
    args = parser.parse_args(argv)
    if not -1.0 <= args.threshold <= 1.0:
        parser.error(f"--threshold must be in [-1, 1], got {args.threshold}")
    # The runs and models first: a bad one stops the command before the long data report.
    reports = [run_report(run, args.data, args.threshold) for run in args.run]
    reports += [model_report(model, args.data, args.threshold) for model in args.model]
    ds = load_dataset(find_data(args.data), classes=7)
    rows, neighbours = data_report(ds)
    print(format_rows(rows))
    if args.grid:
        plot_pairs(ds, neighbours, args.grid)
        print(f"wrote {args.grid}", file=sys.stderr)
    if reports:
        print()
        print(format_reports(reports, args.threshold))
    return 0


if __name__ == "__main__":
    sys.exit(main())
