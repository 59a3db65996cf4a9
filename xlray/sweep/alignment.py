"""Alignment of a trial's checkpoints per layer, on the adjustment's held-out pairs (Efimov et al.'s distances).

``original`` and ``adjusted`` come from `xlray adjust`'s own before/after statistics; a condition's fine-tuned
model (``<condition>-tuned``, its first seed) is measured here the same way, so forgetting shows as aligned words
drifting apart again.
Logged with step = layer: ``align.<checkpoint>.<aligned|unaligned|drift|ratio>.<language or all>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xlray import result_names as names
from xlray.adjust.config import AdjustConfig
from xlray.configs import ModelConfig
from xlray.outputs import read_json, write_json
from xlray.storage import join

Stats = dict[str, dict[str, list[float | None]]]  # {language or "all": {kind: [value per layer]}}


def adjust_stats(adjust: AdjustConfig) -> dict[str, Stats]:
    """``{"original": before, "adjusted": after}`` from the adjustment's stats.json."""
    saved = read_json(join(adjust.output_dir, "stats.json"))
    return {"original": saved["before"], "adjusted": saved["after"]}


def checkpoint_stats(checkpoint: str | Path, adjust: AdjustConfig, cache: str | Path) -> Stats:
    """Held-out distances of a fine-tuned checkpoint against the original model (cached in ``cache``); paths may
    be local or URIs."""
    cached = read_json(cache)
    if cached is not None:
        return cached
    from xlray.adjust.measure import distance_stats
    from xlray.adjust.pairs import read_pairs
    from xlray.models import encoder_of, load_model
    from xlray.runtime import device as torch_device

    device = torch_device()
    heldout = read_pairs(join(adjust.output_dir, "pairs.parquet"), split="heldout")
    tuned = load_model(ModelConfig(name=str(checkpoint), dtype="float32"), device)
    original = load_model(adjust.model.model_copy(update={"dtype": "float32"}), device)
    stats = distance_stats(
        encoder_of(tuned),
        encoder_of(original),
        tokenizer=tuned.tokenizer,
        pairs=heldout,
        pooling=adjust.loss.pooling,
        max_length=tuned.max_length,
    )
    write_json(cache, stats)
    return stats


def with_ratio(stats: Stats) -> Stats:
    """Add ``ratio`` = aligned / unaligned distance per layer: below 1 means translations sit closer than chance."""
    out = {}
    for key, kinds in stats.items():
        pairs = zip(kinds["aligned"], kinds["unaligned"], strict=True)
        ratio = [a / u if a is not None and u else None for a, u in pairs]
        out[key] = {**kinds, "ratio": ratio}
    return out


def record(sink: Any, name: str, stats: Stats, layer: int) -> dict[str, float | None]:
    """Log one checkpoint's curves (with the ratio) per layer, step = layer; return them at the adjustment's
    ``layer`` as Tune result keys ``align.<checkpoint>.<kind>.<language or all>``."""
    stats = with_ratio(stats)
    for step in range(len(next(iter(stats.values()))["aligned"])):
        sink.log_metrics(at_layer(name, stats, step), step=step)
    return at_layer(name, stats, layer)


def at_layer(name: str, stats: Stats, layer: int) -> dict[str, float | None]:
    """``align.<checkpoint>.<kind>.<language or all>`` -> the value at one layer."""
    return {
        names.align(name, kind, key): values[layer] for key, kinds in stats.items() for kind, values in kinds.items()
    }
