"""The optional concepts step of a trial: for each checkpoint and language, extract word activations of the
language's parallel corpus with English (Ray Data), then cluster and score CALIGN/COLAP per layer.

Logged into the trial's run as ``concepts.<checkpoint>.<lang>-en.<metric>`` with step = layer.
"""

from __future__ import annotations

from typing import Any

from xlray import result_names as names
from xlray.configs import ModelConfig, RayConfig, TrackingConfig, validate
from xlray.storage import join
from xlray.sweep.config import ConceptsStep, SweepConfig
from xlray.sweep.space import adjusted_checkpoint, tuned_checkpoint
from xlray.tracking import PrefixedSink, Sink

OFF = TrackingConfig(enabled=False)


def with_lang(value: Any, lang: str) -> Any:
    """``{lang}`` in every string of nested overrides becomes the language (e.g. a dictionary's file paths)."""
    if isinstance(value, str):
        return value.replace("{lang}", lang)
    if isinstance(value, dict):
        return {k: with_lang(v, lang) for k, v in value.items()}
    if isinstance(value, list):
        return [with_lang(v, lang) for v in value]
    return value


def checkpoint_model(name: str, configs: dict[str, Any], original: ModelConfig) -> ModelConfig:
    """Where a named checkpoint of this trial lives: the original, the adjusted, or a condition's first seed."""
    if name == "original":
        return original
    if name == "adjusted":
        return ModelConfig(name=adjusted_checkpoint(configs["adjust"]))
    ev = next(c for c in configs["evaluate"] if c.condition == name.removesuffix("-tuned"))
    return ModelConfig(name=str(tuned_checkpoint(ev)))


def step_configs(
    step: ConceptsStep, model: ModelConfig, label: str, name: str, lang: str, base: str, storage: dict[str, Any]
) -> tuple:
    """The `xlray extract` and `xlray concepts` configs of one (checkpoint, language) pair, validated; ``base`` is
    their folder (a local path or a URI)."""
    from xlray.concepts.config import ConceptsConfig
    from xlray.extract.config import ExtractConfig

    files = step.files(lang).model_dump()
    extract = validate(ExtractConfig, {
        "model": model.model_dump(), "output_dir": join(base, "extract"), "languages": [lang, "en"],
        "inputs": [{"format": "parallel", **files, "source_language": lang, "target_language": "en"}],
        "ray": RayConfig(address="auto").model_dump(), "tracking": OFF.model_dump(), "storage": storage,
        "actors": 1,  # beside the sweep's other trials, not as many as the cluster holds
        **with_lang(step.extract, lang),
    }, "concepts.extract (with the trial's checkpoint and language)")  # fmt: skip
    concepts = validate(ConceptsConfig, {
        "activations": extract.output_dir, "source": lang, "target": "en", "output_dir": join(base, "concepts"),
        "dictionary": {"kind": "eflomal", **files},
        "model_label": label, "checkpoint_label": name, "tracking": OFF.model_dump(), "storage": storage,
        "ray": RayConfig(address="auto").model_dump(),  # the trial's Ray; its tasks run outside the trial's reservation
        **with_lang(step.concepts, lang),
    }, "concepts.concepts (with the trial's checkpoint and language)")  # fmt: skip
    return extract, concepts


def check_step(cfg: SweepConfig) -> None:
    """The extract and concepts overrides make valid configs (checked before any trial runs)."""
    if cfg.concepts is not None:
        label = next(iter(cfg.models))
        lang = cfg.language_groups()[0][0]
        step_configs(cfg.concepts, cfg.models[label], label, "original", lang, "check", cfg.storage.model_dump())


def run_concepts_step(
    cfg: SweepConfig, trial: dict[str, Any], configs: dict[str, Any], folder: str, sink: Sink
) -> dict[str, Any]:
    """Extract and analyse each (checkpoint, language) pair; returns the last layer's metrics as result keys."""
    from xlray.concepts.run import run_concepts
    from xlray.extract.run import run_extract

    out: dict[str, Any] = {}
    for name in cfg.concepts.checkpoints:
        model = checkpoint_model(name, configs, cfg.models[trial["model"]])
        for lang in trial["languages"].split("+"):
            base = join(folder, "concepts", name, f"{lang}-en")
            storage = cfg.storage.model_dump()
            extract, concepts = step_configs(cfg.concepts, model, trial["model"], name, lang, base, storage)
            run_extract(extract)
            prefix = names.concepts_prefix(name, lang)
            manifest = run_concepts(concepts, into=PrefixedSink(sink, prefix))
            last = str(max(int(k) for k in manifest["results"]))
            out.update({f"{prefix}{k}": v for k, v in manifest["results"][last].items()})
    return out
