"""Every output is written safely: whole or not at all, so a reader (or a re-run) never sees a half-written file
and a failed write leaves nothing behind.

Two primitives do it: `atomic_path` for a file, `atomic_dir` for a folder. Each hands the writer a local temporary
path and commits it on success; every other writer here is built on them, and no caller opens a target itself.
A local target is committed by a rename. A URI (``s3://``, ``gs://``, ``file://``) goes through a pyarrow
filesystem: the temporary is uploaded on commit (an object store has no rename, but a single upload is
all-or-nothing; a folder is uploaded file by file, so a stage's manifest, written last, is what says it is
complete).
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

from xlray.textio import is_file, is_uri, open_binary, open_fs

FILE_MODE = 0o644  # mkstemp creates 0o600; outputs are for others to read too


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer to fill; on success it is renamed to ``path`` (for a URI:
    uploaded to it), on failure removed. Its name (``.<name>.<random>.tmp``) matches no glob of finished outputs
    (``shards/*.parquet``), even when a killed run leaves it behind; writers that choose a format by the suffix
    must be told it."""
    if is_uri(path):
        with tempfile.TemporaryDirectory(prefix="xlray-upload-") as folder:
            tmp = Path(folder) / f".{str(path).rstrip('/').rsplit('/', 1)[-1]}.tmp"
            yield tmp
            upload(tmp, str(path))
        return
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


def atomic(path: str | Path, write: Callable[[Path], Any]) -> Path | str:
    """Call ``write`` on a temporary file beside ``path``, then rename (or upload) it into place (never
    half-written)."""
    with atomic_path(path) as tmp:
        write(tmp)
    return str(path) if is_uri(path) else Path(path)


@contextmanager
def atomic_text(path: str | Path) -> Iterator[TextIO]:
    """Write UTF-8 text with LF line ends to a temporary name beside ``path``; moved into place only on success."""
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8", newline="\n") as fh:
        yield fh


def upload(local: Path, uri: str) -> None:
    """Copy a finished local file or folder to a URI through its pyarrow filesystem."""
    from pyarrow import fs as pafs

    filesystem, inner = open_fs(uri)
    folder = inner if local.is_dir() else inner.rstrip("/").rpartition("/")[0]
    if folder:
        filesystem.create_dir(folder, recursive=True)
    pafs.copy_files(str(local), inner, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=filesystem)


def atomic_dir(final: str | Path, write: Callable[[Path], Any]) -> Path | str:
    """Fill a temporary folder beside ``final`` with ``write``, then swap it into place (removed on failure); for a
    URI, fill a local temporary folder and upload it."""
    if is_uri(final):
        with tempfile.TemporaryDirectory(prefix="xlray-upload-") as folder:
            write(Path(folder))
            upload(Path(folder), str(final))
        return str(final)
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


def write_json(path: str | Path, data: Any, indent: int | None = 1) -> Path | str:
    """Write JSON atomically, UTF-8 as is; NaN and infinities become null, so any JSON reader can read it."""
    text = json.dumps(json_safe(data), indent=indent, ensure_ascii=False, allow_nan=False)
    return atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def read_json(path: str | Path) -> Any:
    """The JSON at ``path`` (local or a URI), or None if there is no such file (an output not written yet)."""
    if not is_file(path):
        return None
    with open_binary(path) as f:
        return json.loads(f.read().decode("utf-8"))


def write_parquet(frame: Any, path: str | Path) -> Path | str:
    """Write a polars DataFrame as Parquet atomically."""
    return atomic(path, lambda tmp: frame.write_parquet(tmp))
