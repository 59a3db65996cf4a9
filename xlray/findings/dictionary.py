"""The eflomal dictionary against the world's gold dictionary: precision and recall, and a control that breaks
the sentence pairing.

xlray's concepts stage builds its bilingual dictionary D by word-aligning parallel text with eflomal (Mousi et
al. 2024 do the same). Here D is built from the world's parallel files as that stage builds it, and each English
word's most frequent translation is checked against the gold dictionary (``gold/dictionary.parquet``):

- precision: the share of English words with a translation whose top translation is the gold one;
- recall: the share of gold entries (attested on both sides of the corpus) that are some English word's top
  translation.

The control aligns the same files with the target lines rotated by half the corpus, so no pair is a translation:
whatever it finds comes from word frequencies alone. The finding compares the two, entry by entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from xlray.concepts.run import eflomal_dictionary
from xlray.wordalign.dictionary import top_translations


@dataclass(frozen=True)
class DictionaryScore:
    """One dictionary against the gold: ``hits[k]`` is 1 where gold entry k is its English word's top translation."""

    precision: float
    recall: float
    hits: np.ndarray
    predicted: int  # English words of the gold with a translation


def gold_entries(gold: pl.DataFrame, language: str, source_words: set[str], target_words: set[str]) -> pl.DataFrame:
    """The gold entries of one language attested on both sides of its corpus: columns translation (English), word."""
    rows = gold.filter(pl.col("language") == language).select("translation", "word")
    return rows.filter(pl.col("translation").is_in(list(source_words)) & pl.col("word").is_in(list(target_words)))


def score_dictionary(dictionary: pl.DataFrame, gold: pl.DataFrame) -> DictionaryScore:
    """Precision and recall of the top translations of ``dictionary`` (src English, tgt target) against ``gold``
    entries (translation English, word target); precision is over the English words the gold can judge."""
    top = {src: tgts[0] for src, tgts in top_translations(dictionary, 1).items()}
    entries = list(zip(gold["translation"], gold["word"], strict=True))
    hits = np.array([float(top.get(en) == word) for en, word in entries])
    judged = [(en, word) for en, word in top.items() if en in set(gold["translation"])]
    right = sum(pair in set(entries) for pair in judged)
    return DictionaryScore(right / max(len(judged), 1), float(hits.mean()) if entries else 0.0, hits, len(judged))


def rotated(path: Path, out: Path) -> Path:
    """The lines of ``path`` rotated by half their number: line k of the copy is line k + n/2 of the original."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    half = len(lines) // 2
    out.write_text("".join(lines[half:] + lines[:half]), encoding="utf-8")
    return out


def words_of(path: Path) -> set[str]:
    return set(path.read_text(encoding="utf-8").split())


def language_scores(
    world_dir: Path, source: str, language: str, scratch: Path, max_sentences: int | None, n_samplers: int
) -> tuple[DictionaryScore, DictionaryScore]:
    """The eflomal dictionary of one language pair, and of its rotated control, against the gold."""
    stem = world_dir / "parallel" / f"{language}-{source}"
    en, tgt = stem.with_suffix(f".{source}"), stem.with_suffix(f".{language}")
    gold = gold_entries(
        pl.read_parquet(world_dir / "gold" / "dictionary.parquet"), language, words_of(en), words_of(tgt)
    )
    aligned, _ = eflomal_dictionary(str(en), str(tgt), max_sentences, n_samplers)
    control = rotated(tgt, scratch / f"{language}-{source}.rotated.{language}")
    shuffled, _ = eflomal_dictionary(str(en), str(control), max_sentences, n_samplers)
    return score_dictionary(aligned, gold), score_dictionary(shuffled, gold)
