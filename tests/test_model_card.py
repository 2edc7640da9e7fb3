"""fer_app.model_card: the card's numbers are measured from the model and the run."""
from __future__ import annotations

import json
import os
import shutil

import pytest

import tinycnn
from fer_app import ensemble, model_card, train
from fer_app.data.load import select_split
from fer_app.evaluate import dataset_for, evaluate
from fer_app.recognition.inference import ModelFileError, load_classifier
from tests.train_samples import train_tiny_run, write_fer_csv


def test_card_reports_the_models_measured_scores(tmp_path):
    data = write_fer_csv(tmp_path / "tiny.csv", {"Training": 70, "PublicTest": 28})
    run = tmp_path / "run"
    assert train.main(["--data", str(data), "--arch", "seed002", "--classes", "7", "--epochs", "2",
                       "--batch-size", "16", "--backend", "numpy", "--out", str(run)]) == 0
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{model_card.marker('default')}\n\n## next section\n")
    out = tmp_path / "card"
    model = str(run / "model.npz")
    assert model_card.main(["--run", str(run), "--model", model, "--data", str(data),
                            "--out", str(out), "--readme", str(readme)]) == 0

    card = json.loads((out / "model_card.json").read_text())
    classifier = load_classifier(model, "numpy")
    public_test = select_split(dataset_for(classifier, str(data)), "PublicTest")
    expected = evaluate(classifier, public_test)
    assert card["plain"]["accuracy"] == expected["accuracy"]
    assert card["tta"]["confusion_matrix"] == evaluate(classifier, public_test, tta=True)["confusion_matrix"]
    assert card["members"][0]["epochs_run"] == 2
    assert card["parameters"] == classifier.model.num_parameters()
    for name in ("confusion_matrix.png", "curves_run.png", "model_card.md"):
        assert os.path.getsize(out / name) > 0
    text = readme.read_text()
    assert text.count(model_card.marker("default")) == 2 and "## next section" in text
    assert f"{expected['accuracy']:.4f}" in text

    # running it again replaces the section instead of adding a second one, and an
    # earlier card's curves leave the folder
    (out / "curves_an_earlier_run.png").write_bytes(b"png")
    assert model_card.main(["--run", str(run), "--model", model, "--data", str(data),
                            "--out", str(out), "--readme", str(readme)]) == 0
    assert readme.read_text().count(model_card.marker("default")) == 2
    assert sorted(path.name for path in out.glob("curves_*.png")) == ["curves_run.png"]


def test_card_of_an_ensemble_sums_its_networks(tmp_path, monkeypatch):
    data = write_fer_csv(tmp_path / "tiny.csv", {"Training": 48, "PublicTest": 16})
    runs = [train_tiny_run(tmp_path / name, data, "--seed", seed) for name, seed in (("a", "0"), ("b", "1"))]
    shipped = tmp_path / "weights" / "default.npz"
    monkeypatch.setitem(model_card.NAMED_MODELS, "default", str(shipped))
    model_card.ship([os.path.join(run, "model.npz") for run in runs])
    out = tmp_path / "card"
    assert model_card.main(["--run", *runs, "--model", str(shipped), "--data", str(data),
                            "--out", str(out)]) == 0

    card = json.loads((out / "model_card.json").read_text())
    single = model_card.make_card(os.path.join(runs[0], "model.npz"), runs[:1], str(data),
                                  "PublicTest", str(tmp_path / "one"))
    assert card["parameters"] == 2 * single["parameters"]
    assert abs(card["gflops"] - 2 * single["gflops"]) < 1e-9
    assert [m["run"] for m in card["members"]] == ["a", "b"]
    assert (out / "curves_a.png").exists() and (out / "curves_b.png").exists()
    assert "ensemble of 2 networks" in (out / "model_card.md").read_text()
    # the number of runs must match the model's networks (a usage error: exit code 2)
    assert model_card.main(["--run", runs[0], "--model", str(shipped), "--data", str(data),
                            "--out", str(out)]) == 2


def test_budget_ships_the_runs_the_rule_chooses(tmp_path, monkeypatch):
    data = write_fer_csv(tmp_path / "tiny.csv", {"Training": 48, "PublicTest": 16})
    runs = [train_tiny_run(tmp_path / name, data, "--seed", seed)
            for name, seed in (("a", "0"), ("b", "1"), ("c", "2"))]
    models = [os.path.join(run, "model.npz") for run in runs]
    one_model_mb = os.path.getsize(models[0]) / 1e6  # the three runs have the same architecture
    shipped = tmp_path / "weights" / "default.npz"
    monkeypatch.setitem(model_card.NAMED_MODELS, "default", str(shipped))
    out = tmp_path / "card"
    assert model_card.main(["--run", *runs, "--ship", "--budget-mb", f"{2.5 * one_model_mb:.6f}",
                            "--model", str(shipped), "--data", str(data), "--out", str(out)]) == 0

    chosen = ensemble.choose_within_budget(models, int(2.5 * one_model_mb * 1e6))
    assert len(chosen) == 2
    assert [member["source"] for member in load_classifier(str(shipped), "numpy").metadata["members"]] == chosen
    card = json.loads((out / "model_card.json").read_text())
    assert [member["run"] for member in card["members"]] == [os.path.basename(os.path.dirname(m)) for m in chosen]
    assert card["candidates"] == runs
    assert "chosen from 3 training runs by a rule" in (out / "model_card.md").read_text()


def test_fast_card_ships_one_network_beside_the_default_card(tmp_path, monkeypatch):
    data = write_fer_csv(tmp_path / "tiny.csv", {"Training": 48, "PublicTest": 16})
    run = train_tiny_run(tmp_path / "student", data)
    fast = tmp_path / "weights" / "fast.npz"
    monkeypatch.setitem(model_card.NAMED_MODELS, "fast", str(fast))
    readme = tmp_path / "README.md"
    readme.write_text(f"{model_card.marker('default')}\nold default card\n{model_card.marker('default')}\n"
                      f"{model_card.marker('fast')}\n")
    out = tmp_path / "card_fast"
    assert model_card.main(["--name", "fast", "--run", run, "--ship", "--data", str(data),
                            "--out", str(out), "--readme", str(readme)]) == 0
    assert fast.read_bytes() == (tmp_path / "student" / "model.npz").read_bytes()
    card = json.loads((out / "model_card.json").read_text())
    assert card["name"] == "fast" and card["ms_per_face"] > 0
    text = readme.read_text()
    assert "old default card" in text and text.count(model_card.marker("fast")) == 2
    assert "`fast` (`fer_app/weights/fast.npz`)" in text


def test_fast_rule_takes_the_most_accurate_network_within_the_flop_budget(tmp_path):
    data = write_fer_csv(tmp_path / "tiny.csv", {"Training": 48, "PublicTest": 16})
    runs = [train_tiny_run(tmp_path / name, data, "--seed", seed) for name, seed in (("a", "0"), ("b", "1"))]
    accuracy = {run: tinycnn.load(os.path.join(run, "model.npz"))[1]["val"]["val_acc"] for run in runs}
    assert accuracy[model_card.choose_fast(runs)] == max(accuracy.values())
    assert model_card.choose_fast(runs, max_gflops=1.0) == model_card.choose_fast(runs)
    with pytest.raises(ModelFileError, match="at most"):
        model_card.choose_fast(runs, max_gflops=1e-6)   # seed002 costs 0.008 GFLOP


def test_a_member_file_without_its_run_folder_takes_its_facts_from_the_card(tmp_path, monkeypatch):
    """A network kept only as a model file (the run folder is gone) can join a new ensemble
    card: its training facts and curves come from the card that described it."""
    monkeypatch.chdir(tmp_path)
    data = write_fer_csv(tmp_path / "tiny.csv", {"Training": 48, "PublicTest": 16})
    runs = [train_tiny_run(tmp_path / name, data, "--seed", seed) for name, seed in (("a", "0"), ("b", "1"))]
    assert model_card.main(["--run", runs[0], "--model", os.path.join(runs[0], "model.npz"),
                            "--data", str(data)]) == 0      # the card of "a", in docs/model_card
    first = json.loads((tmp_path / "docs" / "model_card" / "model_card.json").read_text())["members"][0]
    kept = tmp_path / "kept_a.npz"
    os.replace(os.path.join(runs[0], "model.npz"), kept)
    shutil.rmtree(runs[0])
    pair = tmp_path / "pair.npz"
    ensemble.combine([str(kept), os.path.join(runs[1], "model.npz")], str(pair))
    out = tmp_path / "card_pair"
    assert model_card.main(["--run", str(kept), runs[1], "--model", str(pair), "--data", str(data),
                            "--out", str(out)]) == 0
    members = json.loads((out / "model_card.json").read_text())["members"]
    assert members[0] == first and members[1]["run"] == "b"
    assert (out / first["curves"]).read_bytes() == \
        (tmp_path / "docs" / "model_card" / first["curves"]).read_bytes()

    stranger = tmp_path / "stranger.npz"      # a network no card describes
    os.replace(os.path.join(runs[1], "model.npz"), stranger)
    with pytest.raises(ModelFileError, match="no card in .* describes this network"):
        model_card.check_member(str(stranger), tinycnn.load(str(stranger))[1])


@pytest.mark.parametrize("content", [b"", b"not a model"])
def test_a_bad_model_file_is_refused_before_it_replaces_the_shipped_model(tmp_path, monkeypatch, capsys,
                                                                          content):
    shipped = tmp_path / "weights" / "default.npz"
    shipped.parent.mkdir()
    shipped.write_bytes(b"the shipped model")
    monkeypatch.setitem(model_card.NAMED_MODELS, "default", str(shipped))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(content)
    assert model_card.main(["--run", str(bad), "--ship", "--out", str(tmp_path / "card")]) == 1
    assert shipped.read_bytes() == b"the shipped model"
    assert capsys.readouterr().err.strip().startswith(f"error: {bad}: not a tinycnn .npz file")


def test_budget_without_ship_is_refused(capsys):
    with pytest.raises(SystemExit):
        model_card.main(["--run", "runs/a", "--budget-mb", "20"])
    assert "--ship" in capsys.readouterr().err


def test_train_command_reproduces_the_recipe():
    settings = {**train.DEFAULTS, "arch": "vgg_fer", "epochs": 32, "optimizer": "sgd", "lr": 0.03,
                "weight_decay": 5e-4, "label_smoothing": 0.1, "mixup": 0.2, "erase": 0.25,
                "shift": 3, "seed": 3, "classes": 6, "merge_disgust": True, "limit": 9000}
    command = model_card.train_command(settings).split()
    assert command[:3] == ["python", "-m", "fer_app.train"]
    parsed = train.choose_settings(train.parse_args(command[3:]), None)
    recipe = [key for key in train.DEFAULTS if key not in ("data", "backend")]
    assert {key: parsed[key] for key in recipe} == {key: settings[key] for key in recipe}


def test_a_network_made_by_swa_takes_its_facts_from_its_source_run(tmp_path):
    """A recalibrated network (fer_app.swa of one file) and an average of a run's snapshots
    join a card as their source run, with their own accuracy and what swa did."""
    from fer_app import swa
    data = write_fer_csv(tmp_path / "tiny.csv", {"Training": 48, "PublicTest": 16})
    run_a = train_tiny_run(tmp_path / "a", data)
    run_b = train_tiny_run(tmp_path / "b", data, "--snapshots", "--seed", "1", epochs=2)
    recalibrated, averaged = str(tmp_path / "a_bn.npz"), str(tmp_path / "b_swa.npz")
    assert swa.main([os.path.join(run_a, "model.npz"), "--data", data, "--out", recalibrated,
                     "--backend", "numpy"]) == 0
    snapshots = [os.path.join(run_b, "snapshots", f"epoch_00{epoch}.npz") for epoch in (1, 2)]
    assert swa.main([*snapshots, "--data", data, "--out", averaged, "--backend", "numpy"]) == 0
    pair = str(tmp_path / "pair.npz")
    ensemble.combine([recalibrated, averaged], pair)
    out = tmp_path / "card"
    assert model_card.main(["--run", recalibrated, averaged, "--model", pair, "--data", str(data),
                            "--out", str(out)]) == 0
    members = json.loads((out / "model_card.json").read_text())["members"]
    source_epoch = tinycnn.load(os.path.join(run_a, "model.npz"))[1]["epoch"]
    source_acc = tinycnn.load(os.path.join(run_a, "model.npz"))[1]["val"]["val_acc"]
    assert members[0]["run"] == "a" and members[0]["chosen"] == f"{source_epoch}, batch norm recalibrated"
    assert members[0]["val_acc"] == tinycnn.load(recalibrated)[1]["val"]["val_acc"]
    assert members[0]["best_epoch"] == source_epoch and members[0]["source_val_acc"] == source_acc
    assert members[1]["run"] == "b" and members[1]["epochs_run"] == 2
    assert members[1]["chosen"] == "mean of epochs 1-2, batch norm recalibrated"
    assert (out / "curves_a.png").is_file() and (out / "curves_b.png").is_file()
    assert "batch norm recalibrated" in (out / "model_card.md").read_text()

    # once that card is the shipped one and the run folder is gone, a new card still finds the
    # source network in it (by its accuracy before recalibration)
    os.makedirs(tmp_path / "docs")
    shutil.copytree(out, tmp_path / "docs" / "model_card")
    shutil.copyfile(os.path.join(run_a, "model.npz"), tmp_path / "kept_a.npz")
    shutil.rmtree(run_a)
    old_cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        facts, _ = model_card.described_member(str(tmp_path / "kept_a.npz"),
                                               tinycnn.load(str(tmp_path / "kept_a.npz"))[1])
    finally:
        os.chdir(old_cwd)
    assert facts["run"] == "a" and facts["val_acc"] == source_acc and "chosen" not in facts


def test_card_names_the_init_file_a_run_started_from_by_its_digest(tmp_path):
    data = write_fer_csv(tmp_path / "tiny.csv", {"Training": 70, "PublicTest": 28})
    start = train_tiny_run(tmp_path / "start", data)
    run = train_tiny_run(tmp_path / "run", data, "--init", os.path.join(start, "model.npz"))
    digest = tinycnn.load(os.path.join(run, "model.npz"))[1]["settings"]["init_sha256"]
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{model_card.marker('default')}\n")
    assert model_card.main(["--run", run, "--model", os.path.join(run, "model.npz"), "--data", str(data),
                            "--out", str(tmp_path / "card"), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert f"(`--init` file SHA-256 `{digest[:16]}…`)" in text
    assert "init_sha256" not in model_card.train_command(
        tinycnn.load(os.path.join(run, "model.npz"))[1]["settings"])
