"""The findings check's dictionary: precision and recall on hand-made dictionaries, the rotated control, and real
eflomal on the world's parallel text against its gold dictionary."""

import numpy as np
import polars as pl
import pytest

from xlray.findings.dictionary import gold_entries, language_scores, rotated, score_dictionary

GOLD = pl.DataFrame({"translation": ["dog", "cat", "red"], "word": ["sobaka", "koshka", "krasny"]})


def dictionary(rows):
    return pl.DataFrame(rows, schema=["src", "tgt", "count", "prob"], orient="row")


def test_precision_and_recall_of_the_top_translations():
    d = dictionary([("dog", "sobaka", 9, 0.9), ("dog", "koshka", 1, 0.1), ("cat", "sobaka", 5, 0.6),
                    ("cat", "koshka", 3, 0.4), (".", ".", 20, 1.0)])  # fmt: skip
    score = score_dictionary(d, GOLD)
    # dog right, cat wrong (its top is sobaka), red has no translation; "." is not in the gold so is not judged
    assert score.hits.tolist() == [1.0, 0.0, 0.0]
    assert score.recall == pytest.approx(1 / 3) and score.precision == pytest.approx(1 / 2) and score.predicted == 2
    assert score_dictionary(dictionary([]), GOLD).recall == 0.0


def test_the_gold_keeps_only_entries_attested_on_both_sides():
    gold = pl.DataFrame({"language": ["xl", "xl", "xc"], "word": ["a", "b", "c"], "translation": ["A", "B", "C"],
                         "concept": ["k:0", "k:1", "k:0"]})  # fmt: skip
    kept = gold_entries(gold, "xl", {"A", "B"}, {"a"})
    assert kept.to_dicts() == [{"translation": "A", "word": "a"}]


def test_rotation_pairs_no_line_with_its_own(tmp_path):
    src = tmp_path / "t.txt"
    src.write_text("".join(f"line {k}\n" for k in range(7)), encoding="utf-8")
    lines = rotated(src, tmp_path / "r.txt").read_text(encoding="utf-8").splitlines()
    assert sorted(lines) == sorted(src.read_text(encoding="utf-8").splitlines())
    assert all(a != b for a, b in zip(lines, src.read_text(encoding="utf-8").splitlines(), strict=True))


def test_eflomal_recovers_the_gold_dictionary_and_the_control_does_not(assets, tmp_path):
    """Measured on the default world: recall 0.95 (xl) to 1.0, precision 1.0; the rotated control 0-0.09."""
    real, control = language_scores(assets / "world", "en", "xc", tmp_path, None, n_samplers=3)
    assert len(real.hits) >= 70 and real.recall >= 0.9 and real.precision >= 0.9
    assert control.recall <= 0.15 and control.precision <= 0.15
    assert np.array_equal(real.hits.shape, control.hits.shape)  # the same gold entries, so they pair up
