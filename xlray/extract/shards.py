"""Shard bookkeeping: which chunks are finished, their stats, and atomic small-file writes."""

from __future__ import annotations

import json
from pathlib import Path

MANIFEST = "manifest.json"


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
