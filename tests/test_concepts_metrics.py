"""CALIGN and COLAP on hand-built clusters with known exact values."""

from __future__ import annotations

import numpy as np
import pytest

from xlray.concepts.metrics import CalignConfig, ColapConfig, calign, colap, word_clusters

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
