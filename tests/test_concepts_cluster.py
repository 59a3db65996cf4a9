"""Clustering methods recover planted concepts; configs are strict; labels are canonical and deterministic."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from xlray.concepts.cluster import (
    AgglomerativeConfig,
    ClusterConfig,
    FastHdbscanConfig,
    HdbscanConfig,
    KMeansConfig,
    canonical_labels,
    cluster,
)
from xlray.configs import Strict, validate
from xlray.errors import XlrayError


class Holder(Strict):
    clustering: ClusterConfig = FastHdbscanConfig()


def planted(n_per: int = 120, k: int = 5, dim: int = 16, noise: int = 0, seed: int = 0):
    """k gaussian concepts (spread 0.3) around centres ~4 apart, plus uniform background points labelled -1."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(k, dim))
    x = np.concatenate([c + rng.normal(scale=0.3, size=(n_per, dim)) for c in centres])
    y = np.repeat(np.arange(k), n_per)
    if noise:
        lo, hi = x.min(axis=0), x.max(axis=0)
        x = np.concatenate([x, rng.uniform(lo, hi, size=(noise, dim))])
        y = np.concatenate([y, np.full(noise, -1)])
    order = rng.permutation(len(y))
    return x[order].astype(np.float32), y[order]


@pytest.mark.parametrize(
    "cfg",
    [
        FastHdbscanConfig(min_cluster_size=20),
        HdbscanConfig(min_cluster_size=20),
        KMeansConfig(n_clusters=5),
        AgglomerativeConfig(n_clusters=5),
    ],
    ids=lambda c: c.method,
)
def test_planted_concepts_are_recovered(cfg):
    x, y = planted()
    res = cluster(x, cfg, seed=0)
    assert res.n_clusters == 5
    assert res.noise_fraction == 0.0
    assert adjusted_rand_score(y, res.labels) == 1.0
    assert np.array_equal(cluster(x, cfg, seed=0).labels, res.labels)


def test_hdbscan_backends_mark_background_as_noise_and_agree():
    x, y = planted(noise=60)
    fast = cluster(x, FastHdbscanConfig(min_cluster_size=20))
    exact = cluster(x, HdbscanConfig(min_cluster_size=20))
    background = y < 0
    for res in (fast, exact):
        assert res.n_clusters == 5
        assert (res.labels[background] < 0).mean() >= 0.8  # 49 of 60 here; the rest sit at concept edges
        assert (res.labels[~background] < 0).sum() == 0
        assert res.noise_fraction == pytest.approx(np.mean(res.labels < 0))
        assert adjusted_rand_score(y[~background], res.labels[~background]) == 1.0
    assert adjusted_rand_score(fast.labels, exact.labels) >= 0.99  # 2 background points differ here


def test_fast_and_classic_hdbscan_agree_on_overlapping_concepts():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(loc=c, scale=1.0, size=(150, 8)) for c in (0.0, 2.5, 5.0)]).astype(np.float32)
    fast = cluster(x, FastHdbscanConfig(min_cluster_size=15)).labels
    exact = cluster(x, HdbscanConfig(min_cluster_size=15)).labels
    assert adjusted_rand_score(fast, exact) >= 0.9


def test_kmeans_with_more_clusters_than_concepts_is_deterministic_and_uses_all():
    x, _ = planted(k=3, n_per=40)
    a = cluster(x, KMeansConfig(n_clusters=6), seed=0).labels
    assert np.array_equal(a, cluster(x, KMeansConfig(n_clusters=6), seed=0).labels)
    assert set(np.unique(a)) == set(range(6))


def test_canonical_labels_number_by_first_appearance():
    assert canonical_labels(np.array([7, 7, -1, 3, 7, 5, -1, 3])).tolist() == [0, 0, -1, 1, 0, 2, -1, 1]
    assert canonical_labels(np.array([-1, -1])).tolist() == [-1, -1]


def test_all_noise_reports_zero_clusters():
    x = np.random.default_rng(0).uniform(size=(30, 4)).astype(np.float32)
    res = cluster(x, HdbscanConfig(min_cluster_size=25))
    assert (res.n_clusters, res.noise_fraction) == (0, 1.0)


def test_bad_point_sets_are_user_errors():
    with pytest.raises(XlrayError, match="empty"):
        cluster(np.zeros((0, 4), dtype=np.float32), FastHdbscanConfig())
    with pytest.raises(XlrayError, match="clustering.n_clusters: 5 clusters asked for only 3 points"):
        cluster(np.zeros((3, 2), dtype=np.float32), KMeansConfig(n_clusters=5))


def test_cluster_config_is_a_strict_discriminated_union():
    assert Holder().clustering.method == "fast-hdbscan"
    cfg = validate(Holder, {"clustering": {"method": "kmeans", "n_clusters": 40}}, "c.yaml").clustering
    assert isinstance(cfg, KMeansConfig) and cfg.n_clusters == 40
    with pytest.raises(XlrayError, match=r"c.yaml: clustering.kmeans.n_clusters: Field required"):
        validate(Holder, {"clustering": {"method": "kmeans"}}, "c.yaml")
    with pytest.raises(XlrayError, match=r"clustering.hdbscan.min_cluster_sise: unknown field"):
        validate(Holder, {"clustering": {"method": "hdbscan", "min_cluster_sise": 5}}, "c.yaml")
    with pytest.raises(XlrayError, match=r"clustering: .*'fast-hdbscan'"):
        validate(Holder, {"clustering": {"method": "dbscan"}}, "c.yaml")
    with pytest.raises(XlrayError, match=r"clustering.fast-hdbscan.metric"):
        validate(Holder, {"clustering": {"method": "fast-hdbscan", "metric": "cosine"}}, "c.yaml")


def test_fast_hdbscan_approximate_graph_is_seeded_and_leaves_numpy_state_alone():
    # Above 30-d the default path builds a pynndescent k-NN graph (randomised): the seed fixes it, whatever the
    # number of numba threads, and NumPy's global generator is neither used nor changed.
    import numba

    x, y = planted(n_per=400, k=8, dim=64, noise=200, seed=2)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = cluster(x, FastHdbscanConfig(min_cluster_size=20), seed=7)
    assert np.array_equal(np.random.get_state()[1], before)
    assert a.n_clusters == 8
    assert adjusted_rand_score(y[y >= 0], a.labels[y >= 0]) == 1.0
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        b = cluster(x, FastHdbscanConfig(min_cluster_size=20), seed=7)
    finally:
        numba.set_num_threads(threads)
    assert np.array_equal(b.labels, a.labels)


def test_fast_hdbscan_approximate_and_exact_trees_agree_above_30_dimensions():
    # Overlapping 64-d concepts and a uniform background, so that noise and cluster edges are not trivial.
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=0.6, size=(5, 64))
    x = np.concatenate([c + rng.normal(scale=0.5, size=(300, 64)) for c in centres])
    y = np.repeat(np.arange(5), 300)
    x = np.concatenate([x, rng.uniform(x.min(axis=0), x.max(axis=0), size=(150, 64))]).astype(np.float32)
    y = np.concatenate([y, np.full(150, -1)])
    approx = cluster(x, FastHdbscanConfig(min_cluster_size=15), seed=0)
    exact = cluster(x, FastHdbscanConfig(min_cluster_size=15, neighbors="exact"), seed=0)
    classic = cluster(x, HdbscanConfig(min_cluster_size=15))
    assert approx.n_clusters == exact.n_clusters == classic.n_clusters == 5
    for res in (approx, exact):
        assert adjusted_rand_score(y[y >= 0], res.labels[y >= 0]) >= 0.95
        assert (res.labels[y < 0] < 0).mean() >= 0.9
    assert adjusted_rand_score(approx.labels, exact.labels) >= 0.95
    assert adjusted_rand_score(exact.labels, classic.labels) >= 0.95


def test_fast_hdbscan_neighbors_setting_picks_the_spanning_tree(monkeypatch):
    import fast_hdbscan.nndescent

    calls = []

    def no_graph(x, min_samples, knn_k, random_state):
        calls.append((min_samples, knn_k, random_state))
        raise RuntimeError("k-NN graph path taken")

    monkeypatch.setattr(fast_hdbscan.nndescent, "compute_mst_from_knn_graph", no_graph)
    x, y = planted(n_per=60, k=3, dim=40)
    assert adjusted_rand_score(y, cluster(x, FastHdbscanConfig(min_cluster_size=10, neighbors="exact")).labels) == 1
    assert adjusted_rand_score(y, cluster(x[:, :30], FastHdbscanConfig(min_cluster_size=10)).labels) == 1
    assert calls == []
    for knn_k in (None, 25, 5):
        with pytest.raises(RuntimeError, match="k-NN graph path taken"):
            cluster(x, FastHdbscanConfig(min_cluster_size=10, knn_k=knn_k), seed=3)
    assert calls == [(10, 20, 3), (10, 25, 3), (10, 10, 3)]  # default 2 x min_samples, never below min_samples
    with pytest.raises(XlrayError, match=r"clustering.fast-hdbscan.neighbors"):
        validate(Holder, {"clustering": {"method": "fast-hdbscan", "neighbors": "approx"}}, "c.yaml")
    with pytest.raises(XlrayError, match=r"clustering.fast-hdbscan.knn_k"):
        validate(Holder, {"clustering": {"method": "fast-hdbscan", "knn_k": 0}}, "c.yaml")
