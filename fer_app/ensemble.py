"""Combine trained model files into one ensemble model file.

    python -m fer_app.ensemble runs/a/model.npz runs/b/model.npz --out runs/ensemble_ab/model.npz
    python -m fer_app.ensemble runs/a/model.npz runs/b/model.npz runs/c/model.npz --float16 --out e.npz
    python -m fer_app.ensemble default --member 1 --out vgg_fer_60.npz   # one member, alone

The ensemble (fer_app/models/ensemble.py) averages its members' class probabilities.
Its file is an ordinary fer_app model file (load_classifier, evaluate, predict and
serve read it like any other): member i's weights are stored as ``member<i>.<name>``
and the metadata has ``arch: "ensemble"`` and, per member, the arch, training
settings, chosen epoch, validation scores and source file. The members must share
their classes (also whether disgust was merged into angry) and input normalization.
``--float16`` stores the weights in half precision (half the file size; they are
turned back into float32 when loaded, so only their rounding changes).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

import tinycnn

from .cli import error_boundary, writable_file
from .recognition.inference import ModelFileError, loaded_network, model_path, read_model_file


def as_stored(array: np.ndarray, float16: bool) -> np.ndarray:
    """The array as an ensemble file stores it: floating-point arrays rounded to float16 if
    ``float16``; other arrays (counters) unchanged."""
    return array.astype(np.float16) if float16 and array.dtype.kind == "f" else array


def shared_facts(metadata: dict) -> dict:
    """What all members must agree on: their classes, whether disgust was merged into
    angry, and the input normalization."""
    return {"class_names": metadata["class_names"],
            "merge_disgust": bool(metadata.get("settings", {}).get("merge_disgust", False)),
            "normalization": metadata["normalization"], "num_classes": metadata["num_classes"]}


def combine(paths: list[str], out: str, float16: bool = False) -> dict:
    """Write the ensemble of the model files ``paths`` to ``out`` (floating-point arrays
    as float16 if ``float16``); return its metadata."""
    if len(paths) < 2:
        raise ModelFileError("an ensemble needs at least two model files")
    state, members = {}, []
    first = None
    for i, path in enumerate(paths):
        member_state, metadata = read_model_file(path)
        if metadata["arch"] == "ensemble":
            raise ModelFileError(f"{path}: is an ensemble already; list its members instead")
        loaded_network(path, member_state, metadata)   # a ModelFileError unless the weights fit
        shared = shared_facts(metadata)
        first = first or shared
        for key, value in shared.items():
            if value != first[key]:
                raise ModelFileError(f"{path}: its {key} ({value}) differs from "
                                     f"{paths[0]}'s ({first[key]})")
        state.update({f"member{i}.{name}": as_stored(value, float16)
                      for name, value in member_state.items()})
        members.append({"arch": metadata["arch"], "source": path,
                        **{key: metadata[key] for key in ("settings", "epoch", "val", "swa")
                           if key in metadata}})
    metadata = {"arch": "ensemble", "members": members, "num_classes": first["num_classes"],
                "class_names": first["class_names"], "normalization": first["normalization"],
                "settings": {"merge_disgust": first["merge_disgust"]},
                "stored_as": "float16" if float16 else "as trained"}
    tinycnn.save(state, out, metadata)
    return metadata


def extract_member(path: str, index: int, out: str) -> dict:
    """Write member ``index`` of the ensemble file ``path`` to ``out`` as a model file of its
    own (weights as float32, as they are loaded); return its metadata."""
    state, metadata = read_model_file(path)
    if metadata["arch"] != "ensemble":
        raise ModelFileError(f"{path}: is one network, not an ensemble")
    members = metadata["members"]
    if not 0 <= index < len(members):
        raise ModelFileError(f"{path}: has members 0 to {len(members) - 1}, not {index}")
    prefix = f"member{index}."
    member_state = {name[len(prefix):]: value.astype(np.float32) if value.dtype == np.float16 else value
                    for name, value in state.items() if name.startswith(prefix)}
    member = {key: value for key, value in members[index].items() if key != "source"}
    member_metadata = {**member, "num_classes": metadata["num_classes"],
                       "class_names": metadata["class_names"],
                       "normalization": metadata["normalization"],
                       "source": f"{path} member {index} ({members[index].get('source', '')})"}
    tinycnn.save(member_state, out, member_metadata)
    return member_metadata


def stored_bytes(state: dict, float16: bool = False) -> int:
    """Bytes a model's arrays take once stored (floating-point ones as float16 if ``float16``)."""
    return sum(as_stored(value, float16).nbytes for value in state.values())


def choose_within_budget(paths: list[str], budget_bytes: int, float16: bool = False) -> list[str]:
    """The rule that picks an ensemble's members without trying subsets on validation data:
    the model files ranked by their own validation accuracy (the figure that already chose
    each one's epoch), best first; each is taken if its arrays still fit in ``budget_bytes``
    together with those taken before it. Returns the chosen paths in rank order."""
    candidates = []  # (validation accuracy, bytes, path)
    for path in paths:
        state, metadata = read_model_file(path)
        if "val" not in metadata:
            raise ModelFileError(f"{path}: has no validation accuracy to rank it by")
        candidates.append((float(metadata["val"]["val_acc"]), stored_bytes(state, float16), path))
    candidates.sort(key=lambda candidate: candidate[0], reverse=True)
    chosen, used = [], 0
    for _, size, path in candidates:
        if used + size <= budget_bytes:
            chosen.append(path)
            used += size
    if not chosen:
        raise ModelFileError(f"no model fits in {budget_bytes:,} bytes")
    return chosen


@error_boundary
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer_app.ensemble", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="model files (runs/NAME/model.npz) or shipped "
                        "model names ('fast'), two or more; with --member, one ensemble file or "
                        "shipped model name ('default')")
    parser.add_argument("--out", required=True, help="the model file to write")
    parser.add_argument("--float16", action="store_true", help="store the weights in half precision")
    parser.add_argument("--member", type=int,
                        help="write this member (0, 1, ...) of one ensemble file alone instead")
    args = parser.parse_args(argv)
    if args.member is not None and len(args.models) != 1:
        parser.error("--member takes exactly one ensemble file")
    writable_file(args.out, "--out")
    if args.member is not None:
        metadata = extract_member(model_path(args.models[0]), args.member, args.out)
        print(f"{args.out}: member {args.member} ({metadata['arch']}) of {args.models[0]}")
        return 0
    metadata = combine([model_path(name) for name in args.models], args.out, args.float16)
    print(f"{args.out}: ensemble of {len(metadata['members'])} networks "
          f"({', '.join(member['arch'] for member in metadata['members'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
