"""Write benchmark rows as JSON, a Markdown table and a bar chart of the ratios.

A row is a dict with at least ``name``, ``backend``, ``tinycnn_s``, ``keras_s``
(seconds per call) and ``ratio`` = keras / tinycnn (above 1 when tinycnn is
better). Memory rows hold ``tinycnn_mb``/``keras_mb`` instead of seconds, with the
ratio defined the same way (Keras MB / tinycnn MB). Optional fields:
``tinycnn_gflops``/``keras_gflops``, ``*_matmul_share`` (fraction of the machine's
measured float32 matmul GFLOP/s) and ``*_images_per_s``.
"""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402


def write_json(rows: list[dict], path: Path) -> None:
    path.write_text(json.dumps(rows, indent=1) + "\n")


def markdown_table(rows: list[dict]) -> str:
    """One line per row: the two sides, the ratio and what each side achieved."""
    lines = ["| benchmark | tinycnn backend | tinycnn | Keras | Keras / tinycnn | tinycnn rate | Keras rate |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['name']} | {row['backend']} | {_amount(row, 'tinycnn')} | "
                     f"{_amount(row, 'keras')} | {row['ratio']:.2f} | {_rate(row, 'tinycnn')} | "
                     f"{_rate(row, 'keras')} |")
    return "\n".join(lines)


def _amount(row: dict, side: str) -> str:
    """Time per call in ms, or peak memory in MB for memory rows."""
    if row.get(f"{side}_mb") is not None:
        return f"{row[f'{side}_mb']:.0f} MB"
    return f"{row[f'{side}_s'] * 1e3:.2f} ms"


def _rate(row: dict, side: str) -> str:
    """GFLOP/s with its share of the matmul limit, and images/s where they apply."""
    parts = []
    if row.get(f"{side}_gflops") is not None:
        share = row.get(f"{side}_matmul_share")
        parts.append(f"{row[f'{side}_gflops']:.0f} GFLOP/s"
                     + (f" ({share:.0%})" if share is not None else ""))
    if row.get(f"{side}_images_per_s") is not None:
        parts.append(f"{row[f'{side}_images_per_s']:.0f} img/s")
    return ", ".join(parts)


def write_markdown(rows: list[dict], header: str, path: Path) -> None:
    path.write_text(header.rstrip() + "\n\n" + markdown_table(rows) + "\n")


def write_bar_chart(rows: list[dict], path: Path, title: str) -> None:
    """Horizontal bars of Keras / tinycnn per row (log scale; right of 1 = tinycnn better)."""
    labels = [f"{row['name']} [{row['backend']}]" for row in rows]
    ratios = [row["ratio"] for row in rows]
    backends = sorted({row["backend"] for row in rows})
    colours = {name: f"C{index}" for index, name in enumerate(backends)}
    figure, axes = plt.subplots(figsize=(10, 0.28 * len(rows) + 1.5))
    positions = range(len(rows))[::-1]
    axes.barh(list(positions), ratios, color=[colours[row["backend"]] for row in rows])
    axes.set_yticks(list(positions), labels, fontsize=7)
    axes.set_xscale("log")
    axes.axvline(1.0, color="black", linewidth=1)
    axes.set_xlabel("Keras time / tinycnn time  (> 1: tinycnn faster; memory rows: Keras MB / tinycnn MB)")
    axes.set_title(title, fontsize=9)
    handles = [Patch(color=colour, label=f"tinycnn {name}") for name, colour in colours.items()]
    axes.legend(handles=handles, loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
