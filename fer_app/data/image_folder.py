"""Read the image-folder layout of FER-2013: ``<root>/<split>/<class>/<image>``.

    root/train/angry/Training_10118481.jpg
    root/train/Happy/...             class folder names are case-insensitive
    root/test/angry/PublicTest_...   (or validation/ or val/)

Split folders map to the CSV's Usage names: ``train`` (or ``training``) ->
"Training"; ``test``, ``validation`` or ``val`` -> "PublicTest", except that when
both a test and a validation folder exist, validation -> "PublicTest" and
test -> "PrivateTest". Any image size or colour is accepted: it is converted to
grey, centre-cropped to a square and resized to 48x48 with Pillow.

Errors (:class:`DataError`, naming the folder or image): no split folder, an
unknown split or class folder, an empty class folder, an unreadable image or one
over pictures.MAX_PIXELS (checked from its header, before decoding). 16-bit grey
images are scaled to 0..255 (pictures.to_8bit), not clipped.
With ``skip_bad=True`` unreadable images are skipped and counted and empty
class folders are allowed; unknown folder names are always an error.
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from ..recognition.pictures import open_image, to_8bit
from .dataset import EMOTIONS, IMAGE_SIZE, DataError, Dataset

TRAIN_FOLDERS = ("train", "training")
HELD_OUT_FOLDERS = ("test", "validation", "val")


def read_image_folder(root: str, skip_bad: bool = False) -> Dataset:
    """Load every image under ``root`` into a 7-class Dataset (labels index EMOTIONS)."""
    files = list_images(root, skip_bad)  # [(path, label, usage)]
    images, labels, usage, skipped = [], [], [], 0
    for path, label, split in tqdm(files, desc="reading images", unit="img",
                                   disable=len(files) < 2000):
        try:
            images.append(read_face(path))
        except DataError:
            if not skip_bad:
                raise
            skipped += 1
            continue
        labels.append(label)
        usage.append(split)
    stacked = np.stack(images) if images else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    return Dataset(stacked, np.array(labels, dtype=np.int64), list(EMOTIONS),
                   np.array(usage, dtype=str), skipped=skipped)


def list_images(root: str, skip_bad: bool = False) -> list[tuple[str, int, str]]:
    """(image path, label, usage) for every file in every class folder, in sorted order."""
    files = []
    for split_folder, usage in split_folders(root):
        for class_name in _visible_entries(split_folder):
            class_folder = os.path.join(split_folder, class_name)
            if not os.path.isdir(class_folder):
                continue
            if class_name.lower() not in EMOTIONS:
                raise DataError(f"{class_folder}: unknown class folder {class_name!r}; "
                                f"expected one of {', '.join(EMOTIONS)} (any letter case)")
            names = [name for name in _visible_entries(class_folder)
                     if os.path.isfile(os.path.join(class_folder, name))]
            if not names and not skip_bad:
                raise DataError(f"{class_folder}: empty class folder (no images)")
            label = EMOTIONS.index(class_name.lower())
            files += [(os.path.join(class_folder, name), label, usage) for name in names]
    return files


def split_folders(root: str) -> list[tuple[str, str]]:
    """(split folder path, usage name) for each split folder under ``root``."""
    folders = {name.lower(): os.path.join(root, name) for name in _visible_entries(root)
               if os.path.isdir(os.path.join(root, name))}
    known = TRAIN_FOLDERS + HELD_OUT_FOLDERS
    unknown = sorted(set(folders) - set(known))
    if unknown:
        raise DataError(f"{os.path.join(root, unknown[0])}: unknown split folder; "
                        f"expected train/, test/ or validation/ inside {root}")
    if not folders:
        raise DataError(f"{root}: no train/, test/ or validation/ folder inside")
    has_both = "test" in folders and ("validation" in folders or "val" in folders)
    usage = {"train": "Training", "training": "Training", "validation": "PublicTest",
             "val": "PublicTest", "test": "PrivateTest" if has_both else "PublicTest"}
    return [(folders[name], usage[name]) for name in known if name in folders]


def read_face(path: str) -> np.ndarray:
    """One image file as a grey 48x48 face: (48, 48) uint8 (centre-cropped to a square first)."""
    try:
        with open_image(path) as image:
            grey = to_8bit(image).convert("L")
    except (UnidentifiedImageError, OSError, ValueError) as error:  # PictureError is a ValueError
        raise DataError(f"{path}: unreadable image ({error})") from None
    side = min(grey.size)
    left, top = (grey.width - side) // 2, (grey.height - side) // 2
    square = grey.crop((left, top, left + side, top + side))
    if square.size != (IMAGE_SIZE, IMAGE_SIZE):
        square = square.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)
    return np.asarray(square, dtype=np.uint8)


def _visible_entries(folder: str) -> list[str]:
    """Names in ``folder`` sorted ignoring letter case, without hidden ones (".DS_Store", the cache)."""
    return sorted((name for name in os.listdir(folder) if not name.startswith(".")),
                  key=lambda name: (name.lower(), name))
