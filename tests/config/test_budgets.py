"""The `budgets:` config section: human sizes, percentages, defaults per image, file:line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildkit.config import budgets
from buildkit.config import loading as config
from buildkit.errors import ConfigError

MINIMAL = """\
name: shop
registry: 127.0.0.1:5000
ruby:
  version: "3.3.8"
"""


def resolve(tmp_path: Path, section: str) -> config.Config:
    path = tmp_path / "imgbuild.yaml"
    path.write_text(MINIMAL + section)
    (tmp_path / "Gemfile").write_text("")
    return config.resolve(path, env={})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("350MB", 350_000_000),
        ("350 MB", 350_000_000),
        ("1.2GiB", round(1.2 * 1024**3)),
        ("500kB", 500_000),
        ("64KiB", 65_536),
        ("2gb", 2_000_000_000),
        ("1024", 1024),
        (4096, 4096),
    ],
)
def test_sizes_take_si_and_binary_units(text: str | int, expected: int) -> None:
    assert budgets.parse_size(text) == expected


@pytest.mark.parametrize("text", ["350 furlongs", "MB", "-3MB", "", "1.2.3GB", True, -1])
def test_bad_sizes_are_refused(text: str | int) -> None:
    with pytest.raises(ValueError, match="size"):
        budgets.parse_size(text)


def test_percentages_need_a_percent_sign() -> None:
    assert budgets.parse_percent("5%") == pytest.approx(0.05)
    assert budgets.parse_percent(" 12.5 % ") == pytest.approx(0.125)
    for bad in (5, 0.05, "5", "five%"):
        with pytest.raises(ValueError, match="percentage"):
            budgets.parse_percent(bad)


def test_no_section_means_compressed_metric_and_five_percent_growth(tmp_path: Path) -> None:
    resolved = resolve(tmp_path, "")
    for name in ("ruby", "base", "app"):
        budget = resolved.budgets.for_image(name)
        assert budget.metric == "compressed"
        assert budget.max_growth == pytest.approx(0.05)
        assert budget.max_bytes is None
    assert resolved.budgets.baseline is None


def test_top_level_defaults_cascade_and_images_override(tmp_path: Path) -> None:
    resolved = resolve(
        tmp_path,
        "budgets:\n"
        "  metric: uncompressed\n"
        "  max_growth: 2%\n"
        "  baseline: ci/sizes.json\n"
        "  app: {max_bytes: 350MB, max_growth: 10%}\n"
        "  base:\n"
        "    max_growth: null\n"
        "    metric: compressed\n",
    )
    app = resolved.budgets.for_image("app")
    assert (app.metric, app.max_bytes, app.max_growth) == ("uncompressed", 350_000_000, 0.1)
    base = resolved.budgets.for_image("base")
    assert (base.metric, base.max_bytes, base.max_growth) == ("compressed", None, None)
    ruby = resolved.budgets.for_image("ruby")
    assert (ruby.metric, ruby.max_growth) == ("uncompressed", pytest.approx(0.02))
    assert resolved.budgets.baseline == tmp_path / "ci" / "sizes.json"


def test_bad_size_names_file_line_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        resolve(tmp_path, "budgets:\n  app:\n    max_bytes: 350 furlongs\n")
    message = info.value.message
    assert f"{tmp_path / 'imgbuild.yaml'}:7:" in message
    assert "budgets.app.max_bytes" in message
    assert "350MB" in message


def test_bare_number_growth_is_refused_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        resolve(tmp_path, "budgets:\n  max_growth: 5\n")
    assert ":6:" in info.value.message
    assert "budgets.max_growth" in info.value.message
    assert "5%" in info.value.message


def test_unknown_metric_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"budgets\.app\.metric.*compressed, uncompressed"):
        resolve(tmp_path, "budgets:\n  app: {metric: gzipped}\n")


def test_unknown_key_suggests_the_close_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        resolve(tmp_path, "budgets:\n  app:\n    max_byte: 1GB\n")
    assert "budgets.app.max_byte" in info.value.message
    assert "did you mean 'max_bytes'" in info.value.message
    assert ":7:" in info.value.message


def test_unknown_image_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"budgets\.web"):
        resolve(tmp_path, "budgets:\n  web: {max_bytes: 1GB}\n")
