"""Config of `xlray concepts`: which activations, which language pair and layers, the dictionary, the thresholds."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from xlray.concepts.cluster import ClusterConfig, FastHdbscanConfig
from xlray.concepts.metrics import CalignConfig, ColapConfig
from xlray.concepts.points import PointsConfig
from xlray.configs import RayConfig, StorageConfig, Strict, TrackingConfig
from xlray.corpora import ParallelFiles
from xlray.fanout import SchedulingConfig


class DictionaryFile(Strict):
    """An existing dictionary Parquet (columns src, tgt, count, prob), source words -> target words."""

    kind: Literal["file"] = "file"
    path: str


class DictionaryFromParallel(ParallelFiles):
    """Build D with eflomal (forward and reverse, intersected) from two line-aligned, pre-tokenized files (the
    shared spec: ``source`` is the source language's side, ``target`` the target language's)."""

    kind: Literal["eflomal"] = "eflomal"
    max_sentences: int | None = Field(None, ge=1, description="Use only the first N pairs; None: all")
    n_samplers: int = Field(3, ge=1, description="eflomal samplers; more is slower but less variable")
    min_count: int = Field(1, ge=1, description="Translation pairs seen fewer times are ignored")


DictionaryConfig = Annotated[DictionaryFile | DictionaryFromParallel, Field(discriminator="kind")]


class DistancesConfig(Strict):
    """Related vs sampled unrelated word pairs (Efimov et al.): aligned occurrences in context, or type means."""

    pairs: Literal["in_context", "type_mean"] = Field(
        "in_context",
        description="in_context: the occurrences eflomal links in each sentence pair (needs dictionary.kind: eflomal"
        " on the extracted parallel files); type_mean: each word type's mean vector, dictionary translations (D_N)",
    )
    keep_identical: bool = Field(
        False, description="Keep pairs of identical strings (numbers, punctuation, names), whose vectors nearly match"
    )
    bins: int = Field(50, ge=1, description="Histogram bins of the paired differences")
    seed: int = Field(0, description="Seed of the unrelated partners (shared by all layers)")


class ExplorerConfig(Strict):
    """What the concept explorer page (explorer.html) shows; its size grows with each bound."""

    top_words: int = Field(10, ge=1, description="Words listed per concept and language")
    top_matches: int = Field(
        3, ge=1, description="Target concepts listed per source concept: every aligned one, then the best by m"
    )
    map_points: int = Field(3000, ge=10, description="Occurrences sampled per layer for the 2-D map (PCA)")
    gold_words: str | None = Field(
        None,
        description="The synthetic world's gold/words.parquet: each concept's majority gold concept and purity",
    )


class ConceptsConfig(Strict):
    """Everything `xlray concepts` needs; one MLflow run per (model, checkpoint, language pair)."""

    stage: Literal["concepts"] = "concepts"
    activations: str = Field(description="A finished `xlray extract` output folder")
    source: str = Field(description="Source language code (the dictionary's src side)")
    target: str = Field(description="Target language code (the dictionary's tgt side)")
    layers: list[int] | Literal["all"] = Field("all", description="Extracted layers to analyse")
    site: Literal["encoder", "decoder"] = "encoder"
    dictionary: DictionaryConfig
    points: PointsConfig = Field(default_factory=PointsConfig)
    clustering: ClusterConfig = Field(default_factory=FastHdbscanConfig)
    calign: CalignConfig = Field(default_factory=CalignConfig)
    colap: ColapConfig = Field(default_factory=ColapConfig)
    distances: DistancesConfig = Field(default_factory=DistancesConfig)
    explorer: ExplorerConfig = Field(default_factory=ExplorerConfig)
    model_label: str | None = Field(None, description="Run-name label; default: the extracted model's folder name")
    checkpoint_label: str = Field("base", description="Run-name label of the checkpoint (base, adjusted, ...)")
    output_dir: str
    seed: int = 0
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    scheduling: SchedulingConfig = Field(
        default_factory=SchedulingConfig,
        description="The Ray task of each (layer, view) clustering and each layer's distances",
    )
    storage: StorageConfig = Field(default_factory=StorageConfig)
