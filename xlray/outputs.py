"""Every output is written safely: to a temporary name in the target's folder, then renamed into place, so a
reader (or a re-run) never sees a half-written file and a failed write leaves nothing behind.

Two primitives do the temporary-and-rename: `atomic_path` for a file, `atomic_dir` for a folder. Each hands the
writer a local temporary path and commits it on success; every other writer here is built on them, and no caller
opens a target itself. So a pyarrow filesystem (object storage) can later be added in those two alone: resolve the
target with ``pyarrow.fs.FileSystem.from_uri``, let the writer fill the same local temporary, and upload it on
commit (an object store has no rename, but an upload is all-or-nothing).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

FILE_MODE = 0o644  # mkstemp creates 0o600; outputs are for others to read too


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer to fill; on success it is renamed to ``path``, on failure
    removed. Its name (``.<name>.<random>.tmp``) matches no glob of finished outputs (``shards/*.parquet``), even
    when a killed run leaves it behind; writers that choose a format by the suffix must be told it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        tmp.chmod(FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write`` on a temporary file beside ``path``, then rename it into place (never half-written)."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


@contextmanager
def atomic_text(path: str | Path) -> Iterator[TextIO]:
    """Write UTF-8 text with LF line ends to a temporary name beside ``path``; moved into place only on success."""
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8", newline="\n") as fh:
        yield fh


def atomic_dir(final: str | Path, write: Callable[[Path], Any]) -> Path:
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


def json_safe(data: Any) -> Any:
    """``data`` with every NaN or infinite float as None: JSON has neither (a one-seed spread is NaN)."""
    if isinstance(data, dict):
        return {k: json_safe(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [json_safe(v) for v in data]
    return None if isinstance(data, float) and not math.isfinite(data) else data


def write_json(path: str | Path, data: Any, indent: int | None = 1) -> Path:
    """Write JSON atomically, UTF-8 as is; NaN and infinities become null, so any JSON reader can read it."""
    text = json.dumps(json_safe(data), indent=indent, ensure_ascii=False, allow_nan=False)
    return atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def read_json(path: str | Path) -> Any:
    """The JSON at ``path``, or None if there is no such file (an output not written yet)."""
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def write_parquet(frame: Any, path: str | Path) -> Path:
    """Write a polars DataFrame as Parquet atomically."""
    return atomic(path, lambda tmp: frame.write_parquet(tmp))
