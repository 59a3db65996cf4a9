"""What every task module shares: the per-language result, seeded sampling and batched inference.

What a task module provides is the protocol in ``xlray.tasks.protocol``, which also holds the registry.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

from xlray import result_names as names
from xlray.tasks.heads import TaskModel, pad_batch, to_device
from xlray.tasks.metrics import TaskScore
from xlray.wordmap import pad_id

T = TypeVar("T")

INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass
class LangResult:
    """Scores of one language with the per-example outcomes behind them (``example_ids`` in outcome order).

    ``dev``: the same metrics on the task's dev split (the split a sweep tunes on), reported as ``dev_<metric>``;
    their outcomes are not kept, since paired tests compare conditions on the test split.
    """

    language: str
    metrics: list[TaskScore]
    example_ids: list[str]
    counts: dict[str, int] = field(default_factory=dict)  # e.g. truncated inputs, so nothing goes uncounted
    dev: list[TaskScore] = field(default_factory=list)

    def scores(self) -> dict[str, float]:
        return {m.name: m.score for m in self.metrics} | {names.dev(m.name): m.score for m in self.dev}


def with_dev(result: LangResult, dev: LangResult | None) -> LangResult:
    """The test split's ``result`` with the dev split's scores and counts (``dev_<count>``) beside it."""
    if dev is not None:
        result.dev = dev.metrics
        result.counts.update({names.dev(k): v for k, v in dev.counts.items()})
    return result


def sample(items: list[T], limit: int | None, seed: int = 0) -> list[T]:
    """A seeded sample of ``limit`` items in their original order (all of them if ``limit`` is None or larger)."""
    if limit is None or limit >= len(items):
        return items
    keep = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[i] for i in keep]


@torch.no_grad()
def predict(model: TaskModel, features: Sequence[dict[str, Any]], batch_size: int) -> list[torch.Tensor]:
    """Head outputs per feature, on the CPU, in input order; token-level outputs are cut to the feature's length.

    Features are batched by length so that padding stays small.
    """
    model.eval()
    pad = pad_id(model.lm.tokenizer)
    device = model.lm.device
    order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
    out: list[torch.Tensor | None] = [None] * len(features)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        rows = [{k: v for k, v in features[i].items() if k in INPUT_KEYS} for i in idx]
        logits = model(to_device(pad_batch(rows, pad), device)).float().cpu()
        for row, i in enumerate(idx):
            out[i] = logits[row, : len(features[i]["input_ids"])] if logits.ndim == 3 else logits[row]
    return out  # type: ignore[return-value]
