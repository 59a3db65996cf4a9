"""Config of `xlray adjust`: corpus, pair selection, loss and optimiser, with the papers' defaults."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from xlray.configs import ModelConfig, StorageConfig, Strict, TrackingConfig
from xlray.corpora import ParallelFiles


class LinesCorpus(Strict):
    """Two line-aligned files of pre-tokenized sentences; ``{lang}`` in a path becomes the language code.

    Read as the shared spec ``xlray.corpora.ParallelFiles`` with ``english`` as its target side (the field keeps
    its name: configs, the pairs cache key and the sweep's search paths say ``corpus.english``).
    """

    format: Literal["lines"]
    source: str = Field(description="foreign side, e.g. data/{lang}-en.{lang}")
    english: str = Field(description="English side, e.g. data/{lang}-en.en")

    def paths(self) -> list[str]:
        return [self.source, self.english]

    def files(self, lang: str) -> ParallelFiles:
        """The two files of language ``lang``."""
        return ParallelFiles(source=self.source, target=self.english).for_language(lang)


class TsvCorpus(Strict):
    """One tab-separated file per language: foreign sentence, tab, English sentence."""

    format: Literal["tsv"]
    path: str = Field(description="e.g. data/{lang}-en.tsv")
    header: bool = Field(False, description="skip the first line")

    def paths(self) -> list[str]:
        return [self.path]


class ParquetCorpus(Strict):
    """A Parquet file per language with a foreign and an English column (strings or lists of words)."""

    format: Literal["parquet"]
    path: str = Field(description="e.g. data/{lang}-en.parquet")
    source_column: str = "source"
    english_column: str = "english"

    def paths(self) -> list[str]:
        return [self.path]


PairCorpus = Annotated[LinesCorpus | TsvCorpus | ParquetCorpus, Field(discriminator="format")]


class PairsConfig(Strict):
    """Which sentence pairs and word links are used (Efimov et al.: 250k pairs, <= 64 words, no identical links,
    the aligner run on the whole file)."""

    max_sent: int = Field(250_000, ge=1, description="pairs sampled per language (seeded), held-out ones included")
    heldout_sent: int = Field(
        1000, ge=1, description="sampled pairs per language kept out of training for the before/after statistics"
    )
    max_words: int = Field(64, ge=1, description="pairs with more words on either side are dropped (counted)")
    drop_identical: bool = Field(True, description="drop links between identical strings (numbers, punctuation)")
    align_on: Literal["corpus", "sample"] = Field(
        "corpus",
        description="what the word aligner learns from: corpus (Efimov et al.): every pair of the file, streamed "
        "to eflomal, then the sampled pairs' links are kept; eflomal's time and memory (it holds the whole file as "
        "word ids) grow with the file, not with max_sent. sample: the sampled pairs only (faster on a big file, "
        "poorer links from less data)",
    )


class LossConfig(Strict):
    """The adjustment loss: L_align + reg_lambda * L_reg on one layer (also used by continual learning)."""

    layer: int = Field(-1, description="hidden-state index: 0 = embeddings, -1 = last layer")
    pooling: Literal["first", "last", "mean"] = Field("mean", description="subword -> word: mean (Efimov), last (Cao)")
    target: Literal["trainable", "frozen"] = Field(
        "trainable",
        description="English side of L_align: the model being trained (Efimov) or the frozen original (Cao)",
    )
    reg_lambda: float = Field(1.0, ge=0, description="λ: weight of the English drift regulariser")
    anchors: bool = Field(True, description="link the special tokens ([CLS]/[SEP], <s>/</s>) of both sides too")
    reg_specials: bool = Field(
        True, description="L_reg also holds the English special tokens ([CLS]/[SEP], <s>/</s>) (Efimov); false: words"
    )


class OptimConfig(Strict):
    """Adam with linear warm-up then a constant rate (Efimov et al.), through accelerate."""

    lr: float = Field(5e-5, gt=0)
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = Field(1e-9, gt=0)
    warmup_ratio: float = Field(0.1, ge=0, le=1, description="share of optimiser steps with a linear warm-up")
    batch_size: int = Field(32, ge=1, description="pairs per micro-batch and device")
    grad_accum: int = Field(1, ge=1, description="micro-batches per optimiser step")
    epochs: int = Field(1, ge=1)
    max_grad_norm: float | None = Field(None, gt=0, description="clip gradients to this norm; None: no clipping")
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    device: Literal["auto", "cpu"] = Field("auto", description="auto: what accelerate finds (GPU if any)")


class AdjustConfig(Strict):
    """`xlray adjust`: adjust a multilingual encoder so that aligned words of parallel sentences come closer."""

    stage: Literal["adjust"] = "adjust"
    model: ModelConfig
    corpus: PairCorpus
    languages: list[str] = Field(min_length=1, description="foreign languages, each paired with English")
    pairs: PairsConfig = PairsConfig()
    loss: LossConfig = LossConfig()
    optim: OptimConfig = OptimConfig()
    seed: int = 0
    output_dir: str
    tracking: TrackingConfig = TrackingConfig()
    storage: StorageConfig = Field(default_factory=StorageConfig)

    @model_validator(mode="after")
    def _paths_per_language(self) -> AdjustConfig:
        if len(set(self.languages)) != len(self.languages):
            raise ValueError(f"languages: listed twice: {self.languages}")
        if len(self.languages) > 1:
            for path in self.corpus.paths():
                if "{lang}" not in path:
                    raise ValueError(f"corpus: {path!r} needs a {{lang}} placeholder for several languages")
        if self.pairs.heldout_sent >= self.pairs.max_sent:
            raise ValueError("pairs.heldout_sent must be smaller than pairs.max_sent")
        return self
