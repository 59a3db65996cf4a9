"""The findings check's config: which world, which tiny model, how it is pretrained, and at which doses."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from xlray.concepts.metrics import CalignConfig, ColapConfig
from xlray.configs import Strict, TrackingConfig
from xlray.families import ENCODER_FAMILIES
from xlray.stats import MIN_SEEDS
from xlray.world.build import WorldConfig, gold_files, read_world_config
from xlray.world.pretrain import PRETRAINABLE, PretrainConfig

PRETRAIN_KNOBS = ("tlm_share", "code_switch")  # fields of PretrainConfig: one world, one random-init model
WORLD_KNOBS = ("anchors", "word_order")  # fields of WorldConfig: one world and random-init model per dose
DoseKnob = Literal[PRETRAIN_KNOBS + WORLD_KNOBS]


class TransferConfig(Strict):
    """The seed papers' transfer findings (``xlray.findings.transfer``): one pretrained twin adjusted on the
    world's parallel text, then fine-tuned on English NLI as base / adjusted / continual over seeds."""

    enabled: bool = True
    dose: float | None = Field(None, ge=0, le=1, description="the twin to adjust (one of doses); default: the highest")
    seeds: list[int] = Field(
        default_factory=lambda: [0, 1, 2], description=f"fine-tuning seeds per condition, at least {MIN_SEEDS}"
    )
    adjust_sentences: int = Field(1000, ge=20, description="parallel sentences per language adjust samples")
    heldout_sentences: int = Field(100, ge=10, description="... of which held out (adjust's before/after distances)")
    adjust_lr: float = Field(5e-4, gt=0, description="the demo sweep's (papers: 5e-5, for a real mBERT)")
    task_lr: float = Field(1e-3, gt=0, description="English NLI fine-tuning (the demo sweep's)")
    task_epochs: int = Field(3, ge=1)
    task_batch_size: int = Field(16, ge=1)
    smallest_accuracy: float = Field(0.02, gt=0, description="smallest zero-shot accuracy gain that counts")

    @field_validator("seeds")
    @classmethod
    def _enough_seeds(cls, value: list[int]) -> list[int]:
        if len(set(value)) < MIN_SEEDS:
            raise ValueError(f"the test over seeds (Welch's t) needs at least {MIN_SEEDS} distinct seeds, got {value}")
        return value


class FindingsConfig(Strict):
    """`xlray findings CONFIG`: a random-init tiny model against its pretrained twins at several doses of planted
    alignment; the defaults take about 5 minutes on 2 CPU cores."""

    stage: Literal["findings"] = "findings"
    output_dir: str = "xlray-runs/findings"
    world: WorldConfig = Field(default_factory=WorldConfig, description="the world to build (unless assets is set)")
    assets: str | None = Field(
        None,
        description="an `xlray world` folder to run on: its world/ (world.json gives the world) and"
        " models/<family> (the random-init model); default: output_dir/assets, built from world",
    )
    family: str = Field("bert", description="a tiny model family that can be pretrained")
    hidden: int = Field(64, ge=8, description="of the random-init model built (unless assets is set)")
    layers: int = Field(2, ge=1)
    vocab: int = Field(600, ge=100)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig, description="the recipe at every dose")
    dose: DoseKnob = Field(
        "tlm_share", description="the knob that plants alignment: a pretraining field (tlm_share, code_switch) or a"
        " world field (anchors, word_order: a world, tokenizer and random-init twin per dose)"
    )  # fmt: skip
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
    transfer: TransferConfig = Field(default_factory=TransferConfig)
    seed: int = 0
    tracking: TrackingConfig = Field(default_factory=lambda: TrackingConfig(experiment="xlray-findings"))

    @model_validator(mode="before")
    @classmethod
    def _written_world(cls, data: Any) -> Any:
        """With ``assets``, the world is the one written there, and it must hold its gold files and the model."""
        if not isinstance(data, dict) or not data.get("assets"):
            return data
        assets = Path(data["assets"])
        world = read_world_config(assets / "world")
        if world is None:
            raise ValueError(f"assets: no synthetic world at {assets / 'world'} (world.json missing); write one"
                             f" with `xlray world --output {assets}`")  # fmt: skip
        if "world" in data and WorldConfig.model_validate(data["world"]) != world:
            raise ValueError(f"world: differs from the world written at {assets / 'world'}; leave world out (assets"
                             " gives it) or build a world of your own without assets")  # fmt: skip
        missing = [name for name in gold_files(world) if not (assets / "world" / name).is_file()]
        if missing:
            raise ValueError(f"assets: the world at {assets / 'world'} lacks its gold files: {', '.join(missing)}")
        family = data.get("family", "bert")
        if not (assets / "models" / str(family) / "config.json").is_file():
            present = sorted(p.name for p in (assets / "models").glob("*") if (p / "config.json").is_file())
            raise ValueError(f"family: no model {family!r} in {assets / 'models'} (it has:"
                             f" {', '.join(present) or 'none'}); write it with `xlray world --output {assets}"
                             f" --families {family}`")  # fmt: skip
        return {**data, "world": world.model_dump()}

    @model_validator(mode="after")
    def _transfer_dose(self) -> FindingsConfig:
        if self.transfer.dose is not None and self.transfer.dose not in self.doses:
            raise ValueError(f"transfer.dose: {self.transfer.dose:g} is not one of doses {self.doses}")
        return self

    @model_validator(mode="after")
    def _transfer_family(self) -> FindingsConfig:
        if self.transfer.enabled and self.family not in ENCODER_FAMILIES:
            encoders = ", ".join(ENCODER_FAMILIES)
            raise ValueError(f"transfer.enabled: adjustment and fine-tuning take an encoder ({encoders}), and"
                             f" {self.family} is decoder-only; set transfer.enabled: false")  # fmt: skip
        return self

    @model_validator(mode="after")
    def _world_dose(self) -> FindingsConfig:
        """A world knob builds a world per dose: not on a written world, and not with its field set in world."""
        if self.dose not in WORLD_KNOBS:
            return self
        if self.assets:
            raise ValueError(f"dose: {self.dose} builds one world per dose, so it cannot run on the written world"
                             " of assets; leave assets out")  # fmt: skip
        if getattr(self.world, self.dose) != 0:
            raise ValueError(f"world.{self.dose}: set by doses when dose is {self.dose}; leave it out")
        if self.dose == "anchors" and self.doses[-1] >= 1:
            raise ValueError("doses: at anchors 1 every probed concept is an anchor (its translation the same"
                             " string), so nothing is left to probe; keep the doses below 1")  # fmt: skip
        return self

    def assets_dir(self) -> Path:
        """Where the world and the models are: ``assets``, else ``output_dir/assets``."""
        return Path(self.assets) if self.assets else Path(self.output_dir) / "assets"

    def world_at(self, dose: float) -> WorldConfig:
        """The world at a dose: ``world`` itself unless the knob is a world field."""
        return self.world.model_copy(update={self.dose: dose}) if self.dose in WORLD_KNOBS else self.world

    def recipe_at(self, dose: float) -> PretrainConfig:
        """The pretraining recipe at a dose: ``pretrain`` itself unless the knob is a pretraining field."""
        return self.pretrain.model_copy(update={self.dose: dose}) if self.dose in PRETRAIN_KNOBS else self.pretrain

    def assets_at(self, dose: float) -> Path:
        """The folder of the world and random-init model at a dose: one per dose for a world knob."""
        return self.assets_dir() / f"{self.dose}-{dose:g}" if self.dose in WORLD_KNOBS else self.assets_dir()

    def transfer_dose(self) -> float:
        return self.doses[-1] if self.transfer.dose is None else self.transfer.dose

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
