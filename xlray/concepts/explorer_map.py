"""The explorer's 2-D map of one layer: a bounded, seeded sample of both languages' occurrences, projected by PCA.

Bounded so the page stays small at any corpus size: at most ``map_points`` occurrences a layer, shared between the
languages in proportion to their counts. The sample is drawn from the occurrences' ids (no vectors), and only the
sampled occurrences' vectors are read, one layer and language at a time, through the lazy reader (their sentence ids
filter the Parquet scan), so the driver never holds a layer's vectors. The points are prepared as the
clustering prepares them (L2-normalised when ``points.l2_normalize``) and projected with PCA (UMAP is not a
dependency); coordinates are rounded to a 0..1000 grid, plenty for a canvas a few hundred pixels wide.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from xlray.concepts.points import PointsConfig, l2_normalize, pca_reduce
from xlray.errors import XlrayError
from xlray.extract.reader import Activations

GRID = 1000
KEYS = ["sentence_id", "language", "word_index"]


def sample_quota(counts: Mapping[str, int], limit: int) -> dict[str, int]:
    """Occurrences to sample per language: all when the total is within ``limit``, else shares of ``limit`` in
    proportion to the counts (largest remainders, so they add up to ``limit`` exactly)."""
    total = sum(counts.values())
    if total <= limit:
        return dict(counts)
    exact = {lang: limit * n / total for lang, n in counts.items()}
    quota = {lang: int(q) for lang, q in exact.items()}
    for lang in sorted(exact, key=lambda code: quota[code] - exact[code])[: limit - sum(quota.values())]:
        quota[lang] += 1
    return quota


def layer_map(
    acts: Activations,
    layer: int,
    site: str,
    frame: pl.DataFrame,
    index: Mapping[str, Mapping[str, int]],
    views: Mapping[str, str],
    limit: int,
    points: PointsConfig,
    seed: int,
) -> dict[str, Any]:
    """One layer's map: x, y (0..GRID), each point's language (its position in ``index``), word (vocabulary index)
    and concept per view (``views``: page name -> assignments' view; -1: noise, or another language's view), the
    totals and the PCA's share of variance. ``frame``: the layer's assignment rows, every view."""
    languages = list(index)
    counts = {
        lang: frame.filter((pl.col("view") == "joint") & (pl.col("language") == lang)).height for lang in languages
    }
    quota = sample_quota(counts, limit)
    rng = np.random.default_rng([seed, layer])
    vectors, metas = [], []
    for lang in languages:
        if quota[lang] == 0:
            continue
        keys = acts.lazy(layer, lang, site=site).select(KEYS).collect().sort(KEYS)  # the order of `matrix`
        chosen = keys[np.sort(rng.choice(keys.height, min(quota[lang], keys.height), replace=False))]
        vectors.append(sampled_vectors(acts, layer, lang, site, chosen))
        metas.append(chosen)
    about = {"total": sum(counts.values()), "shown": sum(len(v) for v in vectors), "method": "PCA"}
    if about["shown"] < 3:
        return about | {"x": [], "y": [], "language": [], "word": [], "concept": {name: [] for name in views}}
    x = np.concatenate(vectors)
    if points.l2_normalize:
        x = l2_normalize(x)
    projected = pca_reduce(x, 2, fit_max_points=x.shape[0], seed=seed)
    meta = pl.concat(metas).with_row_index("point")
    return (
        about
        | grid_coordinates(projected.x)
        | {
            "explained_variance": explained(projected.explained_variance),
            "language": [languages.index(lang) for lang in meta["language"].to_list()],
            "word": point_words(meta, frame, index),
            "concept": {name: point_concepts(meta, frame, view) for name, view in views.items()},
        }
    )


def sampled_vectors(acts: Activations, layer: int, language: str, site: str, chosen: pl.DataFrame) -> np.ndarray:
    """The vectors (len(chosen), hidden) float32 of the occurrences ``chosen`` (KEYS), in its order."""
    ids = chosen["sentence_id"].unique().to_list()
    rows = acts.lazy(layer, language, site=site).filter(pl.col("sentence_id").is_in(ids)).select(*KEYS, "vector")
    found = chosen.lazy().with_row_index("_order").join(rows, on=KEYS, how="inner").sort("_order").collect()
    if found.height != chosen.height:
        raise XlrayError(
            f"{acts.folder}: layer {layer}, {language}: {chosen.height - found.height} sampled occurrences not in the"
            " shards; the activations changed under the run: re-run it"
        )
    return np.asarray(found["vector"].to_numpy(), dtype=np.float32).reshape(found.height, -1)


def explained(share: float | None) -> float | None:
    """The PCA's share of variance, rounded; None where it is undefined (points without variance)."""
    return round(share, 4) if share is not None and math.isfinite(share) else None


def grid_coordinates(xy: np.ndarray) -> dict[str, list[int]]:
    """Points (n, 2) scaled into 0..GRID per axis (y up, as a plot reads)."""
    low, high = xy.min(axis=0), xy.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    grid = np.rint((xy - low) / span * GRID).astype(int)
    return {"x": grid[:, 0].tolist(), "y": grid[:, 1].tolist()}


def point_words(meta: pl.DataFrame, frame: pl.DataFrame, index: Mapping[str, Mapping[str, int]]) -> list[int]:
    """The vocabulary index of each sampled point's word (``meta``'s order), as the assignments name it."""
    words = frame.filter(pl.col("view") == "joint").select(*KEYS, "word")
    joined = meta.join(words, on=KEYS, how="left").sort("point")
    return [index[lang].get(word, -1) for lang, word in joined.select("language", "word").iter_rows()]


def point_concepts(meta: pl.DataFrame, frame: pl.DataFrame, view: str) -> list[int]:
    """The concept of each sampled point (``meta``'s order) in ``view``; -1 for noise or a point not in the view."""
    labels = frame.filter(pl.col("view") == view).select(*KEYS, "cluster")
    joined = meta.join(labels, on=KEYS, how="left").sort("point")
    return joined["cluster"].fill_null(-1).to_list()
