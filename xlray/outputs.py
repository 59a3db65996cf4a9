"""Stage outputs are written atomically: to a temporary name beside the target, then renamed into place."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic(path: Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write`` on a temporary file beside ``path``, then rename it into place (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def write_json(path: Path, data: Any) -> Path:
    """Write JSON atomically."""
    return atomic(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8"))


def write_parquet(frame: Any, path: Path) -> Path:
    """Write a polars DataFrame as Parquet atomically."""
    return atomic(path, lambda tmp: frame.write_parquet(tmp))
