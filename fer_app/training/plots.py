"""Training figures as PNG files (matplotlib, Agg backend: no display needed).

- learning curves: loss and accuracy per epoch, train and validation
- confusion matrix: row-normalized (recall on the diagonal) beside raw counts
- class distribution: how many images of each class per split
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def plot_curves(history: list[dict], path: str) -> None:
    """Loss and accuracy per epoch from history rows with keys epoch, train_loss,
    train_acc, val_loss, val_acc."""
    epochs = [row["epoch"] for row in history]
    figure, (loss_axes, acc_axes) = plt.subplots(1, 2, figsize=(11, 4))
    for axes, key, title in ((loss_axes, "loss", "loss"), (acc_axes, "acc", "accuracy")):
        axes.plot(epochs, [row[f"train_{key}"] for row in history], "o-", label="train")
        axes.plot(epochs, [row[f"val_{key}"] for row in history], "o-", label="validation")
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_title(title)
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _draw_matrix(axes, matrix: np.ndarray, class_names: list[str], title: str, fmt: str) -> None:
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    axes.set_yticks(range(len(class_names)), class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, column), value in np.ndenumerate(matrix):
        color = "white" if value > threshold else "black"
        axes.text(column, row, format(value, fmt), ha="center", va="center", color=color,
                  fontsize=8)


def plot_confusion_matrix(counts: np.ndarray, class_names: list[str], path: str,
                          title: str = "") -> None:
    """counts (K, K) (rows true, columns predicted): normalized by row on the left,
    raw counts on the right."""
    row_sums = counts.sum(axis=1, keepdims=True)
    normalized = np.divide(counts, row_sums, out=np.zeros(counts.shape), where=row_sums != 0)
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5))
    _draw_matrix(left, normalized, class_names, "normalized by true class", ".2f")
    _draw_matrix(right, counts, class_names, "counts", "d")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_class_distribution(labels_by_split: dict[str, np.ndarray], class_names: list[str],
                            path: str) -> None:
    """Grouped bar chart: images per class for each split (e.g. train and validation)."""
    positions = np.arange(len(class_names))
    width = 0.8 / max(1, len(labels_by_split))
    figure, axes = plt.subplots(figsize=(8, 4))
    for index, (split, labels) in enumerate(labels_by_split.items()):
        counts = np.bincount(labels, minlength=len(class_names))
        bars = axes.bar(positions + index * width, counts, width, label=f"{split} ({len(labels)})")
        axes.bar_label(bars, fontsize=7)
    axes.set_xticks(positions + width * (len(labels_by_split) - 1) / 2, class_names)
    axes.set_ylabel("images")
    axes.set_title("class distribution")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
