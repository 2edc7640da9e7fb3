"""Cache a parsed data set as an ``.npz`` so the second load takes about a second.

The cache sits in the folder named by the environment variable
``FER_APP_CACHE_DIR`` when it is set (the test suite sets it, so tests never
write beside shared data); else beside the data (``fer2013.csv.gz.fer_cache.npz``,
or ``<root>/.fer_cache.npz`` for an image folder) when that folder is writable, and
in ``~/.cache/fer_app/`` otherwise (shared data is often read-only). It stores
a key: the source's signature (size and modification time of the file, or of
every file under an image folder) plus the loading options that change the
content. A cache whose key differs is parsed again and rewritten. Writes are
atomic (temporary file + ``os.replace``), and a cache that cannot be written is
simply bypassed. A cache that is damaged (truncated, corrupt) is deleted with a
one-line notice on stderr and rebuilt.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import tempfile
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from .dataset import Dataset

CACHE_VERSION = 1
CACHE_SUFFIX = ".fer_cache.npz"
FALLBACK_CACHE_DIR = Path.home() / ".cache" / "fer_app"
CACHE_DIR_VARIABLE = "FER_APP_CACHE_DIR"  # when set: the folder for every cache


def load_cached(source: str, options: dict, parse: Callable[[], Dataset]) -> Dataset:
    """``parse()``'s result for ``source``, from the cache when its key still matches."""
    key = json.dumps({"version": CACHE_VERSION, "source": source_signature(source), **options},
                     sort_keys=True)
    path = cache_path(source)
    dataset = read_cache(path, key)
    if dataset is None:
        dataset = parse()
        write_cache(path, key, dataset)
    return dataset


def cache_path(source: str) -> Path:
    """Where the cache of ``source`` lives: in $FER_APP_CACHE_DIR when set, else beside
    it if that folder is writable, else in FALLBACK_CACHE_DIR."""
    source_path = Path(source).resolve()
    digest = hashlib.sha1(str(source_path).encode()).hexdigest()[:12]
    elsewhere = f"{source_path.name}-{digest}{CACHE_SUFFIX}"
    if os.environ.get(CACHE_DIR_VARIABLE):
        return Path(os.environ[CACHE_DIR_VARIABLE]) / elsewhere
    beside = source_path / CACHE_SUFFIX if source_path.is_dir() else \
        source_path.with_name(source_path.name + CACHE_SUFFIX)
    if is_writable_folder(beside.parent):
        return beside
    return FALLBACK_CACHE_DIR / elsewhere


def is_writable_folder(folder: Path) -> bool:
    """True when ``folder`` may be written. The permission bits are checked as well as
    ``os.access``, because root may write anywhere and a folder marked read-only
    (such as shared data) should still be left alone."""
    try:
        mode = os.stat(folder).st_mode
    except OSError:
        return False
    return os.access(folder, os.W_OK) and bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def source_signature(source: str) -> list:
    """[size, mtime_ns] of a file, or [[relative path, size, mtime_ns], ...] for a folder's files."""
    if not os.path.isdir(source):
        info = os.stat(source)
        return [info.st_size, info.st_mtime_ns]
    entries = []
    for folder, subfolders, names in os.walk(source):
        subfolders.sort()
        for name in sorted(names):
            if name.endswith(CACHE_SUFFIX):
                continue
            info = os.stat(os.path.join(folder, name))
            entries.append([os.path.relpath(os.path.join(folder, name), source),
                            info.st_size, info.st_mtime_ns])
    return entries


def read_cache(path: Path, key: str) -> Dataset | None:
    """The Dataset stored at ``path`` under ``key``, or None (missing, stale or damaged:
    a damaged cache is deleted, with a notice, so that it is rebuilt)."""
    try:
        with np.load(path, allow_pickle=False) as file:
            if str(file["key"]) != key:
                return None
            usage = file["usage"] if "usage" in file.files else None
            return Dataset(file["images"], file["labels"], [str(name) for name in file["class_names"]],
                           usage, skipped=int(file["skipped"]))
    except FileNotFoundError:
        return None
    except (zipfile.BadZipFile, zlib.error, EOFError, KeyError, ValueError) as error:
        print(f"note: the data cache {path} is damaged ({type(error).__name__}); "
              f"deleting it and parsing the data again", file=sys.stderr)
        remove_quietly(path)
        return None
    except OSError:   # unreadable (permissions): bypass it
        return None


def remove_quietly(path: Path) -> None:
    """Delete ``path`` if we may; a cache that stays is overwritten by the next write anyway."""
    try:
        os.remove(path)
    except OSError:
        pass


def write_cache(path: Path, key: str, dataset: Dataset) -> None:
    """Store ``dataset`` at ``path`` atomically; warn (and carry on) if that is impossible."""
    arrays = {"key": np.array(key), "images": dataset.images, "labels": dataset.labels,
              "class_names": np.array(dataset.class_names), "skipped": np.array(dataset.skipped)}
    if dataset.usage is not None:
        arrays["usage"] = np.asarray(dataset.usage, dtype=str)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(suffix=".npz.tmp", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as file:
                np.savez(file, **arrays)
            os.chmod(temporary, 0o644)  # mkstemp makes it private; a cache may be shared
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
    except OSError as error:
        warnings.warn(f"could not write the data cache {path}: {error}")
