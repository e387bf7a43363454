"""A mini CodeBuild for tests: runs a buildspec 0.2's phases the way CodeBuild runs them.

- One shell per build (`env.shell`, default /bin/sh) started by `shell_prefix + [shell]`
  (e.g. `docker exec -i CONTAINER`), in CODEBUILD_SRC_DIR; variables and the working directory
  carry over from command to command and phase to phase.
- Variables: the buildspec's `env.variables`, then the project's and the build's (CODEBUILD_*),
  which take precedence as in CodeBuild; CODEBUILD_BUILD_SUCCEEDING turns 0 after a failed phase.
- Phases install → pre_build → build → post_build; a phase stops at its first failing command and
  then runs its `finally` commands. After a failure `on-failure: CONTINUE` goes on, `ABORT` stops,
  and without it CodeBuild's transitions apply: a failed build phase still runs post_build, any
  other failed phase ends the build.
- A command that exits the shell (`exit 3`) fails; the next command gets a new shell with the
  variables and directory saved after the previous command.
- `exported-variables` are read from the shell at the end; the build fails (exit code 1) when any
  phase failed.
- `stop` (a threading.Event, set by a batch's fast-fail, tests/codebuild_batch.py) stops the build
  as CodeBuild's StopBuild does: the running command's shell is killed, nothing more runs, and
  the result says `stopped`.

Features it does not emulate (parameter-store, secrets-manager, run-as, proxy) are refused.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

PHASES = ("install", "pre_build", "build", "post_build")
_UNSUPPORTED_ENV = ("parameter-store", "secrets-manager", "git-credential-helper")
_UNSUPPORTED_TOP = ("run-as", "proxy")


class BuildspecError(Exception):
    """The buildspec is not one this runner (or CodeBuild) accepts."""


@dataclass
class BuildResult:
    phases: dict[str, str] = field(default_factory=dict)  # SUCCEEDED / FAILED / SKIPPED
    commands: list[tuple[str, str, int]] = field(default_factory=list)  # phase, command, status
    exported: dict[str, str] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    stopped: bool = False

    @property
    def succeeded(self) -> bool:
        return all(status != "FAILED" for status in self.phases.values())

    @property
    def exit_code(self) -> int:
        return 0 if self.succeeded else 1

    def text(self) -> str:
        return "\n".join(self.log)


class _Shell:
    """One shell process fed commands on stdin; a nonce line on stdout ends each command."""

    def __init__(
        self,
        argv: Sequence[str],
        state_dir: str,
        timeout: float,
        stop: threading.Event | None = None,
    ) -> None:
        self.nonce = secrets.token_hex(8)
        self.state_dir = state_dir
        self.proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,  # a stop or timeout kills the command's processes too
        )
        self.timer = threading.Timer(timeout, self.kill)
        self.timer.start()
        if stop is not None:
            threading.Thread(target=self._kill_on, args=(stop,), daemon=True).start()

    def _kill_on(self, stop: threading.Event) -> None:
        while self.proc.poll() is None:
            if stop.wait(0.2):
                self.kill()
                return

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def run(self, command: str, on_line: Any) -> int | None:
        """Run command; None when the shell itself ended (its exit status is then in .proc)."""
        delimiter = f"__CB_CMD_{self.nonce}"
        script = (
            f"__cb_cmd=$(cat <<'{delimiter}'\n{command}\n{delimiter}\n)\n"
            'eval "$__cb_cmd" </dev/null\n'
            "__cb_rc=$?\n"
            f"export -p > {self.state_dir}/env.sh; pwd > {self.state_dir}/pwd\n"
            f"printf '\\n{self.nonce} %d\\n' \"$__cb_rc\"\n"
        )
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        try:
            self.proc.stdin.write(script)
            self.proc.stdin.flush()
        except BrokenPipeError:
            return None
        blank = False
        for raw in self.proc.stdout:
            line = raw.rstrip("\n")
            if line.startswith(f"{self.nonce} "):
                return int(line.split()[1])
            if blank:
                on_line("")
            blank = line == ""
            if not blank:
                on_line(line)
        return None

    def close(self) -> int:
        self.timer.cancel()
        if self.proc.poll() is None and self.proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
        return self.proc.wait(timeout=60)


class Runner:
    """Runs buildspecs; `shell_prefix` wraps the shell, e.g. ["docker", "exec", "-i", "c1"]."""

    def __init__(
        self,
        shell_prefix: Sequence[str] = (),
        state_dir: str = "/tmp/codebuild-runner",
        timeout: float = 900,
        stream: TextIO | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.shell_prefix = list(shell_prefix)
        self.state_dir = state_dir
        self.timeout = timeout
        self.stream = stream
        self.stop = stop

    def run(self, buildspec: Mapping[str, Any] | str | Path, env: Mapping[str, str]) -> BuildResult:
        spec = _load(buildspec)
        build = _Build(self, spec, env)
        try:
            build.execute()
        finally:
            build.close()
        return build.result


class _Build:
    def __init__(self, runner: Runner, spec: dict[str, Any], env: Mapping[str, str]) -> None:
        self.runner = runner
        self.spec = spec
        self.env = {
            **{k: str(v) for k, v in (spec.get("env", {}).get("variables") or {}).items()},
            "CODEBUILD_BUILD_SUCCEEDING": "1",
            **env,
        }
        self.shell_name = str(spec.get("env", {}).get("shell") or "/bin/sh")
        self.result = BuildResult()
        self.shell: _Shell | None = None

    def log(self, line: str) -> None:
        self.result.log.append(line)
        if self.runner.stream is not None:
            print(line, file=self.runner.stream, flush=True)

    def container(self, message: str) -> None:
        now = datetime.datetime.now(datetime.UTC).strftime("%Y/%m/%d %H:%M:%S")
        self.log(f"[Container] {now} {message}")

    def _start_shell(self, restore: bool) -> _Shell:
        shell = _Shell(
            [*self.runner.shell_prefix, self.shell_name],
            self.runner.state_dir,
            self.runner.timeout,
            self.runner.stop,
        )
        state = self.runner.state_dir
        if restore:
            setup = f'. {state}/env.sh 2>/dev/null; cd "$(cat {state}/pwd)"'
        else:
            exports = "".join(f"export {k}={_quote(v)}\n" for k, v in self.env.items())
            setup = f'mkdir -p {state}\n{exports}cd "${{CODEBUILD_SRC_DIR:-.}}"'
        shell.run(setup, self.log)
        return shell

    def sh(self, command: str, on_line: Any) -> int:
        if self.shell is None:
            self.shell = self._start_shell(restore=False)
        status = self.shell.run(command, on_line)
        if status is None:  # the command ended the shell: its exit status is the command's
            status = self.shell.close()
            self.shell = self._start_shell(restore=True)
        return status

    @property
    def stopping(self) -> bool:
        return self.runner.stop is not None and self.runner.stop.is_set()

    def run_commands(self, phase: str, commands: Sequence[str]) -> bool:
        for command in commands:
            if self.stopping:
                return False
            self.container(f"Running command {command}")
            status = self.sh(str(command), self.log)
            self.result.commands.append((phase, str(command), status))
            if status != 0:
                self.container(f"Command did not exit successfully {command} exit status {status}")
                return False
        return True

    def execute(self) -> None:
        phases = self.spec.get("phases") or {}
        stop = False
        for name in PHASES:
            block = phases.get(name)
            stop = stop or self.stopping
            if stop:
                self.result.phases[name] = "SKIPPED"
                continue
            if block is None:
                continue
            self.container(f"Entering phase {name.upper()}")
            ok = self.run_commands(name, block.get("commands") or [])
            ok = self.run_commands(name, block.get("finally") or []) and ok
            self.result.phases[name] = "SUCCEEDED" if ok else "FAILED"
            self.container(f"Phase complete: {name.upper()} State: {self.result.phases[name]}")
            if not ok and not self.stopping:
                self.sh("export CODEBUILD_BUILD_SUCCEEDING=0", self.log)
                stop = _stops(name, block.get("on-failure"))
        self.result.stopped = self.stopping
        if not self.result.stopped:
            self._collect_exports()

    def _collect_exports(self) -> None:
        for name in self.spec.get("env", {}).get("exported-variables") or []:
            lines: list[str] = []
            self.sh(f'printf "%s" "${{{name}-}}"', lines.append)
            self.result.exported[name] = "\n".join(lines)

    def close(self) -> None:
        if self.shell is not None:
            self.shell.close()


def _stops(phase: str, on_failure: str | None) -> bool:
    if on_failure == "CONTINUE":
        return False
    if on_failure == "ABORT":
        return True
    return phase != "build"  # CodeBuild's transitions: only a failed build still runs post_build


def _quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def _load(buildspec: Mapping[str, Any] | str | Path) -> dict[str, Any]:
    if isinstance(buildspec, Mapping):
        spec = dict(buildspec)
    else:
        spec = yaml.safe_load(Path(buildspec).read_text(encoding="utf-8"))
    if not isinstance(spec, dict) or str(spec.get("version")) != "0.2":
        raise BuildspecError("only buildspec version 0.2 is supported")
    env = spec.get("env") or {}
    refused = [k for k in _UNSUPPORTED_ENV if k in env] + [k for k in _UNSUPPORTED_TOP if k in spec]
    if refused:
        raise BuildspecError(f"the test runner does not emulate {', '.join(refused)}")
    for name, block in (spec.get("phases") or {}).items():
        if name not in PHASES or not isinstance(block, dict):
            raise BuildspecError(f"unknown or malformed phase {name!r}")
        if block.get("on-failure") not in (None, "ABORT", "CONTINUE"):
            raise BuildspecError(f"{name}: on-failure must be ABORT or CONTINUE")
    return spec


def main(argv: Sequence[str]) -> int:
    """`python tests/codebuild_runner.py BUILDSPEC [SRC_DIR]`: run it here, with local bash."""
    src = str(Path(argv[1] if len(argv) > 1 else ".").resolve())
    result = Runner(stream=sys.stdout).run(
        argv[0], {"CODEBUILD_SRC_DIR": src, "CODEBUILD_BUILD_ID": "local:1"}
    )
    print(f"phases: {result.phases}; exported: {result.exported}")
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
