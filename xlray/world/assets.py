"""One call that materialises the synthetic world and its tiny models in a folder (used by tests and the demo)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xlray.world.build import WorldConfig, write_world
from xlray.world.tiny_models import FAMILIES, build_tiny_model, world_texts


def write_assets(
    output: str | Path,
    families: Sequence[str] = FAMILIES,
    world: WorldConfig | None = None,
    hidden: int = 64,
    layers: int = 2,
    vocab: int = 600,
) -> Path:
    """Write ``output/world`` and ``output/models/<family>``; finished parts are reused, not redone."""
    output = Path(output)
    world_dir = write_world(world or WorldConfig(), output / "world")
    texts = world_texts(world_dir)
    for family in families:
        if family not in FAMILIES:
            raise ValueError(f"unknown model family {family!r}; expected one of {FAMILIES}")
        build_tiny_model(family, texts, output / "models" / family, hidden=hidden, layers=layers, vocab=vocab)
    return output
