"""The files a stage read, as MLflow dataset records: a name, a cheap and stable digest, and where they are.

The digest hashes each file's location, size and modification time with its first and last MiB, so a multi-GB
corpus costs two small reads (range requests on s3:// or gs://), not a pass over the data. A rewritten file gets
a new mtime and so a new digest; only an in-place edit of the middle that keeps size and mtime would go unseen.
The recorded source is the local path made absolute, or the URI without user info or query (where credentials
hide), in the ``{"uri": ...}`` form MLflow's UI shows for ``local`` and ``s3`` sources.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit, urlunsplit

EDGE = 1 << 20  # bytes hashed at each end of a file
DIGEST_CHARS = 12  # MLflow allows 36


def corpus_name(path: str) -> str:
    """``corpus xl-en`` for ``.../xl-en.xl``: a corpus named by its first file's stem, the same in every stage."""
    return f"corpus {PurePosixPath(path).name.rsplit('.', 1)[0]}"


def clean_uri(path: str) -> str:
    """A local path made absolute; a URI without user info, query or fragment."""
    if "://" not in path:
        return os.path.abspath(path)
    parts = urlsplit(path)
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def source_type(uri: str) -> str:
    """MLflow's source type: ``local`` for a path, else the URI's scheme (``s3``, ``gs``, ...)."""
    return uri.split("://", 1)[0] if "://" in uri else "local"


def fingerprint(path: str, digest: Any) -> int | None:
    """Feed one file's size, mtime and both ends into ``digest``; returns its size, None if it cannot be read."""
    from pyarrow import fs as pafs

    try:
        if "://" in path:
            filesystem, where = pafs.FileSystem.from_uri(path)
        else:
            filesystem, where = pafs.LocalFileSystem(), os.path.abspath(path)
        info = filesystem.get_file_info(where)
        if info.type != pafs.FileType.File:
            digest.update(b"not a file\0")
            return None
        digest.update(f"{info.size}:{info.mtime_ns}\0".encode())
        with filesystem.open_input_file(where) as handle:
            digest.update(handle.read_at(min(EDGE, info.size), 0))
            start = max(EDGE, info.size - EDGE)  # the last MiB, or what the first did not cover
            digest.update(handle.read_at(info.size - start, start) if info.size > EDGE else b"")
    except OSError as exc:  # unreadable here (permissions, credentials): recorded, never a failed stage
        digest.update(f"unreadable: {type(exc).__name__}\0".encode())
        return None
    return info.size


def dataset(name: str, files: str | Sequence[str]) -> Any:
    """An ``mlflow.entities.Dataset`` for a named file or group of files (e.g. both sides of a parallel corpus)."""
    from mlflow.entities import Dataset

    paths = [files] if isinstance(files, str) else list(files)
    digest = hashlib.sha256()
    uris, size, unreadable = [], 0, []
    for path in paths:
        uri = clean_uri(path)
        uris.append(uri)
        digest.update(uri.encode() + b"\0")
        n = fingerprint(path, digest)
        size += n or 0
        if n is None:
            unreadable.append(uri)
    source = {"uri": uris[0]} | ({"uris": uris} if len(uris) > 1 else {})
    profile = {"files": len(uris), "bytes": size} | ({"unreadable": unreadable} if unreadable else {})
    return Dataset(
        name=name[:500],
        digest=digest.hexdigest()[:DIGEST_CHARS],
        source_type=source_type(uris[0]),
        source=json.dumps(source),
        profile=json.dumps(profile),
    )
