"""Train a network on FER-2013.

    python -m fer_app.train --data ../shared/data/fer2013/fer2013.csv.gz --arch vgg_fer \\
        --epochs 30 --batch-size 64 --lr 1e-3 --out runs/vgg_fer

Each epoch: shuffle, augment and normalize batches, one optimizer step per batch
(progress bar with loss, accuracy, images/s and ETA), then evaluate the
validation set (PublicTest when the data has a Usage column; a random share of the
Training rows with --val-split random) and write to --out:

    model.npz       the best model so far on validation accuracy (loads with no other file)
    snapshots/epoch_NNN.npz   with --snapshots, every epoch's model (for fer_app.swa)
    last.npz        the full training state, written atomically every epoch (--resume)
    history.csv     one row per epoch          curves.png   loss and accuracy curves
and at the end: metrics.json, confusion_matrix.png (best model on validation),
class_distribution.png (written at the start).

A run killed at any moment continues with ``--resume`` (same --out) from the last
finished epoch; the settings saved in last.npz are used unless given again on the
command line. A loss that turns NaN or infinite, or grows past --divergence-factor
(default 10) times its start (see loss_limit), stops the run with exit code 1, keeping
the last good checkpoint.

Distillation (fer_app/training/distill.py): ``--teacher MODEL`` trains the network to match a
teacher model's softened class probabilities as well as the labels; ``--init MODEL``
starts from a trained model's weights instead of a random initialization.
"""
from __future__ import annotations

import os

# One BLAS thread unless the variable says otherwise, set before NumPy loads OpenBLAS:
# on the shared 2-core machine OpenBLAS's threads spin against the other jobs (a vgg_fer
# training step took 3.1 CPU-s with two threads, 0.33 CPU-s with one).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import csv
import json
import math
import sys
import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

import tinycnn
from tinycnn import backend as backends
from tinycnn import distributed
from tinycnn import functional as F
from tinycnn import nn, optim

from .cli import error_boundary
from .data.augment import AugmentConfig, augment_batch
from .data.load import Dataset, find_data, load_dataset, split_dataset
from .data.normalize import Normalizer
from .models import ARCHITECTURES, build_model
from .recognition.inference import Classifier
from .training import distributed_train, plots
from .training.checkpoint import (load_training_state, read_checkpoint, remove_stale_temporaries,
                                  save_training_state)
from .training.distill import distillation_loss
from .training.metrics import classification_report, format_report
from .training.mixup import mixup
from .training.model_files import initialize_from, load_teacher, record_file_digests
from .training.optimization import build_optimizer, build_scheduler, resync_learning_rate, step_scheduler
from .training.settings import (AUGMENT_PRESETS, DEFAULTS, TrainError, augment_config,
                                check_resume_options, choose_settings)

HISTORY_FIELDS = ["epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc",
                  "val_macro_f1", "seconds", "images_per_second"]


# --- command line -------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m fer_app.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    d = DEFAULTS
    p.add_argument("--data", help="FER-2013 CSV (.csv/.csv.gz) or image-folder root "
                   "(default: searched in ./fer2013.csv, ./data/, ../shared/data/fer2013/)")
    p.add_argument("--arch", choices=list(ARCHITECTURES), help=f"architecture (default {d['arch']})")
    p.add_argument("--backend", choices=backends.names(),
                   help="tinycnn backend (default: numba if it runs here, else numpy)")
    p.add_argument("--epochs", type=int, help=f"number of epochs (default {d['epochs']})")
    p.add_argument("--batch-size", type=int, help=f"default {d['batch_size']}")
    p.add_argument("--lr", type=float, help=f"learning rate; the peak for onecycle (default {d['lr']})")
    p.add_argument("--out", required=True, help="output folder, e.g. runs/NAME")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from last.npz")
    p.add_argument("--classes", type=int, choices=(6, 7),
                   help="7 classes, or 6 without disgust (default 6 for seed002, else 7)")
    p.add_argument("--merge-disgust", action="store_true", default=None,
                   help="merge disgust into angry (6 classes)")
    p.add_argument("--skip-bad", action="store_true", default=None,
                   help="skip bad rows/images instead of stopping")
    p.add_argument("--val-split", choices=("PublicTest", "random"),
                   help="validate on the PublicTest rows (default), or on a random stratified "
                        "--val-fraction of the Training rows, as the seed projects held out theirs")
    p.add_argument("--val-fraction", type=float,
                   help=f"validation share for --val-split random or data without a Usage column "
                        f"(default {d['val_fraction']})")
    p.add_argument("--optimizer", choices=("adam", "adamw", "sgd", "rmsprop"),
                   help=f"default {d['optimizer']}; rmsprop uses Keras's rule (rho 0.9, eps 1e-7), "
                        f"the optimizer of a Keras model compiled without one")
    p.add_argument("--weight-decay", type=float,
                   help="L2 (adam, sgd, rmsprop) or decoupled (adamw) weight decay (default 0)")
    p.add_argument("--momentum", type=float, help=f"SGD Nesterov momentum (default {d['momentum']})")
    p.add_argument("--schedule", choices=("none", "cosine", "onecycle", "step", "plateau"),
                   help=f"learning-rate schedule (default {d['schedule']})")
    p.add_argument("--label-smoothing", type=float, help="default 0")
    p.add_argument("--mixup", type=float,
                   help="mixup alpha: blend pairs of training images and their labels (default 0 = off)")
    p.add_argument("--class-weight", choices=("none", "balanced"),
                   help="balanced: weight class k by N / (K * N_k) in the loss (default none)")
    p.add_argument("--normalize", choices=("per_image", "dataset"), help=f"default {d['normalize']}")
    p.add_argument("--augment", choices=list(AUGMENT_PRESETS),
                   help=f"augmentation preset (default {d['augment']}); the flags below override it")
    p.add_argument("--flip", type=float, help="probability of a horizontal flip")
    p.add_argument("--shift", type=int, help="largest shift in pixels")
    p.add_argument("--rotation", type=float, help="largest rotation in degrees")
    p.add_argument("--zoom", type=float, help="largest zoom change (0.1 = 10%%)")
    p.add_argument("--shear", type=float, help="largest shear in degrees")
    p.add_argument("--erase", type=float, help="probability of random erasing")
    p.add_argument("--patience", type=int,
                   help="stop after this many epochs without a lower validation loss (0 = never)")
    p.add_argument("--divergence-factor", type=float,
                   help=f"stop when a batch loss passes this many times its start (default "
                        f"{d['divergence_factor']:g}); 'inf' turns this off, a NaN or infinite loss "
                        f"still stops. Keras has no such stop: RMSprop's first steps on seed001 "
                        f"pass 10 times and recover")
    p.add_argument("--seed", type=int, help="seed for initialization, shuffling, augmentation")
    p.add_argument("--limit", type=int, help="train on only this many (random) training rows")
    p.add_argument("--distributed", action="store_true",
                   help="train on the MPI ranks (found without it when started by mpiexec)")
    p.add_argument("--init", help="start from this model file's weights (same --arch and classes; "
                   "'default'/'fast' name a shipped model) instead of a random initialization")
    p.add_argument("--teacher", help="distill from this model file or shipped model name "
                   "('default', 'fast'; ensembles too): see fer_app/training/distill.py")
    p.add_argument("--distill-alpha", type=float,
                   help=f"weight a of the teacher term, in [0, 1] (default {d['distill_alpha']})")
    p.add_argument("--distill-temperature", type=float,
                   help=f"softening temperature T > 0 (default {d['distill_temperature']})")
    p.add_argument("--teacher-cache", help="where the teacher's outputs are cached "
                   "(default: teacher_outputs.npz in --out); runs on the same data may share one")
    p.add_argument("--snapshots", action="store_true", default=None,
                   help="also keep every epoch's model as snapshots/epoch_NNN.npz in --out, "
                        "for weight averaging (python -m fer_app.swa)")
    return p.parse_args(argv)


# --- data -------------------------------------------------------------------------
def load_splits(settings: dict) -> tuple[Dataset, Dataset]:
    """(train, validation) as the settings ask, --limit applied to the training rows."""
    path = os.path.abspath(find_data(settings["data"]))
    settings["data"] = path  # saved in last.npz: --resume finds it from any folder
    ds = load_dataset(path, settings["classes"], settings["merge_disgust"], settings["skip_bad"])
    if ds.skipped:
        print(f"skipped {ds.skipped} bad row(s)/image(s) in {path}")
    train, val = split_dataset(ds, settings["val_fraction"], settings["seed"], settings["val_split"])
    if settings["limit"] is not None and settings["limit"] < len(train):
        rows = np.random.default_rng(settings["seed"]).permutation(len(train))[:settings["limit"]]
        train = train.subset(np.sort(rows))
    if len(train) < 2 or len(val) == 0:
        raise TrainError(f"{path}: need at least 2 training rows and 1 validation row, got "
                         f"{len(train)} and {len(val)}")
    check_classes(train, path)
    return train, val


def check_classes(train: Dataset, path: str) -> None:
    """A TrainError when the training rows hold fewer than two classes (nothing to tell
    apart); a warning on stderr naming the classes that have no training row (the
    model gets an output for each, which it will learn never to predict)."""
    counts = train.class_counts()  # (K,)
    present = [name for name, count in zip(train.class_names, counts) if count]
    if len(present) < 2:
        raise TrainError(f"{path}: the training rows hold only one class ({present[0]}); a "
                         f"classifier needs at least two (check --data, --limit and --classes)")
    absent = [name for name, count in zip(train.class_names, counts) if not count]
    if absent:
        print(f"warning: no training rows of {', '.join(absent)} in {path}; the model will "
              f"learn never to predict {'it' if len(absent) == 1 else 'them'}", file=sys.stderr)


def balanced_class_weight(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """w_k = N / (K * N_k) (K, float32); a class with no rows gets weight 0."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.divide(len(labels), num_classes * counts, out=np.zeros(num_classes), where=counts > 0)
    return weights.astype(np.float32)


# --- the run's state --------------------------------------------------------------------
@dataclass
class Run:
    """Everything one training run works with."""
    settings: dict
    out: str
    train: Dataset
    val: Dataset
    model: nn.Module
    optimizer: optim.Optimizer
    scheduler: object                 # a tinycnn.optim schedule, or None
    normalizer: Normalizer
    augment: AugmentConfig
    class_weight: np.ndarray | None   # (K,) loss weight per class
    rng: np.random.Generator          # shuffling and augmentation
    progress: dict                    # epoch, history, best scores (saved in last.npz)
    teacher_log_probs: np.ndarray | None = None  # (N_train, K) with --teacher
    loss_limit: float | None = None   # divergence bound, set at the first batch (loss_limit)

    def path(self, name: str) -> str:
        return os.path.join(self.out, name)


def start_run(args: argparse.Namespace) -> Run:
    """Settings, data, model, optimizer and schedule; restored from last.npz on --resume."""
    last_path = os.path.join(args.out, "last.npz")
    saved = None
    if args.resume:
        if not os.path.isfile(last_path):
            raise TrainError(f"--resume: no checkpoint {last_path}")
        saved = read_checkpoint(last_path)[1]["settings"]
        check_resume_options(args, saved, last_path)
    elif os.path.exists(last_path):
        raise TrainError(f"{args.out} already holds a run; continue it with --resume or choose another --out")
    settings = choose_settings(args, saved)
    distributed_train.use_backend(settings["backend"])
    train, val = load_splits(settings)
    problem = distributed_train.check(settings["batch_size"], len(train))
    if problem:
        raise TrainError(problem)
    record_file_digests(settings, saved)
    teacher_log_probs = load_teacher(settings, train, args.out)

    tinycnn.manual_seed(settings["seed"])
    model = build_model(settings["arch"], len(train.class_names))
    if settings["init"] is not None and not args.resume:
        initialize_from(model, settings, train.class_names)
    optimizer = build_optimizer(model, settings)
    scheduler = build_scheduler(optimizer, settings, len(batch_bounds(len(train), settings["batch_size"])))
    class_weight = (balanced_class_weight(train.labels, len(train.class_names))
                    if settings["class_weight"] == "balanced" else None)
    run = Run(settings, args.out, train, val, model, optimizer, scheduler,
              Normalizer(mode=settings["normalize"]).fit(train.images), augment_config(settings),
              class_weight, np.random.default_rng([settings["seed"], 1]),
              {"epoch": 0, "history": [], "best_val_acc": -1.0, "best_val_loss": math.inf,
               "epochs_since_better_loss": 0}, teacher_log_probs)
    if args.resume:
        metadata = load_training_state(last_path, model, optimizer, scheduler, run.rng)
        run.progress = {key: metadata[key] for key in run.progress}
        run.normalizer = Normalizer.from_dict(metadata["normalization"])
        resync_learning_rate(scheduler)
    distributed.broadcast_parameters(model)
    return run


# --- one epoch ------------------------------------------------------------------------
def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """(first, stop) of each batch of an epoch of n rows. A last batch of a single row
    would give batch norm one value per feature, so that row joins the batch before it (rows
    fewer than 2 per rank, when training on several)."""
    bounds = [(first, min(first + batch_size, n)) for first in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < 2 * distributed.world_size():
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


def loss_limit(first_loss: float, num_classes: int, factor: float = 10.0) -> float:
    """The batch loss above which a run counts as diverged: ``factor`` times the
    larger of the first batch's loss (this process's first, so a resumed run measures
    from where it resumed) and log K (what a network that knows nothing scores).

    For 7 classes and the default factor 10 that is at least 19.5: a mean cross-entropy that high means the
    network gives the right class a probability below 1e-8 on average, confidently
    wrong in a way a healthy run never is. An Adam run at --lr 1e6 passes it at its
    second batch (vgg_fer on 64 generated faces: loss 6e13).
    """
    return factor * max(first_loss, math.log(num_classes))


def diverged(run: Run, value: float, what: str, where: str) -> TrainError:
    """The error that stops a diverged run: which loss (``what``) became what, ``where``
    ("epoch 3, batch 7"), and what is left to resume from."""
    why = "not finite" if not math.isfinite(value) else f"over the limit {run.loss_limit:.3g}"
    return TrainError(f"training diverged: {what} became {value:.4g} at {where} ({why}, lr "
                      f"{run.optimizer.lr:.3g}); stopping. {kept_checkpoint(run)} Try a lower --lr.")


def kept_checkpoint(run: Run) -> str:
    """What is left to resume from: last.npz of the last finished epoch, or nothing."""
    last = run.path("last.npz")
    if not os.path.isfile(last):
        return "No checkpoint was written yet."
    return f"The last good checkpoint is kept: {last} (epoch {run.progress['epoch']})."


def train_epoch(run: Run, epoch: int) -> dict:
    """One pass over the shuffled training set. Returns train_loss, train_acc,
    seconds and images_per_second; raises TrainError when the loss is not finite or
    above the divergence limit (loss_limit)."""
    run.model.train()
    order = run.rng.permutation(len(run.train))  # the same on every rank
    rng = distributed_train.epoch_rng(run.rng, run.settings["seed"], epoch)  # augmentation, mixup
    batch_size = run.settings["batch_size"]
    total_loss = correct = seen = 0
    start = time.perf_counter()
    bar = tqdm(batch_bounds(len(order), batch_size), desc=f"epoch {epoch}/{run.settings['epochs']}",
               unit="batch", leave=False, dynamic_ncols=True,
               disable=not distributed_train.is_writer())
    for first, stop in bar:
        rows = distributed_train.shard(order[first:stop])                       # this rank's rows
        images = augment_batch(run.train.images[rows], run.augment, rng)       # (B, 48, 48) float32
        x = run.normalizer.apply(images)                                        # (B, 1, 48, 48)
        labels = run.train.labels[rows]                                         # (B,)
        targets = labels                                                        # (B,) or (B, K)
        teacher = None if run.teacher_log_probs is None else run.teacher_log_probs[rows]  # (B, K)
        if run.settings["mixup"] > 0:
            x, targets, teacher = mixup(x, labels, len(run.train.class_names), run.settings["mixup"],
                                        rng, teacher)
        logits = run.model(tinycnn.Tensor(x))                                   # (B, K)
        loss = batch_loss(run, logits, targets, teacher)
        value = loss.item()
        if run.loss_limit is None and math.isfinite(value):
            run.loss_limit = loss_limit(value, len(run.train.class_names), run.settings["divergence_factor"])
        if not math.isfinite(value) or value > run.loss_limit:
            bar.close()
            raise diverged(run, value, "loss", f"epoch {epoch}, batch {first // batch_size + 1}")
        run.optimizer.zero_grad()
        loss.backward()
        distributed.allreduce_gradients(run.model, share=len(rows) / (stop - first))
        run.optimizer.step()
        if isinstance(run.scheduler, optim.OneCycleLR):
            run.scheduler.step()
        total_loss += value * len(rows)
        correct += int((logits.numpy().argmax(axis=1) == labels).sum())
        seen += len(rows)
        bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}",
                        img_s=f"{seen / (time.perf_counter() - start):.0f}")
    bar.close()
    distributed.average_buffers(run.model)  # the ranks' batch-norm running statistics
    total_loss, correct, seen = distributed.sum_numbers(total_loss, correct, seen)
    seconds = time.perf_counter() - start
    return {"train_loss": total_loss / seen, "train_acc": correct / seen, "seconds": seconds,
            "images_per_second": seen / seconds}


def batch_loss(run: Run, logits: tinycnn.Tensor, targets: np.ndarray,
               teacher_log_probs: np.ndarray | None) -> tinycnn.Tensor:
    """Cross-entropy with the targets, plus the teacher's term with --teacher
    (fer_app/training/distill.py). logits (B, K); teacher_log_probs (B, K) or None."""
    smoothing = run.settings["label_smoothing"]
    if teacher_log_probs is None:
        return F.softmax_cross_entropy(logits, targets, smoothing, run.class_weight)
    return distillation_loss(logits, targets, teacher_log_probs,
                             run.settings["distill_alpha"], run.settings["distill_temperature"],
                             smoothing, run.class_weight)


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean of -log softmax(logits)[label] (plain: unweighted, unsmoothed)."""
    shifted = logits - logits.max(axis=1, keepdims=True)                  # (N, K)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, K)
    return float(-log_p[np.arange(len(labels)), labels].mean())


def validate(run: Run) -> tuple[dict, np.ndarray]:
    """Validation loss, accuracy and macro-F1 (eval mode, no graph), and the predictions (N,)."""
    classifier = Classifier(run.model, run.val.class_names, run.normalizer)
    logits = classifier.predict_logits(run.val.images)  # (N, K)
    predictions = logits.argmax(axis=1)
    report = classification_report(run.val.labels, predictions, run.val.class_names)
    scores = {"val_loss": cross_entropy(logits, run.val.labels), "val_acc": report["accuracy"],
              "val_macro_f1": report["macro_f1"]}
    return scores, predictions


def run_epoch(run: Run, epoch: int) -> None:
    """Train, validate, step the schedule, then save model.npz (if best), last.npz,
    history.csv and curves.png, and print the epoch's summary line."""
    row = {"epoch": epoch, "lr": run.optimizer.lr, **train_epoch(run, epoch)}
    scores, _ = validate(run)
    row.update(scores)
    if not math.isfinite(row["val_loss"]):
        raise diverged(run, row["val_loss"], "validation loss", f"epoch {epoch}")
    step_scheduler(run.scheduler, row["val_loss"])
    progress = run.progress
    progress["epoch"] = epoch
    progress["history"].append(row)
    if row["val_loss"] < progress["best_val_loss"]:
        progress["best_val_loss"], progress["epochs_since_better_loss"] = row["val_loss"], 0
    else:
        progress["epochs_since_better_loss"] += 1
    metadata = model_metadata(run)
    improved = row["val_acc"] > progress["best_val_acc"]
    if improved:
        progress["best_val_acc"] = row["val_acc"]
    if distributed_train.is_writer():  # rank 0 alone writes, when training on several
        if improved:
            tinycnn.save(run.model.state_dict(), run.path("model.npz"),
                         {**metadata, "epoch": epoch, "val": scores})
        if run.settings["snapshots"]:
            os.makedirs(run.path("snapshots"), exist_ok=True)
            tinycnn.save(run.model.state_dict(), run.path(f"snapshots/epoch_{epoch:03d}.npz"),
                         {**metadata, "epoch": epoch, "val": scores})
        save_training_state(run.path("last.npz"), run.model, run.optimizer, run.scheduler, run.rng,
                            {**metadata, **progress})
        write_history(progress["history"], run.path("history.csv"))
        plots.plot_curves(progress["history"], run.path("curves.png"))
    print(format_epoch(row, improved), flush=True)


# --- files ------------------------------------------------------------------------------
def model_metadata(run: Run) -> dict:
    """What model.npz needs to be loaded and used alone (see inference.load_classifier)."""
    return {"arch": run.settings["arch"], "num_classes": len(run.train.class_names),
            "class_names": list(run.train.class_names), "normalization": run.normalizer.to_dict(),
            "settings": run.settings}


def write_history(history: list[dict], path: str) -> None:
    temporary = path + ".tmp"
    with open(temporary, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=HISTORY_FIELDS)
        writer.writeheader()
        writer.writerows(history)
    os.replace(temporary, path)


def format_epoch(row: dict, best: bool) -> str:
    return (f"epoch {row['epoch']:3d}  lr {row['lr']:.2e}  train loss {row['train_loss']:.4f} "
            f"acc {row['train_acc']:.4f}  val loss {row['val_loss']:.4f} acc {row['val_acc']:.4f} "
            f"F1 {row['val_macro_f1']:.4f}  {row['seconds']:.0f}s "
            f"({row['images_per_second']:.0f} img/s){'  *best' if best else ''}")


def finish(run: Run) -> dict:
    """Evaluate the best model (model.npz) on validation: metrics.json and confusion_matrix.png."""
    state, metadata = tinycnn.load(run.path("model.npz"))
    run.model.load_state_dict(state)
    _, predictions = validate(run)
    report = classification_report(run.val.labels, predictions, run.val.class_names)
    report["epoch"] = metadata["epoch"]
    with open(run.path("metrics.json"), "w") as file:
        json.dump(report, file, indent=2)
    title = f"{metadata['arch']}, epoch {metadata['epoch']}: validation accuracy {report['accuracy']:.3f}"
    plots.plot_confusion_matrix(np.array(report["confusion_matrix"]), run.val.class_names,
                                run.path("confusion_matrix.png"), title)
    return report


# --- the whole run ------------------------------------------------------------------------
def train_model(args: argparse.Namespace) -> dict:
    """Run (or resume) training as ``args`` say; returns the best model's validation report."""
    run = start_run(args)
    if distributed_train.is_writer():
        os.makedirs(run.out, exist_ok=True)
        for path in remove_stale_temporaries(run.out):
            print(f"removed {path}, left by an interrupted write")
        plots.plot_class_distribution({"train": run.train.labels, "validation": run.val.labels},
                                      run.train.class_names, run.path("class_distribution.png"))
    done = run.progress["epoch"]
    print(f"{run.settings['arch']} ({run.model.num_parameters():,} parameters) on "
          f"{run.settings['backend']}: {len(run.train)} training / {len(run.val)} validation "
          f"images, {len(run.train.class_names)} classes, "
          f"{f'resuming after epoch {done}' if args.resume else 'starting'}", flush=True)
    patience = run.settings["patience"]
    for epoch in range(done + 1, run.settings["epochs"] + 1):
        if run.progress["epochs_since_better_loss"] >= patience > 0:
            print(f"early stop: validation loss has not improved for {patience} epochs")
            break
        run_epoch(run, epoch)
    if not distributed_train.is_writer():
        return {}
    report = finish(run)
    print(f"best model: epoch {report['epoch']}, {run.path('model.npz')}")
    print(format_report(report))
    return report


def main(argv: list[str] | None = None) -> int:
    """Train as the options say. After an error on any rank (one line, see fer_app/cli.py)
    or Ctrl+C, every rank of a data-parallel run ends."""
    code = train_command(argv)
    return distributed_train.stop(code) if code else 0


@error_boundary
def train_command(argv: list[str] | None) -> int:
    args = parse_args(argv)
    try:
        distributed_train.start(args.distributed)
        train_model(args)
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with --resume --out {args.out}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
