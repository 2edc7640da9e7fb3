"""FER-2013 CSV loader: good files (plain and .gz), every kind of bad row, skip_bad, the parser."""
import gzip

import numpy as np
import pytest

from fer_app.data.fer_csv import (NON_NUMERIC, OK, OUT_OF_RANGE, WRONG_COUNT, parse_pixel_row,
                                  parse_pixels)
from fer_app.data.load import EMOTIONS, DataError, load_dataset


def random_faces(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 48), dtype=np.uint8)


def pixel_string(face):
    return " ".join(str(v) for v in face.reshape(-1))


def write_csv(path, rows, header="emotion,pixels,Usage"):
    """rows: list of (label text, pixel text, usage) tuples (usage None = column omitted)."""
    lines = [header] + [",".join(str(field) for field in row if field is not None) for row in rows]
    text = "\n".join(lines) + "\n"
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt") as file:
            file.write(text)
    else:
        path.write_text(text)
    return str(path)


def good_rows(n=10, seed=0):
    faces = random_faces(n, seed)
    labels = np.arange(n) % 7
    usage = ["Training" if i < n - 3 else "PublicTest" for i in range(n)]
    return faces, labels, [(labels[i], pixel_string(faces[i]), usage[i]) for i in range(n)]


@pytest.mark.parametrize("name", ["fer.csv", "fer.csv.gz"])
def test_loads_exact_pixels_labels_and_usage(tmp_path, name):
    faces, labels, rows = good_rows()
    ds = load_dataset(write_csv(tmp_path / name, rows), cache=False)
    assert ds.images.dtype == np.uint8 and ds.images.shape == (10, 48, 48)
    np.testing.assert_array_equal(ds.images, faces)
    np.testing.assert_array_equal(ds.labels, labels)
    assert ds.labels.dtype == np.int64
    assert ds.class_names == EMOTIONS
    assert list(ds.usage) == ["Training"] * 7 + ["PublicTest"] * 3
    assert ds.skipped == 0


def test_csv_without_usage_column_has_no_usage(tmp_path):
    faces, labels, rows = good_rows(4)
    path = write_csv(tmp_path / "train.csv", [row[:2] + (None,) for row in rows], header="emotion,pixels")
    ds = load_dataset(path, cache=False)
    assert ds.usage is None
    np.testing.assert_array_equal(ds.images, faces)


def bad_pixels_cases():
    face = pixel_string(random_faces(1)[0])
    values = face.split(" ")
    return {
        "too few": (" ".join(values[:-1]), "2303 pixel values, expected 2304"),
        "too many": (face + " 7", "2305 pixel values, expected 2304"),
        "non-numeric": (" ".join(values[:5] + ["abc"] + values[6:]), "non-numeric pixel 'abc' (pixel 6"),
        "negative": (" ".join(["-3"] + values[1:]), "non-numeric pixel '-3' (pixel 1"),
        "decimal": (" ".join(values[:-1] + ["1.5"]), "non-numeric pixel '1.5' (pixel 2304"),
        "out of range": (" ".join(values[:9] + ["256"] + values[10:]), "pixel 10 = 256 out of range 0..255"),
        "empty": ("", "0 pixel values, expected 2304"),
    }


@pytest.mark.parametrize("case", sorted(bad_pixels_cases()))
@pytest.mark.parametrize("name", ["fer.csv", "fer.csv.gz"])
def test_bad_pixels_name_file_line_and_problem(tmp_path, case, name):
    pixels, expected = bad_pixels_cases()[case]
    _, _, rows = good_rows(6)
    rows[3] = (2, pixels, "Training")  # file line 5 (header is line 1)
    path = write_csv(tmp_path / name, rows)
    with pytest.raises(DataError) as error:
        load_dataset(path, cache=False)
    message = str(error.value)
    assert path in message and "line 5:" in message and expected in message


@pytest.mark.parametrize("label, expected", [("7", "label 7 out of range 0..6"),
                                             ("x", "label 'x' is not an integer"),
                                             ("-1", "label '-1' is not an integer"),
                                             ("", "label '' is not an integer")])
def test_bad_label_names_file_line_and_problem(tmp_path, label, expected):
    _, _, rows = good_rows(4)
    rows[1] = (label,) + rows[1][1:]
    path = write_csv(tmp_path / "fer.csv", rows)
    with pytest.raises(DataError, match=r"line 3: " + expected) as error:
        load_dataset(path, cache=False)
    assert path in str(error.value)


def test_missing_column_names_the_file(tmp_path):
    _, _, rows = good_rows(3)
    path = write_csv(tmp_path / "fer.csv", [(row[0], row[2]) + (None,) for row in rows], header="emotion,Usage")
    with pytest.raises(DataError, match="missing column.*pixels") as error:
        load_dataset(path, cache=False)
    assert path in str(error.value)


def test_empty_file_and_missing_file(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty.csv: line 1: empty file"):
        load_dataset(str(empty), cache=False)
    with pytest.raises(DataError, match="nope.csv: not found"):
        load_dataset(str(tmp_path / "nope.csv"), cache=False)


def test_extra_field_is_reported_with_the_file(tmp_path):
    _, _, rows = good_rows(3)
    rows[1] = rows[1] + ("extra",)
    path = write_csv(tmp_path / "fer.csv", rows)
    with pytest.raises(DataError) as error:
        load_dataset(path, cache=False)
    assert path in str(error.value) and "line 3" in str(error.value)


def test_blank_line_keeps_line_numbers_true(tmp_path):
    _, _, rows = good_rows(4)
    path = tmp_path / "fer.csv"
    lines = ["emotion,pixels,Usage"] + [",".join(map(str, row)) for row in rows]
    lines.insert(2, "")  # line 3 is blank
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="line 3: label '' is not an integer"):
        load_dataset(str(path), cache=False)


def test_skip_bad_skips_and_counts_every_bad_row(tmp_path):
    faces, labels, rows = good_rows(12)
    bad = bad_pixels_cases()
    rows[1] = (1, bad["too few"][0], "Training")
    rows[4] = (4, bad["non-numeric"][0], "Training")
    rows[6] = ("9", rows[6][1], "Training")
    path = write_csv(tmp_path / "fer.csv.gz", rows)
    with pytest.raises(DataError, match=r"line 3: .*\(3 bad row\(s\) in all"):
        load_dataset(path, cache=False)
    ds = load_dataset(path, skip_bad=True, cache=False)
    keep = [i for i in range(12) if i not in (1, 4, 6)]
    assert ds.skipped == 3 and len(ds) == 9
    np.testing.assert_array_equal(ds.images, faces[keep])
    np.testing.assert_array_equal(ds.labels, labels[keep])


def test_fast_parser_matches_reference_on_good_and_bad_rows():
    rng = np.random.default_rng(1)
    faces = random_faces(6, seed=2)
    strings = [pixel_string(face) for face in faces]
    strings += [case[0] for case in bad_pixels_cases().values()]
    strings += ["  " + strings[0].replace(" ", "  ") + " ", strings[1].replace("7", "\u0667"),
                strings[2] + "\t", " ".join(["0255"] * 2304), " ".join(["99999999999999999999"] * 2304)]
    strings = [strings[i] for i in rng.permutation(len(strings))]
    values, status = parse_pixels(np.array(strings, dtype=object))
    for row, text in enumerate(strings):
        expected_values, expected_status, _ = parse_pixel_row(text)
        assert status[row] == expected_status, text[:40]
        if expected_status == OK:
            np.testing.assert_array_equal(values[row], expected_values)
    assert {OK, NON_NUMERIC, OUT_OF_RANGE, WRONG_COUNT} <= set(status.tolist())


def test_corrupt_gzip_names_the_file(tmp_path):
    path = tmp_path / "fer.csv.gz"
    path.write_bytes(b"garbage, not gzip")
    with pytest.raises(DataError, match="fer.csv.gz: not a readable CSV"):
        load_dataset(str(path), cache=False)
