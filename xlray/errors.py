"""User-facing errors: one line that says what went wrong and where; the CLI exits with status 2."""

from __future__ import annotations

from pathlib import Path


class XlrayError(Exception):
    """An error the user can fix (bad config, bad input file, unreachable service)."""


def one_line(exc: BaseException) -> str:
    """An exception's message for a one-line error: its first non-empty line (at most 300 characters), else its
    type's name."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(exc).__name__


def where(path: str | Path, line: int | None = None) -> str:
    """Format a location as ``file`` or ``file:line`` for error messages."""
    return f"{path}:{line}" if line is not None else str(path)


class RunFailure(Exception):
    """A run that failed for a reason other than bad input (a worker died, ran out of memory, a bug): exit status 1.

    The message is one line; ``detail`` (a traceback) is shown only with ``xlray --debug``.
    """

    def __init__(self, message: str, detail: str | None = None):
        super().__init__(message)
        self.detail = detail
