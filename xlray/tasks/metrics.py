"""Task metrics with per-example outcomes: accuracy, IOB entity F1, SQuAD v1.1 EM/F1, top-1 retrieval.

Scores are fractions in [0, 1] (papers print percentages). Each metric returns a ``TaskScore`` whose
``per_example`` outcomes and ``statistic`` feed the paired tests in ``xlray.stats``.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from xlray.stats import Statistic, mean_statistic

PUNCTUATION = frozenset(string.punctuation)
ARTICLES = re.compile(r"\b(a|an|the)\b")


@dataclass(frozen=True)
class TaskScore:
    """A corpus score with the per-example outcomes it is computed from.

    ``per_example``: ``(n,)`` outcomes, or ``(n, 3)`` counts (tp, predicted, gold) for entity F1;
    ``statistic(per_example[None])[0] == score``, and resampled rows give resampled scores.
    """

    name: str
    score: float
    per_example: np.ndarray
    statistic: Statistic = mean_statistic
    details: dict[str, float] = field(default_factory=dict)


def check_lengths(gold: Sequence, pred: Sequence, what: str) -> int:
    if len(gold) != len(pred) or not gold:
        raise ValueError(f"{what}: need equal, non-empty gold and predictions; got {len(gold)} and {len(pred)}")
    return len(gold)


def accuracy(gold: Sequence[Hashable], pred: Sequence[Hashable]) -> TaskScore:
    """Fraction of predictions equal to the gold label; per-example 1/0."""
    check_lengths(gold, pred, "accuracy")
    hits = np.array([g == p for g, p in zip(gold, pred, strict=True)], dtype=np.float64)
    return TaskScore("accuracy", float(hits.mean()), hits)


def split_tag(tag: str) -> tuple[str, str]:
    """``B-PER`` -> (``B``, ``PER``); ``O`` -> (``O``, ``""``)."""
    if tag == "O":
        return "O", ""
    if len(tag) < 3 or tag[0] not in "BI" or tag[1] != "-":
        raise ValueError(f"not an IOB tag: {tag!r}")
    return tag[0], tag[2:]


def entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Entity spans ``(type, first, last)`` as conlleval finds them: B- starts an entity, and so does an I-
    after O or after an entity of another type; an entity runs on over I- of its own type."""
    spans: list[tuple[str, int, int]] = []
    start, kind = -1, ""
    for i, tag in enumerate(tags):
        prefix, typ = split_tag(tag)
        if start >= 0 and (prefix != "I" or typ != kind):
            spans.append((kind, start, i - 1))
            start = -1
        if prefix == "B" or (prefix == "I" and start < 0):
            start, kind = i, typ
    if start >= 0:
        spans.append((kind, start, len(tags) - 1))
    return spans


def f1_statistic(batch: np.ndarray) -> np.ndarray:
    """Micro F1 from summed (tp, predicted, gold) counts: ``(B, n, 3)`` -> ``(B,)``; 0 when undefined."""
    tp, n_pred, n_gold = np.moveaxis(batch.sum(axis=1), -1, 0)
    precision = np.divide(tp, n_pred, out=np.zeros_like(tp), where=n_pred > 0)
    recall = np.divide(tp, n_gold, out=np.zeros_like(tp), where=n_gold > 0)
    total = precision + recall
    return np.divide(2 * precision * recall, total, out=np.zeros_like(tp), where=total > 0)


def entity_f1(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> TaskScore:
    """Entity-level micro F1 over sentences of IOB tags (seqeval default mode / conlleval)."""
    check_lengths(gold, pred, "entity_f1")
    counts = np.zeros((len(gold), 3), dtype=np.float64)
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        if len(g) != len(p):
            raise ValueError(f"entity_f1: sentence {i} has {len(g)} gold tags but {len(p)} predicted")
        gold_spans, pred_spans = set(entities(g)), set(entities(p))
        counts[i] = len(gold_spans & pred_spans), len(pred_spans), len(gold_spans)
    tp, n_pred, n_gold = counts.sum(axis=0)
    details = {
        "precision": tp / n_pred if n_pred else 0.0,
        "recall": tp / n_gold if n_gold else 0.0,
        "true_positives": tp,
        "predicted": n_pred,
        "gold": n_gold,
    }
    return TaskScore("entity_f1", float(f1_statistic(counts[None])[0]), counts, f1_statistic, details)


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation: lower case, drop punctuation, drop articles a/an/the, squeeze whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in PUNCTUATION)
    return " ".join(ARTICLES.sub(" ", text).split())


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD v1.1 bag-of-tokens F1 between normalised answers."""
    pred_tokens, gold_tokens = normalize_answer(prediction).split(), normalize_answer(gold).split()
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_em_f1(gold: Mapping[str, Sequence[str]], predictions: Mapping[str, str]) -> tuple[TaskScore, TaskScore]:
    """Exact match and F1 per question (max over its gold answers), in the order of ``gold``'s ids.

    Every gold question needs a prediction: a missing one is an error, not a silent zero.
    """
    missing = [qid for qid in gold if qid not in predictions]
    if not gold or missing:
        raise ValueError(f"squad_em_f1: {len(missing)} of {len(gold)} questions lack a prediction: {missing[:3]}")
    em = np.zeros(len(gold))
    f1 = np.zeros(len(gold))
    for i, (qid, answers) in enumerate(gold.items()):
        if not answers:
            raise ValueError(f"squad_em_f1: question {qid!r} has no gold answers")
        pred = normalize_answer(predictions[qid])
        em[i] = max(float(pred == normalize_answer(a)) for a in answers)
        f1[i] = max(token_f1(predictions[qid], a) for a in answers)
    return TaskScore("exact_match", float(em.mean()), em), TaskScore("f1", float(f1.mean()), f1)


def unit_rows(x: np.ndarray, what: str) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), after shape and finiteness checks."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or not np.isfinite(x).all():
        raise ValueError(f"retrieval: {what} must be a finite, non-empty (n, dim) matrix; got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def retrieval_accuracy(source: np.ndarray, target: np.ndarray, block: int = 1024) -> TaskScore:
    """Top-1 accuracy of cosine nearest-neighbour search: row i of ``source`` (n, d) should retrieve row i of
    ``target`` (n, d); ties go to the lowest index. Per-example 1/0."""
    src, tgt = unit_rows(source, "source"), unit_rows(target, "target")
    if src.shape != tgt.shape:
        raise ValueError(f"retrieval: source {src.shape} and target {tgt.shape} must have the same shape")
    nearest = np.concatenate([(src[i : i + block] @ tgt.T).argmax(axis=1) for i in range(0, len(src), block)])
    hits = (nearest == np.arange(len(src))).astype(np.float64)
    return TaskScore("retrieval_top1", float(hits.mean()), hits)
