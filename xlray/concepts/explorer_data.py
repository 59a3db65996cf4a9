"""The concept explorer's data for one (layer, view): each concept's members, its CALIGN matches or COLAP shares, and
the word -> concept index that search reads.

Columnar and compact (a 13-layer run with 10k concepts a layer is ~25 MB of JSON, ~11 MB gzipped in the page): a
word is its index in its language's vocabulary (`vocabularies`), and every per-concept list runs in ascending
concept id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from xlray.concepts.metrics import (
    CalignConfig,
    ClusterMatch,
    ColapConfig,
    calign_matches,
    colap_clusters,
    word_clusters,
)


def vocabularies(assignments: pl.DataFrame, languages: Sequence[str]) -> dict[str, list[str]]:
    """Every word type of each language, most frequent first (ties by the word): the page names a word by its index
    here, so the words concepts list most often have the shortest numbers, and suggestions come in this order."""
    out = {}
    for lang in languages:
        counts = assignments.filter(pl.col("language") == lang).group_by("word").len("n")
        out[lang] = counts.sort(["n", "word"], descending=[True, False])["word"].to_list()
    return out


def vocabulary_frame(vocab: Mapping[str, list[str]]) -> pl.DataFrame:
    """language, word, w (the word's index in its language's vocabulary)."""
    frames = [
        pl.DataFrame({"language": lang, "word": words, "w": range(len(words))}, schema_overrides={"w": pl.Int64})
        for lang, words in vocab.items()
    ]
    return pl.concat(frames)


def view_concepts(
    frame: pl.DataFrame, languages: Sequence[str], words: pl.DataFrame, vocab_size: Mapping[str, int], top: int
) -> dict[str, Any]:
    """One (layer, view)'s concepts, ascending id, with per-language lists in ``languages`` order.

    ``frame``: that view's assignment rows (language, word, cluster; noise -1 is left out); ``words``: the
    `vocabulary_frame`. Returns id, size (occurrences), occurrences and types per language, the ``top`` most
    frequent words per language (``words``: vocabulary indices, ``counts``: their occurrences), and ``home``: per
    language and vocabulary index, the concept holding most of that word's occurrences (-1: all noise or absent).
    """
    counts = frame.filter(pl.col("cluster") >= 0).group_by("cluster", "language", "word").len("n")
    counts = counts.join(words, on=["language", "word"])
    ranked = counts.sort(["cluster", "language", "n", "w"], descending=[False, False, True, False])
    per = ranked.group_by("cluster", "language", maintain_order=True).agg(
        types=pl.len(), occurrences=pl.col("n").sum(), w=pl.col("w").head(top), n=pl.col("n").head(top)
    )
    ids = sorted(per["cluster"].unique().to_list())
    row = {label: i for i, label in enumerate(ids)}
    at = {lang: k for k, lang in enumerate(languages)}
    width = len(languages)
    types = [[0] * width for _ in ids]
    occurrences = [[0] * width for _ in ids]
    top_words: list[list[list[int]]] = [[[] for _ in languages] for _ in ids]
    top_counts: list[list[list[int]]] = [[[] for _ in languages] for _ in ids]
    for label, lang, n_types, n_occ, ws, ns in per.iter_rows():
        i, k = row[label], at[lang]
        types[i][k], occurrences[i][k], top_words[i][k], top_counts[i][k] = n_types, n_occ, ws, ns
    return {
        "id": ids,
        "size": [sum(occ) for occ in occurrences],
        "occurrences": occurrences,
        "types": types,
        "words": top_words,
        "counts": top_counts,
        "home": word_homes(counts, languages, vocab_size),
    }


def word_homes(counts: pl.DataFrame, languages: Sequence[str], vocab_size: Mapping[str, int]) -> dict[str, list[int]]:
    """Per language, a list over its vocabulary: the concept holding most of the word's occurrences (ties: the
    lower id), -1 where none does. ``counts``: cluster, language, w, n."""
    best = (
        counts.sort(["language", "w", "n", "cluster"], descending=[False, False, True, False])
        .group_by("language", "w", maintain_order=True)
        .first()
    )
    homes = {lang: [-1] * vocab_size[lang] for lang in languages}
    for lang, w, label in best.select("language", "w", "cluster").iter_rows():
        homes[lang][w] = label
    return homes


def calign_view(
    src: pl.DataFrame,
    tgt: pl.DataFrame,
    translations: Mapping[str, Sequence[str]],
    cfg: CalignConfig,
    index: tuple[Mapping[str, int], Mapping[str, int]],
    top: int,
) -> list[list[list[Any]]]:
    """Per source concept (ascending id), its CALIGN matches by calign's own rule (`calign_matches`): every aligned
    target concept, then the others by m, ``top`` in all (at least every aligned one).

    ``src``/``tgt``: the two language views' assignment rows; ``index``: each language's word -> vocabulary index.
    A match is [target id, m, |T|, aligned 0/1, [source word, translation, source word, translation, ...]];
    |S| is the source concept's word types.
    """
    source, target = (word_clusters(f["word"].to_list(), f["cluster"].to_numpy()) for f in (src, tgt))
    matches = calign_matches(source, target, translations, cfg)
    out = []
    for label in sorted(matches):
        found = sorted(matches[label], key=lambda match: not match.aligned)  # stable: by m within each group
        out.append([match_row(match, index) for k, match in enumerate(found) if match.aligned or k < top])
    return out


def match_row(match: ClusterMatch, index: tuple[Mapping[str, int], Mapping[str, int]]) -> list[Any]:
    """[target id, m, |T|, aligned 0/1, [source word, translation, ...] as vocabulary indices]."""
    pairs = [i for w, t in match.pairs for i in (index[0][w], index[1][t])]
    return [match.target, match.m, match.size_t, int(match.aligned), pairs]


def colap_view(joint: pl.DataFrame, pair: Sequence[str], cfg: ColapConfig) -> list[int]:
    """Per joint concept (ascending id): 1 if it overlaps by COLAP's rule (`colap_clusters`), else 0."""
    shares = colap_clusters(joint["cluster"].to_numpy(), joint["language"].to_list(), pair, cfg)
    return [int(flag) for flag in shares.overlap]
