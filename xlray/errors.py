"""User-facing errors: one line that says what went wrong and where; the CLI exits with status 2."""

from __future__ import annotations

from pathlib import Path


class XlrayError(Exception):
    """An error the user can fix (bad config, bad input file, unreachable service)."""


def where(path: str | Path, line: int | None = None) -> str:
    """Format a location as ``file`` or ``file:line`` for error messages."""
    return f"{path}:{line}" if line is not None else str(path)
