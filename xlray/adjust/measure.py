"""Alignment statistics per layer on held-out pairs: how close aligned words are, and how far English drifted.

All distances are mean squared L2 distances between word vectors (subwords pooled as in training), in float32:
``aligned`` over word links, ``unaligned`` the same foreign words against the English word of a link from another
sentence pair of the batch (a baseline that shows whether aligned words came closer than any two words; a batch
of one pair has none), and ``drift`` over English words, the model against the frozen original.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from xlray.adjust.loss import inputs_of, link_rows, take
from xlray.adjust.pairs import AlignedPairs, PairBatch
from xlray.models import layer_states
from xlray.wordmap import Pooling, encode_words, pool_words

DISTANCE_KINDS = ("aligned", "unaligned", "drift")


def batches(pairs: PairBatch, size: int) -> Iterator[PairBatch]:
    for start in range(0, len(pairs), size):
        end = start + size
        yield PairBatch(pairs.source[start:end], pairs.english[start:end], pairs.links[start:end])


def other_pair_links(pair_of: np.ndarray) -> np.ndarray | None:
    """For each link, given the sentence pair it comes from (grouped, in order), the index of a link of another
    pair: the k-th link of a pair goes with the (k mod m)-th of the pair half the linked pairs away (m: its
    links). None when fewer than two pairs have links."""
    linked, first, count = np.unique(pair_of, return_index=True, return_counts=True)
    if len(linked) < 2:
        return None
    own = np.searchsorted(linked, pair_of)
    other = (own + len(linked) // 2) % len(linked)
    return first[other] + (np.arange(len(pair_of)) - first[own]) % count[other]


def batch_sums(
    encoder: torch.nn.Module,
    original: torch.nn.Module,
    tokenizer: Any,
    batch: PairBatch,
    pooling: Pooling,
    max_length: int,
) -> dict[str, list[tuple[float, int]]]:
    """Per kind, per layer: (sum of squared distances, count) over one batch."""
    enc_src = encode_words(tokenizer, batch.source, max_length)
    enc_en = encode_words(tokenizer, batch.english, max_length)
    src_rows, en_rows, _ = link_rows(enc_src.kept_words, enc_en.kept_words, batch.links)
    starts = np.cumsum([0] + [len(k) for k in enc_src.kept_words])  # each pair's first row of pooled words
    partner = other_pair_links(np.searchsorted(starts, src_rows, side="right") - 1)
    out: dict[str, list[tuple[float, int]]] = {kind: [] for kind in DISTANCE_KINDS}
    run = lambda model, enc: layer_states(model, inputs_of(enc))["encoder"]  # noqa: E731
    states = zip(run(encoder, enc_src), run(encoder, enc_en), run(original, enc_en), strict=True)
    for h_src, h_en, h_orig in states:
        w_src, w_en = pool_words(h_src, enc_src, pooling).float(), pool_words(h_en, enc_en, pooling).float()
        w_orig = pool_words(h_orig, enc_en, pooling).float()
        a, b = take(w_src, src_rows), take(w_en, en_rows)
        sq = lambda x, y: float((x - y).pow(2).sum(-1).sum())  # noqa: E731
        out["aligned"].append((sq(a, b), a.shape[0]))
        if partner is None:
            out["unaligned"].append((0.0, 0))
        else:
            out["unaligned"].append((sq(a, b[torch.as_tensor(partner, device=b.device)]), a.shape[0]))
        out["drift"].append((sq(w_en, w_orig), w_en.shape[0]))
    return out


def distance_stats(
    encoder: torch.nn.Module,
    original: torch.nn.Module,
    tokenizer: Any,
    pairs: AlignedPairs,
    pooling: Pooling,
    max_length: int,
    batch_size: int = 64,
) -> dict[str, dict[str, list[float | None]]]:
    """``{language or "all": {kind: [value per layer 0..L]}}``; None where nothing was measured."""
    was_training = encoder.training
    encoder.eval()
    totals: dict[str, dict[str, list[list[float]]]] = {}
    try:
        with in_float32(encoder, original), torch.inference_mode():
            for lang in sorted(set(pairs.language)):
                own = pairs.subset(language=lang).batch
                for batch in batches(own, batch_size):
                    sums = batch_sums(encoder, original, tokenizer, batch, pooling, max_length)
                    for key in (lang, "all"):
                        acc = totals.setdefault(key, {k: [[0.0, 0] for _ in sums[k]] for k in DISTANCE_KINDS})
                        for kind in DISTANCE_KINDS:
                            for layer, (s, n) in enumerate(sums[kind]):
                                acc[kind][layer][0] += s
                                acc[kind][layer][1] += n
    finally:
        encoder.train(was_training)
    return {
        key: {kind: [s / n if n else None for s, n in layers] for kind, layers in acc.items()}
        for key, acc in totals.items()
    }


@contextmanager
def in_float32(*modules: torch.nn.Module) -> Iterator[None]:
    """Run ``modules`` in float32: weights in lower precision are cast up for the block and back after (exact:
    every bf16/fp16 value is a float32 value), autocast is off, and accelerate's autocast forward is bypassed.

    Under mixed precision, accelerate's ``prepare`` (1.x) wraps ``forward`` in autocast and keeps the plain one
    as ``_original_forward``; ``unwrap_model`` keeps the wrapper by default, so `xlray adjust`'s held-out
    statistics after bf16 training would otherwise run in bf16, unlike those before it. Its public way out,
    ``unwrap_model(keep_fp32_wrapper=False)``, unwraps transformers' own forward decorators too (accelerate 1.15,
    transformers 5): the model then returns no hidden states. So the wrapper is set aside here, and put back.
    """
    tensors = {
        id(t): t
        for m in modules
        for t in (*m.parameters(), *m.buffers())
        if t.is_floating_point() and t.dtype != torch.float32
    }
    dtypes = {key: t.dtype for key, t in tensors.items()}
    wrapped = {id(m): m for m in modules if "_original_forward" in vars(m) and "forward" in vars(m)}
    forwards = {key: vars(m)["forward"] for key, m in wrapped.items()}
    device = next(modules[0].parameters()).device.type
    for t in tensors.values():
        t.data = t.data.float()
    for m in wrapped.values():
        m.forward = m._original_forward
    try:
        with torch.autocast(device_type=device, enabled=False):
            yield
    finally:
        for key, t in tensors.items():
            t.data = t.data.to(dtypes[key])
        for key, m in wrapped.items():
            m.forward = forwards[key]


def flat_metrics(stats: dict[str, dict[str, list[float | None]]], prefix: str) -> dict[str, float | None]:
    """MLflow-style names: ``{prefix}.{kind}.{language}.layer_{i}``."""
    return {
        f"{prefix}.{kind}.{key}.layer_{i}": value
        for key, kinds in stats.items()
        for kind, values in kinds.items()
        for i, value in enumerate(values)
    }
