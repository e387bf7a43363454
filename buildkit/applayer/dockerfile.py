"""Reading an app Dockerfile: its instructions, and its single `COPY . <dest>` of the context.

The bulk image (bulk.py) and the assets image (assets.py) mirror that COPY's destination, flags
and setup; the source snapshot (snapshot.py) is the Dockerfile up to and including it.
"""

from __future__ import annotations

import posixpath
import re

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
