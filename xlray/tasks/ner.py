"""WikiANN / CoNLL NER: one label per word on its first subword (word maps), entity-level F1 per language.

Words cut by the length limit (whole words, see ``xlray.wordmap``) and words without any subword are predicted
``O`` and counted, so every gold word is scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from xlray.models import LoadedModel
from xlray.tasks.common import LangResult, predict, sample, with_dev
from xlray.tasks.config import EvaluateConfig
from xlray.tasks.formats import TaggedSentence, iob_tags, read_iob
from xlray.tasks.heads import TaskModel, TokenHead
from xlray.tasks.metrics import entity_f1
from xlray.wordmap import tokenize_words


@dataclass
class NerData:
    labels: tuple[str, ...]
    train: list[TaggedSentence]
    test: dict[str, list[TaggedSentence]]
    dev: NerData | None = None  # the dev split as data of its own (its ``test``), scored as the test split is


def load(cfg: EvaluateConfig) -> NerData:
    """English training sentences, every target language's test sentences and, if the task names them, dev
    sentences; tags are checked by the reader."""
    task = cfg.task
    labels = iob_tags(task.entity_types)
    train = sample(list(read_iob(task.train, task.entity_types)), cfg.train.max_train_examples)
    dev = NerData(labels, [], by_language(task.dev, cfg)) if task.dev else None
    return NerData(labels, train, by_language(task.test, cfg), dev)


def by_language(pattern: str, cfg: EvaluateConfig) -> dict[str, list[TaggedSentence]]:
    """The sentences of each language's file (``{lang}`` in ``pattern``)."""
    paths = {lang: pattern.replace("{lang}", lang) for lang in cfg.languages}
    return {lang: list(read_iob(path, cfg.task.entity_types)) for lang, path in paths.items()}


def first_subwords(word_ids: list[int]) -> dict[int, int]:
    """Word index -> position of its first subword (specials have word id -1)."""
    first: dict[int, int] = {}
    for pos, word in enumerate(word_ids):
        if word >= 0 and word not in first:
            first[word] = pos
    return first


def encode(lm: LoadedModel, sentences: list[TaggedSentence], max_length: int) -> tuple[list[dict[str, Any]], list]:
    """Token features per sentence and each sentence's word -> first-subword map."""
    ids, word_ids, _ = tokenize_words(lm.tokenizer, [list(s.tokens) for s in sentences], max_length)
    features = [{"input_ids": row, "attention_mask": [1] * len(row)} for row in ids]
    return features, [first_subwords(w) for w in word_ids]


def build(cfg: EvaluateConfig, lm: LoadedModel) -> TaskModel:
    return TaskModel(lm, TokenHead(lm.hidden_size, len(iob_tags(cfg.task.entity_types)))).to(lm.device)


def train_features(cfg: EvaluateConfig, lm: LoadedModel, data: NerData) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Features with ``labels``: the word's tag id on its first subword, -100 (ignored) everywhere else."""
    features, firsts = encode(lm, data.train, min(cfg.task.max_length, lm.max_length))
    index = {tag: i for i, tag in enumerate(data.labels)}
    lost = 0
    for feat, first, sent in zip(features, firsts, data.train, strict=True):
        labels = [-100] * len(feat["input_ids"])
        for word, pos in first.items():
            labels[pos] = index[sent.tags[word]]
        feat["labels"] = labels
        lost += len(sent.tokens) - len(first)
    return features, {"train_examples": len(features), "train_words_unlabelled": lost}


def loss(model: TaskModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    logits = model(batch)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["labels"].reshape(-1), ignore_index=-100)


def word_tags(logits: torch.Tensor, first: dict[int, int], n_words: int, labels: tuple[str, ...]) -> list[str]:
    """One tag per word from its first subword's logits [tokens, labels]; words without a subword get ``O``."""
    best = logits.argmax(-1).tolist()
    return [labels[best[first[w]]] if w in first else "O" for w in range(n_words)]


def evaluate(cfg: EvaluateConfig, lm: LoadedModel, model: TaskModel, data: NerData, lang: str) -> LangResult:
    sentences = data.test[lang]
    features, firsts = encode(lm, sentences, min(cfg.task.max_length, lm.max_length))
    logits = predict(model, features, cfg.train.eval_batch_size)
    pred = [word_tags(lg, f, len(s.tokens), data.labels) for lg, f, s in zip(logits, firsts, sentences, strict=True)]
    result = entity_f1([list(s.tags) for s in sentences], pred)
    unscored = sum(len(s.tokens) - len(f) for s, f in zip(sentences, firsts, strict=True))
    counts = {
        "examples": len(sentences),
        "truncated": sum(len(f) < len(s.tokens) for s, f in zip(sentences, firsts, strict=True)),
        "words_predicted_O_unseen": unscored,
    }
    dev = evaluate(cfg, lm, model, data.dev, lang) if data.dev else None
    return with_dev(LangResult(lang, [result], [f"{lang}:{s.line}" for s in sentences], counts), dev)
