"""How numbers read in every output: SI byte units (like `docker images`), signed deltas."""

from __future__ import annotations

_STEPS = (("GB", 1000**3), ("MB", 1000**2), ("kB", 1000))


def size(value: int | None) -> str:
    """12_345_678 -> '12.3 MB'; None -> an en dash (not measured)."""
    if value is None:
        return "–"
    for unit, scale in _STEPS:
        if abs(value) >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value} B"


def delta(value: int | None) -> str:
    """Signed size change: '+20.0 MB', '-1.2 kB', '±0 B'."""
    if value is None:
        return "–"
    if value == 0:
        return "±0 B"
    return ("+" if value > 0 else "-") + size(abs(value))


def percent(fraction: float | None, *, signed: bool = False) -> str:
    if fraction is None:
        return "–"
    text = f"{fraction * 100:.1f}%"
    return f"+{text}" if signed and fraction > 0 else text


def change(current: int | None, baseline: int | None) -> str:
    """'+20.0 MB (+25.1%)' against a baseline, or an en dash when either side is unknown."""
    if current is None or baseline is None:
        return "–"
    diff = current - baseline
    if baseline == 0:
        return delta(diff)
    return f"{delta(diff)} ({percent(diff / baseline, signed=True)})"


def seconds(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= 60:
        minutes, rest = divmod(value, 60)
        return f"{int(minutes)}m{rest:04.1f}s"
    return f"{value:.1f}s"
