"""The optional sentence-alignment step of a trial: extract sentence vectors of the trial's languages and the pivot
from one id-parallel corpus (FLORES+: a Parquet file per language), then score MEXA, top-1 retrieval, cosine gap
and CKA per layer, the pivot against each language (`xlray sentence-alignment`).

Only the original checkpoint: decoder-only LLMs are neither adjusted nor fine-tuned yet. Both stages log into the
trial's run under ``sentence_alignment.``: per layer (step = layer) ``mexa.<pivot>-<lang>``, ``retrieval.*``,
``cosine_gap.*``, ``cka.*``; pooled over layers ``mexa_mean.<pivot>-<lang>`` and ``mexa_max.<pivot>-<lang>``, and
``mexa_<mean | max>.targets_mean``, the unweighted mean over the trial's languages; the extraction's own metrics
under ``sentence_alignment.extract.``. The pooled names are the trial's Tune result keys.
"""

from __future__ import annotations

from typing import Any

from xlray import result_names as names
from xlray.configs import ModelConfig, RayConfig, validate
from xlray.errors import XlrayError
from xlray.storage import join
from xlray.sweep.concepts import OFF
from xlray.sweep.config import SentenceAlignmentStep, SweepConfig
from xlray.tracking import PrefixedSink, Sink

# Fields of the two stage configs that the step sets for each trial (an override must leave them out).
SET_BY_STEP = {
    "extract": ("stage", "model", "inputs", "languages", "output_dir", "granularity", "tracking"),
    "alignment": ("stage", "activations", "output_dir", "pivot", "languages", "tracking"),
}


def step_languages(step: SentenceAlignmentStep, group: list[str]) -> list[str]:
    """The pivot first, then the group's other languages (a group may name the pivot too)."""
    return [step.pivot, *(lang for lang in group if lang != step.pivot)]


def step_configs(
    step: SentenceAlignmentStep, model: ModelConfig, label: str, group: list[str], base: str, storage: dict[str, Any]
) -> tuple:
    """The `xlray extract` and `xlray sentence-alignment` configs of one trial (model, language group), validated;
    ``base`` is their folder (a local path or a URI)."""
    from xlray.extract.config import ExtractConfig
    from xlray.sentence_alignment.config import SentenceAlignmentConfig

    for part, fixed in SET_BY_STEP.items():
        given = sorted(set(getattr(step, part)) & set(fixed))
        if given:
            raise XlrayError(f"sentence_alignment.{part}.{given[0]}: set for each trial by the step; remove it")
    languages = step_languages(step, group)
    if len(languages) < 2:
        raise XlrayError(f"languages: the group {group} has no language besides sentence_alignment.pivot {step.pivot}")
    corpus = {"format": "parallel_ids", "files": {lang: step.files.replace("{lang}", lang) for lang in languages},
              "id_column": step.id_column, "text_column": step.text_column}  # fmt: skip
    extract = validate(ExtractConfig, {
        "model": model.model_dump(), "output_dir": join(base, "extract"), "languages": languages, "inputs": [corpus],
        "ray": RayConfig(address="auto").model_dump(), "storage": storage,
        "actors": 1,  # beside the sweep's other trials, not as many as the cluster holds
        "sentence_pooling": "mexa",  # MEXA's own embedding unless the overrides choose another
        **step.extract, "granularity": "sentence", "tracking": OFF.model_dump(),
    }, "sentence_alignment.extract (with the trial's model and languages)")  # fmt: skip
    alignment = validate(SentenceAlignmentConfig, {
        "activations": extract.output_dir, "output_dir": join(base, "scores"), "pivot": step.pivot,
        "languages": languages, "model_label": label, "ray": RayConfig(address="auto").model_dump(), "storage": storage,
        **step.alignment, "tracking": OFF.model_dump(),
    }, "sentence_alignment.alignment (with the trial's model and languages)")  # fmt: skip
    return extract, alignment


def check_step(cfg: SweepConfig) -> None:
    """The extract and alignment overrides make valid configs for every language group (checked before any
    trial runs)."""
    if cfg.sentence_alignment is not None:
        label = next(iter(cfg.models))
        for group in cfg.language_groups():
            step_configs(cfg.sentence_alignment, cfg.models[label], label, group, "check", cfg.storage.model_dump())


def run_sentence_alignment_step(cfg: SweepConfig, trial: dict[str, Any], folder: str, sink: Sink) -> dict[str, Any]:
    """Extract, then score the pivot against each of the trial's languages; returns MEXA pooled over layers."""
    from xlray.extract.run import run_extract
    from xlray.sentence_alignment.run import run_sentence_alignment

    step, label = cfg.sentence_alignment, trial["model"]
    group = trial["languages"].split("+")
    base, storage = join(folder, "sentence_alignment"), cfg.storage.model_dump()
    extract, alignment = step_configs(step, cfg.models[label], label, group, base, storage)
    run_extract(extract, into=PrefixedSink(sink, names.sentence_alignment("extract.")))
    manifest = run_sentence_alignment(alignment, into=PrefixedSink(sink, names.sentence_alignment("")))
    out: dict[str, Any] = {}
    means: dict[str, float] = {}  # logged here: the stage itself scores pairs, not the trial's group
    for how in names.MEXA_POOLINGS:
        values = {pair: agg[f"mexa_{how}"] for pair, agg in manifest["aggregates"].items()}
        out |= {names.sentence_alignment(names.mexa_pooled(pair, how)): v for pair, v in values.items()}
        # every language weighs the same, whatever its number of parallel sentences
        means[names.sentence_alignment(names.mexa_pooled(names.TARGETS_MEAN, how))] = sum(values.values()) / len(values)
    sink.log_metrics(means)
    return out | means


def metric_problem(cfg: SweepConfig, name: str) -> str | None:
    """Why no trial of this sweep reports the result ``name`` (``sentence_alignment.*``); None if one does."""
    step = cfg.sentence_alignment
    if step is None:
        return "this sweep has no sentence_alignment step"
    languages = sorted({lang for g in cfg.language_groups() for lang in step_languages(step, g)[1:]})
    reported = {
        names.sentence_alignment(names.mexa_pooled(pair, how))
        for pair in [*(names.language_pair(step.pivot, lang) for lang in languages), names.TARGETS_MEAN]
        for how in names.MEXA_POOLINGS
    }
    if name in reported:
        return None
    return (
        f"expected sentence_alignment.<mexa_mean|mexa_max>.<{step.pivot}-<language>|{names.TARGETS_MEAN}> with a "
        f"language in {languages}"
    )
