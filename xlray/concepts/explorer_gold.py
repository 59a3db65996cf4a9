"""Gold labels for the explorer where they are known: the synthetic world's concept of every word occurrence.

The world writes ``gold/words.parquet`` (language, sentence: 0-based line, index: word index, word, concept); line
k of each of its parallel files renders the same meaning k, so an occurrence with sentence id
``<input name>:<line from 1>`` is joined on (language, line - 1, word index, word). Occurrences that do not join
(another corpus, another world) have no gold label and are counted, not guessed.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from xlray.errors import XlrayError
from xlray.textio import is_file, open_binary

GOLD_COLUMNS = ("language", "sentence", "index", "word", "concept")


def read_gold(path: str) -> pl.DataFrame:
    """The gold words file (local or a URI); a missing file or column is an error naming the config field."""
    if not is_file(path):
        raise XlrayError(f"explorer.gold_words: {path}: no such file (the world's gold/words.parquet)")
    with open_binary(path) as f:
        gold = pl.read_parquet(f)
    missing = [c for c in GOLD_COLUMNS if c not in gold.columns]
    if missing:
        raise XlrayError(f"explorer.gold_words: {path}: missing column(s) {missing} (have {gold.columns})")
    return gold.select(
        pl.col("language").cast(pl.String),
        pl.col("sentence").cast(pl.Int64),
        pl.col("index").cast(pl.Int64).alias("word_index"),
        pl.col("word").cast(pl.String),
        pl.col("concept").cast(pl.String).alias("gold"),
    )


def with_gold(assignments: pl.DataFrame, gold: pl.DataFrame) -> pl.DataFrame:
    """``assignments`` plus a ``gold`` column: the occurrence's gold concept, null where it does not join."""
    line = pl.col("sentence_id").str.extract(r":(\d+)$").cast(pl.Int64, strict=False)
    keyed = assignments.with_row_index("_row").with_columns(
        (line - 1).alias("sentence"), pl.col("word_index").cast(pl.Int64).alias("_wi")
    )
    gold = gold.rename({"word_index": "_wi"})
    joined = keyed.join(gold, on=["language", "sentence", "_wi", "word"], how="left").sort("_row")
    return joined.drop("_row", "sentence", "_wi")


def gold_purity(frame: pl.DataFrame) -> pl.DataFrame:
    """Per concept of ``frame`` (one (layer, view), with a gold column): its majority gold concept and purity, the
    share of its gold-labelled occurrences that have that concept (ties: the first concept by name)."""
    labelled = frame.filter((pl.col("cluster") >= 0) & pl.col("gold").is_not_null())
    counts = labelled.group_by("cluster", "gold").len("n")
    return (
        counts.sort(["cluster", "n", "gold"], descending=[False, True, False])
        .group_by("cluster", maintain_order=True)
        .agg(gold=pl.col("gold").first(), purity=pl.col("n").first() / pl.col("n").sum(), labelled=pl.col("n").sum())
    )


def word_gold(frame: pl.DataFrame) -> pl.DataFrame:
    """Per (language, word): the gold concept most of its occurrences have (ties: the first by name)."""
    counts = frame.filter(pl.col("gold").is_not_null()).group_by("language", "word", "gold").len("n")
    return (
        counts.sort(["language", "word", "n", "gold"], descending=[False, False, True, False])
        .group_by("language", "word", maintain_order=True)
        .agg(gold=pl.col("gold").first())
    )


def gold_summary(path: str, labelled: pl.DataFrame) -> dict[str, Any]:
    """What the page says about the join: the file, occurrences (of one layer and view set) and how many matched."""
    return {"file": path, "occurrences": labelled.height, "matched": int(labelled["gold"].is_not_null().sum())}
