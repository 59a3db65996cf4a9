"""Tatoeba sentence retrieval (XSR): no training; each foreign sentence retrieves its English translation by cosine
similarity of pooled states from one layer (mean over the attended tokens, or the first token), in float32."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from xlray.errors import XlrayError
from xlray.models import LoadedModel, layer_states, load_model
from xlray.tasks.common import LangResult
from xlray.tasks.config import EvaluateConfig
from xlray.tasks.formats import SentencePair, read_tatoeba, tatoeba_paths
from xlray.tasks.metrics import retrieval_accuracy


@dataclass
class XsrData:
    test: dict[str, list[SentencePair]]


def load(cfg: EvaluateConfig) -> XsrData:
    """Line-aligned sentence pairs per language (different line counts are an error naming both files)."""
    test = {}
    for lang in cfg.languages:
        paths = tatoeba_paths(cfg.task.folder, lang)
        test[lang] = list(read_tatoeba(*paths))
        if not test[lang]:
            raise XlrayError(f"{paths[0]}: no sentence pairs")
    return XsrData(test)


def check(cfg: EvaluateConfig, lm: LoadedModel) -> None:
    task = cfg.task
    if not -(lm.num_layers + 1) <= task.layer <= lm.num_layers:
        raise XlrayError(
            f"task.layer: {task.layer} is out of range for {lm.cfg.name}, which has layers 0..{lm.num_layers} "
            "(0 = embeddings, -1 = last)"
        )
    if task.pooling == "cls" and lm.tokenizer.cls_token is None:
        raise XlrayError(f"task.pooling: cls needs a [CLS]-like first token, which {lm.cfg.name} lacks; use mean")


def full_precision(lm: LoadedModel) -> None:
    """Reload ``lm``'s weights in float32 (once) unless they are: in bf16, near-ties in top-1 flip. XSR does not
    train, so `xlray evaluate` loads the checkpoint as configured, and ``dtype: auto`` is bf16 on a GPU."""
    if all(p.dtype == torch.float32 for p in lm.model.parameters()):
        return
    full = load_model(lm.cfg.model_copy(update={"dtype": "float32"}), str(lm.device))
    lm.model, lm.cfg = full.model, full.cfg


@torch.no_grad()
def embed(
    lm: LoadedModel, sentences: list[str], layer: int, pooling: str, batch_size: int, max_length: int
) -> np.ndarray:
    """Pooled states [sentences, hidden] of one layer (hidden-state index: 0 = embeddings), from float32 weights."""
    full_precision(lm)
    out = []
    for start in range(0, len(sentences), batch_size):
        inputs = lm.tokenizer(
            sentences[start : start + batch_size],
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        ).to(lm.device)
        states = layer_states(lm, inputs)["encoder"][layer].float()
        if pooling == "cls":
            pooled = states[:, 0]
        else:
            mask = inputs["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        out.append(pooled.cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, lm.hidden_size), dtype=np.float32)


def evaluate(cfg: EvaluateConfig, lm: LoadedModel, model: object, data: XsrData, lang: str) -> LangResult:
    """Top-1 accuracy of retrieving line i of the English file from line i of the foreign file."""
    check(cfg, lm)
    task, pairs = cfg.task, data.test[lang]
    size = min(task.max_length, lm.max_length)
    source = embed(lm, [p.source for p in pairs], task.layer, task.pooling, task.batch_size, size)
    english = embed(lm, [p.english for p in pairs], task.layer, task.pooling, task.batch_size, size)
    result = retrieval_accuracy(source, english)
    counts = {
        "examples": len(pairs),
        "truncated": truncated(lm, [p.source for p in pairs] + [p.english for p in pairs], size),
    }
    return LangResult(lang, [result], [f"{lang}:{p.line}" for p in pairs], counts)


def truncated(lm: LoadedModel, sentences: list[str], max_length: int) -> int:
    """How many sentences are longer than the token limit (they are embedded from their first tokens only)."""
    return sum(len(ids) > max_length for ids in lm.tokenizer(sentences)["input_ids"])
