"""Ship a trained model and write its model card from real measurements.

    python -m fer_app.model_card --run runs/vgg_fer_long --ship --readme README.md
    python -m fer_app.model_card --run runs/a runs/b --ship --readme README.md   # an ensemble
    python -m fer_app.model_card --run runs/* --ship --float16 --budget-mb 20   # chosen by a rule
    python -m fer_app.model_card --name fast --run runs/student_a runs/student_b --ship --readme README.md

A ``--run`` may also be a network's model file without its run folder (e.g. a member taken
out of the shipped ensemble with ``python -m fer_app.ensemble default --member I``): its
training facts and curves then come from the card that already describes that network
(``docs/model_card*/model_card.json`` under the current folder, matched by architecture,
chosen epoch and accuracy: :func:`described_member`).

``--ship`` copies ``RUN/model.npz`` (the epoch with the best PublicTest accuracy)
to ``fer_app/weights/default.npz`` (``--name fast``: ``fast.npz``, the one network for
live video: of several runs, the one :func:`choose_fast` picks); given several runs, it ships the ensemble of their
models instead (fer_app/ensemble.py); with ``--budget-mb``, of the runs only those that
``fer_app.ensemble.choose_within_budget`` takes (best own accuracy first, while they fit).
Then the shipped model (or ``--model FILE``) is evaluated on the validation split with
and without test-time augmentation, and the card is written to ``docs/model_card/``:
``model_card.md``, ``model_card.json``, ``confusion_matrix.png`` (TTA) and
``curves_<run>.png`` per run (from ``RUN/history.csv``); ``docs/model_card_fast/``
for ``--name fast``. ``--readme`` also replaces the part of the README between the
``<!-- MODEL-CARD -->`` markers (``<!-- MODEL-CARD fast -->`` for ``fast``) with the
card, so its numbers always come from this command.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as train/evaluate do (see train.py)

import argparse
import csv
import json
import shutil
import sys
import time

import numpy as np

from tinycnn import backend as backends

from .cli import UsageError, UserError, error_boundary, writable_folder
from .data.load import Dataset, find_data, select_split
from .ensemble import choose_within_budget, combine
from .evaluate import dataset_for
from .models.ensemble import Ensemble
from .models.summary import summarize
from .recognition.inference import (NAMED_MODELS, Classifier, ModelFileError, build_network,
                                    load_classifier, read_model_file)
from .training import plots
from .training.metrics import classification_report
from .training.settings import DEFAULTS

# What each shipped model is for, as the card's heading says it.
PURPOSE = {"default": "the most accurate: still pictures (`predict`, `evaluate`, the Python API)",
           "fast": "one small network: live video, the camera and the web page"}


FAST_MAX_GFLOPS = 0.2  # the fast model's budget: one network of at most vgg_fer's cost
CARD_FOLDERS = {"default": os.path.join("docs", "model_card"),
                "fast": os.path.join("docs", "model_card_fast")}   # relative to the current folder


def model_path(run: str) -> str:
    """The model file of a --run entry: RUN/model.npz for a run folder, else the entry itself."""
    return run if os.path.isfile(run) else os.path.join(run, "model.npz")


def choose_fast(runs: list[str], max_gflops: float = FAST_MAX_GFLOPS) -> str:
    """The rule that picks the fast model: of the runs whose network costs at most
    ``max_gflops`` per face, the one with the best own validation accuracy (the figure that
    already chose its epoch). Returns that run folder."""
    candidates = []  # (validation accuracy, run)
    for run in runs:
        _, metadata = read_model_file(model_path(run))
        if metadata["arch"] == "ensemble":
            raise ModelFileError(f"{run}: is an ensemble; the fast model is one network")
        network = build_network(metadata)
        if sum(row.flops for row in summarize(network)) / 1e9 <= max_gflops:
            candidates.append((float(metadata["val"]["val_acc"]), run))
    if not candidates:
        raise ModelFileError(f"no run's network costs at most {max_gflops} GFLOP per face")
    return max(candidates)[1]


def marker(name: str) -> str:
    """The README lines that enclose the card of shipped model ``name``."""
    return "<!-- MODEL-CARD -->" if name == "default" else f"<!-- MODEL-CARD {name} -->"


def gflops(classifier: Classifier) -> float:
    """Forward GFLOPs per face of the classifier's network(s)."""
    model = classifier.model
    networks = model.members if isinstance(model, Ensemble) else [model]
    return sum(row.flops for network in networks for row in summarize(network)) / 1e9


def plain_and_tta_reports(classifier: Classifier, ds: Dataset) -> tuple[dict, dict]:
    """The classification reports of one plain pass and of TTA, both from one set of
    per-view probabilities (the plain pass is view 0)."""
    views = classifier.predict_proba_views(ds.images)  # (10, N, K)
    plain = classification_report(ds.labels, views[0].argmax(axis=1), ds.class_names)
    tta = classification_report(ds.labels, views.mean(axis=0).argmax(axis=1), ds.class_names)
    return plain, tta


def ms_per_face(classifier: Classifier, face: np.ndarray, repeats: int = 50) -> float:
    """Median milliseconds of classifying one face (1, 48, 48) in one pass, after a warm-up
    call: what the recognizer spends per face in a frame with one face."""
    classifier.predict_proba(face)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        classifier.predict_proba(face)
        seconds.append(time.perf_counter() - start)
    return 1000 * float(np.median(seconds))


def training_hours(history: list[dict]) -> float:
    """The hours a run's epochs took (the ``seconds`` column of history.csv)."""
    return sum(row["seconds"] for row in history) / 3600


def read_history(path: str) -> list[dict]:
    """history.csv rows with numbers as floats (epoch as int); a UserError if the file is
    not one that fer_app.train wrote."""
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    try:
        return [{key: (int(value) if key == "epoch" else float(value)) for key, value in row.items()}
                for row in rows]
    except (TypeError, ValueError) as error:   # a missing cell is None, a word is not a number
        raise UserError(f"{path}: not a history.csv written by fer_app.train ({error})") from None


# Always written out, so the command reads as a recipe; other settings only when they
# differ from training.settings.DEFAULTS. Where the data is and which backend ran are not the recipe.
RECIPE_OPTIONS = ("arch", "epochs", "batch_size", "optimizer", "lr", "weight_decay", "schedule",
                  "label_smoothing", "augment", "normalize", "seed")
NOT_RECIPE = ("data", "backend", "teacher_cache",    # where things are, not how the run trains
              "init_sha256", "teacher_sha256")        # which files --init and --teacher named


def train_command(settings: dict) -> str:
    """The ``fer_app.train`` command line that reproduces a run's settings."""
    options = []
    for key, default in DEFAULTS.items():
        value = settings.get(key, default)
        if key in NOT_RECIPE or (key not in RECIPE_OPTIONS and value == default):
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            options += [flag] if value else []
        else:
            options += [flag, str(value)]
    return "python -m fer_app.train " + " ".join(options) + " --out runs/NAME"


def file_digests(settings: dict) -> str:
    """'`--init` file SHA-256 `0123456789abcdef…`' for the files the run started from (as
    fer_app.train recorded them), '' when it recorded none."""
    return "; ".join(f"`--{key}` file SHA-256 `{settings[key + '_sha256'][:16]}…`"
                     for key in ("init", "teacher") if settings.get(key + "_sha256"))


def architecture_line(card: dict) -> str:
    """The card's architecture cell: one network, or an ensemble of several."""
    archs = [member["arch"] for member in card["members"]]
    if len(archs) == 1:
        return f"`{archs[0]}` (see `fer_app/models/{archs[0]}.py`)"
    return (f"ensemble of {len(archs)} networks ({' + '.join(f'`{a}`' for a in archs)}) averaging "
            "their class probabilities (`fer_app/models/ensemble.py`)")


def card_markdown(card: dict) -> str:
    """The model card as Markdown (the README section)."""
    plain, tta, model_name = card["plain"], card["tta"], card["name"]
    lines = [
        marker(model_name),
        f"## The shipped model `{model_name}` (`fer_app/weights/{model_name}.npz`): {PURPOSE[model_name]}",
        "",
        f"Made by `{card['command']}` (this section is written by that command).",
        "",
    ]
    if "budget_mb" in card:
        lines += [f"Its networks were chosen from {len(card['candidates'])} training runs by a rule, "
                  "not by trying subsets: ranked by their own PublicTest accuracy, each taken while "
                  f"the weights fit in {card['budget_mb']:g} MB (`fer_app.ensemble.choose_within_budget`).",
                  ""]
    lines += [
        "| | |",
        "|---|---|",
        f"| architecture | {architecture_line(card)} |",
        f"| parameters | {card['parameters']:,} |",
        f"| FLOPs per image (forward) | {card['gflops']:.3f} GFLOP |",
        f"| one face, one pass, here | {card['ms_per_face']:.2f} ms ({card['backend']} backend) |",
        f"| training wall time here | {card['train_hours']:.2f} h on 2 shared CPU cores |",
        f"| {card['split']} accuracy, TTA (how predict and evaluate classify) | {tta['accuracy']:.4f} "
        f"(one plain pass, as live video: {plain['accuracy']:.4f}) |",
        f"| {card['split']} macro-F1, TTA | {tta['macro_f1']:.4f} (one plain pass: {plain['macro_f1']:.4f}) |",
        f"| n | {plain['n']} |",
        "",
        "Training (each network's epoch with the best PublicTest accuracy was kept; `--teacher`: "
        "distilled from that model, `fer_app/training/distill.py`):",
        "",
        "| run | command | epochs run / chosen | hours | images/s (median) | its own accuracy |",
        "|---|---|---|---|---|---|",
    ]
    for member in card["members"]:
        digests = f" ({member['file_digests']})" if member.get("file_digests") else ""
        lines.append(f"| {member['run']} | `{member['train_command']}`{digests} | {member['epochs_run']} / "
                     f"{member.get('chosen', member['best_epoch'])} | {member['train_hours']:.2f} | "
                     f"{member['images_per_second']:.0f} | {member['val_acc']:.4f} |")
    lines += [
        "",
        "Per class on " + card["split"] + " (TTA: flips and shifted crops, 10 views):",
        "",
        "| class | recall | recall TTA | precision TTA | F1 TTA | support |",
        "|---|---|---|---|---|---|",
    ]
    for name, scores in tta["per_class"].items():
        lines.append(f"| {name} | {plain['per_class'][name]['recall']:.3f} | {scores['recall']:.3f} | "
                     f"{scores['precision']:.3f} | {scores['f1']:.3f} | {scores['support']} |")
    folder = card["out"]
    lines += ["", f"![confusion matrix]({folder}/confusion_matrix.png)"]
    lines += [f"![learning curves of {member['run']}]({folder}/{member['curves']})"
              for member in card["members"]]
    lines += [
        "",
        "PublicTest chose each network's epoch (and ranked the "
        f"{'runs for choose_fast' if model_name == 'fast' else 'networks for the size rule'}) only; "
        "the PrivateTest split was never seen. "
        f"`python -m fer_app.evaluate --model {model_name} --split PublicTest --json` "
        "reproduces the TTA figures (`--no-tta` the plain ones).",
        marker(model_name),
    ]
    return "\n".join(lines)


def replace_in_readme(readme: str, markdown: str, name: str = "default") -> None:
    """Put ``markdown`` between (and including) the two markers of model ``name``, or at
    the single marker."""
    text = open(readme, encoding="utf-8").read()
    lines = text.split("\n")
    at = [i for i, line in enumerate(lines) if line.strip() == marker(name)]
    if len(at) not in (1, 2):
        raise UserError(f"{readme}: expected one or two '{marker(name)}' lines")
    head, tail = lines[:at[0]], lines[at[-1] + 1:]
    with open(readme, "w", encoding="utf-8") as file:
        file.write("\n".join(head + [markdown] + tail))


def source_run(run: str, metadata: dict) -> tuple[str, dict]:
    """(run, metadata) that say how a network was trained. For a network written by
    fer_app.swa (its metadata has "swa"), those of its first source file: the run folder of
    its snapshots (RUN/snapshots/epoch_NNN.npz), the run folder holding its one source
    model.npz, or else that source file itself; for any other network, ``run`` itself."""
    if not (os.path.isfile(run) and "swa" in metadata):
        return run, metadata
    source = metadata["swa"]["snapshots"][0]
    _, source_metadata = read_model_file(source)
    folder = os.path.dirname(source)
    if os.path.basename(folder) == "snapshots":
        folder = os.path.dirname(folder)
    has_history = os.path.isfile(os.path.join(folder, "history.csv"))
    return (folder if has_history else source), source_metadata


def check_member(run: str, metadata: dict) -> None:
    """Before anything is written: a UserError unless ``metadata`` (one network's) comes
    from fer_app.train and ``run`` is its run folder with history.csv, or a model file that
    a card already describes, or a file fer_app.swa made from either."""
    run, metadata = source_run(run, metadata)
    missing = [key for key in ("settings", "epoch", "val") if key not in metadata]
    if missing:
        raise ModelFileError(f"{run}: its network was not written by fer_app.train (no "
                             f"{', '.join(missing)} in its metadata)")
    if os.path.isfile(run):
        described_member(run, metadata)
    else:
        read_history(os.path.join(run, "history.csv"))


def described_member(path: str, metadata: dict) -> tuple[dict, str]:
    """(facts, card folder) of the network in model file ``path`` as a card in CARD_FOLDERS
    describes it: the member with the same architecture, chosen epoch and accuracy (its
    accuracy before fer_app.swa, for a member the card shows recalibrated). A
    ModelFileError if no card does (its run folder is needed then)."""
    for folder in CARD_FOLDERS.values():
        try:
            with open(os.path.join(folder, "model_card.json"), encoding="utf-8") as file:
                members = json.load(file)["members"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        for member in members:
            accuracy = member.get("source_val_acc", member.get("val_acc"))
            if (member.get("arch"), member.get("best_epoch"), accuracy) == \
                    (metadata["arch"], metadata["epoch"], metadata["val"]["val_acc"]):
                facts = {key: value for key, value in member.items()
                         if key not in ("chosen", "source_val_acc")}
                return {**facts, "val_acc": accuracy}, folder
    raise ModelFileError(f"{path}: no card in {' or '.join(CARD_FOLDERS.values())} describes this "
                         "network; give its run folder (with history.csv) instead")


def member_facts(run: str, metadata: dict, out: str) -> dict:
    """How one network of the model was trained, from its run folder and its metadata
    (or, for a model file, from the card that describes it; for a file of fer_app.swa, from
    its source, with its own accuracy and what was done in "chosen"); draws (or copies) its
    learning curves into ``out``."""
    source, source_metadata = source_run(run, metadata)
    if source_metadata is not metadata:
        facts = member_facts(source, source_metadata, out)
        epochs = metadata["swa"]["epochs"]
        chosen = (f"{facts['best_epoch']}, batch norm recalibrated" if len(epochs) == 1 else
                  f"mean of epochs {min(epochs)}-{max(epochs)}, batch norm recalibrated")
        return {**facts, "chosen": chosen, "source_val_acc": facts["val_acc"],
                "val_acc": metadata["val"]["val_acc"]}
    if os.path.isfile(run):
        facts, folder = described_member(run, metadata)
        curves = os.path.join(folder, facts["curves"])
        if os.path.isfile(curves) and not os.path.samefile(folder, out):
            shutil.copyfile(curves, os.path.join(out, facts["curves"]))
        return dict(facts)
    history = read_history(os.path.join(run, "history.csv"))
    name = os.path.basename(os.path.normpath(run))
    plots.plot_curves(history, os.path.join(out, f"curves_{name}.png"))
    return {
        "run": name, "arch": metadata["arch"], "curves": f"curves_{name}.png",
        "train_command": train_command(metadata["settings"]),
        "file_digests": file_digests(metadata["settings"]),
        "epochs_run": len(history), "best_epoch": metadata["epoch"],
        "val_acc": metadata["val"]["val_acc"],
        "train_hours": training_hours(history),
        "images_per_second": float(np.median([row["images_per_second"] for row in history])),
    }


def remove_stale_curves(out: str, members: list[dict]) -> None:
    """Delete the curves_*.png in ``out`` that this card does not show (an earlier card's)."""
    shown = {member["curves"] for member in members}
    for name in os.listdir(out):
        if name.startswith("curves_") and name.endswith(".png") and name not in shown:
            os.remove(os.path.join(out, name))


def make_card(model: str, runs: list[str], data: str | None, split: str, out: str) -> dict:
    """Evaluate ``model`` (a file, or "default": the shipped one) and gather the card's facts;
    ``runs`` are the training runs of its network(s), in the ensemble's order."""
    classifier = load_classifier(model)
    meta = classifier.metadata
    member_metadata = meta["members"] if meta["arch"] == "ensemble" else [meta]
    if len(member_metadata) != len(runs):
        raise UsageError(f"the model has {len(member_metadata)} network(s) but {len(runs)} run(s) "
                         f"were given to --run")
    for run, metadata in zip(runs, member_metadata):
        check_member(run, metadata)
    ds = select_split(dataset_for(classifier, find_data(data)), split)
    plain, tta = plain_and_tta_reports(classifier, ds)
    os.makedirs(out, exist_ok=True)
    plots.plot_confusion_matrix(np.array(tta["confusion_matrix"]), ds.class_names,
                                os.path.join(out, "confusion_matrix.png"),
                                f"{meta['arch']} on {split} with TTA: accuracy {tta['accuracy']:.3f}")
    members = [member_facts(run, metadata, out) for run, metadata in zip(runs, member_metadata)]
    remove_stale_curves(out, members)
    return {
        "arch": meta["arch"], "split": split, "plain": plain, "tta": tta, "members": members,
        "parameters": classifier.model.num_parameters(), "gflops": gflops(classifier),
        "ms_per_face": ms_per_face(classifier, ds.images[:1]), "backend": backends.current().name,
        "train_hours": sum(member["train_hours"] for member in members),
    }


def ship(models: list[str], float16: bool = False, name: str = "default") -> None:
    """Make ``models`` (one model file, or several to combine, their weights in float16 if
    ``float16``) the shipped model ``name`` ("default" or "fast")."""
    target = NAMED_MODELS[name]
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if len(models) == 1:
        shutil.copyfile(models[0], target + ".tmp")
        os.replace(target + ".tmp", target)
    else:
        combine(models, target, float16)   # writes atomically


@error_boundary
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer_app.model_card", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, nargs="+",
                        help="training run folder(s) (model.npz, history.csv), or model files of "
                             "networks a card already describes; several make an ensemble")
    parser.add_argument("--ship", action="store_true",
                        help="ship RUN/model.npz (or the ensemble of the runs' models) first")
    parser.add_argument("--float16", action="store_true",
                        help="with --ship and several runs: store the ensemble's weights as float16")
    parser.add_argument("--budget-mb", type=float,
                        help="with --ship: the runs are candidates; ship those the rule in "
                             "fer_app.ensemble.choose_within_budget takes (ranked by their own "
                             "validation accuracy, each taken while the weights fit in this many "
                             "MB, 1 MB = 10^6 bytes)")
    parser.add_argument("--name", choices=list(NAMED_MODELS), default="default",
                        help="which shipped model --ship replaces and the card describes "
                             "(default: default)")
    parser.add_argument("--model", help="describe this model file instead of the shipped one")
    parser.add_argument("--data", help="FER-2013 file (default: searched)")
    parser.add_argument("--split", default="PublicTest", help="split to report (default PublicTest)")
    parser.add_argument("--out", help="folder for the card (default docs/model_card, "
                        "docs/model_card_fast for --name fast); curves_*.png files there that "
                        "the new card does not show are removed")
    parser.add_argument("--readme", help="README whose MODEL-CARD section to replace")
    args = parser.parse_args(argv)
    if args.budget_mb is not None and not args.ship:
        parser.error("--budget-mb chooses what to ship: give --ship too")
    if args.name == "fast" and args.budget_mb is not None:
        parser.error("--budget-mb chooses ensemble members; the fast model is one network")
    out = args.out or CARD_FOLDERS[args.name]
    writable_folder(out, "--out")   # now, not after minutes of evaluation
    runs = args.run
    if args.budget_mb is not None:
        run_of = {model_path(run): run for run in runs}
        models = choose_within_budget(list(run_of), int(args.budget_mb * 1e6), args.float16)
        runs = [run_of[model] for model in models]
        print(f"chosen within {args.budget_mb:g} MB: {' '.join(runs)}", file=sys.stderr)
    if args.name == "fast":
        runs = [choose_fast(runs)]
        print(f"chosen as the fast model (best own accuracy at <= {FAST_MAX_GFLOPS} GFLOP): "
              f"{runs[0]}", file=sys.stderr)
    for run in runs:   # before anything is shipped: a bad file must not replace a shipped model
        check_member(run, read_model_file(model_path(run))[1])
    if args.ship:
        ship([model_path(run) for run in runs], args.float16, args.name)
    card = make_card(args.model or args.name, runs, args.data, args.split, out)
    card["command"] = "python -m fer_app.model_card " + " ".join(argv if argv is not None else sys.argv[1:])
    card.update(name=args.name, out=out)
    if args.budget_mb is not None:
        card.update(budget_mb=args.budget_mb, candidates=args.run)
    markdown = card_markdown(card)
    with open(os.path.join(out, "model_card.md"), "w", encoding="utf-8") as file:
        file.write(markdown + "\n")
    with open(os.path.join(out, "model_card.json"), "w", encoding="utf-8") as file:
        json.dump(card, file, indent=1)
    if args.readme:
        replace_in_readme(args.readme, markdown, args.name)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
