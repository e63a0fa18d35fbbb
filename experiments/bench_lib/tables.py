"""Text tables of the benchmark's results: fixed-width for the console, Markdown for results.md."""

from __future__ import annotations

from typing import Sequence


class TextTable:
    """Fixed-width text table: first two columns left-aligned, the rest right-aligned; short rows span."""

    def __init__(self, columns: Sequence[str], widths: Sequence[int]):
        self.columns = columns
        self.widths = [max(len(c), w) for c, w in zip(columns, widths)]

    def line(self, cells: Sequence[str]) -> str:
        parts = [f"{c:<{w}}" if i < 2 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(cells, self.widths))]
        if len(cells) < len(self.columns):  # an unavailable/failed row: the status spans the rest
            parts = parts[:-1] + [cells[-1]]
        return "  ".join(parts).rstrip()

    def header(self) -> str:
        return self.line(self.columns)


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Returns a GitHub Markdown table; a short row (a status) leaves the remaining cells empty."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for cells in rows:
        cells = list(cells) + [""] * (len(columns) - len(cells))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
