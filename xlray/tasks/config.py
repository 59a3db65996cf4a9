"""Config of `xlray evaluate`: fine-tune on English, evaluate zero-shot per language, over seeds.

Task defaults follow Efimov et al. (2023): NLI lr 5e-5, 2 epochs, batch 32, length 128; NER lr 2e-5, 3 epochs;
QA lr 3e-5, 2 epochs, length 384, stride 128; XSR needs no training. Continual learning adds an alignment batch of
16 pairs (drawn with replacement from a 30k pool) to every task step, weighted 0.01, plus the English regulariser.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from xlray.configs import ModelConfig, StorageConfig, Strict, TrackingConfig

Files = dict[str, dict[str, str | list[str]]]  # context (train / test) -> dataset name -> file or files


def train_and_test(kind: str, train: str, test: str, languages: list[str], dev: str | None = None) -> Files:
    """The files a task with an English training file, a test file and optionally a dev file (each per language
    if it has ``{lang}``) reads."""
    files = {"train": {f"{kind} train": train}, "test": per_language(kind, "test", test, languages)}
    if dev is not None:
        files["dev"] = per_language(kind, "dev", dev, languages)
    return files


def per_language(kind: str, split: str, path: str, languages: list[str]) -> dict[str, str]:
    if "{lang}" in path:
        return {f"{kind} {split} {lang}": path.replace("{lang}", lang) for lang in languages}
    return {f"{kind} {split}": path}


def needs_lang(path: str | None) -> str | None:
    """A per-language file pattern must hold ``{lang}``."""
    if path is not None and "{lang}" not in path:
        raise ValueError(f"{path!r} needs a {{lang}} placeholder")
    return path


class NliTask(Strict):
    """XNLI: sentence-pair classification (entailment / neutral / contradiction) from the pooled first token."""

    kind: Literal["nli"]
    train: str = Field(description="English training TSV (MultiNLI layout, e.g. multinli.train.en.tsv)")
    test: str = Field(description="XNLI-layout TSV with a language column (e.g. xnli.test.tsv)")
    dev: str | None = Field(
        None,
        description="XNLI-layout dev TSV with a language column (xnli.dev.tsv): scored beside the test split as "
        "dev_accuracy, the score a sweep should tune on; None: no dev split",
    )
    lr: float = Field(5e-5, gt=0)
    epochs: int = Field(2, ge=1)
    batch_size: int = Field(32, ge=1)
    max_length: int = Field(128, gt=8, description="tokens per premise+hypothesis pair (longest_first cut, counted)")
    pooling: Literal["auto", "first", "mean"] = Field(
        "auto", description="auto: the first token ([CLS], <s>) if the tokenizer has one, else the mean (mT5)"
    )
    pretrained_pooler: bool = Field(
        True,
        description="where the family has a pretrained pooler (BERT), classify through it as "
        "AutoModelForSequenceClassification does (Efimov); false: a fresh dense + tanh head",
    )

    def inputs(self, languages: list[str]) -> Files:
        return train_and_test(self.kind, self.train, self.test, languages, self.dev)


class NerTask(Strict):
    """WikiANN / CoNLL NER: one label per word, predicted from the word's first subword; entity-level F1."""

    kind: Literal["ner"]
    train: str = Field(description="English IOB file (e.g. panx/train-en.tsv)")
    test: str = Field(description="IOB file per language with a {lang} placeholder (e.g. panx/test-{lang}.tsv)")
    dev: str | None = Field(
        None,
        description="IOB dev file per language with a {lang} placeholder (panx/dev-{lang}.tsv): scored beside the "
        "test split as dev_entity_f1, the score a sweep should tune on; None: no dev split",
    )
    entity_types: list[str] = Field(default_factory=lambda: ["PER", "LOC", "ORG"], min_length=1)
    lr: float = Field(2e-5, gt=0)
    epochs: int = Field(3, ge=1)
    batch_size: int = Field(32, ge=1)
    max_length: int = Field(128, gt=8, description="words past the limit are cut whole, predicted O and counted")

    _dev_per_language = field_validator("dev")(needs_lang)

    def inputs(self, languages: list[str]) -> Files:
        return train_and_test(self.kind, self.train, self.test, languages, self.dev)


class QaTask(Strict):
    """Extractive QA: SQuAD v1.1 training, XQuAD/MLQA evaluation (exact match and F1), windows over long contexts."""

    kind: Literal["qa"]
    train: str = Field(description="SQuAD v1.1 JSON (e.g. squad/train-v1.1.json)")
    test: str = Field(description="SQuAD-layout JSON per language with a {lang} placeholder (xquad.{lang}.json)")
    dev: str | None = Field(
        None,
        description="SQuAD-layout dev JSON per language with a {lang} placeholder (MLQA: "
        "dev-context-{lang}-question-{lang}.json; XQuAD has none): scored beside the test split as dev_exact_match "
        "and dev_f1, the scores a sweep should tune on; None: no dev split",
    )
    lr: float = Field(3e-5, gt=0)
    epochs: int = Field(2, ge=1)
    batch_size: int = Field(32, ge=1)
    max_length: int = Field(384, gt=16, description="tokens per window (question + context); capped at the model's")
    stride: int = Field(128, ge=1, description="tokens of context shared by consecutive windows")
    max_answer_tokens: int = Field(30, ge=1)
    n_best: int = Field(20, ge=1, description="start and end candidates per window in span decoding")
    skip_bad_answers: bool = Field(
        False,
        description="skip (and count) training questions whose answer is not at its offset; default: error. "
        "Test questions are always kept: EM/F1 compare answer texts, never offsets",
    )

    _dev_per_language = field_validator("dev")(needs_lang)

    def inputs(self, languages: list[str]) -> Files:
        return train_and_test(self.kind, self.train, self.test, languages, self.dev)


class XsrTask(Strict):
    """Tatoeba sentence retrieval: no training; cosine top-1 from one layer's pooled states, foreign -> English."""

    kind: Literal["xsr"]
    folder: str = Field(description="folder with tatoeba.{lang}-eng.{lang} and tatoeba.{lang}-eng.eng")
    layer: int = Field(8, description="hidden-state index (0 = embeddings, -1 = last); 8 is XTREME's for base models")
    pooling: Literal["mean", "cls"] = "mean"
    batch_size: int = Field(64, ge=1)
    max_length: int = Field(128, gt=2)

    def inputs(self, languages: list[str]) -> Files:
        """No training data; per language, the foreign and the English file."""
        from xlray.tasks.formats import tatoeba_paths

        return {"test": {f"xsr test {lang}": [str(p) for p in tatoeba_paths(self.folder, lang)] for lang in languages}}


Task = Annotated[NliTask | NerTask | QaTask | XsrTask, Field(discriminator="kind")]
FineTunedTask = NliTask | NerTask | QaTask  # the tasks that fine-tune: lr, epochs, batch_size (XSR has none)


class TrainConfig(Strict):
    """The fine-tuning loop shared by the tasks: AdamW, linear decay after an optional warm-up."""

    weight_decay: float = Field(0.0, ge=0)
    warmup_ratio: float = Field(0.0, ge=0, le=1)
    max_grad_norm: float | None = Field(
        None, gt=0, description="clip gradients to this norm; None: no clipping (Efimov et al. do not clip)"
    )
    max_train_examples: int | None = Field(None, ge=1, description="use a seeded sample of the training set")
    eval_batch_size: int = Field(64, ge=1)
    mixed_precision: Literal["no", "bf16"] = Field("no", description="autocast; weights stay fp32")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda if available, else cpu")
    save_checkpoints: bool = Field(True, description="save each seed's fine-tuned model (referenced in MLflow)")


class ContinualConfig(Strict):
    """Continual learning (Efimov et al.): task loss + align_weight * alignment + base_weight * regulariser.

    The alignment loss is `xlray adjust`'s, on aligned pairs that `xlray adjust` wrote (its ``pairs.parquet``;
    the training split is the pool). The regulariser keeps English states near the frozen original model f0:
    ``reference``, or by default the model that the starting checkpoint was adjusted from (its
    ``adjust_config.yaml``), or the starting checkpoint itself when `xlray adjust` did not write it.
    """

    enabled: bool = False
    pairs: str | None = Field(None, description="pairs.parquet written by `xlray adjust` (its train split is the pool)")
    languages: list[str] | None = Field(None, description="pool languages; default: all in the pairs file")
    pool_size: int = Field(30_000, ge=1, description="pairs kept in the pool (seeded sample)")
    align_batch: int = Field(16, ge=1, description="pairs per task step, drawn with replacement")
    align_weight: float = Field(0.01, ge=0)
    base_weight: float = Field(1.0, ge=0, description="weight of the English drift regulariser")
    layer: int = Field(-1, description="hidden-state index of the alignment loss (-1 = last)")
    pooling: Literal["first", "last", "mean"] = Field("mean", description="subword -> word vectors")
    target: Literal["trainable", "frozen"] = Field("trainable", description="English side: trained model or f0")
    anchors: bool = Field(True, description="also align the special tokens of both sides")
    reference: ModelConfig | None = Field(
        None,
        description="frozen original model f0; default: the model an `xlray adjust` checkpoint was adjusted from, "
        "else the starting model (then the original itself)",
    )
    reg_specials: bool = Field(True, description="the regulariser also holds the special tokens (Efimov)")

    @model_validator(mode="after")
    def _pairs_when_enabled(self) -> ContinualConfig:
        if self.enabled and not self.pairs:
            raise ValueError("continual.pairs: needed when continual learning is enabled")
        return self


class SignificanceConfig(Strict):
    """Tests of this condition against earlier `xlray evaluate` runs on the same examples: over seeds (Welch's t
    on per-seed scores, seed variance in its null) and over examples for this set of seeds (``method``)."""

    compare_with: dict[str, str] = Field(
        default_factory=dict, description="condition name -> output_dir of an earlier evaluate run"
    )
    seed_test: Literal["auto", "welch"] = Field(
        "auto",
        description="auto: Welch's t over seeds where both conditions have >= 3 seeds, else missing with a reason; "
        "welch: required, so fewer than 3 seeds here is a config error",
    )
    method: Literal["bootstrap", "permutation"] = Field(
        "bootstrap", description="paired test over examples (outcomes averaged over seeds; seeds held fixed)"
    )
    n_resamples: int = Field(10_000, ge=100)
    seed: int = 0


class EvaluateConfig(Strict):
    """`xlray evaluate`: fine-tune a (possibly adjusted) checkpoint on English, test zero-shot per language."""

    stage: Literal["evaluate"] = "evaluate"
    model: ModelConfig = Field(description="starting checkpoint: the original model or an adjusted one")
    condition: str = Field("base", min_length=1, description="name of this condition in reports (base, adjusted…)")
    task: Task
    languages: list[str] = Field(min_length=1, description="languages to evaluate on (English included if listed)")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    train: TrainConfig = TrainConfig()
    continual: ContinualConfig = ContinualConfig()
    significance: SignificanceConfig = SignificanceConfig()
    output_dir: str
    tracking: TrackingConfig = TrackingConfig()
    storage: StorageConfig = Field(default_factory=StorageConfig)

    @model_validator(mode="after")
    def _consistent(self) -> EvaluateConfig:
        for what, values in (("languages", self.languages), ("seeds", self.seeds)):
            if len(set(values)) != len(values):
                raise ValueError(f"{what}: listed twice: {values}")
        test = getattr(self.task, "test", None)
        if test is not None and self.task.kind != "nli" and "{lang}" not in test:
            raise ValueError(f"task.test: {test!r} needs a {{lang}} placeholder")
        if self.task.kind == "xsr" and self.continual.enabled:
            raise ValueError("continual.enabled: XSR has no training, so there is nothing to learn continually")
        return self

    @model_validator(mode="after")
    def _seeds_for_seed_test(self) -> EvaluateConfig:
        if self.significance.seed_test != "welch":
            return self
        from xlray.stats import MIN_SEEDS  # here, so loading a config does not import numpy

        runs = 1 if self.task.kind == "xsr" else len(self.seeds)  # XSR has no training: it runs once
        if runs < MIN_SEEDS:
            why = "XSR runs once (no training)" if self.task.kind == "xsr" else f"seeds has {runs}"
            raise ValueError(
                f"significance.seed_test: 'welch' needs at least {MIN_SEEDS} seeds, but {why}; "
                "add seeds or set it to 'auto'"
            )
        return self
