"""Related vs unrelated word distances per layer (Efimov et al., 2023), and their histograms as a table.

Related pairs are aligned translation occurrences (src[i], tgt[i]). Each related pair i gets one unrelated partner
tgt[j] drawn with a seed, whose word is neither tgt[i]'s word nor a known translation of src[i]'s word; the same
partners serve every layer, so layers are compared on identical pairs. The paired difference
d(src[i], tgt[j]) - d(src[i], tgt[i]) is positive where translations sit closer than random words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from xlray.concepts.config import ConceptsConfig
from xlray.errors import XlrayError


@dataclass(frozen=True)
class Histogram:
    """Bin counts and the len(counts) + 1 bin edges."""

    counts: np.ndarray
    edges: np.ndarray


@dataclass(frozen=True)
class LayerDistances:
    """One layer's distances: per-group means, paired differences (pairs,) and their histograms."""

    cosine_related: float
    cosine_unrelated: float
    l2_related: float
    l2_unrelated: float
    cosine_diff: np.ndarray
    l2_diff: np.ndarray
    cosine_hist: Histogram
    l2_hist: Histogram

    def metrics(self) -> dict[str, float]:
        """Scalar summary for logging (step = layer)."""
        return {
            "dist_cosine_related": self.cosine_related,
            "dist_cosine_unrelated": self.cosine_unrelated,
            "dist_cosine_diff_mean": float(self.cosine_diff.mean()),
            "dist_l2_related": self.l2_related,
            "dist_l2_unrelated": self.l2_unrelated,
            "dist_l2_diff_mean": float(self.l2_diff.mean()),
            "dist_pairs": float(self.cosine_diff.size),
        }


def sample_unrelated(
    src_words: Sequence[str],
    tgt_words: Sequence[str],
    *,
    seed: int = 0,
    related: set[tuple[str, str]] | None = None,
    max_rounds: int = 20,
) -> np.ndarray:
    """For each pair i an index j with tgt_words[j] != tgt_words[i] and (src_words[i], tgt_words[j]) not related.

    ``related`` defaults to the given pairs themselves. Returns (pairs,) int64; -1 where no partner was found.
    """
    if len(src_words) != len(tgt_words):
        raise XlrayError(f"distances: {len(src_words)} source words but {len(tgt_words)} target words")
    n = len(src_words)
    related = set(zip(src_words, tgt_words, strict=True)) if related is None else related
    rng = np.random.default_rng(seed)

    def unrelated(i: int, j: int) -> bool:
        return tgt_words[j] != tgt_words[i] and (src_words[i], tgt_words[j]) not in related

    partner = np.full(n, -1, dtype=np.int64)
    todo = np.arange(n)
    for _ in range(max_rounds):
        if todo.size == 0 or n < 2:
            break
        draw = rng.integers(0, n, size=todo.size)
        ok = np.array([unrelated(i, j) for i, j in zip(todo.tolist(), draw.tolist(), strict=True)], dtype=bool)
        partner[todo[ok]] = draw[ok]
        todo = todo[~ok]
    return partner


def layer_distances(src: np.ndarray, tgt: np.ndarray, partner: np.ndarray, *, bins: int = 50) -> LayerDistances:
    """Distances for one layer: src, tgt (pairs, d) row-aligned translations; partner from sample_unrelated."""
    if src.shape != tgt.shape or src.ndim != 2:
        raise XlrayError(f"distances: source vectors {src.shape} and target vectors {tgt.shape} must match")
    keep = partner >= 0
    if not keep.any():
        raise XlrayError("distances: no pair has an unrelated partner (too few distinct target words)")
    s, t, u = (np.asarray(a, dtype=np.float64) for a in (src[keep], tgt[keep], tgt[partner[keep]]))
    cos_rel, cos_unr = cosine_distance(s, t), cosine_distance(s, u)
    l2_rel, l2_unr = np.linalg.norm(s - t, axis=1), np.linalg.norm(s - u, axis=1)
    return LayerDistances(
        cosine_related=float(cos_rel.mean()),
        cosine_unrelated=float(cos_unr.mean()),
        l2_related=float(l2_rel.mean()),
        l2_unrelated=float(l2_unr.mean()),
        cosine_diff=cos_unr - cos_rel,
        l2_diff=l2_unr - l2_rel,
        cosine_hist=Histogram(*np.histogram(cos_unr - cos_rel, bins=bins)),
        l2_hist=Histogram(*np.histogram(l2_unr - l2_rel, bins=bins)),
    )


def cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise 1 - cos(a, b); a zero vector counts as orthogonal to everything (distance 1)."""
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = np.einsum("ij,ij->i", a, b)
    return 1.0 - np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)


HISTOGRAM_SCHEMA = {
    "layer": pl.Int64,
    "distance": pl.String,
    "bin_left": pl.Float64,
    "bin_right": pl.Float64,
    "count": pl.Int64,
    "related_mean": pl.Float64,
    "unrelated_mean": pl.Float64,
    "pairs": pl.Int64,
}


def histogram_frame(layer: int, dist: LayerDistances) -> pl.DataFrame:
    """One row per bin of the layer's paired-difference histograms (cosine and l2), in HISTOGRAM_SCHEMA."""
    frames = []
    for name, hist, related, unrelated in (
        ("cosine", dist.cosine_hist, dist.cosine_related, dist.cosine_unrelated),
        ("l2", dist.l2_hist, dist.l2_related, dist.l2_unrelated),
    ):
        bins = pl.DataFrame({"bin_left": hist.edges[:-1], "bin_right": hist.edges[1:], "count": hist.counts})
        frames.append(
            bins.with_columns(
                layer=pl.lit(layer),
                distance=pl.lit(name),
                related_mean=pl.lit(related),
                unrelated_mean=pl.lit(unrelated),
                pairs=pl.lit(dist.cosine_diff.size),
            )
        )
    return pl.concat(frames).select(pl.col(k).cast(v) for k, v in HISTOGRAM_SCHEMA.items())


def related_distances(
    x_src: np.ndarray,
    meta_src: pl.DataFrame,
    x_tgt: np.ndarray,
    meta_tgt: pl.DataFrame,
    translations: dict[str, list[str]],
    known: set[tuple[str, str]],
    cfg: ConceptsConfig,
) -> tuple[LayerDistances | None, str | None]:
    """Distances of dictionary translation pairs (mean vector per word type) vs sampled unrelated pairs."""
    src_words, src_mean = mean_by_word(x_src, meta_src["word"].to_list())
    tgt_words, tgt_mean = mean_by_word(x_tgt, meta_tgt["word"].to_list())
    src_index, tgt_index = {w: i for i, w in enumerate(src_words)}, {w: i for i, w in enumerate(tgt_words)}
    pairs = [(s, t) for s in src_words for t in translations.get(s, ()) if t in tgt_index]
    if len({t for _, t in pairs}) < 2:
        return None, f"{len(pairs)} dictionary pairs have both words in the activations; need 2 distinct targets"
    src_list, tgt_list = [s for s, _ in pairs], [t for _, t in pairs]
    partner = sample_unrelated(src_list, tgt_list, seed=cfg.distances.seed, related=known)
    if not (partner >= 0).any():
        return None, "no related pair found an unrelated partner"
    d = layer_distances(
        src_mean[[src_index[s] for s in src_list]], tgt_mean[[tgt_index[t] for t in tgt_list]], partner,
        bins=cfg.distances.bins,
    )  # fmt: skip
    return d, None


def mean_by_word(x: np.ndarray, words: list[str]) -> tuple[list[str], np.ndarray]:
    """Word types (sorted) and their mean vectors (types, d)."""
    types, inverse = np.unique(np.asarray(words, dtype=object), return_inverse=True)
    sums = np.zeros((len(types), x.shape[1]), dtype=np.float64)
    np.add.at(sums, inverse, x)
    return types.tolist(), sums / np.bincount(inverse)[:, None]
