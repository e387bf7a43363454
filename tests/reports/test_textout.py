"""The report's own fixed-width output (reports.textout): the look rich's SIMPLE_HEAD tables had."""

from __future__ import annotations

import io

import pytest

from buildkit.reports.textout import Grid, Out, wrapped


def test_a_grid_has_title_rule_padding_and_right_justified_numbers() -> None:
    grid = Grid(title="Image sizes")
    grid.add_column("image")
    grid.add_column("total", "right")
    grid.add_row("ruby", "76.2 MB")
    grid.add_row("app", "181.4 MB")
    lines = grid.lines()
    assert lines[0].startswith("Image sizes")
    assert len({len(line) for line in lines}) == 1
    assert lines[2] == "  image      total  "
    assert lines[3] == " " + "─" * 7 + "─" + "─" * 10 + " "
    assert lines[4] == "  ruby     76.2 MB  "
    assert lines[5] == "  app     181.4 MB  "
    assert lines[1].strip() == ""
    assert lines[6].strip() == ""


def test_long_lines_wrap_at_spaces_keeping_the_space_and_fold_a_long_word() -> None:
    assert wrapped("aaa bbb ccc", 7) == ["aaa bbb ", "ccc"]
    assert wrapped("x" * 10, 4) == ["xxxx", "xxxx", "xx"]
    assert wrapped("short", 80) == ["short"]


def test_off_a_terminal_lines_wrap_at_120_and_carry_no_colour() -> None:
    stream = io.StringIO()
    out = Out(stream)
    out.line("word " * 30, alert="size budget exceeded: ")
    text = stream.getvalue()
    assert "\x1b[" not in text
    assert text.startswith("size budget exceeded: word")
    assert max(len(line) for line in text.splitlines()) <= 120
    assert len(text.splitlines()) == 2


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_alert_is_bold_red_unless_no_color(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    stream = _Tty()
    Out(stream).line("app is 5.0 kB", alert="size budget exceeded: ")
    assert stream.getvalue() == "\x1b[1;31msize budget exceeded: \x1b[0mapp is 5.0 kB\n"
    monkeypatch.setenv("NO_COLOR", "1")
    plain = _Tty()
    Out(plain).line("app is 5.0 kB", alert="size budget exceeded: ")
    assert plain.getvalue() == "size budget exceeded: app is 5.0 kB\n"


def test_a_narrow_terminal_counts_as_100_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    assert Out(_Tty()).width == 100
    assert Out(io.StringIO()).width == 120
