"""fer_app.near_duplicates on generated faces: signatures, neighbours, exact copies, reports."""
from __future__ import annotations

import os

import numpy as np
import pytest

from fer_app import near_duplicates as nd
from fer_app.data.load import EMOTIONS, Dataset
from tests.train_samples import train_tiny_run, write_fer_csv


def random_faces(count: int, seed: int) -> np.ndarray:
    """(count, 48, 48) uint8 smooth random faces, unrelated to each other."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (count, 6, 6))
    return np.kron(coarse, np.ones((8, 8))).astype(np.uint8)


def test_signatures_are_unit_vectors_blind_to_brightness_and_contrast():
    faces = random_faces(3, seed=0)
    flat = np.full((1, 48, 48), 77, np.uint8)
    retoned = np.clip(faces[:1].astype(np.float64) * 0.5 + 60, 0, 255).astype(np.uint8)
    sig = nd.signatures(np.concatenate([faces, flat, retoned]))
    assert sig.shape == (5, 256) and sig.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(sig[:3], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(sig[3], 0.0)               # a flat image has no pattern
    assert sig[0] @ sig[4] > 0.999                            # same face, other brightness/contrast
    assert abs(sig[0] @ sig[1]) < 0.5                         # unrelated faces


def test_nearest_finds_the_copy_and_never_the_face_itself(monkeypatch):
    monkeypatch.setattr(nd, "CHUNK", 3)  # several blocks, so the self-exclusion offsets are tested
    faces = random_faces(8, seed=1)
    faces[5] = np.clip(faces[2].astype(np.int64) + 3, 0, 255)  # a near copy of face 2
    sig = nd.signatures(faces)
    similarity, index = nd.nearest(sig, sig, same=True)
    assert index[2] == 5 and index[5] == 2
    assert similarity[2] > 0.99
    assert all(index[k] != k for k in range(8))
    others = [k for k in range(8) if k not in (2, 5)]
    assert (similarity[others] < 0.9).all()
    brute = sig @ sig.T
    np.fill_diagonal(brute, -np.inf)
    np.testing.assert_allclose(similarity, brute.max(axis=1), rtol=1e-6)


def test_exact_copies_within_a_set_and_against_a_pool():
    faces = random_faces(5, seed=2)
    faces[4] = faces[1]
    np.testing.assert_array_equal(nd.exact_copies(faces), [False, True, False, False, True])
    queries = np.stack([faces[0], random_faces(1, seed=9)[0]])
    np.testing.assert_array_equal(nd.exact_copies(queries, faces), [True, False])


def test_data_report_counts_planted_duplicates():
    train_faces = random_faces(20, seed=3)
    train_faces[7] = train_faces[3]                                              # exact, in Training
    test_faces = random_faces(6, seed=4)
    test_faces[0] = train_faces[10]                                              # exact, test <- train
    test_faces[1] = np.clip(train_faces[11].astype(np.int64) * 0.8 + 20, 0, 255)  # re-toned copy
    images = np.concatenate([train_faces, test_faces])
    usage = np.array(["Training"] * 20 + ["PublicTest"] * 6)
    ds = Dataset(images, np.arange(26) % 7, list(EMOTIONS), usage)
    rows, neighbours = nd.data_report(ds)
    assert rows[0]["faces"] == 20 and rows[0]["exact"] == 2 and rows[0][">= 0.99"] == 2
    assert rows[1]["faces"] == 6 and rows[1]["exact"] == 1 and rows[1][">= 0.99"] == 2
    assert list(neighbours["index"][:2]) == [10, 11]
    table = nd.format_rows(rows)
    assert "| PublicTest faces with a copy in Training | 6 | 1 (16.7%) |" in table


def test_run_report_splits_validation_faces_by_twin(tmp_path):
    data = write_fer_csv(tmp_path / "tiny.csv", {"Training": 70, "PublicTest": 14})
    run = train_tiny_run(tmp_path / "run", data, "--val-split", "random")
    report = nd.run_report(str(run), str(data), threshold=0.9)
    assert report["validation"] == "random" and report["faces"] == 14
    assert 0 <= report["with_twin"] <= 14
    with_twin, without = report["with_twin"], report["faces"] - report["with_twin"]
    parts = [(n, report[key]) for n, key in ((with_twin, "accuracy_with_twin"),
                                             (without, "accuracy_without_twin")) if n]
    assert report["accuracy"] == pytest.approx(sum(n * acc for n, acc in parts) / report["faces"])
    on_public_test = nd.model_report(os.path.join(run, "model.npz"), str(data), threshold=0.9)
    assert on_public_test["validation"] == "PublicTest" and on_public_test["faces"] == 14
    table = nd.format_reports([report, on_public_test], 0.9).splitlines()
    assert len(table) == 4 and table[3].startswith(f"| {os.path.join(run, 'model.npz')} | 14 (PublicTest) |")


def test_cli_prints_the_table_and_a_bad_run_is_one_line(tmp_path, capsys):
    data = write_fer_csv(tmp_path / "tiny.csv", {"Training": 21, "PublicTest": 7})
    assert nd.main(["--data", str(data), "--grid", str(tmp_path / "grid.png")]) == 0
    out = capsys.readouterr().out
    assert "| Training faces with a copy elsewhere in Training | 21 |" in out
    assert (tmp_path / "grid.png").stat().st_size > 0
    assert nd.main(["--data", str(data), "--run", str(tmp_path / "missing"),
                    "--grid", str(tmp_path / "not_written.png")]) == 1
    captured = capsys.readouterr()
    assert "missing" in captured.err and captured.out == ""   # stopped before the data report
    assert not (tmp_path / "not_written.png").exists()
