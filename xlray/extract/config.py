"""Config of `xlray extract`: which corpus, which model, which layers, and how to run and store it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from xlray.configs import ModelConfig, RayConfig, StorageConfig, Strict, TrackingConfig
from xlray.corpora import ParallelFiles
from xlray.sentence_pool import SentencePooling


class TextCorpus(Strict):
    """Plain text: one pre-tokenized (whitespace-split) sentence per line, all in one language."""

    format: Literal["text"] = "text"
    path: str = Field(description="Local path or cloud URI (s3://, gs://)")
    language: str


class ParallelCorpus(ParallelFiles):
    """Two line-aligned files (the shared spec, read by ``xlray.corpora``) and the language of each."""

    format: Literal["parallel"] = "parallel"
    source_language: str
    target_language: str


class TableCorpus(Strict):
    """TSV (with a header), JSONL or Parquet with id, language and text columns."""

    format: Literal["tsv", "jsonl", "parquet"]
    path: str
    id_column: str = "id"
    language_column: str = "language"
    text_column: str = "text"


class IdParallelCorpus(Strict):
    """One Parquet file per language (FLORES+: ``devtest/eng_Latn.parquet``), parallel by an id column: the same
    id is the same sentence in every file. Text is raw and split on whitespace; encoder site only."""

    format: Literal["parallel_ids"] = "parallel_ids"
    files: dict[str, str] = Field(min_length=2, description="Language code -> Parquet path or URI (s3://, gs://)")
    id_column: str = "id"
    text_column: str = "text"


ExtractInput = Annotated[TextCorpus | ParallelCorpus | TableCorpus | IdParallelCorpus, Field(discriminator="format")]


class ExtractConfig(Strict):
    """Everything `xlray extract` needs; defaults follow Mousi et al. (last subword, cap 15, all layers)."""

    stage: Literal["extract"] = "extract"
    model: ModelConfig
    inputs: list[ExtractInput] = Field(min_length=1)
    languages: list[str] = Field(min_length=1, description="Declared language codes; other codes are bad input")
    output_dir: str
    layers: list[int] | Literal["all"] = Field("all", description="Hidden-state indices; 0 = embedding output")
    sites: list[Literal["encoder", "decoder"]] = Field(
        default_factory=lambda: ["encoder"], description="decoder: mT5 only, parallel inputs, teacher forcing"
    )
    granularity: Literal["word", "sentence"] = Field(
        "word", description="word: a row per kept word occurrence and layer; sentence: a row per sentence and layer"
    )
    pooling: Literal["first", "last", "mean"] = Field("last", description="word granularity: a word's subwords")
    sentence_pooling: SentencePooling = Field(
        "mean",
        description="sentence granularity: mean, weighted-mean (position-weighted) or last of the content tokens, "
        "or mexa (MEXA's position-weighted mean over all tokens, BOS included); see xlray/sentence_pool.py",
    )
    store_budget_gb: float = Field(
        500.0, gt=0, description="Refuse a run whose stored vectors would exceed this estimate (layers x width x rows)"
    )
    cap: int | None = Field(15, ge=1, description="Max kept occurrences per word type; None keeps all")
    dtype: Literal["float16", "float32"] = Field("float16", description="Stored vector precision")
    on_invalid: Literal["error", "skip"] = Field(
        "error", description="Invalid UTF-8 or empty lines: stop with file:line, or skip and count"
    )
    chunk_lines: int = Field(
        1024, ge=1, description="Sentences per input block (one output shard each, and the unit of resume)"
    )
    batch_size: int = Field(64, ge=1, description="Sentences per forward pass (length-bucketed)")
    actors: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        "auto", description="Forward actors in the pool; auto: as many as the cluster's GPUs (CPUs without GPUs) hold"
    )
    gpus_per_actor: float | Literal["auto"] = Field(
        "auto",
        description="auto: 1 if the cluster has GPUs, else 0; a whole k > 1 spreads each actor's model over its k "
        "GPUs (accelerate's device_map), for models larger than one GPU",
    )
    gpu_memory_gb: float | None = Field(
        None, gt=0, description="gpus_per_actor > 1: weights per GPU at most (accelerate's max_memory); default 85%"
    )
    tokenizer_actors: int = Field(
        1, ge=1, description="Tokenizer actors feeding GPU actors (without GPUs each actor tokenizes its own chunks)"
    )
    cpus_per_actor: float = Field(
        1.0, gt=0, description="CPUs each tokenizer and forward actor reserves (less in a sweep trial on a small node)"
    )
    torch_threads: int | None = Field(
        None, ge=1, description="CPU threads per forward actor without a GPU; default: its cpus_per_actor"
    )
    seed: int = 0
    ray: RayConfig = Field(default_factory=RayConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)

    @model_validator(mode="after")
    def _consistent(self) -> ExtractConfig:
        if "decoder" in self.sites:
            by_id = [i for i, c in enumerate(self.inputs) if c.format == "parallel_ids"]
            if by_id:
                raise ValueError(
                    f"inputs.{by_id[0]}.format: parallel_ids has no source/target pairs for sites: decoder"
                )
        if (
            self.gpus_per_actor != "auto"
            and self.gpus_per_actor > 1
            and self.gpus_per_actor != int(self.gpus_per_actor)
        ):
            raise ValueError(
                f"gpus_per_actor: {self.gpus_per_actor:g}: above 1 it must be whole (a model spreads over k GPUs)"
            )
        return self
