"""Read the canonical FER-2013 CSV (``emotion,pixels,Usage``; plain or ``.gz``).

Each data row holds a label 0..6, a string of 48*48 = 2304 space-separated grey
values 0..255 (row-major), and optionally the split name. Every row is checked;
a bad row raises :class:`DataError` naming the file, the line (as numbered in the
file, header = line 1) and what is wrong, or is skipped and counted with
``skip_bad=True``. Nothing is ever reshaped to fit.

pandas reads the columns; the pixel strings are parsed by one Numba loop over
their bytes (about a second for the 32k-row file), beside a plain Python
reference parser (:func:`parse_pixel_row`) that the tests hold it to and that
words the error messages.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from tinycnn.kernels.numba_cache import cached_njit

from .dataset import EMOTIONS, N_PIXELS, DataError, Dataset

REQUIRED_COLUMNS = ["emotion", "pixels"]
OK, NON_NUMERIC, OUT_OF_RANGE, WRONG_COUNT = 0, 1, 2, 3
SPACE, ZERO, NINE = ord(" "), ord("0"), ord("9")


def read_fer_csv(path: str, skip_bad: bool = False) -> Dataset:
    """Load a FER-2013 CSV into a 7-class Dataset (labels index EMOTIONS)."""
    table = _read_table(path)
    label_problems, labels = _check_labels(table["emotion"].to_numpy())
    pixel_strings = table["pixels"].to_numpy()
    images, pixel_status = parse_pixels(pixel_strings)
    bad = (label_problems != "") | (pixel_status != OK)
    if bad.any() and not skip_bad:
        row = int(np.flatnonzero(bad)[0])
        problem = label_problems[row] or parse_pixel_row(pixel_strings[row])[2]
        raise DataError(f"{path}: line {row + 2}: {problem} "
                        f"({int(bad.sum())} bad row(s) in all; skip_bad / --skip-bad skips them)")
    good = ~bad
    usage = table["Usage"].to_numpy().astype(str)[good] if "Usage" in table.columns else None
    return Dataset(images[good].reshape(-1, 48, 48), labels[good], list(EMOTIONS), usage,
                   skipped=int(bad.sum()))


def _read_table(path: str) -> pd.DataFrame:
    """All columns as strings; blank lines kept as rows so line numbers stay true."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: line 1: empty file, expected header emotion,pixels,Usage") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as error:
        raise DataError(f"{path}: not a readable CSV: {error}") from None
    missing = [name for name in REQUIRED_COLUMNS if name not in table.columns]
    if missing:
        raise DataError(f"{path}: line 1: missing column(s) {', '.join(missing)}; found "
                        f"{', '.join(map(str, table.columns))}; expected emotion,pixels,Usage")
    return table.fillna("")


def _check_labels(texts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Problems (N,) str ("" when fine) and labels (N,) int64 for the emotion column."""
    strings = pd.Series(texts, dtype=str).str.strip()
    is_integer = strings.str.fullmatch(r"\d{1,9}").to_numpy(dtype=bool)
    labels = np.where(is_integer, pd.to_numeric(strings.where(is_integer, "0")), -1).astype(np.int64)
    problems = np.full(len(texts), "", dtype=object)
    problems[~is_integer] = [f"label {text!r} is not an integer" for text in texts[~is_integer]]
    out_of_range = is_integer & (labels >= len(EMOTIONS))
    problems[out_of_range] = [f"label {value} out of range 0..{len(EMOTIONS) - 1}"
                              for value in labels[out_of_range]]
    return problems, labels


def parse_pixels(strings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parse N pixel strings at once: values (N, 2304) uint8 and status (N,) int8 (OK or a problem code).

    The strings are joined into one byte buffer; ``offsets[r]:offsets[r+1]`` is row r.
    Non-ASCII characters become '?', so they count as non-numeric.
    """
    lengths = np.fromiter((len(text) for text in strings), dtype=np.int64, count=len(strings))
    offsets = np.zeros(len(strings) + 1, dtype=np.int64)  # (N+1,)
    np.cumsum(lengths, out=offsets[1:])
    buffer = np.frombuffer("".join(strings).encode("ascii", "replace"), dtype=np.uint8)  # (B,)
    values = np.zeros((len(strings), N_PIXELS), dtype=np.uint8)
    status = np.zeros(len(strings), dtype=np.int8)
    _parse_pixel_bytes(buffer, offsets, values, status)
    return values, status


@cached_njit()
def _parse_pixel_bytes(buffer, offsets, values, status):
    """Fill values[r] with row r's numbers and status[r] with its problem code.

    Priority when a row has several problems: non-numeric, then out of range, then count.
    """
    for row in range(len(offsets) - 1):
        count, value, non_numeric, out_of_range = 0, -1, False, False
        end = offsets[row + 1]
        for i in range(offsets[row], end + 1):
            byte = buffer[i] if i < end else SPACE  # a space after the row closes its last token
            if ZERO <= byte <= NINE:
                value = min((max(value, 0)) * 10 + byte - ZERO, 256)  # 256 = "too big", no overflow
            elif byte == SPACE:
                if value >= 0:
                    out_of_range |= value > 255
                    if count < N_PIXELS:
                        values[row, count] = min(value, 255)
                    count += 1
                    value = -1
            else:
                non_numeric = True
        if non_numeric:
            status[row] = NON_NUMERIC
        elif out_of_range:
            status[row] = OUT_OF_RANGE
        elif count != N_PIXELS:
            status[row] = WRONG_COUNT


def parse_pixel_row(text: str) -> tuple[np.ndarray | None, int, str]:
    """Reference parser for one pixel string: (values (2304,) uint8 or None, status, problem text)."""
    tokens = [token for token in text.split(" ") if token != ""]
    for position, token in enumerate(tokens, start=1):
        if not (token.isascii() and token.isdigit()):
            return None, NON_NUMERIC, f"non-numeric pixel {token[:20]!r} (pixel {position} of the row)"
    for position, token in enumerate(tokens, start=1):
        if int(token) > 255:
            return None, OUT_OF_RANGE, f"pixel {position} = {token[:20]} out of range 0..255"
    if len(tokens) != N_PIXELS:
        return None, WRONG_COUNT, f"{len(tokens)} pixel values, expected {N_PIXELS} (48x48)"
    return np.array([int(token) for token in tokens], dtype=np.uint8), OK, ""
