"""Extractive QA: SQuAD-format training, XQuAD/MLQA-format zero-shot evaluation with exact match and F1.

A context longer than the window is split into overlapping windows (``stride`` shared tokens). Answers map from
character offsets to tokens through the fast tokenizer's offsets; a window that does not hold the whole answer is
trained to point at its first token (the [CLS] convention). Decoding takes the best start + end score over all
windows of a question, among context tokens only, and cuts the answer text from the context by offsets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from xlray.errors import XlrayError
from xlray.models import LoadedModel
from xlray.tasks.common import LangResult, predict, sample, with_dev
from xlray.tasks.config import EvaluateConfig
from xlray.tasks.formats import QAExample, ReadStats, read_squad
from xlray.tasks.formats.squad import bad_answer, iter_raw, load_json
from xlray.tasks.heads import SpanHead, TaskModel
from xlray.tasks.metrics import squad_em_f1

Offsets = list[tuple[int, int] | None]  # per token: (start, end) characters in the context; None outside it


@dataclass
class QaData:
    train: list[QAExample]
    test: dict[str, list[QAExample]]
    paths: dict[str, str] = field(default_factory=dict)  # "train" and each language -> file
    skipped: dict[str, int] = field(default_factory=dict)  # training questions skipped for a misplaced answer
    off_offset: dict[str, int] = field(default_factory=dict)  # per language: test answers not at their offset, kept
    dev: QaData | None = None  # the dev split as data of its own (its ``test``), scored as the test split is


@dataclass
class Window:
    """One window of one question: which example it belongs to and its context-token offsets."""

    example: int
    offsets: Offsets


def read(path: str, skip_bad: bool, key: str, data: QaData) -> list[QAExample]:
    stats = ReadStats()
    examples = list(read_squad(path, skip_bad, stats))
    data.paths[key], data.skipped[key] = path, stats.skipped
    return examples


def read_test(path: str, lang: str, data: QaData) -> list[QAExample]:
    """A test file's questions, all kept: EM/F1 compare answer texts, never offsets, so an answer that is not at
    its offset is counted, not dropped. A repeated id or a question without answers is still an error."""
    file, seen, examples = path, set(), []
    for ex in iter_raw(load_json(file), file):
        if ex.id in seen:
            raise XlrayError(f"{file}: question id {ex.id!r} occurs twice")
        seen.add(ex.id)
        problem = bad_answer(ex.context, ex.answers)
        if not ex.answers:
            raise XlrayError(f"{file}: question {ex.id!r}: {problem}")
        data.off_offset[lang] = data.off_offset.get(lang, 0) + (problem is not None)
        examples.append(ex)
    data.paths[lang] = path
    return examples


def load(cfg: EvaluateConfig) -> QaData:
    """Training questions (a misplaced answer is an error, or skipped with ``task.skip_bad_answers``) and every
    target language's questions (all kept; see :func:`read_test`)."""
    task, data = cfg.task, QaData([], {})
    data.train = sample(read(task.train, task.skip_bad_answers, "train", data), cfg.train.max_train_examples)
    for lang in cfg.languages:
        data.test[lang] = read_test(task.test.replace("{lang}", lang), lang, data)
    data.dev = load_dev(cfg)
    return data


def load_dev(cfg: EvaluateConfig) -> QaData | None:
    """The dev split (``task.dev``, e.g. MLQA's dev files) read as the test files are, or None without one."""
    if cfg.task.dev is None:
        return None
    dev = QaData([], {})
    for lang in cfg.languages:
        dev.test[lang] = read_test(cfg.task.dev.replace("{lang}", lang), lang, dev)
    return dev


def window_size(cfg: EvaluateConfig, lm: LoadedModel) -> int:
    return min(cfg.task.max_length, lm.max_length)


def check_room(lm: LoadedModel, examples: list[QAExample], size: int, stride: int, path: str) -> None:
    """Every question must leave more context tokens in a window than the stride, or windows cannot advance."""
    specials = lm.tokenizer.num_special_tokens_to_add(pair=True)
    lengths = lm.tokenizer([ex.question for ex in examples], add_special_tokens=False)["input_ids"]
    for ex, ids in zip(examples, lengths, strict=True):
        room = size - specials - len(ids)
        if room <= stride:
            raise XlrayError(
                f"{path}: question {ex.id!r} has {len(ids)} tokens, leaving {room} context tokens per window of "
                f"{size}, not more than task.stride {stride}; lower task.stride or raise task.max_length"
            )


def encode(
    lm: LoadedModel, examples: list[QAExample], size: int, stride: int, path: str
) -> tuple[list[dict[str, Any]], list[Window]]:
    """Windows over every (question, context): token features and, per window, its example and context offsets."""
    if not examples:
        return [], []
    check_room(lm, examples, size, stride, path)
    enc = lm.tokenizer(
        [ex.question for ex in examples],
        [ex.context for ex in examples],
        truncation="only_second",
        max_length=size,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    features, windows = [], []
    for i in range(len(enc["input_ids"])):
        seq = enc.sequence_ids(i)
        offsets = [tuple(o) if s == 1 else None for o, s in zip(enc["offset_mapping"][i], seq, strict=True)]
        features.append({k: enc[k][i] for k in keys})
        windows.append(Window(enc["overflow_to_sample_mapping"][i], offsets))
    return features, windows


def answer_tokens(offsets: Offsets, start: int, end: int) -> tuple[int, int] | None:
    """Token span (first, last) covering characters [start, end) in this window, or None if not wholly inside."""
    ctx = [i for i, o in enumerate(offsets) if o is not None]
    if not ctx or offsets[ctx[0]][0] > start or offsets[ctx[-1]][1] < end:
        return None
    first = max(i for i in ctx if offsets[i][0] <= start)
    last = min(i for i in ctx if offsets[i][1] >= end)
    return (first, last) if first <= last else None


def build(cfg: EvaluateConfig, lm: LoadedModel) -> TaskModel:
    return TaskModel(lm, SpanHead(lm.hidden_size)).to(lm.device)


def train_features(cfg: EvaluateConfig, lm: LoadedModel, data: QaData) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Windows with ``start``/``end`` token labels (0 where the window misses the answer), counted."""
    features, windows = encode(lm, data.train, window_size(cfg, lm), cfg.task.stride, data.paths["train"])
    misses = inexact = 0
    for feat, win in zip(features, windows, strict=True):
        ex = data.train[win.example]
        answer = ex.answers[0]
        span = answer_tokens(win.offsets, answer.start, answer.start + len(answer.text))
        if span is None:
            misses += 1
        elif ex.context[win.offsets[span[0]][0] : win.offsets[span[1]][1]].strip() != answer.text.strip():
            inexact += 1  # the answer starts or ends inside a token; trained on the covering tokens
        feat["start"], feat["end"] = span or (0, 0)
    counts = {
        "train_examples": len(data.train),
        "train_windows": len(features),
        "train_windows_without_answer": misses,
        "train_answers_not_on_token_boundaries": inexact,
        "train_questions_skipped": data.skipped.get("train", 0),
    }
    return features, counts


def loss(model: TaskModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    logits = model(batch)
    return (F.cross_entropy(logits[..., 0], batch["start"]) + F.cross_entropy(logits[..., 1], batch["end"])) / 2


def best_span(logits: torch.Tensor, offsets: Offsets, n_best: int, max_tokens: int) -> tuple[float, int, int] | None:
    """Highest start + end score in one window [tokens, 2] over context tokens with start <= end < start +
    max_tokens, among the ``n_best`` best starts and ends; returns (score, first char, end char) or None."""
    ctx = torch.tensor([i for i, o in enumerate(offsets) if o is not None], dtype=torch.long)
    if ctx.numel() == 0:
        return None
    k = min(n_best, ctx.numel())
    starts = ctx[logits[ctx, 0].topk(k).indices].tolist()
    ends = ctx[logits[ctx, 1].topk(k).indices].tolist()
    best = None
    for s in starts:
        for e in ends:
            if s <= e < s + max_tokens:
                score = float(logits[s, 0] + logits[e, 1])
                if best is None or score > best[0]:
                    best = (score, offsets[s][0], offsets[e][1])
    return best


def decode(
    examples: list[QAExample], windows: list[Window], logits: list[torch.Tensor], n_best: int, max_tokens: int
) -> list[str]:
    """Answer text per example: the best span over all of its windows ('' if no window has a valid span)."""
    best: list[tuple[float, int, int] | None] = [None] * len(examples)
    for win, lg in zip(windows, logits, strict=True):
        span = best_span(lg, win.offsets, n_best, max_tokens)
        if span is not None and (best[win.example] is None or span[0] > best[win.example][0]):
            best[win.example] = span
    return [ex.context[b[1] : b[2]].strip() if b else "" for ex, b in zip(examples, best, strict=True)]


def evaluate(cfg: EvaluateConfig, lm: LoadedModel, model: TaskModel, data: QaData, lang: str) -> LangResult:
    examples = data.test[lang]
    features, windows = encode(lm, examples, window_size(cfg, lm), cfg.task.stride, data.paths[lang])
    logits = predict(model, features, cfg.train.eval_batch_size)
    answers = decode(examples, windows, logits, cfg.task.n_best, cfg.task.max_answer_tokens)
    ids = [f"{lang}:{ex.id}" for ex in examples]
    gold = {i: [a.text for a in ex.answers] for i, ex in zip(ids, examples, strict=True)}
    em, f1 = squad_em_f1(gold, dict(zip(ids, answers, strict=True)))
    no_span = sum(not a for a in answers)
    counts = {
        "examples": len(examples),
        "windows": len(windows),
        "no_valid_span": no_span,
        "answers_not_at_offset": data.off_offset.get(lang, 0),
    }
    dev = evaluate(cfg, lm, model, data.dev, lang) if data.dev else None
    return with_dev(LangResult(lang, [em, f1], ids, counts), dev)
