"""Save a model's state to one ``.npz`` file and load it back, bit for bit.

The file holds one array per parameter/buffer under its dotted name, plus an
optional JSON metadata string under ``__meta__`` (architecture, class names,
normalization...). No pickle: files load with ``allow_pickle=False``.
A file that is not such an archive (empty, truncated, random bytes, a pickle,
metadata that is not a JSON object) raises :class:`SerializationError`, one
message naming the file.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib

import numpy

META_KEY = "__meta__"
ZIP_MAGIC = b"PK\x03\x04"  # how every .npz (a zip archive) begins


class SerializationError(ValueError):
    """A file that :func:`load` cannot read as a tinycnn ``.npz`` (damaged or another format)."""


def save(state: dict, path: str, metadata: dict | None = None) -> None:
    """Write ``state`` (name -> array) and ``metadata`` atomically: a temporary file
    in the same folder, then a rename, so a crash never leaves half a file."""
    arrays = {name: numpy.asarray(value) for name, value in state.items()}
    if META_KEY in arrays:
        raise ValueError(f"{META_KEY!r} is reserved for metadata")
    arrays[META_KEY] = numpy.array(json.dumps(metadata or {}))
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".npz.tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as file:
            numpy.savez(file, **arrays)
        os.chmod(temporary, 0o644)   # mkstemp makes the file private; a model file is for sharing
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def load(path: str) -> tuple[dict, dict]:
    """Read a file written by :func:`save`: ``(state, metadata)``.

    Every array is read (and its zip checksum checked) here, so a damaged file fails
    now, with a :class:`SerializationError`; a missing file is a FileNotFoundError.
    """
    with open(path, "rb") as file:
        start = file.read(len(ZIP_MAGIC))
    if start != ZIP_MAGIC:
        what = "empty" if not start else "not a zip archive"
        raise SerializationError(f"{path}: not a tinycnn .npz file ({what})")
    try:
        with numpy.load(path, allow_pickle=False) as file:
            state = {name: file[name] for name in file.files if name != META_KEY}
            metadata = json.loads(str(file[META_KEY])) if META_KEY in file.files else {}
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as error:
        raise SerializationError(f"{path}: damaged .npz file, truncated or corrupt "
                                 f"({type(error).__name__}: {error})") from None
    if not isinstance(metadata, dict):
        raise SerializationError(f"{path}: its metadata is not a JSON object")
    return state, metadata
