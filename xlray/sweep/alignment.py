"""Alignment of a trial's checkpoints per layer, on the adjustment's held-out pairs (Efimov et al.'s distances).

``original`` and ``adjusted`` come from `xlray adjust`'s own before/after statistics; a condition's fine-tuned
model (``<condition>-tuned``, its first seed) is measured here the same way, so forgetting shows as aligned words
drifting apart again.
Logged with step = layer: ``align.<checkpoint>.<aligned|unaligned|drift|ratio>.<language or all>``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xlray.adjust.config import AdjustConfig
from xlray.configs import ModelConfig
from xlray.outputs import write_json

Stats = dict[str, dict[str, list[float | None]]]  # {language or "all": {kind: [value per layer]}}


def adjust_stats(adjust: AdjustConfig) -> dict[str, Stats]:
    """``{"original": before, "adjusted": after}`` from the adjustment's stats.json."""
    saved = json.loads((Path(adjust.output_dir) / "stats.json").read_text(encoding="utf-8"))
    return {"original": saved["before"], "adjusted": saved["after"]}


def checkpoint_stats(checkpoint: Path, adjust: AdjustConfig, cache: Path) -> Stats:
    """Held-out distances of a fine-tuned checkpoint against the original model (cached in ``cache``)."""
    if cache.is_file():
        return json.loads(cache.read_text(encoding="utf-8"))
    from xlray.adjust.loss import encoder_of
    from xlray.adjust.measure import distance_stats
    from xlray.adjust.pairs import read_pairs
    from xlray.models import load_model
    from xlray.tasks.train import resolve_device

    device = resolve_device("auto")
    heldout = read_pairs(Path(adjust.output_dir) / "pairs.parquet", split="heldout")
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


def log_layers(sink: Any, name: str, stats: Stats) -> None:
    """Per-layer curves: one metric per checkpoint, kind and language, step = layer."""
    layers = len(next(iter(stats.values()))["aligned"])
    for layer in range(layers):
        sink.log_metrics(
            {
                f"align.{name}.{kind}.{key}": values[layer]
                for key, kinds in stats.items()
                for kind, values in kinds.items()
            },
            step=layer,
        )


def at_layer(name: str, stats: Stats, layer: int) -> dict[str, float | None]:
    """Tune result keys at the adjustment's layer: ``align.<checkpoint>.<kind>.<language or all>``."""
    return {
        f"align.{name}.{kind}.{key}": values[layer] for key, kinds in stats.items() for kind, values in kinds.items()
    }
