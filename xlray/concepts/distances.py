"""Related vs unrelated word distances per layer (Efimov et al., 2023), and their histograms as a table.

Related pairs (src[i], tgt[i]) are, by default, the occurrences a word link joins in one sentence pair, each in its
context (``in_context``); the ``type_mean`` variant pairs each word type's mean vector with its dictionary
translations. Pairs of identical strings (numbers, punctuation, names) are dropped unless kept: their vectors nearly
match whatever the model learnt. Each related pair i gets one unrelated partner tgt[j] drawn with a seed, whose word
is neither tgt[i]'s word nor a known translation of src[i]'s word. The pairs and partners are built once from the
occurrences and serve every layer, so layers are compared on identical pairs. The paired difference
d(src[i], tgt[j]) - d(src[i], tgt[i]) is positive where translations sit closer than random words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from xlray.concepts.config import DistancesConfig
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
    partner = np.full(n, -1, dtype=np.int64)
    if n < 2:
        return partner
    related = set(zip(src_words, tgt_words, strict=True)) if related is None else related
    src_types, src_code = np.unique(np.asarray(src_words, dtype=object), return_inverse=True)
    tgt_types, tgt_code = np.unique(np.asarray(tgt_words, dtype=object), return_inverse=True)
    # A (source, target) word pair as one integer, so each round checks all its draws at once.
    src_id, tgt_id = {w: i for i, w in enumerate(src_types)}, {w: i for i, w in enumerate(tgt_types)}
    width = len(tgt_types)
    known = np.array([src_id[s] * width + tgt_id[t] for s, t in related if s in src_id and t in tgt_id], dtype=np.int64)
    rng = np.random.default_rng(seed)
    todo = np.arange(n)
    for _ in range(max_rounds):
        if todo.size == 0:
            break
        draw = rng.integers(0, n, size=todo.size)
        ok = (tgt_code[draw] != tgt_code[todo]) & ~np.isin(src_code[todo] * width + tgt_code[draw], known)
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


@dataclass(frozen=True)
class Pairs:
    """Related pairs and their unrelated partners, built once from the occurrences and used at every layer.

    ``src_rows``, ``tgt_rows`` (pairs,) index a layer's points (see :func:`layer_points`): its occurrence rows in
    ``Activations.matrix`` order (in_context) or its sorted word types (type_mean). ``partner`` (pairs,): the pair
    whose target is pair i's unrelated partner, -1 for none. ``src_words``/``tgt_words`` (pairs,) and
    ``n_src``/``n_tgt`` (points per language) are checked at each layer. ``counts``: candidates (related pairs
    found) = pairs (compared) + identical_dropped + no_partner; in_context adds not_extracted (links with an
    occurrence the activations lack: capped or truncated).
    """

    kind: str
    src_rows: np.ndarray
    tgt_rows: np.ndarray
    partner: np.ndarray
    src_words: np.ndarray
    tgt_words: np.ndarray
    n_src: int
    n_tgt: int
    counts: dict[str, int]

    def metrics(self) -> dict[str, float]:
        """The counts as per-layer metrics ``dist_{count}``."""
        return {f"dist_{k}": float(v) for k, v in self.counts.items()}


def in_context_pairs(
    meta_src: pl.DataFrame,
    meta_tgt: pl.DataFrame,
    links: pl.DataFrame,
    known: set[tuple[str, str]],
    cfg: DistancesConfig,
) -> tuple[Pairs | None, str | None]:
    """The source and target occurrences each word link joins in one sentence pair.

    ``links``: sentence_id, src_index, tgt_index, src_word, tgt_word (one row per link). ``meta_*``: occurrence rows
    (sentence_id, word_index, word) in ``Activations.matrix`` order. A link whose word differs from the activations'
    at its position means the files changed after the extraction: no pairs, and the reason.
    """

    def rows(meta: pl.DataFrame, side: str) -> pl.DataFrame:
        index, seen = pl.col("word_index").cast(pl.Int64).alias(f"{side}_index"), pl.col("word").alias(f"{side}_seen")
        return meta.select("sentence_id", index, seen).with_row_index(f"{side}_row")

    found = (
        links.with_columns(pl.col("src_index", "tgt_index").cast(pl.Int64))
        .join(rows(meta_src, "src"), on=["sentence_id", "src_index"])
        .join(rows(meta_tgt, "tgt"), on=["sentence_id", "tgt_index"])
        .sort("src_row", "tgt_row")
    )
    other = found.filter((pl.col("src_word") != pl.col("src_seen")) | (pl.col("tgt_word") != pl.col("tgt_seen")))
    if other.height:
        return None, (
            f"{other.height} of {found.height} linked occurrences have another word in the activations than in the"
            " parallel files (changed after the extraction?); re-run the extraction or the dictionary"
        )
    return with_partners(
        "in_context",
        found["src_row"].to_numpy().astype(np.int64),
        found["tgt_row"].to_numpy().astype(np.int64),
        np.asarray(found["src_word"].to_list(), dtype=object),
        np.asarray(found["tgt_word"].to_list(), dtype=object),
        (meta_src.height, meta_tgt.height),
        {"candidates": found.height, "not_extracted": links.height - found.height},
        known,
        cfg,
    )


def type_mean_pairs(
    meta_src: pl.DataFrame,
    meta_tgt: pl.DataFrame,
    translations: dict[str, list[str]],
    known: set[tuple[str, str]],
    cfg: DistancesConfig,
) -> tuple[Pairs | None, str | None]:
    """Dictionary translation pairs (``translations``: D_N) of word types present in both languages."""
    src_types, tgt_types = word_types(meta_src["word"].to_list()), word_types(meta_tgt["word"].to_list())
    tgt_index = {w: i for i, w in enumerate(tgt_types)}
    found = [(i, tgt_index[t]) for i, s in enumerate(src_types) for t in translations.get(s, ()) if t in tgt_index]
    src_rows = np.array([i for i, _ in found], dtype=np.int64)
    tgt_rows = np.array([j for _, j in found], dtype=np.int64)
    return with_partners(
        "type_mean", src_rows, tgt_rows, src_types[src_rows], tgt_types[tgt_rows], (len(src_types), len(tgt_types)),
        {"candidates": len(found)}, known, cfg,
    )  # fmt: skip


def with_partners(
    kind: str,
    src_rows: np.ndarray,
    tgt_rows: np.ndarray,
    src_words: np.ndarray,
    tgt_words: np.ndarray,
    sizes: tuple[int, int],
    counts: dict[str, int],
    known: set[tuple[str, str]],
    cfg: DistancesConfig,
) -> tuple[Pairs, str | None]:
    """Drop identical strings (unless kept), draw the unrelated partners, count; the reason if none is left."""
    identical = src_words == tgt_words if len(src_words) else np.zeros(0, dtype=bool)
    keep = np.ones_like(identical) if cfg.keep_identical else ~identical
    src_rows, tgt_rows, src_words, tgt_words = src_rows[keep], tgt_rows[keep], src_words[keep], tgt_words[keep]
    partner = sample_unrelated(src_words.tolist(), tgt_words.tolist(), seed=cfg.seed, related=known)
    counts = counts | {
        "pairs": int((partner >= 0).sum()),
        "identical_dropped": int((~keep).sum()),
        "no_partner": int((partner < 0).sum()),
    }
    pairs = Pairs(kind, src_rows, tgt_rows, partner, src_words, tgt_words, *sizes, counts)
    if counts["pairs"]:
        return pairs, None
    return pairs, "no related pair with an unrelated partner (" + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")"


def related_distances(
    x_src: np.ndarray, meta_src: pl.DataFrame, x_tgt: np.ndarray, meta_tgt: pl.DataFrame, pairs: Pairs, bins: int
) -> LayerDistances:
    """One layer's distances on ``pairs``: x_* (n, d) the layer's vectors, meta_* their rows."""
    p_src, w_src = layer_points(pairs.kind, x_src, meta_src)
    p_tgt, w_tgt = layer_points(pairs.kind, x_tgt, meta_tgt)
    same = (len(w_src), len(w_tgt)) == (pairs.n_src, pairs.n_tgt)
    if not (same and np.array_equal(w_src[pairs.src_rows], pairs.src_words)
            and np.array_equal(w_tgt[pairs.tgt_rows], pairs.tgt_words)):  # fmt: skip
        raise XlrayError("distances: this layer's occurrences differ from the first layer's; re-run the extraction")
    return layer_distances(p_src[pairs.src_rows], p_tgt[pairs.tgt_rows], pairs.partner, bins=bins)


def layer_points(kind: str, x: np.ndarray, meta: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """A layer's points (n, d) and their words (n,): its occurrences (in_context) or its word types' means."""
    words = meta["word"].to_list()
    if kind == "in_context":
        return x, np.asarray(words, dtype=object)
    types, means = mean_by_word(x, words)
    return means, np.asarray(types, dtype=object)


def word_types(words: list[str]) -> np.ndarray:
    """The sorted distinct words (types,), as object array; the order of :func:`mean_by_word`."""
    return np.unique(np.asarray(words, dtype=object))


def mean_by_word(x: np.ndarray, words: list[str]) -> tuple[list[str], np.ndarray]:
    """Word types (sorted) and their mean vectors (types, d)."""
    types, inverse = np.unique(np.asarray(words, dtype=object), return_inverse=True)
    sums = np.zeros((len(types), x.shape[1]), dtype=np.float64)
    np.add.at(sums, inverse, x)
    return types.tolist(), sums / np.bincount(inverse)[:, None]
