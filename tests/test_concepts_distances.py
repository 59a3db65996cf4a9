"""Related vs unrelated word distances: exact values on hand-built vectors, planted geometry across layers."""

from __future__ import annotations

import numpy as np
import pytest

from xlray.concepts.distances import cosine_distance, layer_distances, sample_unrelated
from xlray.errors import XlrayError


def test_layer_distances_exact_on_hand_built_pairs():
    src = np.array([[1.0, 0.0], [0.0, 2.0]])
    tgt = np.array([[2.0, 0.0], [0.0, 1.0]])  # each translation points the same way as its source
    res = layer_distances(src, tgt, np.array([1, 0]), bins=2)
    assert (res.cosine_related, res.cosine_unrelated) == (0.0, 1.0)
    assert res.l2_related == 1.0
    assert res.l2_unrelated == pytest.approx((np.sqrt(2) + np.sqrt(8)) / 2)
    np.testing.assert_allclose(res.cosine_diff, [1.0, 1.0])
    np.testing.assert_allclose(res.l2_diff, [np.sqrt(2) - 1, np.sqrt(8) - 1])
    assert res.cosine_hist.counts.tolist() == [0, 2] and res.cosine_hist.edges.tolist() == [0.5, 1.0, 1.5]
    assert res.l2_hist.counts.tolist() == [1, 1]
    assert res.metrics()["dist_pairs"] == 2.0
    assert res.metrics()["dist_cosine_diff_mean"] == 1.0


def test_pairs_without_a_partner_are_left_out():
    src = np.array([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    tgt = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 1.0]])
    res = layer_distances(src, tgt, np.array([1, -1, -1]))
    assert res.cosine_diff.tolist() == [1.0] and res.l2_related == 0.0
    with pytest.raises(XlrayError, match="no pair has an unrelated partner"):
        layer_distances(src, tgt, np.array([-1, -1, -1]))


def test_cosine_distance_of_a_zero_vector_is_one():
    np.testing.assert_allclose(cosine_distance(np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([[1.0, 0.0]] * 2)),
                               [1.0, 1 - np.sqrt(0.5)])  # fmt: skip


def test_sample_unrelated_avoids_the_translation_and_known_pairs():
    src = ["cat", "dog", "cat", "bird", "sun", "dog"]
    tgt = ["mek", "dul", "mek", "tiro", "sol", "dul"]
    partner = sample_unrelated(src, tgt, seed=3)
    assert np.array_equal(partner, sample_unrelated(src, tgt, seed=3))
    assert (partner >= 0).all()
    for i, j in enumerate(partner):
        assert tgt[j] != tgt[i] and (src[i], tgt[j]) not in set(zip(src, tgt, strict=True))
    # every candidate is a translation of 'cat': no partner can be found
    known = {("cat", "mek"), ("cat", "gato")}
    assert sample_unrelated(["cat", "cat"], ["mek", "gato"], related=known).tolist() == [-1, -1]
    with pytest.raises(XlrayError, match="2 source words but 1 target words"):
        sample_unrelated(["a", "b"], ["x"])


def test_planted_geometry_separates_related_pairs_only_in_the_aligned_layer():
    rng = np.random.default_rng(0)
    n, dim = 400, 32
    words = [f"w{i % 100}" for i in range(n)]
    src0, tgt0 = rng.normal(size=(n, dim)), rng.normal(size=(n, dim))  # layer 0: translations unrelated
    src1 = rng.normal(size=(n, dim))
    tgt1 = src1 + rng.normal(scale=0.1, size=(n, dim))  # layer 1: translations nearly identical
    partner = sample_unrelated(words, [w.upper() for w in words], seed=0)  # the same partners at every layer
    out = {layer: layer_distances(s, t, partner) for layer, (s, t) in enumerate([(src0, tgt0), (src1, tgt1)])}
    assert abs(out[0].metrics()["dist_cosine_diff_mean"]) < 0.05
    assert abs(out[0].metrics()["dist_l2_diff_mean"]) < 0.3
    assert out[1].cosine_related < 0.01 and out[1].cosine_unrelated == pytest.approx(1.0, abs=0.05)
    assert (out[1].cosine_diff > 0).all() and (out[1].l2_diff > 0).all()
    assert out[1].cosine_hist.counts.sum() == n
