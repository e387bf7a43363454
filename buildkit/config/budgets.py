"""`budgets:` — size budgets per image, for `imgbuild size check` (docs/reports.md).

    budgets:
      metric: compressed        # what the budgets measure: compressed | uncompressed
      max_growth: 5%            # default for every image: growth allowed over the baseline
      baseline: imgbuild-baseline.json
      app:  {max_bytes: 350MB}
      base: {max_bytes: 1.2GiB, max_growth: 2%}

Top-level `metric`/`max_growth`/`max_bytes` are defaults that each image's own keys override;
`max_growth: null` switches the growth check off. Sizes take SI (kB, MB, GB) or binary (KiB,
MiB, GiB) units; growth is a percentage.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from buildkit.config.yamlsrc import Document
from buildkit.errors import ConfigError

IMAGES = ("ruby", "base", "app")
METRICS = ("compressed", "uncompressed")
DEFAULT_METRIC = "compressed"
DEFAULT_MAX_GROWTH = 0.05
DEFAULT_BASELINE = "imgbuild-baseline.json"

_RULES: dict[str, Any] = {"metric": None, "max_bytes": None, "max_growth": None}
KEYS: dict[str, Any] = {**_RULES, "baseline": None, **{name: dict(_RULES) for name in IMAGES}}

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


@dataclass(frozen=True, kw_only=True)
class Budget:
    """The limits for one image. `max_growth` is a fraction (0.05 = 5 %); None = no check."""

    metric: str = DEFAULT_METRIC
    max_bytes: int | None = None
    max_growth: float | None = DEFAULT_MAX_GROWTH


@dataclass(frozen=True, kw_only=True)
class Budgets:
    per_image: Mapping[str, Budget] = field(
        default_factory=lambda: MappingProxyType({name: Budget() for name in IMAGES})
    )
    baseline: Path | None = None  # None: imgbuild-baseline.json next to the config

    def for_image(self, name: str) -> Budget:
        return self.per_image.get(name, Budget())


def parse_size(value: Any) -> int:
    """'350MB' -> 350_000_000, '1.2GiB' -> 1288490188, 1024 -> 1024; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("a size, not true/false")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    match = _SIZE.match(str(value))
    unit = match[2].lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"{value!r} is not a size like 350MB, 1.2GiB or 500kB")
    return round(float(match[1]) * _UNITS[unit])


def parse_percent(value: Any) -> float:
    """'5%' -> 0.05. Bare numbers are refused: 5 and 0.05 would both be plausible."""
    match = _PERCENT.match(str(value)) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{value!r} is not a percentage like 5% (quote it in YAML: '5%')")
    return float(match[1]) / 100


def _rules(doc: Document, prefix: str, raw: Mapping[str, Any], inherited: Budget) -> Budget:
    metric, max_bytes, max_growth = inherited.metric, inherited.max_bytes, inherited.max_growth
    if "metric" in raw:
        metric = str(raw["metric"])
        if metric not in METRICS:
            raise ConfigError(
                f"{doc.where(f'{prefix}.metric')}: '{prefix}.metric' must be one of "
                f"{', '.join(METRICS)}, not {raw['metric']!r}"
            )
    try:
        if "max_bytes" in raw:
            key = f"{prefix}.max_bytes"
            max_bytes = None if raw["max_bytes"] is None else parse_size(raw["max_bytes"])
        if "max_growth" in raw:
            key = f"{prefix}.max_growth"
            max_growth = None if raw["max_growth"] is None else parse_percent(raw["max_growth"])
    except ValueError as exc:
        raise ConfigError(f"{doc.where(key)}: '{key}': {exc}") from None
    return Budget(metric=metric, max_bytes=max_bytes, max_growth=max_growth)


def parse(doc: Document, raw: Any, root: Path) -> Budgets:
    if raw is None:
        return Budgets()
    if not isinstance(raw, dict):
        raise ConfigError(f"{doc.where('budgets')}: 'budgets' must be a mapping of keys")
    defaults = _rules(doc, "budgets", raw, Budget())
    per_image = {}
    for name in IMAGES:
        own = raw.get(name) or {}
        if not isinstance(own, dict):
            raise ConfigError(f"{doc.where(f'budgets.{name}')}: 'budgets.{name}' must be a mapping")
        per_image[name] = _rules(doc, f"budgets.{name}", own, defaults)
    baseline = None
    if raw.get("baseline") is not None:
        text = str(raw["baseline"])
        path = Path(text).expanduser()
        baseline = path if path.is_absolute() else root / path
    return Budgets(per_image=MappingProxyType(per_image), baseline=baseline)
