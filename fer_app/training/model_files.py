"""The model files a training run reads: ``--init`` (starting weights) and ``--teacher``
(the distillation targets, cached by ``distill.teacher_outputs``), with the SHA-256 of each
kept in the run's settings."""
from __future__ import annotations

import os

import numpy as np

from tinycnn import nn

from ..data.load import Dataset
from ..recognition.inference import model_path, read_model_file
from . import distributed_train
from .distill import file_sha256, teacher_outputs
from .settings import TrainError


def load_teacher(settings: dict, train: Dataset, out: str) -> np.ndarray | None:
    """The teacher's log-probabilities for the training images (N, K), or None without
    --teacher. A teacher given as a path is stored absolute, so --resume finds it."""
    if settings["teacher"] is None:
        return None
    if model_path(settings["teacher"]) == settings["teacher"]:
        settings["teacher"] = os.path.abspath(settings["teacher"])
    cache = settings["teacher_cache"] or os.path.join(out, "teacher_outputs.npz")
    return distributed_train.rank_0_first(lambda: teacher_outputs(  # the others read its cache
        settings["teacher"], train.images, train.class_names, os.path.abspath(cache),
        settings["backend"]))


def record_file_digests(settings: dict, saved: dict | None) -> None:
    """settings["init_sha256"] / ["teacher_sha256"]: the SHA-256 of the file --init and
    --teacher name, kept in every checkpoint and model file of the run. A shipped model's
    name ("fast") or a path may name another file later; the digest says which one this
    run used (``sha256sum FILE``). A resumed run keeps the digests it started with; a
    TrainError if its teacher file has changed since (its targets would change mid-run)."""
    for key in ("init", "teacher"):
        digest_key = f"{key}_sha256"
        settings.pop(digest_key, None)
        if settings[key] is None:
            continue
        path = model_path(settings[key])
        digest = file_sha256(path) if os.path.isfile(path) else None   # None: a clear error follows
        if saved and saved.get(digest_key) and same_file(saved[key], settings[key]):
            if key == "teacher" and digest not in (None, saved[digest_key]):
                raise TrainError(f"--teacher {settings[key]}: the file changed since this run "
                                 f"started (SHA-256 {saved[digest_key][:16]}... then, {digest[:16]}... "
                                 f"now); resume with --teacher naming the file it started from, or "
                                 f"start a new run")
            digest = saved[digest_key]          # --init: only the first start read the file
        if digest is not None:
            settings[digest_key] = digest


def same_file(before: str, now: str) -> bool:
    """Whether two --init / --teacher values name one file (a name, or a path from any folder)."""
    return before == now or os.path.abspath(model_path(before)) == os.path.abspath(model_path(now))


def initialize_from(model: nn.Module, settings: dict, class_names: list[str]) -> None:
    """Copy the weights of the model file --init names into ``model``; it must be one
    network of the same architecture and classes."""
    path = model_path(settings["init"])
    state, metadata = read_model_file(path)
    if metadata["arch"] != settings["arch"] or metadata["class_names"] != list(class_names):
        raise TrainError(f"--init {settings['init']}: a {metadata['arch']} network for classes "
                         f"{metadata['class_names']} cannot start a {settings['arch']} for "
                         f"{list(class_names)} (an ensemble's member can be written out with "
                         f"python -m fer_app.ensemble FILE --member I --out member.npz)")
    model.load_state_dict(state)
