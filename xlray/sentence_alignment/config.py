"""Config of `xlray sentence-alignment`: which sentence-level activations, which languages, layers and pairs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from xlray.configs import RayConfig, StorageConfig, Strict, TrackingConfig
from xlray.fanout import SchedulingConfig


class SentenceAlignmentConfig(Strict):
    """Everything `xlray sentence-alignment` needs; one MLflow run per extraction."""

    stage: Literal["sentence-alignment"] = "sentence-alignment"
    activations: str = Field(description="A finished `xlray extract` output folder with granularity: sentence")
    output_dir: str
    pivot: str | None = Field(
        "en",
        description="Pairs are the pivot with every other language (the pivot plays the source side); "
        "None: every unordered pair of the languages, each in the order they are listed",
    )
    languages: list[str] | None = Field(
        None, min_length=1, description="Languages to score (the pivot is added if missing); None: all extracted"
    )
    layers: list[int] | Literal["all"] = Field("all", description="Extracted layers to score")
    site: Literal["encoder", "decoder"] = "encoder"
    block_size: int = Field(
        4096,
        ge=1,
        description="Rows per block of the n x n cosine matrix: memory is block_size x n float64 (4096 x 20k: 655 MB)",
    )
    model_label: str | None = Field(None, description="Run-name label; default: the extracted model's folder name")
    concepts: list[str] = Field(
        default_factory=list,
        description="Finished `xlray concepts` folders of the same model: their CALIGN/COLAP per layer are drawn "
        "beside MEXA in word_and_sentence.png",
    )
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    scheduling: SchedulingConfig = Field(default_factory=SchedulingConfig, description="The Ray task of each layer")
    storage: StorageConfig = Field(default_factory=StorageConfig)
