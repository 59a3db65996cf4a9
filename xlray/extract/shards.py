"""Shard bookkeeping: which chunks are finished, their stats, and atomic small-file writes."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False, indent=1)
    os.replace(tmp, path)


def finished_shards(shard_dir: Path) -> set[str]:
    """Chunk ids whose shard was fully written (temporary files never carry the final name)."""
    return {p.name[: -len(".parquet")] for p in shard_dir.glob("*.parquet") if not p.name.startswith(".")}


def shard_stats(shard_dir: Path, chunk_ids: list[str]) -> dict[str, dict[str, int]]:
    """The counts each shard recorded in its Parquet metadata when it was written."""
    import pyarrow.parquet as pq

    out = {}
    for chunk_id in chunk_ids:
        meta = pq.read_schema(shard_dir / f"{chunk_id}.parquet").metadata or {}
        out[chunk_id] = json.loads(meta.get(b"xlray.stats", b"{}"))
    return out
