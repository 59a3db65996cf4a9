"""A stage's finished pieces of work ("parts"), each written whole as soon as it finishes, so that a run killed
halfway resumes from them; the stage's manifest is still written last and alone says the stage is complete.

A part is one Parquet file: a table (a clustering's labels, a layer's scores) and, in its schema metadata, a JSON
record (counts, the node it ran on, its time). Parts live in ``<output_dir>/parts/<key>/``, the key a hash of all
that decides them (`part_key`), so a run never takes up the parts of another config or another extraction. The
folder may be local or an object-store URI: a part is renamed or uploaded into place (``xlray.outputs.atomic``),
so a listed part is a whole one.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import polars as pl
from pydantic import BaseModel

from xlray.outputs import atomic, json_safe
from xlray.stage_rules import result_config
from xlray.storage import join, list_names
from xlray.textio import open_binary

FOLDER = "parts"
SUFFIX = ".parquet"
RECORD = b"xlray.part"
FORMAT = 1  # bump when a part's content changes meaning: older parts are then not taken up


def part_key(cfg: BaseModel, *inputs: Any) -> str:
    """16 hex digits of SHA-256 over the config's result-deciding fields, the thread count of its tasks
    (``scheduling.cpus``: some results depend on it; how tasks are packed does not) and ``inputs`` (JSON-able:
    e.g. the input extraction's manifest, which changes with every re-extraction)."""
    decided = {k: v for k, v in result_config(cfg).items() if k != "scheduling"}
    threads = getattr(getattr(cfg, "scheduling", None), "cpus", None)
    text = json.dumps([FORMAT, decided, threads, *inputs], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Parts:
    """The parts of one run: ``<out>/parts/<key>/<name>.parquet``."""

    def __init__(self, out: str, key: str):
        self.folder = join(out, FOLDER, key)

    def path(self, name: str) -> str:
        return join(self.folder, f"{name}{SUFFIX}")

    def finished(self) -> set[str]:
        """The names of the parts written whole (a temporary or an unfinished upload is not listed)."""
        return {n[: -len(SUFFIX)] for n in list_names(self.folder, SUFFIX)}

    def write(self, name: str, frame: pl.DataFrame, record: dict[str, Any]) -> None:
        """Write one part whole: ``frame`` and ``record`` (NaN and infinities as null)."""
        import pyarrow.parquet as pq

        text = json.dumps(json_safe(record), ensure_ascii=False, allow_nan=False)
        table = frame.to_arrow().replace_schema_metadata({RECORD: text.encode()})
        atomic(self.path(name), lambda tmp: pq.write_table(table, tmp, compression="zstd"))

    def read(self, name: str) -> tuple[pl.DataFrame, dict[str, Any]]:
        """A part's table and record."""
        import pyarrow.parquet as pq

        with open_binary(self.path(name)) as f:
            table = pq.read_table(f)
        record = json.loads(table.schema.metadata[RECORD])
        return pl.from_arrow(table.replace_schema_metadata(None)), record
