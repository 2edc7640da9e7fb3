"""Accuracy against cost: the distillation table and plot.

    python -m fer_app.distill_report default runs/vgg_fer_60.npz runs/fast_init/model.npz \\
        runs/fast_small/model.npz --plot docs/distill/accuracy_vs_flops.png

For each model file (or shipped model name): its architecture, parameters, GFLOPs per face
(forward), accuracy on a split (PublicTest by default) in one plain pass and with
test-time augmentation, macro-F1, and the milliseconds it takes to classify one face
here (median of --repeats calls of one face, after a warm-up; the recognizer's case).
The plot puts plain and TTA accuracy against GFLOPs (log scale).
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as train/evaluate do (see train.py)

import argparse
import sys

from .cli import error_boundary, writable_file
from .data.load import find_data, select_split
from .evaluate import dataset_for
from .model_card import gflops, ms_per_face, plain_and_tta_reports
from .recognition.inference import load_classifier
from .training import markdown


def model_row(model: str, data: str, split: str, repeats: int) -> dict:
    classifier = load_classifier(model)
    ds = select_split(dataset_for(classifier, data), split)
    plain, tta = plain_and_tta_reports(classifier, ds)
    arch = classifier.metadata["arch"]
    if arch == "ensemble":
        arch = " + ".join(member["arch"] for member in classifier.metadata["members"])
    return {"model": model, "arch": arch, "parameters": classifier.model.num_parameters(),
            "gflops": gflops(classifier), "plain": plain["accuracy"], "tta": tta["accuracy"],
            "macro_f1": plain["macro_f1"], "teacher": classifier.metadata.get("settings", {}).get("teacher"),
            "ms": ms_per_face(classifier, ds.images[:1], repeats), "n": len(ds)}


def label(model: str) -> str:
    """A short name for a model: the run folder of a runs/NAME/model.npz, else the file's name."""
    name = os.path.basename(model)
    if name == "model.npz":
        return os.path.basename(os.path.dirname(os.path.abspath(model)))
    return name[:-len(".npz")] if name.endswith(".npz") else name


def labels(models: list[str]) -> list[str]:
    """:func:`label` of each model; a label that two models share gets the model's folder in
    front ("student_ft/swa" and "student_ft2/swa" for two runs' swa.npz)."""
    short = [label(model) for model in models]
    return [f"{os.path.basename(os.path.dirname(os.path.abspath(model)))}/{name}"
            if short.count(name) > 1 and os.path.basename(model) != "model.npz" else name
            for model, name in zip(models, short)]


def markdown_table(rows: list[dict], split: str) -> str:
    header = ["model", "network", "teacher", "parameters", "GFLOPs/face", f"{split} acc (one pass)",
              "acc TTA", "macro-F1 (one pass)", "ms per face"]
    cells = [[name, row["arch"],
              os.path.basename(row["teacher"]) if row["teacher"] else "-", f"{row['parameters']:,}",
              f"{row['gflops']:.3f}", f"{row['plain']:.4f}", f"{row['tta']:.4f}",
              f"{row['macro_f1']:.4f}", f"{row['ms']:.2f}"]
             for name, row in zip(labels([row["model"] for row in rows]), rows)]
    return markdown.markdown_table(header, cells)


def plot_accuracy_vs_flops(rows: list[dict], path: str, split: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    flops = [row["gflops"] for row in rows]
    axes.scatter(flops, [row["plain"] for row in rows], label="one pass", marker="o")
    axes.scatter(flops, [row["tta"] for row in rows], label="TTA (10 views)", marker="^")
    for name, row in zip(labels([row["model"] for row in rows]), rows):
        axes.annotate(name,
                      (row["gflops"], row["plain"]), textcoords="offset points", xytext=(5, -12),
                      fontsize=8)
    axes.set_xscale("log")
    axes.set_xlabel("GFLOPs per face (forward, log scale)")
    axes.set_ylabel(f"{split} accuracy")
    axes.set_title("Accuracy against cost")
    axes.grid(True, alpha=0.3)
    axes.legend()
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)


@error_boundary
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer_app.distill_report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="model files or shipped model names ('default', 'fast')")
    parser.add_argument("--split", default="PublicTest", help="split to score (default PublicTest)")
    parser.add_argument("--data", help="FER-2013 file (default: searched)")
    parser.add_argument("--repeats", type=int, default=50, help="timed one-face calls per model (default 50)")
    parser.add_argument("--plot", help="write the accuracy-against-GFLOPs plot to this PNG")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.plot:
        writable_file(args.plot, "--plot")
    data = find_data(args.data)
    rows = [model_row(model, data, args.split, args.repeats) for model in args.models]
    print(markdown_table(rows, args.split))
    if args.plot:
        plot_accuracy_vs_flops(rows, args.plot, args.split)
        print(f"plot written to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
