"""buildkit.engine.progress against real BuildKit output (tests/data/progress/README.md says how
each sample was captured); hand-written input only for edge cases the samples cannot show."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildkit.engine.progress import (
    CANCELED,
    PlainProgressParser,
    RunningStep,
    Step,
    is_internal_step,
    solve_error,
    summarize,
)

DATA = Path(__file__).parents[1] / "data" / "progress"
PLAIN = {"buildx": "bxplain", "cli2010": "cli"}  # sample prefix -> word its Dockerfile used


def sample(name: str) -> str:
    return (DATA / f"{name}.txt").read_text(encoding="utf-8")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def parse_plain(name: str, clock: FakeClock | None = None) -> PlainProgressParser:
    parser = PlainProgressParser(clock=clock or FakeClock())
    parser.feed_lines(sample(name).splitlines())
    return parser


def user_steps(steps: list[Step]) -> list[Step]:
    return [step for step in steps if not step.internal]


def dockerfile_steps(word: str, *, fail: bool = False) -> list[str]:
    """The non-internal vertex names of the cold/cached/fail samples, in Dockerfile order."""
    last = "4" if fail else "3"
    names = [
        "[build 2/4] COPY hello.txt /src/hello.txt",
        f'[build 3/4] RUN echo "step1 {word}" && sleep 1',
        '[build 4/4] RUN cat /src/hello.txt && echo "step2 to stderr" >&2',
        f"[stage-1 2/{last}] COPY --from=build /src/hello.txt /hello.txt",
        f"[stage-1 3/{last}] RUN printf 'line one\\nline two\\n'",
    ]
    if fail:
        names.append(failing_step(word))
    return names


def failing_step(word: str) -> str:
    return (
        f'[stage-1 4/4] RUN echo "about to fail {word}" && echo "some diagnostic on stderr" >&2'
        f" && ls /nonexistent-{word}"
    )


def failing_error(word: str) -> str:
    return (
        f'executor failed running [/bin/sh -c echo "about to fail {word}" && echo "some '
        f'diagnostic on stderr" >&2 && ls /nonexistent-{word}]: exit code: 2'
    )


# ------------------------------------------------------------------------------ plain, buildx


def test_buildx_cold_build_every_vertex_in_completion_order() -> None:
    parser = parse_plain("buildx-plain-cold")

    assert [(s.name, s.seconds, s.cached, s.internal) for s in parser.steps] == [
        ("[internal] load build definition from Dockerfile", 0.1, False, True),
        ("[internal] load .dockerignore", 0.1, False, True),
        ("[internal] load metadata for 127.0.0.1:5000/debian:bookworm", 0.0, False, True),
        ("[stage-1 1/4] FROM 127.0.0.1:5000/debian:bookworm", 0.0, True, True),
        ("[internal] load build context", 0.0, False, True),
        ("[build 2/4] COPY hello.txt /src/hello.txt", 0.1, False, False),
        ('[build 3/4] RUN echo "step1 bxplain" && sleep 1', 1.4, False, False),
        ('[build 4/4] RUN cat /src/hello.txt && echo "step2 to stderr" >&2', 0.3, False, False),
        ("[stage-1 2/3] COPY --from=build /src/hello.txt /hello.txt", 0.0, False, False),
        ("[stage-1 3/3] RUN printf 'line one\\nline two\\n'", 0.4, False, False),
        ("exporting to image", 0.1, False, True),
    ]
    assert all(step.error is None for step in parser.steps)
    assert parser.current is None
    assert parser.failed_step is None
    assert parser.log_tail() == []
    assert summarize(parser.steps) == {
        "total_seconds": 2.5,
        "cached": 0,
        "executed": 5,
        "cache_ratio": 0.0,
    }


def test_buildx_banner_is_not_a_step() -> None:
    text = sample("buildx-plain-cold")
    assert text.startswith('#0 building with "default" instance using docker driver\n')

    parser = parse_plain("buildx-plain-cold")

    assert not any("building with" in step.name for step in parser.steps)


def test_a_vertex_printed_and_finished_twice_is_one_step() -> None:
    text = sample("buildx-plain-cached")
    metadata = "#3 [internal] load metadata for 127.0.0.1:5000/debian:bookworm"
    assert text.count(metadata) == 2  # the real printer repeats it

    parser = PlainProgressParser(clock=FakeClock())
    returned = parser.feed_lines(text.splitlines())

    assert returned == parser.steps
    names = [step.name for step in parser.steps]
    assert names.count(metadata.removeprefix("#3 ")) == 1


# ------------------------------------------------------------------- plain, both CLIs alike


@pytest.mark.parametrize("cli", PLAIN)
def test_cold_build_runs_every_dockerfile_step(cli: str) -> None:
    parser = parse_plain(f"{cli}-plain-cold")

    steps = user_steps(parser.steps)
    assert sorted(step.name for step in steps) == sorted(dockerfile_steps(PLAIN[cli]))
    assert not any(step.cached for step in steps)
    by_name = {step.name: step for step in steps}
    sleeper = by_name[f'[build 3/4] RUN echo "step1 {PLAIN[cli]}" && sleep 1']
    assert sleeper.seconds == 1.4  # `sleep 1` in the step; read from `#7 DONE 1.4s`
    assert parser.steps[-1].name == "exporting to image"
    assert parser.steps[-1].internal
    summary = summarize(parser.steps)
    assert (summary["cached"], summary["executed"], summary["cache_ratio"]) == (0, 5, 0.0)


@pytest.mark.parametrize("cli", PLAIN)
def test_cached_rebuild_is_all_cached(cli: str) -> None:
    parser = parse_plain(f"{cli}-plain-cached")

    steps = user_steps(parser.steps)
    assert sorted(step.name for step in steps) == sorted(dockerfile_steps(PLAIN[cli]))
    assert all(step.cached and step.seconds == 0.0 for step in steps)
    assert summarize(parser.steps) == {
        "total_seconds": 0.0,
        "cached": 5,
        "executed": 0,
        "cache_ratio": 1.0,
    }


def test_unchanged_base_image_is_cached_for_buildx_but_done_for_cli2010() -> None:
    """Why FROM is internal: counting it would make the cache ratio depend on the CLI."""
    buildx = parse_plain("buildx-plain-cached").steps
    cli2010 = parse_plain("cli2010-plain-cached").steps

    [buildx_from] = [step for step in buildx if " FROM " in step.name]
    [cli2010_from] = [step for step in cli2010 if " FROM " in step.name]
    assert buildx_from == Step(
        "[stage-1 1/4] FROM 127.0.0.1:5000/debian:bookworm", 0.0, cached=True, internal=True
    )
    assert cli2010_from == Step(
        "[build 1/4] FROM 127.0.0.1:5000/debian:bookworm", 0.0, cached=False, internal=True
    )
    assert summarize(buildx)["cache_ratio"] == summarize(cli2010)["cache_ratio"] == 1.0


@pytest.mark.parametrize("cli", PLAIN)
def test_failing_build(cli: str) -> None:
    word = PLAIN[cli]
    parser = parse_plain(f"{cli}-plain-fail")

    steps = user_steps(parser.steps)
    assert [step.name for step in steps][-1] == failing_step(word)
    assert sorted(step.name for step in steps) == sorted(dockerfile_steps(word, fail=True))
    assert all(step.cached for step in steps[:-1])
    failed = steps[-1]
    assert failed == parser.failed_step
    assert failed.error == failing_error(word)
    assert not failed.cached
    assert not failed.canceled
    # ERROR prints no duration: the last log line's timestamp is the lower bound
    assert failed.seconds == {"buildx": 0.303, "cli2010": 0.312}[cli]
    assert parser.error_message == failing_error(word)
    assert summarize(parser.steps)["cache_ratio"] == pytest.approx(5 / 6)


def test_failing_step_output_buildx() -> None:
    parser = parse_plain("buildx-plain-fail")

    assert parser.log_tail(10) == [
        "about to fail bxplain",
        "some diagnostic on stderr",
        "ls: cannot access '/nonexistent-bxplain': No such file or directory",
    ]
    assert parser.log_tail(1) == [
        "ls: cannot access '/nonexistent-bxplain': No such file or directory"
    ]
    assert parser.log_tail(0) == []
    # the `------` block repeats the logs; only the final error line is trailer
    assert parser.trailer == ["ERROR: failed to solve: " + failing_error("bxplain")]


def test_failing_step_output_cli2010_comes_from_the_vertex_not_the_summary_block() -> None:
    text = sample("cli2010-plain-fail")
    block = text[text.index("------\n") :]
    assert "ls: cannot access" not in block  # 20.10 does not repeat the logs there

    parser = parse_plain("cli2010-plain-fail")

    assert parser.log_tail() == [
        "some diagnostic on stderr",  # stderr overtook stdout in this run
        "about to fail cli",
        "ls: cannot access '/nonexistent-cli': No such file or directory",
    ]
    assert parser.trailer == [failing_error("cli")]  # bare, without `ERROR: failed to solve:`


def test_cli2010_digest_and_blank_lines_are_ignored() -> None:
    text = sample("cli2010-plain-fail")
    assert "#11 sha256:1161b556f6251d4ab9a4849862aeeb7611cbb3cfcd856bb9fac03a1179aca8f4" in text
    assert "\n\n" in text

    parser = parse_plain("cli2010-plain-fail")

    assert not any("sha256:" in step.name for step in parser.steps)
    assert not any("sha256:" in line for line in parser.log_tail(100))
    assert "" not in parser.log_tail(100)


@pytest.mark.parametrize(
    "name",
    [
        "buildx-plain-cold",
        "buildx-plain-fail",
        "buildx-plain-parallel",
        "cli2010-plain-cold",
        "cli2010-plain-fail",
        "cli2010-plain-parallel",
        "cli2010-plain-cancel",
    ],
)
def test_blank_lines_carry_no_meaning(name: str) -> None:
    lines = sample(name).splitlines()
    with_blanks = PlainProgressParser(clock=FakeClock())
    with_blanks.feed_lines(lines)
    without = PlainProgressParser(clock=FakeClock())
    without.feed_lines(line for line in lines if line.strip())

    assert without.steps == with_blanks.steps
    assert without.log_tail(100) == with_blanks.log_tail(100)


def test_out_of_order_output() -> None:
    """20.10 prints vertex numbers out of order; both print steps out of Dockerfile order."""
    numbers = [
        int(line.split()[0][1:])
        for line in sample("cli2010-plain-cached").splitlines()
        if line.endswith(" CACHED")
    ]
    assert numbers == [6, 8, 7, 9, 10]

    for cli, word in PLAIN.items():
        parser = parse_plain(f"{cli}-plain-cached")
        names = [step.name for step in user_steps(parser.steps)]
        assert names != dockerfile_steps(word)
        assert sorted(names) == sorted(dockerfile_steps(word))


@pytest.mark.parametrize("cli", PLAIN)
def test_canceled_sibling_is_not_the_failure(cli: str) -> None:
    word = {"buildx": "bxcancel", "cli2010": "clicancel"}[cli]
    parser = parse_plain(f"{cli}-plain-cancel")

    by_name = {step.name: step for step in user_steps(parser.steps)}
    slow = by_name[
        f'[slow 2/2] RUN for i in 1 2 3 4 5 6 7 8; do echo "slow $i {word}"; sleep 0.5; done'
    ]
    fast = by_name[
        f'[fast 2/2] RUN echo "fast starting {word}"; sleep 1.2; echo "fast fails" >&2; exit 3'
    ]
    assert slow.canceled
    assert slow.error == CANCELED
    assert slow.seconds == {"buildx": 1.540, "cli2010": 1.411}[cli]  # its last log line
    assert not fast.canceled
    assert fast.error is not None
    assert fast.error.endswith("exit code: 3")
    assert parser.failed_step == fast
    assert parser.log_tail() == [f"fast starting {word}", "fast fails"]
    assert parser.error_message == fast.error
    summary = summarize(parser.steps)
    assert (summary["cached"], summary["executed"]) == (0, 1)  # the canceled one did not count


def test_buildx_prints_canceled_after_the_failure() -> None:
    """Completion order: a caller searching `reversed(steps)` for an error finds the cancel."""
    parser = parse_plain("buildx-plain-cancel")
    errored = [step for step in parser.steps if step.error]

    assert [step.canceled for step in errored] == [False, True]


@pytest.mark.parametrize("cli", PLAIN)
def test_successful_build_with_a_missing_cache_manifest(cli: str) -> None:
    parser = parse_plain(f"{cli}-plain-inline-cache")

    [errored] = [step for step in parser.steps if step.error]
    assert errored.name == "importing cache manifest from 127.0.0.1:5000/progress-test/none:latest"
    assert errored.error == "127.0.0.1:5000/progress-test/none:latest: not found"
    assert errored.internal
    assert not errored.canceled
    assert errored.seconds == 0.0  # no log lines, and the fake clock did not move
    assert parser.failed_step is None  # the build succeeded (exit 0)
    assert parser.log_tail() == []
    assert parser.error_message is None
    assert parser.trailer == []  # its `------` summary block is not an error message
    names = [step.name for step in parser.steps]
    assert "importing cache manifest from 127.0.0.1:5000/debian:bookworm" in names
    assert names[-2:] == ["exporting to image", "exporting cache"]
    assert all(step.internal for step in parser.steps if step.name.startswith(("import", "export")))
    summary = summarize(parser.steps)
    assert (summary["cached"], summary["executed"]) == (0, 5)


@pytest.mark.parametrize("cli", PLAIN)
def test_dockerfile_syntax_error_has_no_failing_step(cli: str) -> None:
    parser = parse_plain(f"{cli}-plain-parse-error")

    assert [step.name for step in parser.steps] == [
        "[internal] load build definition from Dockerfile",
        "[internal] load .dockerignore",
    ]
    assert parser.failed_step is None
    assert parser.log_tail() == []
    assert parser.error_message == (
        "failed to solve with frontend dockerfile.v0: failed to create LLB definition: "
        "dockerfile parse error line 3: unknown instruction: FROBNICATE"
    )
    assert summarize(parser.steps)["cache_ratio"] is None


# ------------------------------------------------------------------- streaming and `current`


@pytest.mark.parametrize(
    ("name", "word", "order", "seconds"),
    [
        ("buildx-plain-parallel", "bxil", ("right", "left"), (12.5, 12.7)),
        ("cli2010-plain-parallel", "cliil", ("left", "right"), (12.6, 12.5)),
    ],
)
def test_current_follows_the_printer_between_parallel_steps(
    name: str, word: str, order: tuple[str, str], seconds: tuple[float, float]
) -> None:
    """The printer leaves a vertex with `#N ...` and re-prints its header when it comes back."""
    text = sample(name)
    assert text.count(" ...\n") == 2

    def run_step(side: str) -> str:
        return f'[{side} 2/2] RUN for i in $(seq 1 24); do echo "{side} $i {word}"; sleep 0.5; done'

    first, second = (run_step(side) for side in order)
    clock = FakeClock()
    parser = PlainProgressParser(clock=clock)
    seen: list[RunningStep | None] = []
    finished: list[Step] = []
    for line in text.splitlines():
        clock.now += 1.0
        step = parser.feed(line)
        if step is not None:
            finished.append(step)
        if first in line or second in line:  # only their headers name them
            seen.append(parser.current)

    assert [running.name if running else None for running in seen] == [
        first,
        second,
        first,  # header re-printed after `#N ...`: the same vertex, not a log line
        second,
    ]
    assert seen[2] == seen[0]  # the original start time is kept
    assert parser.current is None
    assert finished == parser.steps
    by_name = {step.name: step for step in finished}
    assert (by_name[first].seconds, by_name[second].seconds) == seconds


def test_current_is_the_vertex_whose_lines_are_arriving() -> None:
    clock = FakeClock()
    parser = PlainProgressParser(clock=clock)
    lines = iter(sample("buildx-plain-cold").splitlines())
    for line in lines:
        parser.feed(line)
        if line.startswith("#7 [build 3/4]"):
            break

    assert parser.current == RunningStep('[build 3/4] RUN echo "step1 bxplain" && sleep 1', 1000.0)
    assert parser.feed(next(lines)) is None  # `#7 0.329 step1 bxplain`
    step = parser.feed(next(lines))  # `#7 DONE 1.4s`
    assert step == Step('[build 3/4] RUN echo "step1 bxplain" && sleep 1', 1.4, cached=False)
    assert parser.current is None


# -------------------------------------------------------------------------- plain edge cases


def test_feed_accepts_newlines_and_error_duration_uses_the_clock() -> None:
    clock = FakeClock()
    parser = PlainProgressParser(clock=clock)

    assert parser.feed("#4 [2/3] RUN make\n") is None
    assert parser.feed("#4 0.512 compiling\r\n") is None
    clock.now += 42.0  # silent for a long time, then fails
    step = parser.feed("#4 ERROR: process did not complete successfully: exit code: 2\n")

    assert step == Step(
        "[2/3] RUN make",
        42.0,
        cached=False,
        error="process did not complete successfully: exit code: 2",
    )
    assert parser.log_tail() == ["compiling"]


def test_done_without_duration_and_lines_before_any_header() -> None:
    parser = PlainProgressParser(clock=FakeClock())

    assert parser.feed("#5 0.100 joined mid-stream") is None
    assert parser.feed("#5 DONE 0.3s") is None
    assert parser.feed("#6 [internal] load build context") is None
    assert parser.feed("#6 DONE") == Step(
        "[internal] load build context", 0.0, False, internal=True
    )
    assert [step.name for step in parser.steps] == ["[internal] load build context"]


def test_log_tail_keeps_at_most_max_log_lines() -> None:
    parser = PlainProgressParser(clock=FakeClock(), max_log_lines=3)
    parser.feed("#2 [1/1] RUN noisy")
    for i in range(10):
        parser.feed(f"#2 {i}.000 line {i}")
    parser.feed("#2 ERROR: boom")

    assert parser.log_tail(10) == ["line 7", "line 8", "line 9"]


def test_log_timestamps_past_ten_seconds() -> None:
    """`%#.4g` cut to five characters: 10.04, 100.0, 1235."""
    parser = PlainProgressParser(clock=FakeClock())
    parser.feed("#3 [1/1] RUN slow")
    for timestamp in ("9.537", "10.04", "100.0", "1235."):
        parser.feed(f"#3 {timestamp} at {timestamp}")
    parser.feed("#3 0.000 ")  # an empty output line
    parser.feed("#3 CANCELED")

    [step] = parser.steps
    assert step.seconds == 1235.0
    assert step.canceled
    assert parser.log_tail() == []  # canceled is not failed
    assert parser.failed_step is None


# ---------------------------------------------------------------------- steps, totals, errors


@pytest.mark.parametrize(
    ("name", "internal"),
    [
        ("[internal] load build definition from Dockerfile", True),
        ("importing cache manifest from 127.0.0.1:5000/app:cache", True),
        ("exporting to image", True),
        ("exporting cache", True),
        ("resolve image config for docker.io/docker/dockerfile:1", True),
        ("[auth] library/ruby:pull token for registry-1.docker.io", True),
        ("[stage-1 1/4] FROM 127.0.0.1:5000/debian:bookworm", True),
        ("[1/3] FROM docker.io/library/ruby:3.3", True),
        ("[2/3] RUN bundle install", False),
        ("[build 3/5] COPY Gemfile Gemfile.lock ./", False),
        ("[linux/amd64 build 2/5] RUN make", False),
    ],
)
def test_is_internal_step(name: str, internal: bool) -> None:
    assert is_internal_step(name) is internal


def test_summarize_without_steps() -> None:
    assert summarize([]) == {
        "total_seconds": 0.0,
        "cached": 0,
        "executed": 0,
        "cache_ratio": None,
    }
    only_internal = [Step("exporting to image", 0.25, cached=False, internal=True)]
    assert summarize(only_internal) == {
        "total_seconds": 0.25,
        "cached": 0,
        "executed": 0,
        "cache_ratio": None,
    }


def test_solve_error_prefers_the_error_line() -> None:
    assert solve_error([]) is None
    assert solve_error(["ERROR: failed to solve: boom", " - a warning"]) == "boom"
    assert solve_error(["ERROR: something else"]) == "something else"
    assert solve_error([" 1 warning found:", " - JSONArgsRecommended"]) is None
