"""Fixed-width terminal output for the report: tables and wrapped lines, standard library only.

The report's two tables used rich; importing and rendering it was ~50 ms of every one-shot
`imgbuild app --push` (issue 17, P2-ONESHOT), for a look this module draws by itself: a
left-aligned title, a header, a `─` rule under it, padded cells (numbers right-justified), a blank
line above and below (rich's box.SIMPLE_HEAD). Colour only on a terminal, never with NO_COLOR.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Literal, TextIO

#: Off a terminal (CI logs, pipes), lines wrap here; a terminal narrower than MIN_WIDTH is
#: treated as MIN_WIDTH wide so the sizes table stays one row per line.
OFF_TERMINAL_WIDTH = 120
MIN_WIDTH = 100
_BOLD_RED = "\x1b[1;31m"
_RESET = "\x1b[0m"

Justify = Literal["left", "right"]


@dataclass
class Grid:
    """A table: columns (name, justify) and rows of cells, drawn at its natural width."""

    title: str
    columns: list[tuple[str, Justify]] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)

    def add_column(self, name: str, justify: Justify = "left") -> None:
        self.columns.append((name, justify))

    def add_row(self, *cells: str) -> None:
        self.rows.append(list(cells))

    def lines(self) -> list[str]:
        """Title, blank edge, header, rule, rows, blank edge; every line the table's width."""
        names = [name for name, _ in self.columns]
        widths = [max(len(c) for c in column) for column in zip(names, *self.rows, strict=True)]
        total = sum(widths) + 3 * len(widths) + 1
        rule = " " + "─".join("─" * (w + 2) for w in widths) + " "
        body = [self._line(row, widths) for row in self.rows]
        blank = " " * total
        return [self.title.ljust(total), blank, self._line(names, widths), rule, *body, blank]

    def _line(self, cells: list[str], widths: list[int]) -> str:
        padded = [
            cell.rjust(width) if justify == "right" else cell.ljust(width)
            for cell, width, (_, justify) in zip(cells, widths, self.columns, strict=True)
        ]
        return "  " + "   ".join(padded) + "  "


class Out:
    """One stream: tables as they are, other lines wrapped at the width (rich's soft wrap)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.terminal = _isatty(self.stream)
        self.width = max(_terminal_width(self.stream), MIN_WIDTH) if self.terminal else 0
        self.width = self.width or OFF_TERMINAL_WIDTH

    def grid(self, grid: Grid) -> None:
        self.stream.write("".join(line + "\n" for line in grid.lines()))

    def line(self, text: str, *, wrap: bool = True, alert: str = "") -> None:
        """`alert` is a prefix shown bold red on a colour terminal (plain elsewhere)."""
        lines = wrapped(alert + text, self.width) if wrap else [alert + text]
        if alert and self.colour:
            lines[0] = _BOLD_RED + alert + _RESET + lines[0][len(alert) :]
        self.stream.write("".join(line + "\n" for line in lines))

    @property
    def colour(self) -> bool:
        return self.terminal and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def wrapped(text: str, width: int) -> list[str]:
    """Break at spaces so no line is wider than `width` (a longer word gets a line of its own
    and is cut, as rich folds it); the space at a break stays at the end of the line."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if len(candidate) <= width or not current:
            current = candidate
        else:
            lines.append(current + " ")
            current = word
        while len(current) > width:
            lines.append(current[:width])
            current = current[width:]
    lines.append(current)
    return lines


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _terminal_width(stream: TextIO) -> int:
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        return int(columns)
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 0
