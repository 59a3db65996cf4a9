"""Extraction shards: writing one (whole or not at all), which chunks are finished, and their counts.

``shard_dir`` is a local folder or an object-store URI (``s3://``, ``gs://``); a writer on any node writes its
shard straight there, and a resumed run finds the finished ones by listing it.
"""

from __future__ import annotations

import json

import pyarrow as pa

from xlray.outputs import atomic_path
from xlray.storage import join, list_names
from xlray.textio import open_fs

MANIFEST = "manifest.json"
SUFFIX = ".parquet"


def finished_shards(shard_dir: str) -> set[str]:
    """Chunk ids whose shard was fully written: the finished objects listed in ``shard_dir`` (a temporary is a
    dot-file, and an upload cut short leaves no object)."""
    return {n[: -len(SUFFIX)] for n in list_names(shard_dir, SUFFIX)}


def shard_stats(shard_dir: str, chunk_ids: list[str]) -> dict[str, dict[str, int]]:
    """The counts each shard recorded in its Parquet metadata when it was written (only its footer is read)."""
    import pyarrow.parquet as pq

    out = {}
    for chunk_id in chunk_ids:
        filesystem, inner = open_fs(join(shard_dir, f"{chunk_id}{SUFFIX}"))
        meta = pq.read_schema(inner, filesystem=filesystem).metadata or {}
        out[chunk_id] = json.loads(meta.get(b"xlray.stats", b"{}"))
    return out


def write_shard(shard_dir: str, chunk_id: str, table: pa.Table, stats_json: str) -> None:
    """``<chunk_id>.parquet`` with its counts in the schema metadata, written whole or not at all (``atomic_path``:
    a local rename, or one upload of a finished local file)."""
    import pyarrow.parquet as pq

    table = table.replace_schema_metadata({b"xlray.stats": stats_json.encode()})
    names = set(table.column_names)  # word rows have word and word_index, sentence rows tokens
    labels = [c for c in ("sentence_id", "language", "word", "site") if c in names]
    counts = [c for c in ("word_index", "layer", "tokens") if c in names]
    with atomic_path(join(shard_dir, f"{chunk_id}{SUFFIX}")) as tmp:
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
