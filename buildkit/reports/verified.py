"""What a report knows about the verify run of its app image (`imgbuild app --verify`).

Built from `VerifyResult.as_json()` (buildkit/run/verify.py) or from a history line, so every key
may be missing: a missing count is 0, a missing time or status is None ("not measured"), a missing
path list is empty. `as_json` gives the dict back; `compact` is the history's portable form,
without the machine's paths (out_dir, JUnit files, the app log).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Failed tests a history line keeps (the counts keep the rest).
HISTORY_FAILED = 5


def _str(value: Any, default: str = "") -> str:
    return default if value is None else str(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _count(value: Any) -> int:
    return max(_int(value) or 0, 0)


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _paths(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        return ()
    return tuple(str(item) for item in value if item is not None)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True, kw_only=True)
class SmokeCheck:
    """The production image answered: `check` is "GET /up" or "TCP 8080"."""

    image: str
    check: str
    status: int | None  # the HTTP status; None for a TCP check (the port opened)
    seconds: float | None
    log: str | None = None  # the app's log file

    @property
    def answer(self) -> str:
        if self.status is not None:
            return str(self.status)
        return "open" if self.check.startswith("TCP") else "–"

    def as_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "check": self.check,
            "status": self.status,
            "seconds": self.seconds,
            "log": self.log,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SmokeCheck:
        return cls(
            image=_str(data.get("image")),
            check=_str(data.get("check")),
            status=_int(data.get("status")),
            seconds=_float(data.get("seconds")),
            log=_opt_str(data.get("log")),
        )


@dataclass(frozen=True, kw_only=True)
class FailedTest:
    name: str  # classname#name
    message: str

    @classmethod
    def from_json(cls, data: Any) -> FailedTest:
        found = _mapping(data)
        return cls(name=_str(found.get("name"), "?"), message=_str(found.get("message")))


@dataclass(frozen=True, kw_only=True)
class AppTests:
    """The app's tests in the test variant image, as their JUnit counted them."""

    image: str
    command: str
    exit_code: int | None  # None: it did not finish within its timeout
    seconds: float | None
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    failed: tuple[FailedTest, ...] = ()  # may list fewer than failures + errors (history)
    junit: tuple[str, ...] = ()
    unreadable: tuple[str, ...] = ()

    @property
    def passed(self) -> int:
        return max(self.tests - self.failures - self.errors - self.skipped, 0)

    @property
    def not_passed(self) -> int:
        """Failures and errors: what "failed" counts in every render."""
        return max(self.failures + self.errors, len(self.failed))

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.not_passed

    def as_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "command": self.command,
            "exit_code": self.exit_code,
            "seconds": self.seconds,
            "junit": list(self.junit),
            "tests": self.tests,
            "failures": self.failures,
            "errors": self.errors,
            "skipped": self.skipped,
            "failed": [{"name": f.name, "message": f.message} for f in self.failed],
            "unreadable": list(self.unreadable),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AppTests:
        failed = data.get("failed")
        return cls(
            image=_str(data.get("image")),
            command=_str(data.get("command")),
            exit_code=_int(data.get("exit_code")),
            seconds=_float(data.get("seconds")),
            tests=_count(data.get("tests")),
            failures=_count(data.get("failures")),
            errors=_count(data.get("errors")),
            skipped=_count(data.get("skipped")),
            failed=tuple(
                FailedTest.from_json(item)
                for item in (failed if isinstance(failed, list | tuple) else ())
            ),
            junit=_paths(data.get("junit")),
            unreadable=_paths(data.get("unreadable")),
        )


@dataclass(frozen=True, kw_only=True)
class Verify:
    """The verify run: services started (seconds until ready), smoke check, tests, JUnit."""

    run: str | None = None
    seconds: float | None = None
    out_dir: str | None = None
    services: Mapping[str, float | None] = field(default_factory=dict)
    smoke: SmokeCheck | None = None
    tests: AppTests | None = None
    junit: tuple[str, ...] = ()  # every JUnit file of the run (imgbuild's own first)
    error: str | None = None  # the one-line verdict of a failed run

    @property
    def passed(self) -> bool:
        """No verdict against it, and its tests (when they ran) passed."""
        return self.error is None and (self.tests is None or self.tests.ok)

    def as_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "error": self.error,
            "run": self.run,
            "seconds": self.seconds,
            "out_dir": self.out_dir,
            "services": dict(self.services),
            "smoke": self.smoke.as_json() if self.smoke else None,
            "tests": self.tests.as_json() if self.tests else None,
            "junit": list(self.junit),
        }

    def compact(self) -> dict[str, Any]:
        """The history's form: no paths of this machine, at most HISTORY_FAILED failed tests."""
        data = self.as_json()
        for key in ("out_dir", "junit"):
            data.pop(key)
        if data["smoke"] is not None:
            data["smoke"].pop("log")
        if data["tests"] is not None:
            for key in ("junit", "unreadable"):
                data["tests"].pop(key)
            data["tests"]["failed"] = data["tests"]["failed"][:HISTORY_FAILED]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Verify:
        smoke, tests = data.get("smoke"), data.get("tests")
        return cls(
            run=_opt_str(data.get("run")),
            seconds=_float(data.get("seconds")),
            out_dir=_opt_str(data.get("out_dir")),
            services={str(k): _float(v) for k, v in _mapping(data.get("services")).items()},
            smoke=SmokeCheck.from_json(smoke) if isinstance(smoke, Mapping) else None,
            tests=AppTests.from_json(tests) if isinstance(tests, Mapping) else None,
            junit=_paths(data.get("junit")),
            error=_opt_str(data.get("error")),
        )


def parse(data: Any) -> Verify | None:
    """A Verify from JSON that may be absent (None) or not an object at all (an old record)."""
    return Verify.from_json(data) if isinstance(data, Mapping) else None
