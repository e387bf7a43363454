"""Reading an app Dockerfile: its instructions, and its single `COPY . <dest>` of the context.

The bulk image (bulk.py) mirrors that COPY's destination and flags; the source snapshot
(snapshot.py) is the Dockerfile up to and including it.
"""

from __future__ import annotations

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
