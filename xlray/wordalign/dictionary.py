"""Bilingual dictionary from word-aligned parallel sentences: translation counts and P(tgt | src)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from xlray.errors import XlrayError
from xlray.outputs import write_parquet
from xlray.textio import is_file, open_binary
from xlray.wordalign.eflomal import Link

COLUMNS = {"src": pl.String, "tgt": pl.String, "count": pl.Int64, "prob": pl.Float64}


def build_dictionary(
    src_sents: Sequence[Sequence[str]],
    tgt_sents: Sequence[Sequence[str]],
    links: Sequence[Sequence[Link]],
) -> pl.DataFrame:
    """Count aligned word pairs; rows sorted by src, then count descending, then tgt.

    Returns columns src, tgt, count, prob with prob = count / (links of src to any word).
    """
    if not len(src_sents) == len(tgt_sents) == len(links):
        raise XlrayError(
            f"build_dictionary: {len(src_sents)} source sentences, {len(tgt_sents)} target sentences"
            f" and {len(links)} link lists; they must be line-parallel"
        )
    counts: Counter[tuple[str, str]] = Counter()
    for k, (src, tgt, pairs) in enumerate(zip(src_sents, tgt_sents, links, strict=True)):
        for i, j in pairs:
            if not (0 <= i < len(src) and 0 <= j < len(tgt)):
                raise XlrayError(f"build_dictionary: sentence pair {k}: link {i}-{j} is out of range")
            counts[(src[i], tgt[j])] += 1
    df = pl.DataFrame(
        {
            "src": [s for s, _ in counts],
            "tgt": [t for _, t in counts],
            "count": list(counts.values()),
        },
        schema={"src": pl.String, "tgt": pl.String, "count": pl.Int64},
    )
    df = df.with_columns(prob=pl.col("count") / pl.col("count").sum().over("src"))
    return sort_dictionary(df.cast(COLUMNS))


def sort_dictionary(df: pl.DataFrame) -> pl.DataFrame:
    """The canonical row order: src ascending, count descending, tgt ascending (ties broken by the word)."""
    return df.sort(["src", "count", "tgt"], descending=[False, True, False])


def write_dictionary(df: pl.DataFrame, path: str | Path) -> Path:
    """Write the dictionary as Parquet atomically, after checking its columns."""
    check_columns(df, path)
    return write_parquet(df, path)


def read_dictionary(path: str | Path) -> pl.DataFrame:
    """Read a dictionary written by :func:`write_dictionary` (a local file or a URI), checking its columns."""
    if not is_file(path):
        raise XlrayError(f"{path}: dictionary file not found")
    try:
        with open_binary(path) as f:
            df = pl.read_parquet(f)
    except Exception as exc:  # polars raises several error types for a corrupt file
        raise XlrayError(f"{path}: not a readable Parquet dictionary ({type(exc).__name__})") from None
    check_columns(df, path)
    return df


def check_columns(df: pl.DataFrame, source: str | Path) -> None:
    """Require exactly the dictionary columns and types."""
    got = dict(df.schema)
    if got != COLUMNS:
        raise XlrayError(f"{source}: dictionary columns {got} differ from the expected {COLUMNS}")


def top_translations(df: pl.DataFrame, n: int, *, min_count: int = 1) -> dict[str, list[str]]:
    """D_N: each source word's N most frequent translations (ties: alphabetical), counts >= min_count."""
    if n < 1:
        raise XlrayError(f"top_translations: n must be >= 1, got {n}")
    top = (
        sort_dictionary(df.filter(pl.col("count") >= min_count))
        .group_by("src", maintain_order=True)
        .head(n)
        .group_by("src", maintain_order=True)
        .agg(pl.col("tgt"))
    )
    return dict(zip(top["src"].to_list(), top["tgt"].to_list(), strict=True))
