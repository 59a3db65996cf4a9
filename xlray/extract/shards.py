"""Extraction shards: writing one (whole or not at all), which chunks are finished, and their counts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa

from xlray.outputs import atomic_path

MANIFEST = "manifest.json"


def finished_shards(shard_dir: Path) -> set[str]:
    """Chunk ids whose shard was fully written (temporary files are dot-files ending .tmp)."""
    return {p.name[: -len(".parquet")] for p in shard_dir.glob("*.parquet") if not p.name.startswith(".")}


def shard_stats(shard_dir: Path, chunk_ids: list[str]) -> dict[str, dict[str, int]]:
    """The counts each shard recorded in its Parquet metadata when it was written."""
    import pyarrow.parquet as pq

    out = {}
    for chunk_id in chunk_ids:
        meta = pq.read_schema(shard_dir / f"{chunk_id}.parquet").metadata or {}
        out[chunk_id] = json.loads(meta.get(b"xlray.stats", b"{}"))
    return out


def write_shard(shard_dir: str, chunk_id: str, table: pa.Table, stats_json: str) -> None:
    """``<chunk_id>.parquet`` with its counts in the schema metadata, written whole or not at all (``atomic_path``)."""
    import pyarrow.parquet as pq

    table = table.replace_schema_metadata({b"xlray.stats": stats_json.encode()})
    names = set(table.column_names)  # word rows have word and word_index, sentence rows tokens
    labels = [c for c in ("sentence_id", "language", "word", "site") if c in names]
    counts = [c for c in ("word_index", "layer", "tokens") if c in names]
    with atomic_path(os.path.join(shard_dir, f"{chunk_id}.parquet")) as tmp:
        pq.write_table(
            table,
            tmp,
            compression="zstd",
            compression_level=1,
            use_dictionary=labels,  # a dictionary and statistics of float16 values cost more than they save
            write_statistics=[*labels, *counts],
            column_encoding={"vector.list.element": "BYTE_STREAM_SPLIT"},  # floats' bytes apart: zstd packs them
            row_group_size=65536,
        )
