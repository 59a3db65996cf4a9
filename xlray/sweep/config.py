"""Config of `xlray sweep`: models x language groups x hyperparameters, the trial pipeline, search and resources.

A trial adjusts one model on one language group, fine-tunes on English per condition (base / adjusted / continual)
over the evaluation seeds, tests zero-shot on the group, and measures alignment per layer on the resulting
checkpoints; optional steps add concepts (CALIGN/COLAP) and sentence alignment (MEXA), which also run alone, e.g.
over decoder-only LLMs. ``adjust`` and ``evaluate`` are templates of the stage configs; the sweep fills in the
model, the languages, the output folders and the tracking, and the search space overrides single fields by dotted
path.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from xlray.adjust.config import AdjustConfig
from xlray.configs import ModelConfig, RayConfig, StorageConfig, Strict, TrackingConfig, first_error
from xlray.corpora import ParallelFiles
from xlray.families import FamilyName
from xlray.tasks.config import EvaluateConfig
from xlray.world.build import WorldConfig
from xlray.world.pretrain import PretrainConfig

# The stage templates, and the fields the sweep sets for each trial (a template must leave them out).
TEMPLATES: dict[str, type[BaseModel]] = {"adjust": AdjustConfig, "evaluate": EvaluateConfig}
SET_PER_TRIAL = {
    "adjust": ("stage", "model", "languages", "output_dir", "tracking", "storage"),
    "evaluate": ("stage", "model", "condition", "languages", "output_dir", "tracking", "storage"),
}

Condition = Literal["base", "adjusted", "continual"]
# original and adjusted: before and after the adjustment; <condition>-tuned: a condition's fine-tuned model (seed 0)
CheckpointName = Literal["original", "adjusted", "base-tuned", "adjusted-tuned", "continual-tuned"]


class Dimension(Strict):
    """One hyperparameter: exactly one of a grid (every value), a choice (sampled) or a range."""

    grid: list[Any] | None = Field(None, min_length=1, description="every value is tried (grid and random search)")
    choice: list[Any] | None = Field(None, min_length=1, description="one value sampled per trial")
    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None
    randint: tuple[int, int] | None = Field(None, description="integers low <= x < high")

    @model_validator(mode="after")
    def _exactly_one(self) -> Dimension:
        given = [name for name in ("grid", "choice", "uniform", "loguniform", "randint") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError(f"give exactly one of grid, choice, uniform, loguniform, randint (got {given or 'none'})")
        low_high = self.uniform or self.loguniform or self.randint
        if low_high and not low_high[0] < low_high[1]:
            raise ValueError(f"{given[0]}: low must be below high, got {list(low_high)}")
        if self.loguniform and self.loguniform[0] <= 0:
            raise ValueError("loguniform: low must be positive")
        return self

    @property
    def kind(self) -> str:
        return next(name for name in ("grid", "choice", "uniform", "loguniform", "randint") if getattr(self, name))

    def probe_values(self) -> list[Any]:
        """Values that stand for the whole dimension when checking a config: every listed value or both ends."""
        return list(getattr(self, self.kind))


class SearchConfig(Strict):
    """How trials are chosen: every grid point, random samples, or Optuna's TPE; and the score that picks the best
    (by default a dev-split score, so that the test split stays held out)."""

    algorithm: Literal["grid", "random", "optuna"] = "grid"
    num_samples: int = Field(1, ge=1, description="grid/random: repeats of the grid; optuna: trials in all")
    metric: str = Field(
        "zero_shot.continual.targets_mean.dev_accuracy",
        description="a trial result key: zero_shot.<condition>.<language or targets_mean>.<metric>, or align.*; "
        "dev_<metric> is the task's dev split (evaluate.task.dev), <metric> its test split",
    )
    allow_test_metric: bool = Field(
        False,
        description="let random or optuna search, or an ASHA-scheduled sweep, pick trials by a test-split score "
        "(zero_shot.*.<metric>, not dev_<metric>): that tunes on the test set, so its scores are no longer "
        "held out; for a task without a dev split (XQuAD, Tatoeba)",
    )
    mode: Literal["max", "min"] = "max"
    max_concurrent_trials: int | None = Field(None, ge=1, description="None: as many as the resources allow")
    seed: int = Field(0, description="seed of random and Optuna sampling")


class SchedulerConfig(Strict):
    """ASHA early stopping on an intermediate result (a trial reports after each pipeline step)."""

    kind: Literal["none", "asha"] = "none"
    metric: str = Field("align.adjusted.ratio.all", description="result key known after the first steps")
    mode: Literal["max", "min"] = "min"
    grace_period: int = Field(1, ge=1, description="pipeline steps every trial runs before it can be stopped")
    reduction_factor: float = Field(2.0, gt=1)


class ResourcesConfig(Strict):
    """What one trial reserves; fractional GPUs let several small trials share a GPU."""

    cpu: float = Field(1.0, ge=0)
    gpu: float = Field(0.0, ge=0)
    autoscaling: bool = Field(
        False,
        description="the cluster starts nodes on demand (GPU workers from zero): skip the up-front check that a "
        "node of the running cluster can hold one trial",
    )


class ConceptsStep(Strict):
    """CALIGN/COLAP per layer on the trial's checkpoints: extract (Ray Data) then cluster, one language pair each.

    ``{lang}`` in the corpus paths becomes each language of the trial's group; the pair is (lang, English).
    Extraction actors are scheduled by Ray Data outside the trial's reservation; the trial itself clusters.
    """

    source: str = Field(description="foreign side of the parallel corpus, e.g. data/{lang}-en.{lang}")
    english: str = Field(description="English side, e.g. data/{lang}-en.en")
    checkpoints: list[CheckpointName] = Field(default_factory=lambda: ["original"], min_length=1)
    extract: dict[str, Any] = Field(default_factory=dict, description="overrides of `xlray extract` fields")
    concepts: dict[str, Any] = Field(default_factory=dict, description="overrides of `xlray concepts` fields")

    def files(self, lang: str) -> ParallelFiles:
        """The parallel corpus of language ``lang`` (``english`` is the shared spec's target side), the input of
        both the extraction and the eflomal dictionary."""
        return ParallelFiles(source=self.source, target=self.english).for_language(lang)


class SentenceAlignmentStep(Strict):
    """MEXA, retrieval, cosine gap and CKA per layer of the original checkpoint: extract sentence vectors of the
    trial's languages and the pivot from one id-parallel corpus, then score the pivot against each language.

    ``{lang}`` in ``files`` becomes each language (FLORES+: one Parquet file per language, joined on ``id``).
    Extraction actors are scheduled by Ray outside the trial's reservation; the trial itself scores.
    """

    files: str = Field(description="one Parquet file per language, e.g. /mnt/data/flores_plus/devtest/{lang}.parquet")
    pivot: str = Field(description="the language every other is scored against, e.g. eng_Latn")
    id_column: str = "id"
    text_column: str = "text"
    extract: dict[str, Any] = Field(
        default_factory=dict,
        description="overrides of `xlray extract` fields; the step sets granularity: sentence, and unless "
        "overridden sentence_pooling: mexa and actors: 1",
    )
    alignment: dict[str, Any] = Field(default_factory=dict, description="overrides of `xlray sentence-alignment`")

    @field_validator("files")
    @classmethod
    def _per_language(cls, value: str) -> str:
        if "{lang}" not in value:
            raise ValueError(f"{value!r} has no {{lang}}: every language needs its own file")
        return value


class WorldAssets(Strict):
    """Build the synthetic world and tiny models here first (if missing): makes the demo sweep self-contained."""

    output: str = "xlray-runs/world"
    families: list[FamilyName] = Field(default_factory=lambda: ["bert"], min_length=1)
    world: WorldConfig = Field(default_factory=WorldConfig)
    pretrain: PretrainConfig | None = Field(
        None, description="also pretrain the tiny models on the world: models/<family>-pretrained"
    )


class SweepConfig(Strict):
    """`xlray sweep`: one Ray Tune experiment, one MLflow parent run, one nested child run per trial."""

    stage: Literal["sweep"] = "sweep"
    name: str = Field(pattern=r"^[A-Za-z0-9][\w.-]*$", description="the sweep's name in Tune and MLflow")
    output_dir: str = Field(
        description="trial outputs (checkpoints, results) and the sweep's state: a path every node shares, or "
        "s3://, gs:// (then Tune's state and the trial folders are there too)"
    )
    storage_path: str | None = Field(
        None, description="Tune's experiment state: a shared path or s3://, gs://; default: output_dir/tune"
    )
    world: WorldAssets | None = None
    models: dict[str, ModelConfig] = Field(min_length=1, description="label -> checkpoint")
    languages: list[str | list[str]] = Field(
        min_length=1, description="language groups: each trial adjusts on one group, tested on English + the group"
    )
    space: dict[str, Dimension] = Field(
        default_factory=dict, description="dotted field path in adjust.* or evaluate.* -> its values"
    )
    adjust: dict[str, Any] | None = Field(
        None, description="`xlray adjust` fields except stage, model, languages, output_dir, tracking, storage"
    )
    evaluate: dict[str, Any] | None = Field(
        None,
        description="`xlray evaluate` fields except stage, model, condition, languages, output_dir, tracking, storage",
    )
    conditions: list[Condition] = Field(default_factory=lambda: ["base", "adjusted", "continual"])
    align_checkpoints: list[CheckpointName] | None = Field(
        None,
        description="checkpoints whose held-out alignment is measured per layer; None: original, adjusted and "
        "every condition's fine-tuned model (<condition>-tuned, its first seed)",
    )
    concepts: ConceptsStep | None = None
    sentence_alignment: SentenceAlignmentStep | None = None
    search: SearchConfig = Field(default_factory=SearchConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    tracking: TrackingConfig = Field(default_factory=lambda: TrackingConfig(experiment="xlray-sweeps"))
    storage: StorageConfig = Field(
        default_factory=StorageConfig, description="object storage settings, handed on to every trial's stages"
    )

    @model_validator(mode="after")
    def _consistent(self) -> SweepConfig:
        if not (self.adjust or self.evaluate or self.concepts or self.sentence_alignment):
            raise ValueError("nothing to run: give adjust, evaluate, concepts or sentence_alignment")
        for stage in TEMPLATES:
            if getattr(self, stage) is not None:
                self.template(stage)  # the template must make a valid stage config before anything runs
        if self.scheduler.kind == "asha" and self.search.algorithm == "optuna":
            raise ValueError(
                "scheduler.kind: asha cannot drive optuna here: Optuna needs its metric in every intermediate "
                "result and zero-shot scores exist only at a trial's end; use search.algorithm grid or random"
            )
        if self.scheduler.kind == "asha" and self.adjust is None:
            raise ValueError("scheduler: ASHA stops trials on the adjustment's alignment, so it needs adjust")
        if len(set(self.conditions)) != len(self.conditions):
            raise ValueError(f"conditions: listed twice: {self.conditions}")
        groups = [tuple(group_of(g)) for g in self.languages]
        if any(not g for g in groups) or len(set(groups)) != len(groups):
            raise ValueError(f"languages: empty or repeated group in {self.languages}")
        made = set(self.conditions) if self.evaluate else set()
        if made & {"adjusted", "continual"} and self.adjust is None:
            raise ValueError("adjust: the adjusted and continual conditions need an adjustment template")
        checkpoints = [*(self.align_checkpoints or []), *(self.concepts.checkpoints if self.concepts else [])]
        for name in checkpoints:
            if name == "adjusted" and self.adjust is None:
                raise ValueError("the 'adjusted' checkpoint needs an adjustment template (adjust)")
            if name.endswith("-tuned") and name.removesuffix("-tuned") not in made:
                raise ValueError(f"checkpoint {name!r} is the model of a condition that this sweep does not run")
        if self.align_checkpoints and self.adjust is None:
            raise ValueError("align_checkpoints: held-out pairs come from the adjustment; set adjust or leave it []")
        return self

    def alignment_checkpoints(self) -> list[str]:
        """Checkpoints measured on held-out pairs: as configured, else every one this pipeline makes."""
        if self.align_checkpoints is not None:
            return list(self.align_checkpoints)
        if self.adjust is None:
            return []
        tuned = [f"{c}-tuned" for c in self.conditions] if self.evaluate else []
        return ["original", "adjusted", *tuned]

    def template(self, stage: str) -> BaseModel:
        """The ``adjust`` or ``evaluate`` template as the stage config it is, with a placeholder model and folder
        and the first language group; raises ValueError naming the field (``adjust.optim.lr``)."""
        fields = getattr(self, stage)
        fixed = sorted(set(fields) & set(SET_PER_TRIAL[stage]))
        if fixed:
            raise ValueError(f"{stage}.{fixed[0]}: set for each trial by the sweep; remove it from the template")
        group = self.language_groups()[0]
        base = {"stage": stage, "model": {"name": "model"}, "output_dir": "out"}
        base["languages"] = ["en", *group] if stage == "evaluate" else group
        try:
            return TEMPLATES[stage].model_validate({**fields, **base})
        except ValidationError as exc:
            raise ValueError(first_error(exc, stage)) from None

    def language_groups(self) -> list[list[str]]:
        return [group_of(g) for g in self.languages]


def group_of(entry: str | list[str]) -> list[str]:
    return [entry] if isinstance(entry, str) else list(entry)


def group_label(group: list[str]) -> str:
    return "+".join(group)
