"""Mixup for ``fer_app.train --mixup ALPHA``: train on blends of pairs of images and labels."""
from __future__ import annotations

import numpy as np

from .distill import blended_log_probs


def mixup(x: np.ndarray, labels: np.ndarray, num_classes: int, alpha: float,
          rng: np.random.Generator, teacher_log_probs: np.ndarray | None = None
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Mixup (Zhang et al., 2018): x' = lam x + (1 - lam) x[perm] and the same blend of the
    one-hot targets, with one lam ~ Beta(alpha, alpha) per batch; with --teacher also the
    same blend of the teacher's distributions (``distill.blended_log_probs``).

    x (B, 1, 48, 48), labels (B,), teacher_log_probs (B, K) or None -> x' (B, 1, 48, 48),
    targets (B, K) float32, and the blended teacher log-probabilities (B, K) or None.
    """
    lam = np.float32(rng.beta(alpha, alpha))
    partner = rng.permutation(len(labels))
    one_hot = np.eye(num_classes, dtype=np.float32)[labels]  # (B, K)
    teacher = None if teacher_log_probs is None else blended_log_probs(teacher_log_probs, lam, partner)
    return lam * x + (1 - lam) * x[partner], lam * one_hot + (1 - lam) * one_hot[partner], teacher
