"""XNLI: fine-tune a pair classifier on English MultiNLI, report accuracy per language."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from xlray.errors import XlrayError
from xlray.models import LoadedModel
from xlray.tasks.common import LangResult, predict, sample, with_dev
from xlray.tasks.config import EvaluateConfig
from xlray.tasks.formats import LABELS, NliExample, read_xnli
from xlray.tasks.heads import ClassificationHead, PoolerHead, TaskModel
from xlray.tasks.metrics import accuracy


@dataclass
class NliData:
    train: list[NliExample]
    test: dict[str, list[NliExample]]  # language -> examples in file order
    dev: NliData | None = None  # the dev split as data of its own (its ``test``), scored as the test split is


def load(cfg: EvaluateConfig) -> NliData:
    """English training pairs (optionally a seeded sample), the test pairs of every target language and, if the
    task names one, the dev pairs."""
    task = cfg.task
    train = sample(list(read_xnli(task.train)), cfg.train.max_train_examples)
    dev = NliData([], by_language(task.dev, cfg.languages)) if task.dev else None
    return NliData(train, by_language(task.test, cfg.languages), dev)


def by_language(path: str, languages: list[str]) -> dict[str, list[NliExample]]:
    """The pairs of an XNLI-layout file per language; a language without rows is an error naming the file."""
    split: dict[str, list[NliExample]] = {lang: [] for lang in languages}
    for ex in read_xnli(path, languages=languages):
        split[ex.language].append(ex)
    return split


def encode(lm: LoadedModel, examples: list[NliExample], max_length: int) -> tuple[list[dict[str, Any]], int]:
    """Token features per pair (longest_first truncation) and how many pairs had to be cut."""
    premises, hypotheses = [ex.premise for ex in examples], [ex.hypothesis for ex in examples]
    full = lm.tokenizer(premises, hypotheses, truncation=False)
    cut = sum(len(ids) > max_length for ids in full["input_ids"])
    enc = lm.tokenizer(premises, hypotheses, truncation=True, max_length=max_length) if cut else full
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    return [{k: enc[k][i] for k in keys} for i in range(len(examples))], cut


def max_length(cfg: EvaluateConfig, lm: LoadedModel) -> int:
    return min(cfg.task.max_length, lm.max_length)


def build(cfg: EvaluateConfig, lm: LoadedModel) -> TaskModel:
    """The encoder with the family's pretrained pooler and a fresh linear layer (BERT, unless
    ``task.pretrained_pooler`` is false), or with a fresh dense + tanh head on the pooled tokens."""
    task = cfg.task
    pooling = task.pooling
    if pooling == "auto":
        pooling = "first" if lm.tokenizer.cls_token is not None else "mean"
    if not (task.pretrained_pooler and lm.family.pooler):
        return TaskModel(lm, ClassificationHead(lm.hidden_size, len(LABELS), pooling)).to(lm.device)
    pooler = getattr(lm.model, "pooler", None)
    if pooler is None:
        raise XlrayError(f"task.pretrained_pooler: {lm.cfg.name} has no pooler; set it to false for a fresh head")
    if pooling != "first":
        raise XlrayError(
            f"task.pooling: {pooling} cannot go through the pretrained pooler, which reads the first token; "
            "set task.pooling: first, or task.pretrained_pooler: false for a fresh head"
        )
    return TaskModel(lm, PoolerHead(pooler, lm.hidden_size, len(LABELS))).to(lm.device)


def train_features(cfg: EvaluateConfig, lm: LoadedModel, data: NliData) -> tuple[list[dict[str, Any]], dict[str, int]]:
    features, cut = encode(lm, data.train, max_length(cfg, lm))
    for feat, ex in zip(features, data.train, strict=True):
        feat["label"] = LABELS.index(ex.label)
    return features, {"train_examples": len(features), "train_truncated": cut}


def loss(model: TaskModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return F.cross_entropy(model(batch), batch["label"])


def evaluate(cfg: EvaluateConfig, lm: LoadedModel, model: TaskModel, data: NliData, lang: str) -> LangResult:
    examples = data.test[lang]
    features, cut = encode(lm, examples, max_length(cfg, lm))
    logits = predict(model, features, cfg.train.eval_batch_size)
    pred = [LABELS[int(row.argmax())] for row in logits]
    result = accuracy([ex.label for ex in examples], pred)
    ids = [f"{lang}:{ex.line}" for ex in examples]
    dev = evaluate(cfg, lm, model, data.dev, lang) if data.dev else None
    return with_dev(LangResult(lang, [result], ids, {"examples": len(examples), "truncated": cut}), dev)
