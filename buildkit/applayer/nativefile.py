"""Whether the app image can be assembled without a build, and what its Dockerfile sets.

The registry-native path assembles the app image in the registry, as ko and jib do: the base's
config, one layer holding the context (layertar.py), what the Dockerfile's metadata sets
(imageconfig.py). That is BuildKit's image only for a Dockerfile that is no more; `analyse` takes
global ARGs, then `FROM ${BASE_IMAGE}` (or `$BASE_IMAGE`, `AS name` too), one `COPY . <dest>` of
the context (`dockerfile.context_copy`, --link too; --chown numeric, --chmod octal) and around it
only ARG, ENV, USER, WORKDIR, EXPOSE, LABEL, CMD, ENTRYPOINT, STOPSIGNAL and VOLUME, with no
parser directive but `# syntax=docker/dockerfile...`, `# escape=\\` and a `# check=` that keeps
warnings warnings. Anything else, or anything BuildKit rejects, gets a one-line reason instead.

Variables expand as BuildKit's Dockerfile frontend expands them (dockerfile2llb/convert.go): in
ENV, LABEL, USER, WORKDIR, EXPOSE, VOLUME, STOPSIGNAL, the COPY's dest, --chown, --chmod and ARG
defaults, never in CMD or ENTRYPOINT. An instruction sees the base's Env, then each ARG with a
value and each ENV, in order (the pairs of one ENV or LABEL all see the env from before it). An
ARG takes its build arg, else its default, else (declared bare) the global ARG's value.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from buildkit.applayer import dockerfile

__all__ = ["DEFAULT_PATH", "DEFAULT_SHELL", "Recipe", "Step", "analyse"]

#: What BuildKit sets PATH to when the base image's Env has none, and the shell it runs the shell
#: form of CMD and ENTRYPOINT with when the base sets none.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ("/bin/sh", "-c")

_METADATA = re.compile("ARG|ENV|USER|WORKDIR|EXPOSE|LABEL|CMD|ENTRYPOINT|STOPSIGNAL|VOLUME")
# BuildKit's own args: the platforms (unknown here but for build args), two kept out of the env.
_PLATFORM_ARG = re.compile("(BUILD|TARGET)(PLATFORM|OS|OSVERSION|ARCH|VARIANT)|TARGETSTAGE")
_NON_ENV_ARGS = frozenset({"BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"})
_SYNTAX = re.compile(r"(docker\.io/)?docker/dockerfile(:[\w.-]+)?(@sha256:[0-9a-f]{64})?")
_COPY_FLAG = re.compile(r"--(chown|chmod|from)=(.*)|--link(=(?i:true|false))?")
_ID = re.compile(r"[0-9]{1,9}|root")
# moby/sys/signal's Linux names (with or without SIG), or a number.
_SIGNAL = re.compile(
    r"(SIG)?(ABRT|ALRM|BUS|CH?LD|CONT|FPE|HUP|ILL|INT|IOT?|KILL|PIPE|POLL|PROF|PWR|QUIT|SEGV|STKFLT"
    r"|STOP|SYS|TERM|TRAP|TSTP|TTIN|TTOU|URG|USR[12]|VTALRM|WINCH|XCPU|XFSZ"
    r"|RTMIN(\+([1-9]|1[0-5]))?|RTMAX(-([1-9]|1[0-4]))?)|[1-9][0-9]?",
    re.IGNORECASE,
)


@dataclass(frozen=True, kw_only=True)
class Step:
    """One instruction after FROM, expanded: what it sets, and its history line.

    ENV and LABEL set `pairs`; USER, WORKDIR (as the config stores it), STOPSIGNAL `value`;
    EXPOSE ("3000/tcp"...), VOLUME, CMD and ENTRYPOINT `words`, the shell form of CMD and
    ENTRYPOINT its text (`argv`). Their `created_by` names the base's shell: imageconfig's.
    """

    instruction: str
    text: str = ""
    line: int = 0
    created_by: str = ""
    pairs: tuple[tuple[str, str], ...] = ()
    value: str = ""
    words: tuple[str, ...] = ()
    shell_form: bool = False

    def argv(self, shell: Sequence[str] = DEFAULT_SHELL) -> list[str]:
        """CMD's or ENTRYPOINT's argv: the exec form as written, the shell form run by `shell`."""
        return [*shell, " ".join(self.words)] if self.shell_form else list(self.words)


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """What the native path builds: the context COPY's target, and the steps in order.

    `dest` is absolute and clean, with a trailing slash ("/app/"). `extra_dirs` are what the
    WORKDIRs make (`mkdir -p`, root:root 0755) but the COPY does not, leaving out the base's
    WorkingDir and its parents (the base has them). `present_dirs` are the directories there
    before the COPY (the base's WorkingDir, earlier WORKDIRs, with their parents): BuildKit's
    COPY keeps their owner, mode and times; a dest or parent it creates gets `owner` (else root)
    and `chmod` (else 0755). The COPY is a step too (instruction "COPY"), for its history entry.
    """

    dest: str
    owner: tuple[int, int] | None
    chmod: int | None
    extra_dirs: tuple[str, ...]
    steps: tuple[Step, ...]
    present_dirs: tuple[str, ...] = ()


class _NoNative(Exception):
    """Why the native path does not apply (or where BuildKit would fail)."""


def analyse(
    dockerfile_text: str,
    build_args: Mapping[str, str],
    base_env: Sequence[str],
    *,
    base_workdir: str = "/",
    base_user: str = "",
) -> Recipe | str:
    """The Recipe for the app Dockerfile, or one line saying why it needs a build.

    `base_env`, `base_workdir` and `base_user` are the base config's Env, WorkingDir and User:
    what the instructions expand against, where a relative WORKDIR or COPY dest starts, and whom
    a WORKDIR creates its directory as.
    """
    reader = _Reader(build_args, base_env, base_workdir or "/", base_user)
    try:
        reader.directives(dockerfile_text)
        for line, text in dockerfile.logical_lines(dockerfile_text):
            reader.line = line
            reader.read(text)
        reader.line = 0
        return reader.recipe()
    except (_NoNative, ValueError) as exc:  # ValueError: malformed, as BuildKit's parser says
        return f"Dockerfile line {reader.line}: {exc}" if reader.line else f"Dockerfile: {exc}"


class _Reader:
    """The instructions in order, keeping the env, WORKDIR and USER as the build keeps them."""

    def __init__(
        self, build_args: Mapping[str, str], base_env: Sequence[str], workdir: str, user: str
    ) -> None:
        self.args = dict(build_args)
        self.env = dict(entry.partition("=")[::2] for entry in base_env)
        self.env.setdefault("PATH", DEFAULT_PATH)
        self.globals: dict[str, str | None] = {}  # global ARGs; None: declared bare
        self.base_dirs = _with_parents(_clean(workdir))
        self.workdir, self.user, self.line = workdir, user, 0
        self.staged = False
        self.steps: list[Step] = []
        self.dirs: list[tuple[str, bool]] = []  # (a WORKDIR that mkdirs, before the COPY)
        self.copy: Recipe | None = None  # once the context COPY is read

    def directives(self, text: str) -> None:
        seen: set[str] = set()
        for line, name, value in dockerfile.parser_directives(text):
            self.line = line
            if name in seen:
                raise _NoNative(f"only one `# {name}=` parser directive can be used")
            seen.add(name)
            if not _harmless(name, value):
                raise _NoNative(f"the `# {name}={value}` parser directive needs a build")
        self.line = 0
        if "BUILDKIT_SYNTAX" in self.args:
            raise _NoNative("the BUILDKIT_SYNTAX build arg picks another Dockerfile frontend")

    def read(self, text: str) -> None:
        keyword, flags, rest = dockerfile.split_instruction(text)
        word = keyword.upper()
        if any(mark in flag for flag in flags for mark in "\"'\\"):
            raise _NoNative(f"{word}: flags with quotes or escapes need a build")
        if not self.staged:
            self._before_from(word, flags, rest)
            return
        if word == "FROM":
            raise _NoNative("a second FROM (a multi-stage build) needs a build")
        if word == "COPY":
            step = self._copy(flags, rest)
        elif not _METADATA.fullmatch(word):
            where = "after" if self.copy else "before"
            raise _NoNative(f"{word} {where} the context COPY needs a build")
        elif flags:
            raise _NoNative(f"{word} {flags[0]}: BuildKit takes no flags there")
        elif word in ("CMD", "ENTRYPOINT"):
            step = self._command(word, rest)
        elif word in ("ENV", "LABEL"):
            step = self._pairs(word, rest)
        elif word in ("USER", "STOPSIGNAL"):
            step = self._one(word, rest)
        else:
            step = getattr(self, f"_{word.lower()}")(rest)
        self.steps.append(dataclasses.replace(step, text=text, line=self.line))

    def recipe(self) -> Recipe:
        if not self.staged:
            raise _NoNative("no FROM")
        if self.copy is None:
            raise _NoNative("no `COPY . <dest>` of the context")
        copied = _with_parents(_clean(self.copy.dest))
        extra = [path for path, before in self.dirs if before or path not in copied]
        present = self.base_dirs.union(*(_with_parents(p) for p, before in self.dirs if before))
        steps, extra_dirs = tuple(self.steps), tuple(dict.fromkeys(extra))
        return dataclasses.replace(
            self.copy, extra_dirs=extra_dirs, steps=steps, present_dirs=tuple(sorted(present))
        )

    def _before_from(self, word: str, flags: list[str], rest: str) -> None:
        if word == "ARG":
            for name, default in _arg_words(rest):
                value = self.args.get(name)
                if value is None and default is not None:
                    value = dockerfile.expand(default, self._global)
                if value is not None or name not in self.globals:
                    self.globals[name] = value
            return
        if word != "FROM":
            raise _NoNative(f"{word} before FROM: BuildKit rejects it too")
        if flags:
            raise _NoNative(f"FROM {flags[0]} needs a build")
        args = dockerfile.blank_split(rest)
        named = (
            len(args) == 3
            and args[1].upper() == "AS"
            and re.fullmatch("[a-z][a-z0-9-_.]*", args[2].lower())
        )
        if args[:1] not in (["${BASE_IMAGE}"], ["$BASE_IMAGE"]) or not (len(args) == 1 or named):
            raise _NoNative(f"FROM {rest} is not FROM ${{BASE_IMAGE}}: needs a build")
        if "BASE_IMAGE" not in self.globals:
            raise _NoNative("FROM ${BASE_IMAGE} without `ARG BASE_IMAGE` before it")
        self.staged = True

    def _global(self, name: str) -> str | None:
        platform = _PLATFORM_ARG.fullmatch(name)
        value = self.globals.get(name)
        value = self.args.get(name) if value is None and platform else value
        if platform and value is None:
            raise _NoNative(f"${name} is the build's platform, which only BuildKit knows")
        return value

    def _expand(self, word: str) -> str:
        return dockerfile.expand(word, self.env.get)

    def _copy(self, flags: list[str], rest: str) -> Step:
        options = _copy_flags(flags)
        if "from" in options:
            raise _NoNative("COPY --from needs a build")
        plain = " ".join(["COPY", *(f for f in flags if not f.startswith("--link")), rest])
        if dockerfile.context_copy(plain) is None:
            raise _NoNative("a COPY other than the context `COPY . <dest>` needs a build")
        if self.copy is not None:
            raise _NoNative("a second `COPY . <dest>` needs a build")
        args = dockerfile.json_args(rest) or dockerfile.blank_split(rest)
        sources, target = [self._expand(src) for src in args[:-1]], self._expand(args[-1])
        chown, chmod = (self._expand(options.get(name, "")) for name in ("chown", "chmod"))
        dest = _clean(posixpath.join(self.workdir, target)).rstrip("/") + "/"
        self.copy = Recipe(
            dest=dest, owner=_owner(chown), chmod=_mode(chmod), extra_dirs=(), steps=()
        )
        shown = [f"--chown={chown}"] * bool(chown) + [f"--chmod={chmod}"] * bool(chmod)
        created_by = " ".join(["COPY", *shown, *sources, target]) + " # buildkit"
        return Step(instruction="COPY", created_by=created_by)

    def _arg(self, rest: str) -> Step:
        shown = []
        for name, default in _arg_words(rest):
            value = self.args.get(name)
            if value is None:
                value = self._global(name) if default is None else self._expand(default)
            if value is not None and name not in _NON_ENV_ARGS:
                self.env[name] = value
            shown.append(name if value is None else f"{name}={value}")
        return Step(instruction="ARG", created_by="ARG " + " ".join(shown))

    def _pairs(self, word: str, rest: str) -> Step:
        raw = dockerfile.name_values(rest)
        pairs = tuple((self._expand(name), self._expand(value)) for name, value in raw)
        if not pairs or not all(name for name, _ in pairs):
            raise _NoNative(f"{word} needs name=value pairs, with names")
        if word == "ENV":
            self.env.update(pairs)
        shown = " ".join(f"{name}={value}" for name, value in pairs)
        return Step(instruction=word, created_by=f"{word} {shown}", pairs=pairs)

    def _one(self, word: str, rest: str) -> Step:
        """USER, STOPSIGNAL, WORKDIR: the rest of the line is one word."""
        if not rest:
            raise _NoNative(f"{word} requires exactly one argument")
        value = self._expand(rest)
        if word == "STOPSIGNAL" and not _SIGNAL.fullmatch(value):
            raise _NoNative(f"STOPSIGNAL {value}: invalid signal")
        self.user = value if word == "USER" else self.user
        return Step(instruction=word, created_by=f"{word} {value}", value=value)

    def _workdir(self, rest: str) -> Step:
        path = self._one("WORKDIR", rest).value
        # BuildKit keeps an absolute WORKDIR as written and joins (and cleans) a relative one.
        self.workdir = path if path.startswith("/") else _clean(f"{self.workdir}/{path}")
        made = _clean(self.workdir)
        if made not in self.base_dirs:
            if self.user.replace("root", "0") not in ("", "0", "0:0"):
                raise _NoNative(f"WORKDIR {made} is made as user {self.user}: needs a build")
            self.dirs.append((made, self.copy is None))
        shown = f"WORKDIR {self.workdir}"
        return Step(instruction="WORKDIR", created_by=shown, value=self.workdir)

    def _expose(self, rest: str) -> Step:
        specs = sorted(dockerfile.blank_split(rest))  # BuildKit sorts them as written
        if not specs:
            raise _NoNative("EXPOSE requires at least one argument")
        words = [word for spec in specs for word in dockerfile.expand_words(spec, self.env.get)]
        ports = tuple(port for word in words for port in _ports(word))
        shown = f"EXPOSE [{' '.join(ports)}]"
        return Step(instruction="EXPOSE", created_by=shown, words=ports)

    def _volume(self, rest: str) -> Step:
        raw = dockerfile.json_args(rest)
        listed = raw if raw is not None else dockerfile.blank_split(rest)
        paths = tuple(self._expand(path.strip()) for path in listed)
        if not paths or not all(paths):
            raise _NoNative("VOLUME needs paths, and no empty ones")
        shown = f"VOLUME [{' '.join(paths)}]"
        return Step(instruction="VOLUME", created_by=shown, words=paths)

    def _command(self, word: str, rest: str) -> Step:
        raw = dockerfile.json_args(rest)
        words = tuple(raw) if raw is not None else (rest,) if rest else ()
        return Step(instruction=word, words=words, shell_form=raw is None)


def _harmless(name: str, value: str) -> bool:
    """syntax: BuildKit's own frontend; escape: the default; check: not failing on warnings."""
    if name == "syntax":
        return _SYNTAX.fullmatch(value.split(maxsplit=1)[0]) is not None
    if name == "escape":
        return value == "\\"
    return "error=true" not in value.replace(" ", "").lower()


def _arg_words(rest: str) -> list[tuple[str, str | None]]:
    found = [word.partition("=") for word in dockerfile.parse_words(rest)]
    if not found or not all(name for name, _, _ in found):
        raise _NoNative("ARG needs names")
    return [(name, default if equals else None) for name, equals, default in found]


def _copy_flags(flags: list[str]) -> dict[str, str]:
    """COPY's flags by name, as BuildKit's BFlags reads them (a bare --link is true)."""
    found = [_COPY_FLAG.fullmatch(flag) for flag in flags]
    names = [match[1] or "link" for match in found if match]
    if len(names) < len(flags) or len(set(names)) < len(names):
        raise _NoNative(f"COPY {' '.join(flags)}: needs a build")
    return {name: match[2] or "" for name, match in zip(names, found, strict=True) if match}


def _owner(chown: str) -> tuple[int, int] | None:
    """COPY --chown's uid and gid: numbers or root; a uid alone is the gid too (as in Docker)."""
    if not chown:
        return None
    user, colon, group = chown.partition(":")
    parts = (user, group if colon else user)
    if not all(_ID.fullmatch(part) for part in parts):
        raise _NoNative(f"COPY --chown={chown} names a user: needs the base image's /etc/passwd")
    uid, gid = (0 if part == "root" else int(part) for part in parts)
    return uid, gid


def _mode(chmod: str) -> int | None:
    if chmod and (not re.fullmatch(r"[0-7]{1,5}", chmod) or int(chmod, 8) > 0o7777):
        raise _NoNative(f"COPY --chmod={chmod} is not an octal mode: needs a build")
    return int(chmod, 8) if chmod else None


def _ports(spec: str) -> list[str]:
    """EXPOSE's 3000, 3000/udp, 8000-8002/tcp as "port/proto" keys."""
    port, _, proto = spec.partition("/")
    match = re.fullmatch(r"([0-9]{1,5})(?:-([0-9]{1,5}))?", port)
    if match is None or proto.lower() not in ("", "tcp", "udp", "sctp"):
        raise _NoNative(f"EXPOSE {spec}: the native path takes port[-port][/tcp|udp|sctp]")
    first, last = int(match[1]), int(match[2] or match[1])
    if not first <= last <= 65535:
        raise _NoNative(f"EXPOSE {spec}: invalid port range")
    return [f"{number}/{proto.lower() or 'tcp'}" for number in range(first, last + 1)]


def _clean(path: str) -> str:
    """An absolute path, cleaned as Go's path.Clean cleans it (no `//` kept at the start)."""
    return "/" + posixpath.normpath(path).lstrip("/")


def _with_parents(path: str) -> set[str]:
    found = {"/"}
    while path not in found:
        found.add(path)
        path = posixpath.dirname(path)
    return found
