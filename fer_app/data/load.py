"""Load FER-2013, choose the class set, split it, and find it on disk.

    ds = load_dataset(find_data())                  # 7 classes, names in ds.class_names
    train, val = split_dataset(ds)                  # Training vs PublicTest rows
    test = select_split(ds, "PublicTest")

Sources: the canonical CSV (``emotion,pixels,Usage``, plain or ``.gz``; see
:mod:`fer_app.data.fer_csv`) or an image-folder root (``<root>/train/<class>/*.jpg``;
see :mod:`fer_app.data.image_folder`, which maps train -> "Training" and
test/validation -> "PublicTest"). Parsed data is cached (:mod:`fer_app.data.data_cache`).

``python -m fer_app.data --data PATH [--grid augment.png]`` prints the class
counts per split and can write a grid of augmented samples.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from ..cli import error_boundary, writable_file
from .data_cache import load_cached
from .dataset import EMOTIONS, DataError, Dataset
from .fer_csv import read_fer_csv
from .image_folder import read_image_folder

__all__ = ["EMOTIONS", "DataError", "Dataset", "load_dataset", "choose_classes", "split_dataset",
           "stratified_split", "select_split", "find_data", "SEARCH_PATHS"]

SEARCH_PATHS = ["fer2013.csv", "fer2013.csv.gz", "data/fer2013.csv", "data/fer2013.csv.gz",
                "data/fer2013/fer2013.csv", "data/fer2013/fer2013.csv.gz", "data",
                "../shared/data/fer2013/fer2013.csv.gz", "../shared/data/fer2013/fer2013.csv"]
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_dataset(path: str, classes: int = 7, merge_disgust: bool = False,
                 skip_bad: bool = False, cache: bool = True) -> Dataset:
    """Read a FER-2013 CSV (.csv / .csv.gz) or image-folder root into a Dataset.

    classes=7: the standard classes (EMOTIONS). classes=6: disgust rows dropped.
    merge_disgust=True: disgust rows relabelled angry (6 classes, whatever ``classes``).
    skip_bad=True: bad rows/images are left out and counted in ``Dataset.skipped``
    instead of raising DataError. cache=True: reuse/write the parsed .npz cache.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"{path}: not found")
    reader = read_image_folder if os.path.isdir(path) else read_fer_csv

    def parse() -> Dataset:
        return reader(path, skip_bad)

    raw = load_cached(path, {"skip_bad": skip_bad}, parse) if cache else parse()
    return choose_classes(raw, classes, merge_disgust)


def choose_classes(ds: Dataset, classes: int = 7, merge_disgust: bool = False) -> Dataset:
    """The 7-class ``ds`` as 7 classes, 6 without disgust, or 6 with disgust merged into angry.

    Labels above disgust shift down by one, so the 6 names are EMOTIONS without "disgust".
    """
    if classes not in (6, 7):
        raise ValueError(f"classes must be 6 or 7, got {classes}")
    if ds.class_names != EMOTIONS:
        raise ValueError(f"expected the 7 standard classes, got {ds.class_names}")
    if classes == 7 and not merge_disgust:
        return ds
    disgust, angry = EMOTIONS.index("disgust"), EMOTIONS.index("angry")
    labels = ds.labels.copy()  # (N,)
    if merge_disgust:
        labels[labels == disgust] = angry
    keep = labels != disgust  # (N,) bool
    labels = labels - (labels > disgust)
    usage = None if ds.usage is None else ds.usage[keep]
    names = [name for name in EMOTIONS if name != "disgust"]
    return Dataset(ds.images[keep], labels[keep], names, usage, skipped=ds.skipped)


def split_dataset(ds: Dataset, val_fraction: float = 0.2, seed: int = 0,
                  validate_on: str = "PublicTest") -> tuple[Dataset, Dataset]:
    """(train, validation), split one of two ways:

    - ``validate_on="PublicTest"``: with Training and PublicTest rows in Usage, those two
      sets; otherwise a stratified split (``val_fraction`` of each class, seeded) of all
      rows except PrivateTest ones (held out for the final test).
    - ``validate_on="random"``: a stratified split of the Training rows alone (of all rows
      but PrivateTest when there are none), as the seed projects held out their test faces;
      PublicTest stays unseen.
    """
    if validate_on not in ("PublicTest", "random"):
        raise ValueError(f"validate_on must be 'PublicTest' or 'random', got {validate_on!r}")
    splits = set() if ds.usage is None else set(np.unique(ds.usage))
    if validate_on == "PublicTest" and {"Training", "PublicTest"} <= splits:
        return select_split(ds, "Training"), select_split(ds, "PublicTest")
    if validate_on == "random" and "Training" in splits:
        pool = select_split(ds, "Training")
    else:
        pool = ds if ds.usage is None else ds.subset(ds.usage != "PrivateTest")
    train_rows, val_rows = stratified_split(pool.labels, val_fraction, seed)
    return pool.subset(train_rows), pool.subset(val_rows)


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, validation), each sorted; round(val_fraction * n_c) of each class c
    go to validation, chosen by a generator seeded with ``seed``."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    rng = np.random.default_rng(seed)
    val_parts = []
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        val_parts.append(rows[:round(val_fraction * len(rows))])
    val_rows = np.sort(np.concatenate(val_parts)) if val_parts else np.zeros(0, np.int64)
    train_rows = np.setdiff1d(np.arange(len(labels)), val_rows)
    return train_rows, val_rows


def select_split(ds: Dataset, name: str) -> Dataset:
    """The rows whose Usage is ``name`` (letter case ignored)."""
    if ds.usage is None:
        raise DataError(f"no split named {name!r}: this data has no Usage column "
                        f"(use split_dataset for a stratified validation split)")
    names, counts = np.unique(ds.usage, return_counts=True)
    matches = [str(found) for found in names if str(found).lower() == name.lower()]
    if not matches:
        available = ", ".join(f"{found} ({count} rows)" for found, count in zip(names, counts))
        raise DataError(f"no split named {name!r}; available: {available or 'none'}")
    return ds.subset(ds.usage == matches[0])


def find_data(path: str | None = None) -> str:
    """``path`` if it exists, else the first FER-2013 copy found in the usual places
    (SEARCH_PATHS relative to the working folder, then to the repository)."""
    if path is not None:
        if not os.path.exists(path):
            raise DataError(f"{path}: not found")
        return path
    searched = []
    for base in dict.fromkeys([os.getcwd(), REPO_ROOT]):
        for relative in SEARCH_PATHS:
            candidate = os.path.normpath(os.path.join(base, relative))
            searched.append(candidate)
            if _looks_like_data(candidate):
                return candidate
    raise DataError(_not_found_message(searched))


def _looks_like_data(candidate: str) -> bool:
    """A CSV file, or a folder holding a train/ split folder."""
    if os.path.isdir(candidate):
        return any(os.path.isdir(os.path.join(candidate, name)) for name in ("train", "Train"))
    return os.path.isfile(candidate)


def _not_found_message(searched: list[str]) -> str:
    return ("FER-2013 data not found. Searched:\n  " + "\n  ".join(searched) + "\n"
            "Get it from Kaggle: the 'challenges-in-representation-learning-facial-expression-"
            "recognition-challenge' competition data or the 'fer2013' data set "
            "(https://www.kaggle.com/datasets/deadskull7/fer2013), and place fer2013.csv "
            "(or fer2013.csv.gz) in ./ or ./data/, or pass --data PATH (a CSV, or an image "
            "folder with train/ and test/ such as https://www.kaggle.com/datasets/msambare/fer2013).")


def format_counts(ds: Dataset) -> str:
    """A table of class counts per split (one line per split, plus the total)."""
    width = max(len(name) for name in ds.class_names) + 1
    header = f"{'split':<12}" + "".join(f"{name:>{width}}" for name in ds.class_names) + f"{'total':>8}"
    parts = [("all", ds)] if ds.usage is None else \
        [(str(name), select_split(ds, str(name))) for name in np.unique(ds.usage)] + [("all", ds)]
    lines = [header] + [f"{name:<12}" + "".join(f"{count:>{width}}" for count in part.class_counts())
                        + f"{len(part):>8}" for name, part in parts]
    return "\n".join(lines)


@error_boundary
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer_app.data",
                                     description="Load FER-2013 and print its class counts per split.")
    parser.add_argument("--data", help="CSV (.csv/.csv.gz) or image-folder root; searched if omitted")
    parser.add_argument("--classes", type=int, choices=(6, 7), default=7)
    parser.add_argument("--merge-disgust", action="store_true", help="merge disgust into angry (6 classes)")
    parser.add_argument("--skip-bad", action="store_true", help="skip bad rows/images (counted)")
    parser.add_argument("--no-cache", action="store_true", help="parse again, do not use the .npz cache")
    parser.add_argument("--grid", metavar="PNG", help="write a grid of augmented training samples")
    parser.add_argument("--seed", type=int, default=0, help="seed for the augmentation grid")
    args = parser.parse_args(argv)
    if args.grid:
        writable_file(args.grid, "--grid")
    path = find_data(args.data)
    start = time.perf_counter()
    ds = load_dataset(path, args.classes, args.merge_disgust, args.skip_bad, cache=not args.no_cache)
    print(f"{path}: {len(ds)} images, {len(ds.class_names)} classes, "
          f"loaded in {time.perf_counter() - start:.2f} s")
    if ds.skipped:
        print(f"skipped {ds.skipped} bad row(s)/image(s)")
    print(format_counts(ds))
    if args.grid:
        from .augment import AugmentConfig, save_augmentation_grid
        train, _ = split_dataset(ds, seed=args.seed)
        save_augmentation_grid(train.images[:8], AugmentConfig(), args.grid, np.random.default_rng(args.seed))
        print(f"wrote {args.grid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
