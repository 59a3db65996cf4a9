"""Clustering methods behind one call: a string-keyed registry, one strict config per method, lazy imports.

``fast-hdbscan`` is the default (multicore, near-linear on ~64-d input); ``hdbscan`` is the classic package, kept
as the exact reference; ``kmeans`` and ``agglomerative`` (Ward) reproduce the papers' own setups. Every method
returns labels with noise = -1, renumbered 0, 1, 2, ... in order of first appearance, so that equal partitions
give equal label arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from xlray.configs import Strict
from xlray.errors import XlrayError

# fast_hdbscan uses an exact KD-tree Borůvka MST up to this dimension and a pynndescent k-NN graph above it.
KDTREE_MAX_DIM = 30


class HdbscanKnobs(Strict):
    """The HDBSCAN settings both backends share."""

    min_cluster_size: int = Field(10, ge=2, description="Smallest group reported as a cluster")
    min_samples: int | None = Field(None, ge=1, description="Density neighbourhood; None = min_cluster_size")
    cluster_selection_method: Literal["eom", "leaf"] = Field(
        "eom", description="eom: fewer, larger clusters; leaf: many small homogeneous ones"
    )
    cluster_selection_epsilon: float = Field(0.0, ge=0, description="Merge clusters closer than this")
    allow_single_cluster: bool = False


class FastHdbscanConfig(HdbscanKnobs):
    """fast_hdbscan: exact KD-tree Borůvka MST up to 30-d, approximate pynndescent k-NN graph above (seeded)."""

    method: Literal["fast-hdbscan"] = "fast-hdbscan"
    # Other metrics need pynndescent, which is not a dependency; L2-normalised points make euclidean ~ cosine.
    metric: Literal["euclidean"] = "euclidean"


class HdbscanConfig(HdbscanKnobs):
    """The classic hdbscan package with an exact minimum spanning tree: the reference implementation."""

    method: Literal["hdbscan"] = "hdbscan"
    metric: Literal["euclidean", "manhattan"] = "euclidean"
    n_jobs: int = Field(1, ge=1, description="Threads for core distances")


class KMeansConfig(Strict):
    """K-means with k-means++ seeding (Mousi et al.); every point gets a cluster, so no noise."""

    method: Literal["kmeans"] = "kmeans"
    n_clusters: int = Field(ge=1)
    n_init: int = Field(1, ge=1, description="Restarts; the best inertia wins")
    max_iter: int = Field(300, ge=1)


class AgglomerativeConfig(Strict):
    """Ward agglomerative clustering (ConceptX); memory grows with the square of the number of points."""

    method: Literal["agglomerative"] = "agglomerative"
    n_clusters: int = Field(ge=1)


ClusterConfig = Annotated[
    FastHdbscanConfig | HdbscanConfig | KMeansConfig | AgglomerativeConfig, Field(discriminator="method")
]


@dataclass(frozen=True)
class Clustering:
    """Labels per point (noise = -1), the number of clusters and the noise fraction."""

    labels: np.ndarray
    n_clusters: int
    noise_fraction: float


def cluster(x: np.ndarray, cfg: ClusterConfig, *, seed: int = 0) -> Clustering:
    """Cluster points (n, d) with the configured method; deterministic for a given seed."""
    if x.ndim != 2 or x.shape[0] == 0:
        raise XlrayError(f"clustering.{cfg.method}: empty or non-2-D point set (shape {x.shape})")
    needed = getattr(cfg, "n_clusters", 1)
    if x.shape[0] < needed:
        raise XlrayError(f"clustering.n_clusters: {needed} clusters asked for only {x.shape[0]} points")
    labels = canonical_labels(METHODS[cfg.method](np.ascontiguousarray(x, dtype=np.float32), cfg, seed))
    n_clusters = int(labels.max()) + 1 if labels.size else 0
    return Clustering(labels, n_clusters, float(np.mean(labels < 0)))


def canonical_labels(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters by first appearance (noise stays -1), as int64."""
    labels = np.asarray(labels, dtype=np.int64)
    out = np.full(labels.shape, -1, dtype=np.int64)
    kept = labels >= 0
    uniq, first, inverse = np.unique(labels[kept], return_index=True, return_inverse=True)
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(uniq))
    out[kept] = rank[inverse]
    return out


def run_fast_hdbscan(x: np.ndarray, cfg: FastHdbscanConfig, seed: int) -> np.ndarray:
    import fast_hdbscan

    model = fast_hdbscan.HDBSCAN(
        min_cluster_size=cfg.min_cluster_size,
        min_samples=cfg.min_samples,
        cluster_selection_method=cfg.cluster_selection_method,
        cluster_selection_epsilon=float(cfg.cluster_selection_epsilon),
        allow_single_cluster=cfg.allow_single_cluster,
        metric=cfg.metric,
        reproducible=True,
    )
    if x.shape[1] <= KDTREE_MAX_DIM:
        return model.fit(x).labels_
    # Above 30 dimensions fast_hdbscan builds a pynndescent k-NN graph without passing a random_state, so
    # pynndescent draws from NumPy's global generator: seed it for this call and put the old state back.
    try:
        import pynndescent  # noqa: F401
    except ImportError:
        raise XlrayError(
            f"clustering.fast-hdbscan: {x.shape[1]}-d points need pynndescent (pip install pynndescent);"
            f" or set points.pca_dim <= {KDTREE_MAX_DIM}"
        ) from None
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        return model.fit(x).labels_
    finally:
        np.random.set_state(state)


def run_hdbscan(x: np.ndarray, cfg: HdbscanConfig, seed: int) -> np.ndarray:
    import hdbscan

    model = hdbscan.HDBSCAN(
        min_cluster_size=cfg.min_cluster_size,
        min_samples=cfg.min_samples,
        cluster_selection_method=cfg.cluster_selection_method,
        cluster_selection_epsilon=float(cfg.cluster_selection_epsilon),
        allow_single_cluster=cfg.allow_single_cluster,
        metric=cfg.metric,
        approx_min_span_tree=False,
        core_dist_n_jobs=cfg.n_jobs,
    )
    return model.fit(x).labels_


def run_kmeans(x: np.ndarray, cfg: KMeansConfig, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    model = KMeans(cfg.n_clusters, init="k-means++", n_init=cfg.n_init, max_iter=cfg.max_iter, random_state=seed)
    return model.fit_predict(x)


def run_agglomerative(x: np.ndarray, cfg: AgglomerativeConfig, seed: int) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering

    return AgglomerativeClustering(n_clusters=cfg.n_clusters, linkage="ward").fit_predict(x)


METHODS: dict[str, Callable[[np.ndarray, ClusterConfig, int], np.ndarray]] = {
    "fast-hdbscan": run_fast_hdbscan,
    "hdbscan": run_hdbscan,
    "kmeans": run_kmeans,
    "agglomerative": run_agglomerative,
}
