"""The app image's command and port: Procfile's `web:` line, else Puma's or Rails' own server.

imgbuild's app image runs `app.command` as `exec $APP_COMMAND` (images/app/Dockerfile): its
words, split on blanks, with no shell in between, so `$PORT`, quotes, `&&` or a leading
`NAME=value` would reach the program verbatim. A Procfile line is taken when it is plain words
after two safe rewrites (`$PORT`/`${PORT}` become the port the image sets PORT to, leading
`NAME=value` words go through `env`); otherwise the default command is used and the file says why.
imgbuild.yaml also expands `${VAR}` in every value when it loads, another reason no `$` may stay.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from buildkit.config import deploy

DEFAULT_PORT = 3000  # Rails' and Puma's (with Rails' config/puma.rb) default
PUMA_COMMAND = "bundle exec puma -C config/puma.rb"
RAILS_COMMAND = "bin/rails server -b 0.0.0.0"
BUNDLE_RAILS_COMMAND = "bundle exec rails server -b 0.0.0.0"  # AppConfig.command's default

_PROCESS = re.compile(r"^(?P<name>[A-Za-z0-9_-]+):\s*(?P<command>.*)$")
_PORT_VAR = re.compile(r"\$\{PORT(?::-[^}]*)?\}|\$PORT(?![A-Za-z0-9_])")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_OPERATORS = set("();<>|&")
_PLAIN_WORD = re.compile(r"^[^\s$`*?\[\]{}'\"\\~#]+$")
_PORT_FLAG = re.compile(r"(?:^|\s)(?:-p|--port)(?:\s+|=)(\d{1,5})(?=\s|$)")
_BIND_PORT = re.compile(r"(?:^|\s)(?:-b|--bind)(?:\s+|=)\S*tcp://[^\s:]*:(\d{1,5})")
_PUMA_PORT = re.compile(
    r"""^\s*port\s*\(?\s*(\d{1,5})\b|^\s*bind\s*\(?\s*["']tcp://[^"':]*:(\d{1,5})"""
)
# `puma` reads config/puma.rb unless -C names another file; `rails server` passes its own port.
_RUNS_PUMA = re.compile(r"(?:^|[\s/])puma(?:\s|$)")
_OTHER_PUMA_CONFIG = re.compile(r"(?:-C|--config)(?:\s+|=)(?!config/puma\.rb(?:\s|$))")
_PUMA_LISTENS = re.compile(r"^\s*(?:port|bind)\b")


@dataclass(frozen=True, kw_only=True)
class Command:
    command: str
    source: str  # "Procfile (web)", "config/puma.rb", "bin/rails", "imgbuild's default"
    port: int
    port_source: str
    procfile_web: str | None = None  # the web: line as written, when there is one
    rewrites: tuple[str, ...] = ()  # what was changed in the Procfile line, and why
    rejected: str | None = None  # why the Procfile's web: line could not be used
    processes: dict[str, str] = field(default_factory=dict)  # the Procfile's other types


@dataclass(frozen=True, kw_only=True)
class Process:
    """A Procfile line other than web:, as `app.processes` can take it (config.deploy)."""

    procfile_name: str
    line: str  # the command as the Procfile writes it
    name: str | None  # the process name in imgbuild.yaml; None when it cannot have one
    command: str | None  # its plain words; None when rejected
    rewrites: tuple[str, ...] = ()
    rejected: str | None = None  # why it is not in app.processes


def other_processes(cmd: Command) -> list[Process]:
    """The Procfile's other process types for `app.processes`: names made DNS labels
    (sidekiq_low -> sidekiq-low), commands as plain words like web's (`to_words`)."""
    found: list[Process] = []
    taken = {deploy.WEB}
    for procfile_name, line in cmd.processes.items():
        name = procfile_name.lower().replace("_", "-")
        why = None
        if not deploy.is_process_name(name):
            why = "its name is no DNS label (lowercase letters, digits, -); rename it"
        elif name in taken:
            why = f"its name reads as {name}, which another process has; rename it"
        words, rewrites, rejected = to_words(line, cmd.port) if why is None else (None, (), why)
        if words is None and why is None:
            rejected = f"{rejected}; put it in a script (bin/{name}) and write that"
        if words is not None:
            taken.add(name)
        found.append(
            Process(
                procfile_name=procfile_name,
                line=line,
                name=name if why is None else None,
                command=words,
                rewrites=rewrites,
                rejected=rejected,
            )
        )
    return found


def read_procfile(path: Path) -> dict[str, str]:
    """Process type -> command, in file order; comments and blank lines skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    processes: dict[str, str] = {}
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        match = _PROCESS.match(line.strip())
        if match and match["command"].strip() and match["name"] not in processes:
            processes[match["name"]] = match["command"].strip()
    return processes


def detect(root: Path, gems: frozenset[str]) -> Command:
    processes = read_procfile(root / "Procfile")
    web = processes.pop("web", None)
    if web is None:
        return _fallback(root, gems, processes)
    port, port_source = _port(root, web)
    words, rewrites, rejected = to_words(web, port)
    if words is None:
        return _fallback(root, gems, processes, procfile_web=web, rejected=rejected)
    return Command(
        command=words,
        source="Procfile (web)",
        port=port,
        port_source=port_source,
        procfile_web=web,
        rewrites=rewrites,
        processes=processes,
    )


def _fallback(
    root: Path,
    gems: frozenset[str],
    processes: dict[str, str],
    *,
    procfile_web: str | None = None,
    rejected: str | None = None,
) -> Command:
    """The default command (no usable Procfile web: line) and the port it listens on."""
    command, source = _default_command(root, gems)
    port, port_source = _port(root, command)
    return Command(
        command=command,
        source=source,
        port=port,
        port_source=port_source,
        procfile_web=procfile_web,
        rejected=rejected,
        processes=processes,
    )


def to_words(command: str, port: int) -> tuple[str | None, tuple[str, ...], str | None]:
    """(the command as plain words, the rewrites made, None) or (None, (), why not)."""
    rewrites = []
    text, count = _PORT_VAR.subn(str(port), command)
    if count:
        rewrites.append(f"$PORT written as {port}, the port the image sets PORT to")
    try:
        lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
    except ValueError as exc:  # an unclosed quote
        return None, (), f"it does not parse as shell words ({exc})"
    if any(word and set(word) <= _OPERATORS for word in words):
        return None, (), "it uses shell operators (&&, |, ;, >, ...)"
    bad = [word for word in words if not _PLAIN_WORD.match(word)]
    if bad:
        return None, (), f"{bad[0]!r} needs a shell (variables, quoting with spaces, globs)"
    assignments = 0
    while assignments < len(words) and _ASSIGNMENT.match(words[assignments]):
        assignments += 1
    if assignments == len(words):
        return None, (), "it only sets variables"
    if assignments:
        words.insert(0, "env")
        rewrites.append("leading NAME=value words run through `env`")
    return " ".join(words), tuple(rewrites), None


def _default_command(root: Path, gems: frozenset[str]) -> tuple[str, str]:
    puma = root / "config" / "puma.rb"
    if "puma" in gems and puma.is_file() and _puma_listens(puma):
        return PUMA_COMMAND, "config/puma.rb"
    if (root / "bin" / "rails").is_file():
        return RAILS_COMMAND, "bin/rails"
    return BUNDLE_RAILS_COMMAND, "imgbuild's default"


def _puma_listens(path: Path) -> bool:
    """config/puma.rb sets a port or bind (Rails' does: `port ENV.fetch("PORT", 3000)`); without
    one, `puma -C` would listen on Puma's own default, 9292."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return any(_PUMA_LISTENS.match(line) for line in text.splitlines())


def _port(root: Path, command: str) -> tuple[int, str]:
    """The port the command listens on: a literal -p/--port/-b tcp:// in it, a literal port in
    config/puma.rb when it runs Puma with that file, else Rails' 3000 (`$PORT` gets the same:
    the image sets PORT to app.port)."""
    for pattern in (_PORT_FLAG, _BIND_PORT):
        if (match := pattern.search(command)) and 0 < int(match[1]) < 65536:
            return int(match[1]), "the command's own port option"
    if _RUNS_PUMA.search(command) and not _OTHER_PUMA_CONFIG.search(command):
        try:
            lines = (root / "config" / "puma.rb").read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            lines = []
        for line in lines:
            match = _PUMA_PORT.match(line)
            if match and 0 < int(match[1] or match[2]) < 65536:
                return int(match[1] or match[2]), "config/puma.rb's"
    return DEFAULT_PORT, "Rails' default"
