"""Weight averaging and batch-norm recalibration: one network whose weights are the mean of
one or more snapshots, with its batch-norm statistics measured on clean Training images.

    python -m fer_app.swa runs/wide_mix/model.npz \\
        --data ../shared/data/fer2013/fer2013.csv.gz --out runs/recalibrated/wide_mix.npz
    python -m fer_app.train ... --init runs/student_mix/model.npz --schedule none --lr 0.005 \\
        --epochs 12 --snapshots --out runs/student_swa
    python -m fer_app.swa runs/student_swa/snapshots/epoch_*.npz \\
        --data ../shared/data/fer2013/fer2013.csv.gz --out runs/student_swa/swa.npz

Snapshots of one run taken at a constant (not decaying) learning rate lie around a wide
minimum of the training loss; their mean lies nearer its centre, where the loss on new data
tends to be lower than at any one snapshot (Izmailov et al., 2018, "Averaging Weights Leads
to Wider Optima and Better Generalization"). The average is one network of the same size, so
it costs nothing at inference:

    w_swa = (1 / S) * sum over the S snapshots of w_s       (every weight and bias)

Batch norm's running statistics are not averaged: the mean of the snapshots' running means
is not the mean of the averaged network's activations. They are measured again in one pass
over the Training images (no augmentation, normalized as in training), with the batch norm
layers in training mode and the rest in eval mode (no dropout), the running statistics reset
and the k-th batch given momentum 1/k: each running statistic is then the mean of the
batches' statistics (:func:`refresh_batch_norm`).

Given one model file, nothing is averaged: only the batch-norm statistics are measured
again. That alone helps. During training the running statistics follow the training
batches, which are augmented (shifts, rotations, random erasing) and, with --mixup, blends
of two faces: not the clean faces the network classifies afterwards. Measured on clean
Training faces instead, every network tried scored higher on PublicTest in one pass (session
11; the README's recipe section has the table): student_mix (mixup and erasing) 0.6679 ->
0.6787, wide_mix 0.6796 -> 0.6807, and the shipped default's three members (no mixup)
0.6723 -> 0.6743, 0.6659 -> 0.6701 and 0.6648 -> 0.6693.

The network is then scored on the validation split (PublicTest) in one pass, and its file
records the source files (``swa.snapshots``), that score, and all that load_classifier
needs. Several files must share their architecture, classes and input normalization.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from tqdm import tqdm

import tinycnn
from tinycnn import Tensor, nn

from .cli import error_boundary, writable_file
from .data.load import select_split
from .data.normalize import Normalizer
from .ensemble import shared_facts
from .evaluate import dataset_for, evaluate
from .recognition.inference import (Classifier, ModelFileError, default_backend_name, loaded_network,
                                    read_model_file)

BATCH_SIZE = 256  # Training faces per forward pass when the batch-norm statistics are measured


def average_weights(states: list[dict]) -> dict:
    """The element-wise mean of several state dicts with the same names and shapes
    (accumulated in float64, stored in each array's own dtype)."""
    names = list(states[0])
    average = {}
    for name in names:
        arrays = [np.asarray(state[name]) for state in states]
        average[name] = np.mean([a.astype(np.float64) for a in arrays], axis=0).astype(arrays[0].dtype)
    return average


def read_snapshots(paths: list[str]) -> tuple[list[dict], list[dict]]:
    """The state dicts and metadata of the model files ``paths`` (one or more); a
    ModelFileError unless they are single networks of one architecture with the same classes
    and normalization (and so the same weight names and shapes)."""
    states, metadatas = [], []
    for path in paths:
        state, metadata = read_model_file(path)
        if metadata["arch"] == "ensemble":
            raise ModelFileError(f"{path}: is an ensemble; average the snapshots of one network")
        loaded_network(path, state, metadata)          # a ModelFileError unless the weights fit
        facts = {"arch": metadata["arch"], **shared_facts(metadata)}
        expected = {"arch": metadatas[0]["arch"], **shared_facts(metadatas[0])} if metadatas else facts
        for key, value in facts.items():
            if value != expected[key]:
                raise ModelFileError(f"{path}: its {key} ({value}) differs from {paths[0]}'s "
                                     f"({expected[key]})")
        states.append(state)
        metadatas.append(metadata)
    return states, metadatas


def refresh_batch_norm(model: nn.Module, batches) -> int:
    """Set every batch norm's running mean and variance to the mean of its batch statistics
    over ``batches`` (arrays (B, C, H, W), already normalized); the model ends in eval mode.
    Returns how many batch norm layers there are (0: nothing to do)."""
    norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    momenta = [bn.momentum for bn in norms]
    model.eval()
    for bn in norms:
        bn.running_mean[...] = 0.0
        bn.running_var[...] = 1.0
        bn.train()
    with tinycnn.no_grad():
        for k, x in enumerate(batches, start=1):
            for bn in norms:
                bn.momentum = 1.0 / k          # running = (1 - 1/k) running + (1/k) batch
            model(Tensor(x))
    for bn, momentum in zip(norms, momenta):
        bn.momentum = momentum
    model.eval()
    return len(norms)


def training_batches(images: np.ndarray, normalizer: Normalizer, batch_size: int = BATCH_SIZE):
    """The Training faces (N, 48, 48), normalized, ``batch_size`` at a time: (B, 1, 48, 48) each."""
    for first in range(0, len(images), batch_size):
        yield normalizer.apply(images[first:first + batch_size])


@error_boundary
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer_app.swa", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="model files: snapshots of one run (e.g. "
                        "runs/NAME/snapshots/epoch_*.npz from fer_app.train --snapshots), or one "
                        "network to recalibrate")
    parser.add_argument("--data", required=True, help="FER-2013 CSV: Training for the batch-norm "
                        "statistics, PublicTest for the score")
    parser.add_argument("--out", required=True, help="the model file to write")
    parser.add_argument("--backend", choices=tinycnn.backend.names(),
                        help="tinycnn backend (default: numba if it runs here, else numpy)")
    args = parser.parse_args(argv)
    writable_file(args.out, "--out")
    states, metadatas = read_snapshots(args.models)
    metadata = metadatas[0]
    tinycnn.backend.use(args.backend or default_backend_name())
    model = loaded_network(args.models[0], average_weights(states), metadata)
    normalizer = Normalizer.from_dict(metadata["normalization"])
    data = dataset_for(Classifier(model, metadata["class_names"], normalizer, metadata, fused=False),
                       args.data)                       # the model's class set
    train, val = select_split(data, "Training"), select_split(data, "PublicTest")
    batches = tqdm(training_batches(train.images, normalizer), desc="batch-norm statistics",
                   total=-(-len(train) // BATCH_SIZE), unit="batch", leave=False, dynamic_ncols=True)
    layers = refresh_batch_norm(model, batches)
    print(f"averaged {len(states)} model file(s); batch-norm statistics of {layers} layers measured "
          f"on {len(train)} Training faces", flush=True)
    report = evaluate(Classifier(model, metadata["class_names"], normalizer, metadata), val)
    scores = {"val_acc": report["accuracy"], "val_macro_f1": report["macro_f1"]}
    tinycnn.save(model.state_dict(), args.out,
                 {**metadata, "epoch": metadatas[-1].get("epoch"), "val": scores,
                  "swa": {"snapshots": [os.path.abspath(path) for path in args.models],
                          "epochs": [m.get("epoch") for m in metadatas]}})
    print(f"{args.out}: PublicTest accuracy {scores['val_acc']:.4f}, macro-F1 "
          f"{scores['val_macro_f1']:.4f} (one pass)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
