"""XNLI: fine-tune a pair classifier on English MultiNLI, report accuracy per language."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from xlray.models import LoadedModel
from xlray.tasks.common import LangResult, predict, sample
from xlray.tasks.config import EvaluateConfig
from xlray.tasks.formats import LABELS, NliExample, read_xnli
from xlray.tasks.heads import ClassificationHead, TaskModel
from xlray.tasks.metrics import accuracy


@dataclass
class NliData:
    train: list[NliExample]
    test: dict[str, list[NliExample]]  # language -> examples in file order


def load(cfg: EvaluateConfig) -> NliData:
    """English training pairs (optionally a seeded sample) and the test pairs of every target language."""
    task = cfg.task
    train = sample(list(read_xnli(task.train)), cfg.train.max_train_examples)
    test: dict[str, list[NliExample]] = {lang: [] for lang in cfg.languages}
    for ex in read_xnli(task.test, languages=cfg.languages):
        test[ex.language].append(ex)
    return NliData(train, test)


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
    pooling = cfg.task.pooling
    if pooling == "auto":
        pooling = "first" if lm.tokenizer.cls_token is not None else "mean"
    return TaskModel(lm, ClassificationHead(lm.hidden_size, len(LABELS), pooling)).to(lm.device)


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
    return LangResult(lang, [result], ids, {"examples": len(examples), "truncated": cut})
