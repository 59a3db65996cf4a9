"""CALIGN and COLAP on hand-built clusters with known exact values."""

from __future__ import annotations

import numpy as np
import pytest

from xlray.concepts.metrics import (
    CalignConfig,
    ClusterMatch,
    ColapConfig,
    calign,
    calign_matches,
    colap,
    colap_clusters,
    word_clusters,
)

F = frozenset
# Source (English) and target clusters; 'tiro' (bird) is in no target cluster.
SRC = {0: F({"cat", "dog", "bird"}), 1: F({"red", "blue"}), 2: F({"run"})}
TGT = {0: F({"mek", "dul"}), 1: F({"roz", "blu", "verd"}), 2: F({"kur"})}
D = {"cat": ["mek"], "dog": ["dul"], "bird": ["tiro"], "red": ["roz"], "blue": ["blu"], "run": ["kur"]}


def test_calign_exact_with_untranslatable_word_and_tau_equality():
    # S0: m=2 of 3 (bird's translation is in no cluster) > 0.5; S1: 2/2; S2: |S|=1 is not > tau=1.
    res = calign(SRC, TGT, D, CalignConfig(theta=0.5, tau=1, rho=0.0))
    assert res.value == pytest.approx(2 / 3)
    assert res.reason is None
    assert res.counts == {
        "source_clusters": 3,
        "target_clusters": 3,
        "aligned_clusters": 2,
        "covered_source_words": 5,
    }
    assert calign(SRC, TGT, D, CalignConfig(theta=0.5, tau=0, rho=0.0)).value == 1.0


def test_calign_matches_are_the_details_behind_the_value():
    cfg = CalignConfig(theta=0.5, tau=1, rho=0.0)
    matches = calign_matches(SRC, TGT, D, cfg)
    assert matches == {
        # bird's translation 'tiro' is in no target cluster: m(S0, T0) = 2 of |S0| = 3
        0: [ClusterMatch(0, 2, 3, 2, True, (("cat", "mek"), ("dog", "dul")))],
        1: [ClusterMatch(1, 2, 2, 3, True, (("blue", "blu"), ("red", "roz")))],
        2: [ClusterMatch(2, 1, 1, 1, False, (("run", "kur"),))],  # |S| = 1 is not > tau = 1
    }
    # A word that translates into two clusters counts in both; matches run by m, then target id.
    tgt = {0: F({"mek"}), 1: F({"mek", "dul"})}
    found = calign_matches({0: F({"cat", "dog", "x"})}, tgt, D, CalignConfig(theta=0.3))[0]
    assert [(m.target, m.m, m.aligned) for m in found] == [(1, 2, True), (0, 1, True)]
    assert found[0].pairs == (("cat", "mek"), ("dog", "dul"))


@pytest.mark.parametrize("theta", [0.0, 0.3, 0.5, 0.66, 0.9])
@pytest.mark.parametrize("tau", [0, 1, 2])
@pytest.mark.parametrize("rho", [0.0, 0.7, 1.0])
def test_calign_value_is_the_share_of_source_clusters_with_an_aligned_match(theta, tau, rho):
    rng = np.random.default_rng(int(100 * theta) + 10 * tau + int(10 * rho))
    src_words, tgt_words = [f"s{i}" for i in range(60)], [f"t{i}" for i in range(60)]
    src = word_clusters(src_words, rng.integers(-1, 12, 60))
    tgt = word_clusters(tgt_words, rng.integers(-1, 9, 60))
    d = {w: [f"t{j}" for j in rng.integers(0, 70, 2)] for w in src_words}
    for top_n in (1, 2):
        cfg = CalignConfig(top_n=top_n, theta=theta, tau=tau, rho=rho)
        matches = calign_matches(src, tgt, d, cfg)
        assert sorted(matches) == sorted(src)
        share = sum(any(m.aligned for m in found) for found in matches.values()) / len(src)
        assert calign(src, tgt, d, cfg).value == pytest.approx(share)
        for label, found in matches.items():
            for m in found:  # the rule, and m counting the distinct source words of the pairs
                assert m.m == len({w for w, _ in m.pairs}) and {w for w, _ in m.pairs} <= src[label]
                assert all(t in tgt[m.target] and t in d[w][:top_n] for w, t in m.pairs)
                assert m.aligned == (
                    m.m / len(src[label]) > theta and len(src[label]) > tau and m.size_s / m.size_t > rho
                )


def test_calign_theta_is_strict():
    src = {0: F({"cat", "bird"})}  # m/|S| = 1/2 exactly
    assert calign(src, TGT, D, CalignConfig(theta=0.5, tau=0)).value == 0.0
    assert calign(src, TGT, D, CalignConfig(theta=0.49, tau=0)).value == 1.0


def test_calign_rho_is_strict():
    src = {0: F({"red", "blue"})}
    tgt = {0: F({"roz", "blu"})}  # |S|/|T| = 1 exactly
    assert calign(src, tgt, D, CalignConfig(theta=0.5, tau=0, rho=1.0)).value == 0.0
    assert calign(src, tgt, D, CalignConfig(theta=0.5, tau=0, rho=0.99)).value == 1.0
    # |S|/|T| = 2/3 against the three-word target cluster
    assert calign(src, TGT, D, CalignConfig(theta=0.5, tau=0, rho=0.7)).value == 0.0


def test_calign_counts_words_that_hit_the_same_target_cluster_only_once_each():
    # m(S, T) counts source words: 'cat' and 'kitty' both translate into T0, 'x' has no entry.
    src = {0: F({"cat", "kitty", "x", "y"})}
    d = {"cat": ["mek"], "kitty": ["mek", "dul"]}
    assert calign(src, TGT, d, CalignConfig(theta=0.5, tau=0)).value == 0.0  # m = 2 of 4
    assert calign(src, TGT, d, CalignConfig(theta=0.49, tau=0)).value == 1.0


def test_calign_uses_only_top_n_translations():
    src = {0: F({"dog"})}
    d = {"dog": ["hund", "dul"]}
    assert calign(src, TGT, d, CalignConfig(top_n=1, theta=0.5)).value is None  # no overlap at all
    assert calign(src, TGT, d, CalignConfig(top_n=2, theta=0.5)).value == 1.0


def test_calign_one_cluster_each_and_direction():
    src = {0: F({"cat", "dog"})}
    tgt = {0: F({"mek", "dul", "roz"})}
    assert calign(src, tgt, D, CalignConfig(theta=0.5, tau=1)).value == 1.0
    reverse = {"mek": ["cat"], "dul": ["dog"], "roz": ["red"]}
    # tgt -> src: 2 of 3 words land in S, but |T| / |S| = 1.5 is not > rho = 1.5
    assert calign(tgt, src, reverse, CalignConfig(theta=0.5, tau=1, rho=1.5)).value == 0.0
    assert calign(tgt, src, reverse, CalignConfig(theta=0.5, tau=1, rho=1.4)).value == 1.0


def test_calign_cannot_be_computed_gives_none_with_reason():
    cfg = CalignConfig()
    res = calign({}, TGT, D, cfg)
    assert (res.value, res.counts["source_clusters"]) == (None, 0)
    assert "source language has no clusters" in res.reason
    assert "target language has no clusters" in calign(SRC, {}, D, cfg).reason
    res = calign(SRC, TGT, {"cat": ["nothing"]}, cfg)
    assert res.value is None and "no source cluster word has a dictionary translation" in res.reason
    assert res.counts["aligned_clusters"] == 0


def test_word_clusters_drops_noise_and_collects_types():
    words = ["cat", "cat", "dog", "red", "blue", "cat"]
    labels = np.array([0, 0, 0, -1, 1, 1])
    assert word_clusters(words, labels) == {0: F({"cat", "dog"}), 1: F({"blue", "cat"})}
    assert word_clusters(["a"], np.array([-1])) == {}
    with pytest.raises(ValueError, match="2 words but 1 labels"):
        word_clusters(["a", "b"], np.array([0]))


def joint() -> tuple[np.ndarray, np.ndarray]:
    # cluster 0: en 3, xx 1 (75/25); cluster 1: en 2, xx 2; cluster 2: en 4; two noise points
    labels = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, -1, -1]
    langs = ["en", "en", "en", "xx", "en", "xx", "en", "xx", "en", "en", "en", "en", "xx", "en"]
    return np.array(labels), np.array(langs)


def test_colap_exact_and_strict_at_threshold():
    labels, langs = joint()
    res = colap(labels, langs, ("en", "xx"), ColapConfig(tau=25))
    assert res.value == pytest.approx(1 / 3)  # cluster 0's 25 % share is not > 25
    assert res.counts == {"clusters": 3, "occurrences": 14, "noise_occurrences": 2, "overlapping_clusters": 1}
    assert colap(labels, langs, ("en", "xx"), ColapConfig(tau=24.9)).value == pytest.approx(2 / 3)
    assert colap(labels, langs, ("en", "xx"), ColapConfig(tau=50)).value == 0.0  # 50/50 is not > 50
    assert colap(labels, langs, ("en", "xx"), ColapConfig(tau=0)).value == pytest.approx(2 / 3)


def test_colap_clusters_are_the_shares_behind_the_value():
    labels, langs = joint()
    shares = colap_clusters(labels, langs, ("en", "xx"), ColapConfig(tau=24.9))
    assert shares.clusters.tolist() == [0, 1, 2] and shares.sizes.tolist() == [4, 4, 4]
    assert shares.per_language.tolist() == [[3, 1], [2, 2], [4, 0]]
    assert shares.overlap.tolist() == [True, True, False]
    assert colap(labels, langs, ("en", "xx"), ColapConfig(tau=24.9)).value == pytest.approx(shares.overlap.mean())


def test_colap_one_cluster():
    labels = np.array([0, 0, 0, -1])
    langs = np.array(["en", "xx", "xx", "en"])
    assert colap(labels, langs, ("en", "xx"), ColapConfig(tau=30)).value == 1.0
    assert colap(labels, langs, ("en", "xx"), ColapConfig(tau=40)).value == 0.0


def test_colap_cannot_be_computed_gives_none_with_reason():
    langs = np.array(["en", "xx", "en"])
    res = colap(np.array([-1, -1, -1]), langs, ("en", "xx"), ColapConfig())
    assert res.value is None and "all noise" in res.reason and res.counts["clusters"] == 0
    res = colap(np.array([0, 0, 1]), langs, ("en", "yy"), ColapConfig())
    assert res.value is None and "'yy'" in res.reason
    with pytest.raises(ValueError, match="two languages"):
        colap(np.array([0]), np.array(["en"]), ("en", "en"), ColapConfig())
