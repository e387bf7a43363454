"""Reading an app Dockerfile: its instructions, and its single `COPY . <dest>` of the context.

The bulk image (bulk.py) and the assets image (assets.py) mirror that COPY's destination, flags
and setup; the source snapshot (snapshot.py) is the Dockerfile up to and including it.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable

# `COPY . /app/`, `COPY --chown=app:app . .`, `COPY [".", "/app"]`: the context copy whose
# destination the bulk layers must share. Other flags (--from) mean it is not that copy.
_COPY_CONTEXT = re.compile(
    r"""^\s*COPY\s+((?:--chown=\S+\s+|--chmod=\S+\s+)*)"""
    r"""(?:\.\s+(\S+)|\[\s*"\.\/?"\s*,\s*"([^"]+)"\s*\])\s*$""",
    re.IGNORECASE,
)


def context_copy(dockerfile_text: str) -> tuple[str, str] | None:
    """(destination, flags) of the Dockerfile's single `COPY . <dest>`, else None."""
    found = [m for line in dockerfile_text.splitlines() if (m := _COPY_CONTEXT.match(line))]
    if len(found) != 1:
        return None
    match = found[0]
    return (match[2] or match[3]), " ".join(match[1].split())


def instructions(lines: list[str]) -> list[tuple[int, str]]:
    """(index of the line after it, text) per instruction: comments dropped, continuations
    joined."""
    found: list[tuple[int, str]] = []
    index = 0
    while index < len(lines):
        parts = []
        while index < len(lines):
            line = lines[index].rstrip("\n")
            index += 1
            if line.lstrip().startswith("#"):
                continue
            if line.rstrip().endswith("\\"):
                parts.append(line.rstrip()[:-1])
                continue
            parts.append(line)
            break
        text = " ".join(p.strip() for p in parts).strip()
        if text:
            found.append((index, text))
    return found


_SETUP = {"ARG", "ENV", "WORKDIR"}


def setup(dockerfile_text: str) -> tuple[str, ...]:
    """The ARG/ENV/WORKDIR instructions after the last FROM and before the context COPY."""
    found: list[str] = []
    for _, instruction in instructions(dockerfile_text.splitlines(keepends=True)):
        word = instruction.split(None, 1)[0].upper()
        if word == "FROM":
            found = []
        elif word == "COPY" and context_copy(instruction) is not None:
            return tuple(found)
        elif word in _SETUP:
            found.append(instruction)
    return ()


def absolute_dest(dest: str, setup_lines: tuple[str, ...]) -> str | None:
    """The context COPY's destination as an absolute path: `/app/` as is, `.` against the
    setup's literal WORKDIRs; None when that takes a variable or a WORKDIR of the base image."""
    if dest.startswith("/"):
        return posixpath.normpath(dest)
    workdir: str | None = None
    for line in setup_lines:
        word, _, arg = line.partition(" ")
        if word.upper() != "WORKDIR":
            continue
        arg = arg.strip()
        if "$" in arg or (workdir is None and not arg.startswith("/")):
            return None
        workdir = posixpath.join(workdir or "/", arg)
    return None if workdir is None else posixpath.normpath(posixpath.join(workdir, dest))


# ---- Reading as BuildKit reads (the registry-native path, nativefile.py) -----------------------
# `instructions` joins continued lines with a space and ends one at a blank line, which the image
# split needs no more than. Deciding what an image *is* needs BuildKit's own reading (moby/buildkit
# frontend/dockerfile: parser/parser.go, line_parsers.go, directives.go; shell/lex.go), where
# `ENV PATH=/a:\` + `/b` is `/a:/b`. All of it assumes the default escape character, `\`.

_CONTINUATION = re.compile(r"([^\\])\\[ \t]*$|^\\[ \t]*$")
_DIRECTIVE = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$", re.ASCII)
_BLANKS = re.compile(r"[\t\v\f\r ]+")


def _physical_lines(dockerfile_text: str) -> list[str]:
    lines = dockerfile_text.removeprefix("\ufeff").split("\n")
    return [line.rstrip("\r") for line in (lines[:-1] if lines[-1] == "" else lines)]


def parser_directives(dockerfile_text: str) -> list[tuple[int, str, str]]:
    """(line number, name, value) of the parser directives (`# syntax=`, `# escape=`, `# check=`)
    the file starts with; the first line that is not one ends them, as in BuildKit."""
    found: list[tuple[int, str, str]] = []
    for number, line in enumerate(_physical_lines(dockerfile_text), 1):
        text = line.lstrip()
        match = _DIRECTIVE.match(text[1:].lstrip()) if text.startswith("#") else None
        if match is None or match[1].lower() not in ("syntax", "escape", "check"):
            break
        found.append((number, match[1].lower(), match[2]))
    return found


def logical_lines(dockerfile_text: str) -> list[tuple[int, str]]:
    """(number of its first line, text) per instruction, joined as BuildKit joins them: comment
    lines dropped, a continued line's escape (and the blanks after it) removed and the next line
    appended as it is, blank lines inside a continuation skipped."""
    lines = _physical_lines(dockerfile_text)
    found: list[tuple[int, str]] = []
    index = 0
    while index < len(lines):
        index += 1
        text, more = _CONTINUATION.subn(r"\1", lines[index - 1].lstrip())
        if text.startswith("#") or not (text or more):
            continue
        start, parts = index, [text]
        while more and index < len(lines):
            line = lines[index]
            index += 1
            if line.strip() and not line.lstrip().startswith("#"):
                text, more = _CONTINUATION.subn(r"\1", line)
                parts.append(text)
        found.append((start, "".join(parts)))
    return found


def split_instruction(text: str) -> tuple[str, list[str], str]:
    """(keyword as written, its leading `--flags`, the rest). BuildKit also takes quotes and
    escapes out of flags; a caller that must be exact leaves flags holding them to BuildKit."""
    keyword, *more = _BLANKS.split(text.strip(), maxsplit=1)
    rest = more[0] if more else ""
    flags: list[str] = []
    while rest.startswith("--"):
        flag, *more = _BLANKS.split(rest, maxsplit=1)
        rest = more[0] if more else ""
        if flag == "--":
            break
        flags.append(flag)
    return keyword, flags, rest.strip()


_SPACES, _WORD, _QUOTE = 0, 1, 2  # the phases of BuildKit's parseWords


def parse_words(rest: str) -> list[str]:
    """BuildKit's parseWords: blank-separated words, quotes and escapes kept for the expansion to
    remove (`A="x y" B=z` is two words)."""
    words: list[str] = []
    word: list[str] = []
    phase, quote, blank_ok, at = _SPACES, "", False, 0
    while at < len(rest):
        ch = rest[at]
        at += 1
        if phase == _SPACES and ch.isspace():
            continue
        if phase == _WORD and ch.isspace():
            if blank_ok or word:
                words.append("".join(word))
            phase, word, blank_ok = _SPACES, [], False
            continue
        if phase != _QUOTE and ch in "'\"":
            phase, quote, blank_ok = _QUOTE, ch, True
        elif phase == _QUOTE and ch == quote:
            phase = _WORD
        phase = max(phase, _WORD)
        if ch == "\\" and not (phase == _QUOTE and quote == "'"):
            if at == len(rest):
                phase = _WORD  # an escape at the end goes
                continue
            word.append(ch)
            ch = rest[at]
            at += 1
        word.append(ch)
    if phase != _SPACES and (blank_ok or word):
        words.append("".join(word))
    return words


def name_values(rest: str) -> list[tuple[str, str]]:
    """ENV's and LABEL's (name, value) pairs, unexpanded: `A=1 B="x y"`, or the legacy `A x y`
    (one pair, the rest of the line its value). ValueError as BuildKit's parser fails."""
    words = parse_words(rest)
    if words and "=" not in words[0]:
        name, *value = _BLANKS.split(rest, maxsplit=1)
        if not value:
            msg = "must have two arguments"
            raise ValueError(msg)
        return [(name, value[0])]
    for word in words:
        if "=" not in word:
            msg = f"can't find = in {word!r}; must be of the form name=value"
            raise ValueError(msg)
    return [(name, value) for name, _, value in (word.partition("=") for word in words)]


def json_args(rest: str) -> list[str] | None:
    """The JSON array form's strings (`["a", "b"]`), or None when `rest` is not that form."""
    text = rest.lstrip()
    try:
        value = json.loads(text) if text.startswith("[") else None
    except ValueError:
        return None
    if value is not None and not all(isinstance(item, str) for item in value):
        msg = "when using JSON array syntax, arrays must be comprised of strings only"
        raise ValueError(msg)
    return value


def blank_split(rest: str) -> list[str]:
    """The arguments of EXPOSE and FROM (and of VOLUME or COPY without JSON)."""
    return _BLANKS.split(rest) if rest else []


def expand(word: str, env: Callable[[str], str | None]) -> str:
    """`word` with quotes and escapes removed and variables expanded, as BuildKit's ProcessWord
    does; `env` gives a variable's value, None when unset. ValueError where BuildKit fails, and
    for the pattern forms left to it (${VAR#p}, ${VAR%p}, ${VAR/p/r})."""
    return _Lex(word, env).run()[0]


def expand_words(word: str, env: Callable[[str], str | None]) -> list[str]:
    """`word` expanded, then split at blanks outside quotes (BuildKit's ProcessWords)."""
    return _Lex(word, env).run()[1]


class _Lex:
    r"""BuildKit's word processing (shell/lex.go): quotes, `\` escapes, $VAR, ${VAR}, ${VAR-w},
    ${VAR:-w}, ${VAR+w}, ${VAR:+w}, ${VAR?w}, ${VAR:?w}, and its word splitting."""

    def __init__(self, word: str, env: Callable[[str], str | None]) -> None:
        self.text, self.at, self.env = word, 0, env
        self.words: list[str] = []
        self.word = ""  # the word being read; blanks from expansions end it

    def peek(self) -> str:
        return self.text[self.at : self.at + 1]

    def next(self) -> str:
        ch = self.peek()
        self.at += len(ch)
        return ch

    def split(self, text: str) -> None:
        """Add expanded text: its blanks end words (BuildKit's wordsStruct.addString)."""
        for ch in text:
            if not ch.isspace():
                self.word += ch
            elif self.word:
                self.words.append(self.word)
                self.word = ""

    def run(self, stop: str = "") -> tuple[str, list[str]]:
        out: list[str] = []
        while (ch := self.peek()) and ch != stop:
            if ch == "$":
                out.append(self.dollar())
                self.split(out[-1])
                continue
            if ch in "'\"":
                out.append(self.single() if ch == "'" else self.double())
            elif self.next() == "\\":
                out.append(self.next())  # the escaped character; an escape at the end goes
            else:
                out.append(ch)
                self.split(ch)
                continue
            self.word += out[-1]  # quoted or escaped: blanks do not split
        if stop and not self.next():
            msg = "syntax error: missing '}'"
            raise ValueError(msg)
        if self.word:
            self.words.append(self.word)
        return "".join(out), self.words

    def single(self) -> str:
        end = self.text.find("'", self.at + 1)
        if end < 0:
            msg = "unexpected end of statement while looking for matching single-quote"
            raise ValueError(msg)
        piece, self.at = self.text[self.at + 1 : end], end + 1
        return piece

    def double(self) -> str:
        self.next()
        out = []
        while (ch := self.peek()) != '"':
            if not ch:
                msg = "unexpected end of statement while looking for matching double-quote"
                raise ValueError(msg)
            if ch == "$":
                out.append(self.dollar())
                continue
            self.next()
            if ch == "\\" and self.peek() in ('"', "$", "\\"):
                ch = self.next()  # only these are escaped inside double quotes
            out.append("" if ch == "\\" and not self.peek() else ch)
        self.next()
        return "".join(out)

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            return (self.env(name) or "") if name else "$"
        self.next()
        if self.peek() in ("", "{", "}", ":"):
            msg = "syntax error: " + ("bad substitution" if self.peek() else "missing '}'")
            raise ValueError(msg)
        name = self.name()
        op = self.next()
        op += self.next() if op == ":" else ""
        if op == "}":
            return self.env(name) or ""
        if op not in ("-", ":-", "+", ":+", "?", ":?"):
            pattern = op.lstrip(":")[:1] in ("#", "%", "/")
            msg = f"${{{name}{op}...}} " + ("is left to BuildKit" if pattern else "is invalid")
            raise ValueError(msg if op.lstrip(":") else "syntax error: missing '}'")
        word = _Lex(self.text[self.at :], self.env)
        value, _ = word.run(stop="}")
        self.at += word.at
        self.word = ""  # BuildKit's nested scan resets the shared word buffer: `a${X:-b}` -> ["b"]
        return _substitute(name, op, self.env(name), value)

    def name(self) -> str:
        start = self.at
        if self.peek().isdecimal():
            while self.peek().isdecimal():
                self.next()
        elif self.peek() and self.peek() in "@*#?-$!":
            self.next()
        else:
            while (ch := self.peek()) and (ch.isalpha() or ch.isdecimal() or ch == "_"):
                self.next()
        return self.text[start : self.at]


def _substitute(name: str, op: str, value: str | None, word: str) -> str:
    """${name-word}, ${name:-word}, ${name+word}, ${name:+word}, ${name?word}, ${name:?word}."""
    missing = value is None or (op.startswith(":") and not value)
    if op.endswith("-"):
        return word if missing else str(value)
    if op.endswith("+"):
        return "" if missing else word
    if missing:
        msg = f"{name}: {word or 'is not allowed to be ' + ('unset' if value is None else 'empty')}"
        raise ValueError(msg)
    return str(value)
