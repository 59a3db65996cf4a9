"""The findings check's config: which world, which tiny model, how it is pretrained, and at which doses."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from xlray.concepts.metrics import CalignConfig, ColapConfig
from xlray.configs import Strict, TrackingConfig
from xlray.world.build import WorldConfig
from xlray.world.pretrain import PRETRAINABLE, PretrainConfig

DoseKnob = Literal["tlm_share", "code_switch"]


class FindingsConfig(Strict):
    """`xlray findings CONFIG`: a random-init tiny model against its pretrained twins at several doses of planted
    alignment; the defaults take about 5 minutes on 2 CPU cores."""

    stage: Literal["findings"] = "findings"
    output_dir: str = "xlray-runs/findings"
    world: WorldConfig = Field(default_factory=WorldConfig)
    family: str = Field("bert", description="a tiny model family that can be pretrained (not mt5)")
    hidden: int = Field(64, ge=8)
    layers: int = Field(2, ge=1)
    vocab: int = Field(600, ge=100)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig, description="the recipe at every dose")
    dose: DoseKnob = Field("tlm_share", description="the pretraining knob that plants alignment")
    doses: list[float] = Field(default_factory=lambda: [0.0, 0.5, 1.0], description="0 (no planting) and more")
    heldout: int = Field(500, ge=10, description="held-out meanings probed, each in every target language")
    smallest_effect: float = Field(
        0.02,
        gt=0,
        description="smallest translation advantage over the control that counts (README: Does it find what is there?)",
    )
    smallest_gap: float = Field(
        0.02, gt=0, description="smallest gain in the related - unrelated cosine gap that counts"
    )
    smallest_ari: float = Field(
        0.05,
        gt=0,
        description="smallest ARI gain of the concept clusters that counts (README: Does it find what is there?)",
    )
    smallest_recall: float = Field(
        0.05, gt=0, description="smallest gain in dictionary recall over the rotated control that counts"
    )
    dictionary_sentences: int | None = Field(
        None, ge=10, description="parallel sentences per language eflomal aligns; default: all of the world's"
    )
    concept_clusters: int | None = Field(
        None, ge=2, description="clusters per layer; default: as many as there are gold concepts probed"
    )
    calign: CalignConfig = Field(default_factory=CalignConfig)
    colap: ColapConfig = Field(default_factory=ColapConfig)
    resamples: int = Field(10_000, ge=100, description="bootstrap resamples per finding")
    seed: int = 0
    tracking: TrackingConfig = Field(default_factory=lambda: TrackingConfig(experiment="xlray-findings"))

    @field_validator("family")
    @classmethod
    def _pretrainable(cls, value: str) -> str:
        if value not in PRETRAINABLE:
            raise ValueError(f"{value!r} cannot be pretrained here; choose one of {list(PRETRAINABLE)}")
        return value

    @field_validator("doses")
    @classmethod
    def _doses(cls, value: list[float]) -> list[float]:
        if 0.0 not in value or len(set(value)) < 3 or any(not 0 <= d <= 1 for d in value):
            raise ValueError("need at least three distinct doses in [0, 1], 0 (the control) among them")
        return sorted(set(value))
