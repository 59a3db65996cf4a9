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

# Up to this dimension the exact KD-tree Borůvka MST is fast; above it (fast_hdbscan's own switch) it degrades.
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
    """fast_hdbscan (multicore numba): exact KD-tree MST up to 30-d; above, by default, a seeded approximate one."""

    method: Literal["fast-hdbscan"] = "fast-hdbscan"
    # L2-normalised points make euclidean ~ cosine, so one metric is enough.
    metric: Literal["euclidean"] = "euclidean"
    neighbors: Literal["approximate", "exact"] = Field(
        "approximate",
        description=(
            "approximate: above 30-d, a pynndescent k-NN graph (seeded) and the minimum spanning tree of its"
            " mutual-reachability edges; near-linear in the number of points (1M x 64-d in 60-76 s on 2 cores,"
            " README Performance). exact: the KD-tree Borůvka MST at every dimension, the true HDBSCAN tree, but"
            " KD-trees degrade with dimension (at 64-d time grows as N^1.9: 83 s for 100k). Up to 30-d both use"
            " the exact KD-tree"
        ),
    )
    knn_k: int | None = Field(
        None,
        ge=1,
        description=(
            "approximate only: neighbours per point in the k-NN graph (at least min_samples); None = 2 x"
            " min_samples. The tree only sees edges of this graph: min_samples alone agreed with the exact tree"
            " at ARI 0.55-0.71 on real activations, 2 x at 0.97-0.99, 3 x (fast_hdbscan's default) at 0.997-0.999"
            " but ~2x slower; the time grows with knn_k"
        ),
    )


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


def memory_bytes(n: int, d: int, cfg: ClusterConfig) -> int:
    """An upper estimate of the memory that clustering ``n`` float32 points of ``d`` dimensions takes beyond the
    points themselves, for a Ray task's memory request.

    Calibrated on fast-hdbscan at 1M x 64-d (2.77 GB peak with the interpreter, README Performance): the k-NN
    graph's heaps, its float64 copy and the edges sorted for the tree take ~48 bytes per neighbour slot, the random
    projection forest ~250 bytes per point. The KD-tree Borůvka path keeps a tree copy of the points and
    min_samples neighbours per point; classic hdbscan works in float64; Ward (scipy) holds the condensed distance
    matrix, n (n - 1) / 2 float64 values: quadratic in n.
    """
    points = n * d * 4
    if isinstance(cfg, FastHdbscanConfig):
        min_samples = cfg.min_samples or cfg.min_cluster_size
        if cfg.neighbors == "approximate" and d > KDTREE_MAX_DIM:
            k = max(cfg.knn_k or 2 * min_samples, min_samples)
            return n * (48 * k + 250) + points
        return n * (24 * min_samples + 200) + 2 * points
    if isinstance(cfg, HdbscanConfig):
        min_samples = cfg.min_samples or cfg.min_cluster_size
        return n * (24 * min_samples + 300) + 4 * points
    if isinstance(cfg, KMeansConfig):
        return n * 16 + points + cfg.n_clusters * d * 64  # labels, distances to the centres in chunks
    return 4 * n * (n - 1) + 2 * n * d * 8  # Ward: pdist (float64) and a float64 copy of the points


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
    from fast_hdbscan.hdbscan import clusters_from_spanning_tree

    if x.shape[0] < 2:
        return np.full(x.shape[0], -1)
    tree = spanning_tree(x, cfg.min_samples or cfg.min_cluster_size, cfg, seed)
    return clusters_from_spanning_tree(
        tree,
        min_cluster_size=cfg.min_cluster_size,
        cluster_selection_method=cfg.cluster_selection_method,
        allow_single_cluster=cfg.allow_single_cluster,
        cluster_selection_epsilon=float(cfg.cluster_selection_epsilon),
    )[0]


def spanning_tree(x: np.ndarray, min_samples: int, cfg: FastHdbscanConfig, seed: int) -> np.ndarray:
    """Minimum spanning tree (n - 1, 3) of the mutual-reachability graph: [from, to, distance] rows.

    fast_hdbscan's ``HDBSCAN`` class offers no way to seed its k-NN graph or to keep the exact tree above 30-d,
    so this calls the module functions it is built from (fast_hdbscan 0.3.4).
    """
    if cfg.neighbors == "approximate" and x.shape[1] > KDTREE_MAX_DIM:
        try:
            from fast_hdbscan.nndescent import compute_mst_from_knn_graph
        except ImportError:
            raise XlrayError(
                f"clustering.fast-hdbscan: {x.shape[1]}-d points need pynndescent and fast_hdbscan >= 0.3"
                " (pip install -U fast_hdbscan pynndescent); or set clustering.neighbors: exact"
            ) from None
        # Unconnected pieces of the k-NN graph are joined by infinite edges: they stay apart, as separate trees.
        k = max(cfg.knn_k or 2 * min_samples, min_samples)
        return compute_mst_from_knn_graph(x, min_samples, knn_k=k, random_state=seed)[0]
    import numba
    from fast_hdbscan.boruvka import parallel_boruvka
    from fast_hdbscan.numba_kdtree import build_kdtree

    no_weights = np.empty(1, dtype=np.float32)
    return parallel_boruvka(
        build_kdtree(x), numba.get_num_threads(), min_samples=min_samples, sample_weights=no_weights, reproducible=True
    )[0]


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
