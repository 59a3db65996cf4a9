"""Stage outputs are written atomically: to a temporary name beside the target, then renamed into place."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xlray.errors import XlrayError


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


def read_json(path: Path) -> Any:
    """The JSON at ``path``, or None if there is no such file (an output not written yet)."""
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def write_parquet(frame: Any, path: Path) -> Path:
    """Write a polars DataFrame as Parquet atomically."""
    return atomic(path, lambda tmp: frame.write_parquet(tmp))


def atomic_dir(final: Path, write: Callable[[Path], Any]) -> Path:
    """Fill a temporary folder beside ``final`` with ``write``, then swap it into place (removed on failure)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        write(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def finished_manifest(path: Path, config: dict[str, Any], what: str) -> dict[str, Any] | None:
    """The manifest at ``path`` if a run with ``config`` finished there; one with another config is an error."""
    if not path.is_file():
        return None
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("config") != config:
        raise XlrayError(
            f"{path}: output_dir holds a finished {what} with a different config; "
            "choose another output_dir or delete that one"
        )
    return manifest
