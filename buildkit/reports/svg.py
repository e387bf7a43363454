"""Small inline SVG charts for the HTML report: no JavaScript, no external files, no fonts."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

FONT = "font-family='system-ui,-apple-system,Segoe UI,Roboto,sans-serif'"
GRID = "#e5e7eb"
INK = "#111827"
MUTED = "#6b7280"


@dataclass(frozen=True)
class Part:
    label: str
    value: float
    color: str


@dataclass(frozen=True)
class Bar:
    label: str
    parts: tuple[Part, ...]
    note: str = ""  # text after the bar (e.g. its total)


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    values: tuple[float | None, ...]


def _text(
    x: float,
    y: float,
    text: str,
    *,
    size: int = 12,
    anchor: str = "start",
    fill: str = INK,
    weight: str = "normal",
) -> str:
    return (
        f"<text x='{x:.1f}' y='{y:.1f}' font-size='{size}' text-anchor='{anchor}' fill='{fill}' "
        f"font-weight='{weight}' {FONT}>{escape(text)}</text>"
    )


def _axis(value: float) -> tuple[float, int]:
    """A round axis maximum ≥ value and its number of intervals, so ticks stay round numbers:
    (1, 5), (2, 4), (2.5, 5), (5, 5) times a power of ten."""
    if value <= 0:
        return 1.0, 4
    base = 10.0 ** math.floor(math.log10(value))
    for step, intervals in ((1, 5), (2, 4), (2.5, 5), (5, 5), (10, 5)):
        if step * base >= value * 0.999:
            return step * base, intervals
    return 10 * base, 5


def hbars(
    bars: Sequence[Bar], fmt: Callable[[float], str], *, width: int = 1000, label_width: int = 230
) -> str:
    """Horizontal (stacked) bars, one per row, sharing one scale with a labelled axis."""
    row, top = 26, 8
    total = max((sum(p.value for p in b.parts) for b in bars), default=0.0)
    axis_max, ticks = _axis(total)
    plot = width - label_width - 110
    height = top + row * len(bars) + 28
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' "
        f"width='100%' role='img'>"
    ]
    for i in range(ticks + 1):
        x = label_width + plot * i / ticks
        out.append(
            f"<line x1='{x:.1f}' y1='{top}' x2='{x:.1f}' y2='{height - 24}' stroke='{GRID}'/>"
        )
        out.append(
            _text(x, height - 8, fmt(axis_max * i / ticks), size=11, anchor="middle", fill=MUTED)
        )
    for n, bar in enumerate(bars):
        y = top + n * row
        out.append(_text(label_width - 8, y + 16, _clip(bar.label, label_width // 7), anchor="end"))
        x = float(label_width)
        for part in bar.parts:
            w = plot * part.value / axis_max if axis_max else 0.0
            if w > 0:
                out.append(
                    f"<rect x='{x:.1f}' y='{y + 4}' width='{max(w, 1.0):.1f}' height='{row - 8}' "
                    f"fill='{part.color}'><title>{escape(part.label)}: {escape(fmt(part.value))}"
                    "</title></rect>"
                )
            x += w
        out.append(_text(x + 6, y + 16, bar.note, size=11, fill=MUTED))
    out.append("</svg>")
    return "".join(out)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def lines(
    series: Sequence[Series],
    labels: Sequence[str],
    fmt: Callable[[float], str],
    *,
    width: int = 1000,
    height: int = 260,
) -> str:
    """A line chart over the same x labels (runs), with dots and a legend."""
    left, right, top, bottom = 80, 20, 30, 46
    values = [v for s in series for v in s.values if v is not None]
    axis_max, ticks = _axis(max(values, default=0.0))
    plot_w, plot_h = width - left - right, height - top - bottom
    count = max(len(labels), 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (plot_w * i / (count - 1) if count > 1 else plot_w / 2)
        return x, top + plot_h * (1 - v / axis_max)

    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' "
        f"width='100%' role='img'>"
    ]
    for i in range(ticks + 1):
        y = top + plot_h * i / ticks
        out.append(
            f"<line x1='{left}' y1='{y:.1f}' x2='{width - right}' y2='{y:.1f}' stroke='{GRID}'/>"
        )
        value = fmt(axis_max * (1 - i / ticks))
        out.append(_text(left - 8, y + 4, value, size=11, anchor="end", fill=MUTED))
    step = max(1, math.ceil(len(labels) / 7))
    for i, label in enumerate(labels):
        if i % step == 0 or i == len(labels) - 1:
            x, _ = xy(i, 0)
            anchor = "start" if i == 0 else ("end" if i == len(labels) - 1 else "middle")
            out.append(_text(x, height - bottom + 18, label, size=11, anchor=anchor, fill=MUTED))
    for n, s in enumerate(series):
        points = [xy(i, v) for i, v in enumerate(s.values) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            out.append(
                f"<polyline points='{path}' fill='none' stroke='{s.color}' stroke-width='2.5'/>"
            )
        for x, y in points:
            out.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3.5' fill='{s.color}'/>")
        lx = left + n * 260
        out.append(f"<rect x='{lx}' y='6' width='14' height='14' rx='3' fill='{s.color}'/>")
        out.append(_text(lx + 20, 18, s.name, size=12))
    out.append("</svg>")
    return "".join(out)


def legend(items: Sequence[tuple[str, str]]) -> str:
    """An HTML legend (label, colour) for the bar charts."""
    spans = "".join(
        f"<span class='key'><i style='background:{color}'></i>{escape(label)}</span>"
        for label, color in items
    )
    return f"<div class='legend'>{spans}</div>"
