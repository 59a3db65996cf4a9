"""One call that materialises the synthetic world and its tiny models in a folder (used by tests, the demo and
sweeps)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xlray.world.build import WorldConfig, write_world
from xlray.world.pretrain import PRETRAINABLE, PretrainConfig, pretrained_model
from xlray.world.tiny_models import FAMILIES, build_tiny_model, world_texts


def write_assets(
    output: str | Path,
    families: Sequence[str] = FAMILIES,
    world: WorldConfig | None = None,
    hidden: int = 64,
    layers: int = 2,
    vocab: int = 600,
    pretrain: PretrainConfig | None = None,
) -> Path:
    """Write ``output/world`` and ``output/models/<family>`` (random init), and with ``pretrain`` also
    ``output/models/<family>-pretrained``, its pretrained twin (families in ``PRETRAINABLE``); finished parts are
    reused, not redone."""
    output = Path(output)
    world_dir = write_world(world or WorldConfig(), output / "world")
    texts = world_texts(world_dir)
    for family in families:
        if family not in FAMILIES:
            raise ValueError(f"unknown model family {family!r}; expected one of {FAMILIES}")
        random_init = build_tiny_model(
            family, texts, output / "models" / family, hidden=hidden, layers=layers, vocab=vocab
        )
        if pretrain is not None and family in PRETRAINABLE:
            pretrained_model(family, world_dir, random_init, pretrain, output / "models" / f"{family}-pretrained")
    return output


def prepare_world(
    output: str | Path,
    families: Sequence[str] = FAMILIES,
    world: WorldConfig | None = None,
    pretrain: PretrainConfig | None = None,
) -> Path:
    """:func:`write_assets` under a lock on ``output/.lock``, for processes that may build the same folder at once:
    a sweep's driver and every trial (on a multi-node cluster each node needs its own copy)."""
    import fcntl

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    with open(output / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return write_assets(output, families=families, world=world, pretrain=pretrain)
