"""`imgbuild report` and `imgbuild size check` (issue 5)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the report commands to the main CLI."""
