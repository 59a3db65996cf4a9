"""The optional concepts step of a trial: for each checkpoint and language, extract word activations of the
language's parallel corpus with English (Ray Data), then cluster and score CALIGN/COLAP per layer.

Logged into the trial's run as ``concepts.<checkpoint>.<lang>-en.<metric>`` with step = layer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xlray.configs import ModelConfig, RayConfig, TrackingConfig
from xlray.sweep.config import SweepConfig
from xlray.tracking import PrefixedSink, Sink

OFF = TrackingConfig(enabled=False)


def checkpoint_model(name: str, configs: dict[str, Any], original: ModelConfig) -> ModelConfig:
    """Where a named checkpoint of this trial lives: the original, the adjusted, or a condition's first seed."""
    if name == "original":
        return original
    if name == "adjusted":
        return ModelConfig(name=str(Path(configs["adjust"].output_dir) / "checkpoint"))
    ev = next(c for c in configs["evaluate"] if c.condition == name.removesuffix("-tuned"))
    return ModelConfig(name=str(Path(ev.output_dir) / f"seed-{ev.seeds[0]}" / "checkpoint"))


def run_concepts_step(
    cfg: SweepConfig, trial: dict[str, Any], configs: dict[str, Any], folder: Path, sink: Sink
) -> dict[str, Any]:
    """Extract and analyse each (checkpoint, language) pair; returns the last layer's metrics as result keys."""
    from xlray.concepts.config import ConceptsConfig
    from xlray.concepts.run import run_concepts
    from xlray.extract.config import ExtractConfig
    from xlray.extract.run import run_extract

    step = cfg.concepts
    out: dict[str, Any] = {}
    for name in step.checkpoints:
        model = checkpoint_model(name, configs, cfg.models[trial["model"]])
        for lang in trial["languages"].split("+"):
            source, english = step.source.replace("{lang}", lang), step.english.replace("{lang}", lang)
            base = folder / "concepts" / name / f"{lang}-en"
            extract = ExtractConfig.model_validate({
                "model": model.model_dump(), "output_dir": str(base / "extract"), "languages": [lang, "en"],
                "inputs": [{"format": "parallel", "source": source, "target": english,
                            "source_language": lang, "target_language": "en"}],
                "ray": RayConfig(address="auto").model_dump(), "tracking": OFF.model_dump(), **step.extract,
            })  # fmt: skip
            run_extract(extract)
            concepts = ConceptsConfig.model_validate({
                "activations": extract.output_dir, "source": lang, "target": "en", "output_dir": str(base / "concepts"),
                "dictionary": {"kind": "eflomal", "source": source, "target": english},
                "model_label": trial["model"], "checkpoint_label": name, "tracking": OFF.model_dump(), **step.concepts,
            })  # fmt: skip
            manifest = run_concepts(concepts, into=PrefixedSink(sink, f"concepts.{name}.{lang}-en."))
            last = str(max(int(k) for k in manifest["results"]))
            out.update({f"concepts.{name}.{lang}-en.{k}": v for k, v in manifest["results"][last].items()})
    return out
