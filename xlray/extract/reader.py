"""Read extracted activations back lazily: a polars LazyFrame over the shards, numpy matrices for clustering.

The folder is a local path or an object-store URI (``s3://``, ``gs://``). Polars scans a URI's shards itself, with
filters pushed down into the scan, taking the endpoint and credentials from the environment (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``...) as pyarrow does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from xlray.errors import XlrayError
from xlray.extract.shards import MANIFEST
from xlray.outputs import read_json
from xlray.storage import join


class Activations:
    """A finished extraction folder (``folder``: a local path or a URI, kept as a string). Nothing is loaded until a
    query is collected."""

    def __init__(self, folder: str | Path):
        self.folder = str(folder)
        manifest = read_json(join(self.folder, MANIFEST))
        if manifest is None:
            raise XlrayError(f"{self.folder}: no {MANIFEST}; the extraction is missing or unfinished (re-run it)")
        self.manifest: dict[str, Any] = manifest

    @property
    def layers(self) -> list[int]:
        return self.manifest["layers"]

    @property
    def languages(self) -> list[str]:
        return self.manifest["config"]["languages"]

    @property
    def granularity(self) -> str:
        """``word`` (a row per kept word occurrence) or ``sentence`` (a row per sentence); older manifests: word."""
        return self.manifest["config"].get("granularity", "word")

    def lazy(
        self,
        layer: int | None = None,
        language: str | Sequence[str] | None = None,
        words: Sequence[str] | None = None,
        site: str = "encoder",
    ) -> pl.LazyFrame:
        """A LazyFrame of matching rows; filters are pushed down into the Parquet scan."""
        frame = pl.scan_parquet([join(self.folder, s) for s in self.manifest["shards"]])
        frame = frame.filter(pl.col("site") == site)
        if layer is not None:
            frame = frame.filter(pl.col("layer") == layer)
        if language is not None:
            frame = frame.filter(pl.col("language").is_in([language] if isinstance(language, str) else list(language)))
        if words is not None:
            frame = frame.filter(pl.col("word").is_in(list(words)))
        return frame

    def matrix(
        self, layer: int, language: str | Sequence[str] | None = None, site: str = "encoder"
    ) -> tuple[np.ndarray, pl.DataFrame]:
        """Vectors [n, hidden] as float32 and their rows' metadata: sentence_id, language, word, word_index (word
        granularity) or sentence_id, language, tokens (sentence granularity), sorted by those ids."""
        self.check(layer, language, site)
        order = ["sentence_id", "language", "word_index"] if self.granularity == "word" else ["sentence_id", "language"]
        frame = self.lazy(layer, language, site=site).sort(*order).collect()
        if frame.height == 0:
            raise XlrayError(f"{self.folder}: no activations for layer {layer}, language {language}, site {site}")
        vectors = frame["vector"].to_numpy()
        vectors = np.asarray(vectors, dtype=np.float32).reshape(frame.height, -1)
        return vectors, frame.drop("vector")

    def check(self, layer: int, language: str | Sequence[str] | None, site: str) -> None:
        if layer not in self.layers:
            raise XlrayError(f"{self.folder}: layer {layer} was not extracted (have {self.layers})")
        wanted = [language] if isinstance(language, str) else list(language or [])
        missing = [lang for lang in wanted if lang not in self.languages]
        if missing:
            raise XlrayError(f"{self.folder}: language(s) {missing} were not extracted (have {self.languages})")
        if site not in self.manifest["config"]["sites"]:
            raise XlrayError(
                f"{self.folder}: site {site!r} was not extracted (have {self.manifest['config']['sites']})"
            )


def open_activations(folder: str | Path) -> Activations:
    return Activations(folder)
