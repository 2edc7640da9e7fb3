"""Knowledge distillation for ``fer_app.train``: the teacher's outputs and the student's loss.

    python -m fer_app.train --arch vgg_fer --teacher default --distill-alpha 0.7 \\
        --distill-temperature 4 --out runs/student

A student network learns from the labels and from a teacher model (any model file,
ensembles included) at once (Hinton, Vinyals & Dean, 2015):

    loss = (1 - a) * CE(z, labels) + a * T^2 * KL(softmax(t / T) || softmax(z / T))

z the student's logits, t the teacher's log-probabilities, a = --distill-alpha,
T = --distill-temperature. T > 1 softens both distributions so the student also learns
how the teacher ranks the wrong classes; the T^2 keeps the soft term's gradient
(which scales as 1/T^2) comparable to the hard term's as T changes.

The teacher's outputs are computed once per training image and cached, not on every
augmented batch. A teacher forward per batch is exact (it sees the same augmented
image) but costs about as much as the student's own step: in one run of
``python -m benchmarks.distill_cost --teacher default --data ../shared/data/fer2013/fer2013.csv.gz``
on the quiet 2-core machine here (fused teacher), the shipped three-network ensemble took 208
ms per batch of 64 and a vgg_fer training step 211 ms, so every epoch would take twice as
long (a four-network teacher, runs/teacher4.npz: 299 against 213 ms, 2.4x). The cache costs
one teacher pass over the training set, plain and mirrored, before the first epoch: about
4.3 minutes for the 28,707 Training faces, and then no more for any number of epochs or runs
on the same data. Each image's cached target is the mean of the teacher's probabilities for
the image and its mirror image (the teacher's two-view TTA). It is the same whether
augmentation flips the image or not; shifts, small rotations and zooms change an expression
little, which is the approximation the cache makes. The same run measured it on 2,000
Training faces: the teacher's output on one augmented view (train's standard augmentation)
against the cached target, softened by T = 4 as the loss uses them, differs by a mean KL of
0.0059 (0.071 at T = 1), and the two name the same top class for 91% of the faces.

With ``--mixup`` a batch blends image b with image perm[b] by lam; its teacher target is
the same blend of the two cached distributions, log(lam p_b + (1 - lam) p_perm[b])
(:func:`blended_log_probs`), as its label is the blend of the two one-hot labels. That is
not the teacher's output on the blended image (which would need a teacher pass per batch):
the same kind of approximation as the cache itself.

The cache file (``teacher_outputs.npz`` in the run folder unless --teacher-cache says
otherwise) records the SHA-256 of the teacher file and of the training images it was
made for: a changed teacher or a different training set is recomputed, never reused stale.
"""
from __future__ import annotations

import hashlib
import os

import numpy as np
from tqdm import tqdm

import tinycnn
from tinycnn import Tensor
from tinycnn import functional as F

from ..cli import UserError
from ..recognition.inference import Classifier, load_classifier, model_path

CACHE_VERSION = 1
CHUNK = 256  # faces per teacher forward pass


class TeacherError(UserError):
    """The teacher cannot teach this student (unreadable file, other classes)."""


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_key(teacher_file: str, images: np.ndarray) -> dict:
    """What a cached file must have been made from to be reused."""
    return {"version": CACHE_VERSION, "teacher_sha256": file_sha256(teacher_file),
            "images_sha256": hashlib.sha256(np.ascontiguousarray(images).data).hexdigest(),
            "views": "mean of plain and mirror"}


def two_view_log_probs(classifier: Classifier, images: np.ndarray) -> np.ndarray:
    """log of the mean of the teacher's probabilities for each face and its mirror image.

    images (N, 48, 48) uint8 -> (N, K) float32, with a progress bar.
    """
    chunks = []
    for first in tqdm(range(0, len(images), CHUNK), desc="teacher outputs", unit="batch",
                      leave=False, dynamic_ncols=True):
        faces = images[first:first + CHUNK]                                   # (B, 48, 48)
        p = (classifier.predict_proba(faces) + classifier.predict_proba(faces[:, :, ::-1])) / 2
        chunks.append(np.log(np.maximum(p, 1e-12)))                           # (B, K)
    return np.concatenate(chunks).astype(np.float32)


def teacher_outputs(teacher: str, images: np.ndarray, class_names: list[str], cache: str,
                    backend: str | None = None) -> np.ndarray:
    """The teacher's log-probabilities (N, K) for the training images (N, 48, 48), read from
    ``cache`` when it was made from the same teacher file and images, else computed and saved
    there. ``teacher`` is a model file or a shipped model's name ("default", "fast")."""
    teacher_file = model_path(teacher)
    if not os.path.isfile(teacher_file):
        raise TeacherError(f"--teacher {teacher}: model file not found")
    key = cache_key(teacher_file, images)
    if os.path.isfile(cache):
        try:
            state, metadata = tinycnn.load(cache)
        except tinycnn.SerializationError as error:   # e.g. cut short by a full disk
            state, metadata = {}, {}
            print(f"teacher outputs: {cache} cannot be read ({error}); recomputing", flush=True)
        if metadata.get("key") == key and metadata.get("class_names") == list(class_names):
            print(f"teacher outputs: reusing {cache}", flush=True)
            return state["log_probs"]
        if metadata:
            print(f"teacher outputs: {cache} was made from another teacher or data; recomputing",
                  flush=True)
    classifier = load_classifier(teacher_file, backend)
    if classifier.class_names != list(class_names):
        raise TeacherError(f"--teacher {teacher} predicts {classifier.class_names}, but the student "
                           f"is trained on {list(class_names)}; use a teacher with the same classes "
                           f"(--classes / --merge-disgust)")
    log_probs = two_view_log_probs(classifier, images)
    tinycnn.save({"log_probs": log_probs}, cache,
                 {"key": key, "class_names": list(class_names), "teacher": teacher_file})
    print(f"teacher outputs: {len(images)} images x 2 views written to {cache}", flush=True)
    return log_probs


def blended_log_probs(log_probs: np.ndarray, lam: float, partner: np.ndarray) -> np.ndarray:
    """log(lam p + (1 - lam) p[partner]) row by row, p = exp(log_probs): the teacher's
    distribution for mixup's blend of each image with its partner.

    log_probs (B, K) log-probabilities, lam in [0, 1], partner (B,) a permutation -> (B, K).
    """
    with np.errstate(divide="ignore"):  # lam 0 or 1: log 0 = -inf, and logaddexp keeps the other
        return np.logaddexp(np.log(lam) + log_probs, np.log1p(-lam) + log_probs[partner])


def distillation_loss(logits: Tensor, targets, teacher_log_probs, alpha: float,
                      temperature: float, label_smoothing: float = 0.0,
                      class_weight=None) -> Tensor:
    """(1 - a) * cross-entropy with the targets + a * T^2 * KL(teacher_T || student_T).

    logits (B, K) Tensor; targets (B,) labels or (B, K) distributions; teacher_log_probs
    (B, K) array. a = 0 is plain (smoothed, weighted) cross-entropy.
    """
    hard = F.softmax_cross_entropy(logits, targets, label_smoothing, class_weight)
    if alpha == 0:
        return hard
    soft = F.soft_target_kl(logits, teacher_log_probs, temperature)
    return hard * (1 - alpha) + soft * (alpha * temperature ** 2)
