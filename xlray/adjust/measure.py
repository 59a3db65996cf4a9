"""Alignment statistics per layer on held-out pairs: how close aligned words are, and how far English drifted.

All distances are mean squared L2 distances between word vectors (subwords pooled as in training):
``aligned`` over word links, ``unaligned`` the same foreign words against the English word of a link half a batch
away (another sentence: a baseline that shows whether aligned words came closer than any two words), and
``drift`` over English words, the model against the frozen original.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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
    out: dict[str, list[tuple[float, int]]] = {kind: [] for kind in DISTANCE_KINDS}
    run = lambda model, enc: layer_states(model, inputs_of(enc))["encoder"]  # noqa: E731
    states = zip(run(encoder, enc_src), run(encoder, enc_en), run(original, enc_en), strict=True)
    for h_src, h_en, h_orig in states:
        w_src, w_en = pool_words(h_src, enc_src, pooling).float(), pool_words(h_en, enc_en, pooling).float()
        w_orig = pool_words(h_orig, enc_en, pooling).float()
        a, b = take(w_src, src_rows), take(w_en, en_rows)
        sq = lambda x, y: float((x - y).pow(2).sum(-1).sum())  # noqa: E731
        out["aligned"].append((sq(a, b), a.shape[0]))
        out["unaligned"].append((sq(a, b.roll(a.shape[0] // 2, 0)), a.shape[0]))
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
        with torch.inference_mode():
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


def flat_metrics(stats: dict[str, dict[str, list[float | None]]], prefix: str) -> dict[str, float | None]:
    """MLflow-style names: ``{prefix}.{kind}.{language}.layer_{i}``."""
    return {
        f"{prefix}.{kind}.{key}.layer_{i}": value
        for key, kinds in stats.items()
        for kind, values in kinds.items()
        for i, value in enumerate(values)
    }
