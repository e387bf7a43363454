"""`imgbuild codebuild render|plan|apply` (issue 4)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the codebuild commands to the main CLI."""
