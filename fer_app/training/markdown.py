"""Markdown tables, as the reports (compare_runs, distill_report, near_duplicates) print them."""
from __future__ import annotations


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A header of K names and rows of K cells each -> a Markdown table:

    | a | b |
    |---|---|
    | 1 | 2 |
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)
