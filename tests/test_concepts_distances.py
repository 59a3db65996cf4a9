"""Related vs unrelated word distances: exact values on hand-built vectors, planted geometry across layers."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from xlray.concepts.config import DistancesConfig
from xlray.concepts.distances import (
    cosine_distance,
    in_context_pairs,
    layer_distances,
    related_distances,
    sample_unrelated,
    type_mean_pairs,
)
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


def occurrences(rows: list[tuple[str, int, str, list[float]]]) -> tuple[np.ndarray, pl.DataFrame]:
    """(sentence_id, word_index, word, vector) rows -> vectors (n, d) and metadata, in Activations.matrix order."""
    meta = pl.DataFrame(
        {"sentence_id": [r[0] for r in rows], "word_index": [r[1] for r in rows], "word": [r[2] for r in rows]},
        schema={"sentence_id": pl.String, "word_index": pl.Int32, "word": pl.String},
    )
    return np.array([r[3] for r in rows]), meta


def links_frame(rows: list[tuple[str, int, int, str, str]]) -> pl.DataFrame:
    names = ["sentence_id", "src_index", "tgt_index", "src_word", "tgt_word"]
    types = [pl.String, pl.Int32, pl.Int32, pl.String, pl.String]
    return pl.DataFrame(rows, schema=dict(zip(names, types, strict=True)), orient="row")


# Two sentence pairs. 'a' occurs in both, in different contexts (e1, then e3), each time beside its translation
# 'A' (2e1, then 2e3): in context every translation points the source's way, every other target word is orthogonal.
E = np.eye(4)
SRC = occurrences([
    ("p:1", 0, "a", E[0]), ("p:1", 1, "b", E[1]),
    ("p:2", 0, "a", E[2]), ("p:2", 1, "c", E[3]), ("p:2", 2, "7", E[0] + E[1]),
])  # fmt: skip
TGT = occurrences([
    ("p:1", 0, "B", 2 * E[1]), ("p:1", 1, "A", 2 * E[0]),
    ("p:2", 0, "A", 2 * E[2]), ("p:2", 1, "C", 2 * E[3]), ("p:2", 2, "7", E[0] + E[1]),
])  # fmt: skip
LINKS = links_frame([
    ("p:1", 0, 1, "a", "A"), ("p:1", 1, 0, "b", "B"),
    ("p:2", 0, 0, "a", "A"), ("p:2", 1, 1, "c", "C"), ("p:2", 2, 2, "7", "7"),
    ("p:2", 3, 3, "d", "D"),  # 'd' was capped: not in the activations
])  # fmt: skip
KNOWN = {("a", "A"), ("b", "B"), ("c", "C"), ("7", "7"), ("d", "D")}


def test_in_context_pairs_join_occurrences_within_a_sentence_pair():
    pairs, reason = in_context_pairs(SRC[1], TGT[1], LINKS, KNOWN, DistancesConfig(seed=1))
    assert reason is None
    assert pairs.counts == {"candidates": 5, "not_extracted": 1, "pairs": 4, "identical_dropped": 1, "no_partner": 0}
    # source rows 0..3 with the target occurrence of the same sentence pair ('a' in p:2 with p:2's 'A', at cosine 0;
    # p:1's 'A' would be at cosine 1), '7'-'7' dropped
    assert pairs.src_rows.tolist() == [0, 1, 2, 3] and pairs.tgt_rows.tolist() == [1, 0, 2, 3]
    assert pairs.tgt_words.tolist() == ["A", "B", "A", "C"]
    d = related_distances(SRC[0], SRC[1], TGT[0], TGT[1], pairs, bins=1)
    # each translation: cosine 0, l2 |e - 2e| = 1; any unrelated target: cosine 1, l2 |e_i - 2e_j| = sqrt(5)
    assert (d.cosine_related, d.cosine_unrelated, d.l2_related) == (0.0, 1.0, 1.0)
    assert d.l2_unrelated == pytest.approx(np.sqrt(5))
    assert d.metrics()["dist_pairs"] == 4.0 and pairs.metrics()["dist_identical_dropped"] == 1.0
    # The seed decides the partners, so every layer gets the same ones.
    assert np.array_equal(in_context_pairs(SRC[1], TGT[1], LINKS, KNOWN, DistancesConfig(seed=1))[0].partner,
                          pairs.partner)  # fmt: skip


def test_unrelated_partners_avoid_known_translations():
    known = KNOWN | {("a", "B")}  # 'B' also translates 'a': a's partners can only be 'C'
    pairs, _ = in_context_pairs(SRC[1], TGT[1], LINKS, known, DistancesConfig(seed=0))
    for i in (0, 2):  # the two occurrences of 'a'
        assert pairs.tgt_words[pairs.partner[i]] == "C"


def test_identical_strings_dropped_unless_kept():
    kept, _ = in_context_pairs(SRC[1], TGT[1], LINKS, KNOWN, DistancesConfig(keep_identical=True))
    assert kept.counts["identical_dropped"] == 0 and kept.counts["pairs"] == 5
    assert "7" in kept.src_words.tolist()
    d = related_distances(SRC[0], SRC[1], TGT[0], TGT[1], kept, bins=1)
    assert d.cosine_related == pytest.approx(0.0, abs=1e-12)
    assert d.l2_related == pytest.approx((4 * 1.0 + 0.0) / 5)  # '7'-'7' at distance 0
    # Only identical strings: nothing left to compare, and the reason gives the counts.
    only = LINKS.filter(pl.col("src_word") == "7")
    pairs, reason = in_context_pairs(SRC[1], TGT[1], only, KNOWN, DistancesConfig())
    assert pairs.counts["identical_dropped"] == 1 and pairs.counts["pairs"] == 0
    counts = "candidates 1, not_extracted 0, pairs 0, identical_dropped 1, no_partner 0"
    assert reason == f"no related pair with an unrelated partner ({counts})"


def test_links_to_another_word_than_extracted_are_refused():
    changed = LINKS.with_columns(src_word=pl.when(pl.col("src_word") == "b").then(pl.lit("x")).otherwise("src_word"))
    pairs, reason = in_context_pairs(SRC[1], TGT[1], changed, KNOWN, DistancesConfig())
    assert pairs is None and reason.startswith("1 of 5 linked occurrences have another word in the activations")


def test_a_layer_with_other_occurrences_is_an_error():
    pairs, _ = in_context_pairs(SRC[1], TGT[1], LINKS, KNOWN, DistancesConfig())
    x, meta = SRC[0][:4], SRC[1].head(4)
    with pytest.raises(XlrayError, match="this layer's occurrences differ"):
        related_distances(x, meta, TGT[0], TGT[1], pairs, bins=1)


def test_type_mean_pairs_average_occurrences_and_drop_identical_strings():
    translations = {"a": ["A"], "b": ["B"], "c": ["C"], "7": ["7"], "z": ["Z"]}
    pairs, reason = type_mean_pairs(SRC[1], TGT[1], translations, KNOWN, DistancesConfig())
    assert reason is None
    assert pairs.counts == {"candidates": 4, "pairs": 3, "identical_dropped": 1, "no_partner": 0}
    assert pairs.src_words.tolist() == ["a", "b", "c"]  # types sorted; '7' dropped, 'z' absent
    d = related_distances(SRC[0], SRC[1], TGT[0], TGT[1], pairs, bins=1)
    # a's mean (e1+e3)/2 against A's mean (e1+e3): cosine 0, l2 |(e1+e3)/2| = sqrt(0.5); b, c at l2 1
    assert d.cosine_related == pytest.approx(0.0, abs=1e-12)
    assert d.l2_related == pytest.approx((np.sqrt(0.5) + 2) / 3)


def test_sample_unrelated_draws_as_the_pair_by_pair_rule():
    rng = np.random.default_rng(5)
    src = [f"s{k}" for k in rng.integers(0, 8, size=60)]
    tgt = [f"t{k}" for k in rng.integers(0, 6, size=60)]
    related = {(f"s{k}", f"t{k % 6}") for k in range(8)}
    got = sample_unrelated(src, tgt, seed=2, related=related)
    # the reference: the same draws, each checked on its own
    draws, partner, todo = np.random.default_rng(2), np.full(60, -1), np.arange(60)
    for _ in range(20):
        if not todo.size:
            break
        draw = draws.integers(0, 60, size=todo.size)
        ok = np.array([tgt[j] != tgt[i] and (src[i], tgt[j]) not in related for i, j in zip(todo, draw, strict=True)])
        partner[todo[ok]], todo = draw[ok], todo[~ok]
    assert got.tolist() == partner.tolist() and (got >= 0).all()
