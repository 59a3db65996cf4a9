"""CALIGN and COLAP (Mousi et al., 2024): how far two languages share latent concepts.

Both metrics return a :class:`ConceptScore`: a value, or None with the reason it cannot be computed (never a
silent 0), plus the counts behind it so they can be logged next to the value.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from pydantic import Field

from xlray.configs import Strict

Clusters = Mapping[int, frozenset[str]]


class CalignConfig(Strict):
    """CALIGN thresholds; S is aligned to T iff m(S,T)/|S| > theta and |S| > tau and |S|/|T| > rho."""

    top_n: int = Field(1, ge=1, description="N of D_N: translations per word taken from the dictionary")
    theta: float = Field(0.5, ge=0, lt=1, description="Share of S's words with a translation in T")
    tau: int = Field(0, ge=0, description="Source clusters of at most this many word types never align")
    rho: float = Field(0.0, ge=0, description="Lower bound on the size ratio |S|/|T|")


class ColapConfig(Strict):
    """COLAP threshold: a joint cluster overlaps iff every language's share of its occurrences is > tau %."""

    tau: float = Field(10.0, ge=0, lt=100, description="Percent")


@dataclass(frozen=True)
class ConceptScore:
    """A metric value in [0, 1], or None with ``reason``; ``counts`` holds numerator, denominator and more."""

    name: str
    value: float | None
    reason: str | None = None
    counts: dict[str, int] = field(default_factory=dict)


def word_clusters(words: Sequence[str], labels: np.ndarray) -> dict[int, frozenset[str]]:
    """Clusters as sets of word types, from one word per point and the point labels (noise -1 dropped)."""
    labels = np.asarray(labels)
    if len(words) != len(labels):
        raise ValueError(f"{len(words)} words but {len(labels)} labels")
    members: dict[int, set[str]] = defaultdict(set)
    for word, label in zip(words, labels.tolist(), strict=True):
        if label >= 0:
            members[label].add(word)
    return {label: frozenset(ws) for label, ws in sorted(members.items())}


@dataclass(frozen=True)
class ClusterMatch:
    """One target cluster T that some words of a source cluster S translate into (m(S,T) > 0).

    ``pairs`` are the translation pairs behind m: (w in S, t in D_N(w) ∩ T), sorted; m counts their distinct w.
    """

    target: int
    m: int
    size_s: int
    size_t: int
    aligned: bool
    pairs: tuple[tuple[str, str], ...]


def calign_matches(
    src: Clusters, tgt: Clusters, translations: Mapping[str, Sequence[str]], cfg: CalignConfig
) -> dict[int, list[ClusterMatch]]:
    """Every source cluster's matches, most shared words first: the details behind :func:`calign`, by its rule.

    ``translations`` is D (word -> translations, best first); only the first ``cfg.top_n`` are used. A source
    cluster none of whose words translates into a target cluster has an empty list.
    """
    homes: dict[str, list[int]] = defaultdict(list)  # target word -> the target clusters that contain it
    for label, members in tgt.items():
        for word in members:
            homes[word].append(label)
    matches: dict[int, list[ClusterMatch]] = {}
    for source, members in src.items():
        pairs: dict[int, list[tuple[str, str]]] = defaultdict(list)  # T -> (w, t) with w in S, t in D_N(w) ∩ T
        for word in members:
            for t in dict.fromkeys(translations.get(word, ())[: cfg.top_n]):
                for label in homes.get(t, ()):
                    pairs[label].append((word, t))
        found = []
        for label, hits in pairs.items():
            m = len({w for w, _ in hits})  # m(S, T) = |{w in S : D_N(w) ∩ T != ∅}|
            aligned = is_aligned(len(members), len(tgt[label]), m, cfg)
            found.append(ClusterMatch(label, m, len(members), len(tgt[label]), aligned, tuple(sorted(hits))))
        matches[source] = sorted(found, key=lambda match: (-match.m, match.target))
    return matches


def calign(src: Clusters, tgt: Clusters, translations: Mapping[str, Sequence[str]], cfg: CalignConfig) -> ConceptScore:
    """CALIGN(src -> tgt): the fraction of source clusters aligned to at least one target cluster.

    ``translations`` is D (word -> translations, best first); only the first ``cfg.top_n`` are used.
    The denominator is every source cluster (noise is never a cluster).
    """
    counts = {"source_clusters": len(src), "target_clusters": len(tgt)}
    if not src:
        return ConceptScore("calign", None, "the source language has no clusters (empty or all noise)", counts)
    if not tgt:
        return ConceptScore("calign", None, "the target language has no clusters (empty or all noise)", counts)
    matches = calign_matches(src, tgt, translations, cfg)
    aligned = sum(any(match.aligned for match in found) for found in matches.values())
    # source words with a translation somewhere in the target clusters
    covered = {w for found in matches.values() for match in found for w, _ in match.pairs}
    counts |= {"aligned_clusters": aligned, "covered_source_words": len(covered)}
    if not covered:
        reason = "no source cluster word has a dictionary translation in any target cluster"
        return ConceptScore("calign", None, reason, counts)
    return ConceptScore("calign", aligned / len(src), None, counts)


def is_aligned(size_s: int, size_t: int, m: int, cfg: CalignConfig) -> bool:
    """The CALIGN alignment test, strict on all three thresholds."""
    return m / size_s > cfg.theta and size_s > cfg.tau and size_s / size_t > cfg.rho


@dataclass(frozen=True)
class ColapClusters:
    """Each joint cluster's occurrences per language of the pair, and whether it overlaps (COLAP's rule)."""

    clusters: np.ndarray  # (k,) cluster labels, ascending
    sizes: np.ndarray  # (k,) occurrences of each cluster, every language
    per_language: np.ndarray  # (k, len(pair)) occurrences of each cluster in each language of the pair
    overlap: np.ndarray  # (k,) bool: every language of the pair holds more than tau percent


def colap_clusters(
    labels: np.ndarray, languages: Sequence[str], pair: Sequence[str], cfg: ColapConfig
) -> ColapClusters:
    """The per-cluster shares behind :func:`colap` (noise -1 left out); shapes as in :func:`colap`."""
    labels = np.asarray(labels, dtype=np.int64)
    lang = np.asarray(languages)
    kept = labels >= 0
    clusters = np.unique(labels[kept])
    width = int(clusters.max()) + 1 if len(clusters) else 0
    sizes = np.bincount(labels[kept], minlength=width)[clusters]
    per_language = np.stack(
        [np.bincount(labels[kept & (lang == code)], minlength=width)[clusters] for code in pair], axis=1
    )
    # share > tau percent, compared without division: 100 * n_lang > tau * n_cluster
    overlap = (100 * per_language > cfg.tau * sizes[:, None]).all(axis=1)
    return ColapClusters(clusters, sizes, per_language, overlap)


def colap(labels: np.ndarray, languages: Sequence[str], pair: Sequence[str], cfg: ColapConfig) -> ConceptScore:
    """COLAP over a joint clustering: overlapping clusters / clusters (noise excluded).

    Args:
        labels: cluster label per occurrence (noise -1), shape (n,).
        languages: the language of each occurrence, shape (n,).
        pair: the languages that must each hold more than ``cfg.tau`` percent of a cluster.
        cfg: the threshold.
    """
    labels = np.asarray(labels, dtype=np.int64)
    lang = np.asarray(languages)
    if len(set(pair)) < 2:
        raise ValueError(f"COLAP needs at least two languages, got {list(pair)}")
    if labels.shape != lang.shape:
        raise ValueError(f"{labels.shape[0]} labels but {lang.shape[0]} languages")
    shares = colap_clusters(labels, lang, pair, cfg)
    noise = int((labels < 0).sum())
    counts = {"clusters": len(shares.clusters), "occurrences": int(labels.size), "noise_occurrences": noise}
    absent = [code for code in pair if not (lang == code).any()]
    if absent:
        return ConceptScore("colap", None, f"no occurrences of language(s) {absent}", counts)
    if len(shares.clusters) == 0:
        return ConceptScore("colap", None, "no clusters (empty or all noise)", counts)
    counts["overlapping_clusters"] = int(shares.overlap.sum())
    return ConceptScore("colap", float(shares.overlap.mean()), None, counts)
