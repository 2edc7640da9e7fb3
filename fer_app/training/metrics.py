"""Classification metrics in plain NumPy: accuracy, confusion matrix, per-class
precision / recall / F1 and macro-F1.

For class k with confusion matrix C (rows = true class, columns = predicted):
    precision_k = C[k, k] / sum_i C[i, k]      (0 when nothing was predicted k)
    recall_k    = C[k, k] / sum_j C[k, j]      (0 when class k never occurs)
    F1_k        = 2 p r / (p + r)              (0 when p + r = 0)
    macro-F1    = mean over classes of F1_k
"""
from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """counts (K, K) int64: counts[t, p] = number of rows with true class t predicted as p."""
    y_true = np.asarray(y_true, dtype=np.int64)  # (N,)
    y_pred = np.asarray(y_pred, dtype=np.int64)  # (N,)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_true.shape[0]} true labels but {y_pred.shape[0]} predictions")
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (y_true, y_pred), 1)
    return counts


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of rows predicted correctly (0.0 for no rows)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float((y_true == y_pred).mean()) if y_true.size else 0.0


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator elementwise, 0 where the denominator is 0."""
    out = np.zeros(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def per_class_scores(counts: np.ndarray) -> dict[str, np.ndarray]:
    """precision, recall, f1 (K,) float64 and support (K,) int64 from a confusion matrix."""
    true_positives = np.diag(counts).astype(np.float64)
    precision = _safe_divide(true_positives, counts.sum(axis=0))
    recall = _safe_divide(true_positives, counts.sum(axis=1))
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": counts.sum(axis=1)}


def classification_report(y_true: np.ndarray, y_pred: np.ndarray,
                          class_names: list[str]) -> dict:
    """Everything metrics.json holds, as plain Python numbers:
    {"n", "accuracy", "macro_f1", "per_class": {name: {precision, recall, f1, support}},
     "confusion_matrix": [[...]]}."""
    counts = confusion_matrix(y_true, y_pred, len(class_names))
    scores = per_class_scores(counts)
    per_class = {name: {"precision": float(scores["precision"][k]),
                        "recall": float(scores["recall"][k]),
                        "f1": float(scores["f1"][k]),
                        "support": int(scores["support"][k])}
                 for k, name in enumerate(class_names)}
    return {"n": int(len(y_true)), "accuracy": accuracy(y_true, y_pred),
            "macro_f1": float(scores["f1"].mean()), "per_class": per_class,
            "confusion_matrix": counts.tolist()}


def format_report(report: dict) -> str:
    """Accuracy, macro-F1 and a per-class table as aligned text."""
    lines = [f"accuracy {report['accuracy']:.4f}   macro-F1 {report['macro_f1']:.4f}   "
             f"n = {report['n']}",
             f"{'class':<10} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}"]
    for name, scores in report["per_class"].items():
        lines.append(f"{name:<10} {scores['precision']:>9.3f} {scores['recall']:>7.3f} "
                     f"{scores['f1']:>7.3f} {scores['support']:>8d}")
    return "\n".join(lines)
