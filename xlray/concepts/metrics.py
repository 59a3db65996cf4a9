"""CALIGN and COLAP (Mousi et al., 2024): how far two languages share latent concepts.

Both metrics return a :class:`ConceptScore`: a value, or None with the reason it cannot be computed (never a
silent 0), plus the counts behind it so they can be logged next to the value.
"""

from __future__ import annotations

from collections import Counter, defaultdict
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
    homes: dict[str, list[int]] = defaultdict(list)  # target word -> the target clusters that contain it
    for label, members in tgt.items():
        for word in members:
            homes[word].append(label)
    covered: set[str] = set()  # source words with a translation somewhere in the target clusters
    aligned = 0
    for members in src.values():
        m = Counter()  # m[T] = |{w in S : D_N(w) ∩ T != ∅}|
        for word in members:
            hit = {label for t in translations.get(word, ())[: cfg.top_n] for label in homes.get(t, ())}
            if hit:
                covered.add(word)
            m.update(hit)
        aligned += any(is_aligned(len(members), len(tgt[t]), n, cfg) for t, n in m.items())
    counts |= {"aligned_clusters": aligned, "covered_source_words": len(covered)}
    if not covered:
        reason = "no source cluster word has a dictionary translation in any target cluster"
        return ConceptScore("calign", None, reason, counts)
    return ConceptScore("calign", aligned / len(src), None, counts)


def is_aligned(size_s: int, size_t: int, m: int, cfg: CalignConfig) -> bool:
    """The CALIGN alignment test, strict on all three thresholds."""
    return m / size_s > cfg.theta and size_s > cfg.tau and size_s / size_t > cfg.rho


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
    kept = labels >= 0
    clusters = np.unique(labels[kept])
    counts = {"clusters": len(clusters), "occurrences": int(labels.size), "noise_occurrences": int((~kept).sum())}
    absent = [code for code in pair if not (lang == code).any()]
    if absent:
        return ConceptScore("colap", None, f"no occurrences of language(s) {absent}", counts)
    if len(clusters) == 0:
        return ConceptScore("colap", None, "no clusters (empty or all noise)", counts)
    sizes = np.bincount(labels[kept], minlength=int(clusters.max()) + 1)[clusters]
    overlap = np.ones(len(clusters), dtype=bool)
    for code in pair:
        per_lang = np.bincount(labels[kept & (lang == code)], minlength=int(clusters.max()) + 1)[clusters]
        # share > tau percent, compared without division: 100 * n_lang > tau * n_cluster
        overlap &= 100 * per_lang > cfg.tau * sizes
    counts["overlapping_clusters"] = int(overlap.sum())
    return ConceptScore("colap", float(overlap.mean()), None, counts)
