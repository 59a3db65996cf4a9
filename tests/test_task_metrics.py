"""Task metrics against values counted by hand on small fixtures."""

from __future__ import annotations

import numpy as np
import pytest

from xlray.tasks.metrics import (
    accuracy,
    entities,
    entity_f1,
    normalize_answer,
    retrieval_accuracy,
    squad_em_f1,
    token_f1,
)


def test_accuracy_per_example():
    result = accuracy(
        ["entailment", "neutral", "contradiction", "entailment"],
        ["entailment", "contradiction", "contradiction", "neutral"],
    )
    assert result.score == 0.5
    assert result.per_example.tolist() == [1.0, 0.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="got 2 and 1"):
        accuracy(["a", "b"], ["a"])


@pytest.mark.parametrize(
    ("tags", "spans"),
    [
        (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 1), ("LOC", 3, 3)]),
        (["O", "I-ORG", "I-ORG"], [("ORG", 1, 2)]),  # I- without B- starts an entity
        (["B-PER", "B-PER"], [("PER", 0, 0), ("PER", 1, 1)]),
        (["I-PER", "I-LOC", "I-LOC"], [("PER", 0, 0), ("LOC", 1, 2)]),  # a type change starts a new one
        (["B-LOC", "I-PER", "O", "I-PER"], [("LOC", 0, 0), ("PER", 1, 1), ("PER", 3, 3)]),
        (["O", "O"], []),
    ],
)
def test_entities_follow_conlleval(tags, spans):
    assert entities(tags) == spans


def test_entity_f1_hand_counted():
    gold = [
        ["B-PER", "I-PER", "O", "B-LOC"],  # PER(0,1) LOC(3)
        ["O", "I-ORG", "I-ORG", "O", "B-PER", "B-PER"],  # ORG(1,2) PER(4) PER(5)
        ["B-LOC", "I-PER", "O"],  # LOC(0) PER(1)
        ["O", "O"],  # none
    ]
    pred = [
        ["B-PER", "I-PER", "O", "B-ORG"],  # PER(0,1) hit, ORG(3) wrong type
        ["O", "B-ORG", "I-ORG", "O", "B-PER", "I-PER"],  # ORG(1,2) hit, PER(4,5) wrong span
        ["B-LOC", "I-LOC", "O"],  # LOC(0,1) wrong span
        ["O", "B-PER"],  # PER(1) spurious
    ]
    result = entity_f1(gold, pred)
    # TP = 2, predicted = 6, gold = 7: P = 1/3, R = 2/7, F1 = 2PR/(P+R) = 4/13
    assert result.per_example.tolist() == [[1, 2, 2], [1, 2, 3], [0, 1, 2], [0, 1, 0]]
    assert result.score == pytest.approx(4 / 13, abs=1e-12)
    assert result.details["precision"] == pytest.approx(1 / 3)
    assert result.details["recall"] == pytest.approx(2 / 7)
    assert result.statistic(result.per_example[None])[0] == pytest.approx(4 / 13)
    # A resample of sentences 0 and 0 again: TP 2, predicted 4, gold 4 -> F1 0.5
    assert result.statistic(result.per_example[[[0, 0]]])[0] == pytest.approx(0.5)
    assert entity_f1([["O"]], [["O"]]).score == 0.0  # nothing to find, nothing found: F1 undefined -> 0
    with pytest.raises(ValueError, match="sentence 0 has 2 gold tags but 1 predicted"):
        entity_f1([["O", "O"]], [["O"]])


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("The  Normans!", "normans"),
        ("an apple, a day", "apple day"),
        ("Theatre of the Absurd", "theatre of absurd"),  # articles only as whole words
        ("A.B.C.", "abc"),
        ("Tom's\tdog\n", "toms dog"),
        ("  THE ", ""),
    ],
)
def test_squad_normalisation(raw, normal):
    assert normalize_answer(raw) == normal


def test_squad_em_f1_max_over_gold_answers():
    assert token_f1("the Norman conquest", "Norman conquest of England") == pytest.approx(2 / 3)
    gold = {
        "q1": ["Normandy", "the region of Normandy"],
        "q2": ["Normandy", "the region of Normandy"],
        "q3": ["Norman conquest of England"],
    }
    predictions = {"q1": "Normandy.", "q2": "region Normandy", "q3": "the Norman conquest", "other": "x"}
    em, f1 = squad_em_f1(gold, predictions)
    # q2: vs "Normandy" P=1/2 R=1 -> 2/3; vs "region of normandy" P=1 R=2/3 -> 0.8; max 0.8
    assert em.per_example.tolist() == [1.0, 0.0, 0.0]
    assert f1.per_example.tolist() == pytest.approx([1.0, 0.8, 2 / 3])
    assert em.score == pytest.approx(1 / 3)
    assert f1.score == pytest.approx((1 + 0.8 + 2 / 3) / 3)
    with pytest.raises(ValueError, match="1 of 3 questions lack a prediction"):
        squad_em_f1(gold, {"q1": "x", "q2": "y"})


def test_retrieval_uses_cosine_not_dot_product():
    source = np.array([[1.0, 1.0], [1.0, 0.01]])
    target = np.array([[10.0, 10.0], [1.0, 0.0]])  # a dot product would send row 1 to the long row 0
    result = retrieval_accuracy(source, target)
    assert result.score == 1.0
    assert result.per_example.tolist() == [1.0, 1.0]


def test_retrieval_hand_computed_and_blocked():
    source = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    target = np.array([[2.0, 0.1], [0.5, 0.4], [0.0, 3.0]])
    # cosines: row 0 -> (0.999, 0.781, 0) hit; row 1 -> (0.050, 0.625, 1) picks 2; row 2 -> (0.742, 0.994, 0.707)
    expected = [1.0, 0.0, 0.0]
    assert retrieval_accuracy(source, target).per_example.tolist() == expected
    assert retrieval_accuracy(source, target, block=1).per_example.tolist() == expected
    assert retrieval_accuracy(source, target).score == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="same shape"):
        retrieval_accuracy(source, target[:2])
    with pytest.raises(ValueError, match="finite"):
        retrieval_accuracy(source * np.nan, target)
