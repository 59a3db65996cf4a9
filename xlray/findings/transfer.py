"""The seed papers' transfer findings on a pretrained tiny model, through xlray's own stages.

`xlray adjust` adjusts the twin pretrained at ``transfer.dose`` on the world's parallel text, every target
language at once (eflomal links; Cao et al. align languages jointly), and `xlray evaluate` fine-tunes it on
English NLI and tests it zero-shot as base / adjusted / continual (``xlray.tasks.conditions``), over
``transfer.seeds``. Every fine-tuned checkpoint is then probed like the pretrained models
(``xlray.findings.planted``), on the same held-out meanings.

The findings:

- ``adjustment-transfer-<lang>`` (Efimov et al.): adjusted beats base in zero-shot accuracy, in each language;
- ``continual-transfer-<lang>`` (Efimov et al.): continual learning beats plain fine-tuning of the adjusted model.
  Both take the difference of the seed means with Welch's t over seeds as the interval and p-value (the seeds'
  spread is in its null; ``xlray.stats``), so they need at least 3 seeds. The paired bootstrap over examples (for
  this set of seeds) is in the detail.
- ``adjustment-separates`` (Efimov et al.): the adjusted model's related - unrelated gap is wider than the
  pretrained model's;
- ``forgetting`` (Efimov et al.): English fine-tuning narrows that gap again (the adjusted model against its
  fine-tuned checkpoints);
- ``continual-keeps-alignment`` (Efimov et al.): continual learning's checkpoints keep a wider gap than plain
  fine-tuning's;
- ``finetuning-raises-alignment`` (Mousi et al.): fine-tuning the pretrained model (base) raises its translation
  advantage (word level, not CALIGN).

The gaps and advantages are averaged over layers and, for fine-tuned models, over the seeds' checkpoints; each is a
paired bootstrap over the held-out meanings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from xlray.adjust.config import AdjustConfig
from xlray.configs import ModelConfig
from xlray.findings.config import FindingsConfig
from xlray.findings.planted import Probe, ProbeScores, probe_scores
from xlray.findings.verdict import Finding, interval_finding, paired_finding
from xlray.tasks.conditions import efimov_conditions
from xlray.tasks.config import EvaluateConfig
from xlray.tracking import PrefixedSink, Sink

EFIMOV = "Efimov et al. 2023"
MOUSI = "Mousi et al. 2024 (word-level advantage, not CALIGN)"
PRETRAINED, ADJUSTED = "pretrained", "adjusted"


def probe_model(folder: str | Path, items: list[Probe]) -> ProbeScores:
    """Load the encoder at ``folder`` (a pretrained model or a fine-tuned checkpoint) and score the probes."""
    from xlray.models import load_model

    return probe_scores(load_model(ModelConfig(name=str(folder))), items)


def seed_mean(seeds: list[ProbeScores]) -> ProbeScores:
    """Scores averaged over the checkpoints of several seeds (same probes)."""
    return ProbeScores(np.mean([s.advantage for s in seeds], axis=0), np.mean([s.related_gap for s in seeds], axis=0),
                       np.mean([s.cosine_gap for s in seeds], axis=0).tolist())  # fmt: skip


def stage_configs(cfg: FindingsConfig, model: Path, out: Path) -> tuple[AdjustConfig, list[EvaluateConfig]]:
    """The adjustment of ``model`` and the three evaluate runs after it, with outputs under ``out``."""
    t, world = cfg.transfer, cfg.assets_at(cfg.transfer_dose()) / "world"
    parallel, xnli, src = world / "parallel", world / "tasks" / "xnli", cfg.world.source
    targets = [lang for lang in cfg.world.languages if lang != src]
    quiet = {"enabled": False}  # they log into the findings run
    adjust = AdjustConfig.model_validate({
        "model": {"name": str(model)},
        "corpus": {"format": "lines", "source": str(parallel / f"{{lang}}-{src}.{{lang}}"),
                   "english": str(parallel / f"{{lang}}-{src}.{src}")},
        "languages": targets,
        "pairs": {"max_sent": t.adjust_sentences, "heldout_sent": t.heldout_sentences},
        "optim": {"lr": t.adjust_lr},
        "seed": cfg.seed,
        "output_dir": str(out / "adjust"),
        "tracking": quiet,
    })  # fmt: skip
    template = EvaluateConfig.model_validate({
        "model": {"name": str(model)},
        "task": {"kind": "nli", "train": str(xnli / f"multinli.train.{src}.tsv"), "test": str(xnli / "xnli.test.tsv"),
                 "lr": t.task_lr, "epochs": t.task_epochs, "batch_size": t.task_batch_size},
        "languages": [src, *targets],
        "seeds": t.seeds,
        "continual": {"pairs": str(out / "adjust" / "pairs.parquet")},
        "significance": {"seed_test": "welch", "n_resamples": cfg.resamples, "seed": cfg.seed},
        "output_dir": str(out / "evaluate"),
        "tracking": quiet,
    })  # fmt: skip
    adjusted = ModelConfig(name=str(out / "adjust" / "checkpoint"))
    return adjust, efimov_conditions(template, ModelConfig(name=str(model)), adjusted, out / "evaluate")


def run_stages(adjust: AdjustConfig, evaluate: list[EvaluateConfig], sink: Sink) -> None:
    """Adjust, then fine-tune and test each condition; each stage resumes where it finished and logs into
    ``sink`` under ``transfer.<stage or condition>.``."""
    from xlray.adjust.run import run_adjust
    from xlray.evaluate.run import run_evaluation

    run_adjust(adjust, into=PrefixedSink(sink, "transfer.adjust."))
    for ev in evaluate:
        run_evaluation(ev, into=PrefixedSink(sink, f"transfer.{ev.condition}."))


def zero_shot_findings(cfg: FindingsConfig, evaluate: list[EvaluateConfig]) -> list[Finding]:
    """Adjusted against base and continual against adjusted, per target language, from evaluate's own tests."""
    from xlray.evaluate.summary import SIGNIFICANCE

    runs = {ev.condition: ev for ev in evaluate}
    found = []
    for name, a, b, claim in (
        ("adjustment-transfer", "adjusted", "base", "adjustment improves zero-shot transfer"),
        ("continual-transfer", "continual", "adjusted", "continual learning improves zero-shot transfer further"),
    ):
        tests = pl.read_parquet(Path(runs[a].output_dir) / SIGNIFICANCE).filter(
            (pl.col("condition_b") == b) & (pl.col("metric") == "accuracy") & (pl.col("language") != cfg.world.source)
        )
        for row in tests.sort("language").iter_rows(named=True):
            over_examples = {k: row[k] for k in ("delta", "ci_low", "ci_high", "p_value", "method", "n_examples")}
            detail = {f"{a}_mean": row["a_mean"], f"{a}_std": row["a_std"], f"{b}_mean": row["b_mean"],
                      f"{b}_std": row["b_std"], "over_examples": over_examples,
                      "seeds_test_missing": row["p_value_seeds_missing"]}  # fmt: skip
            found.append(interval_finding(
                f"{name}-{row['language']}", f"{claim} to {row['language']} (NLI accuracy, {a} vs {b};"
                f" Welch's t over {row['a_seeds']} seeds)", EFIMOV, row["a_mean"] - row["b_mean"],
                (nan_if_none(row["seeds_ci_low"]), nan_if_none(row["seeds_ci_high"])),
                nan_if_none(row["p_value_seeds"]), cfg.transfer.smallest_accuracy, row["a_seeds"], detail,
            ))  # fmt: skip
    return found


def nan_if_none(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def tuned_checkpoints(ev: EvaluateConfig) -> list[Path]:
    """The fine-tuned model of each seed of one condition."""
    from xlray.tasks.outcomes import seed_folder

    return [Path(seed_folder(ev.output_dir, seed)) / "checkpoint" for seed in ev.seeds]


def probe_conditions(
    model: Path, adjust: AdjustConfig, evaluate: list[EvaluateConfig], items: list[Probe]
) -> dict[str, ProbeScores]:
    """The pretrained and adjusted models and each condition's fine-tuned checkpoints (scores averaged over the
    seeds), on the probes: ``pretrained``, ``adjusted``, ``<condition>-tuned``."""
    probed = {
        PRETRAINED: probe_model(model, items),
        ADJUSTED: probe_model(Path(adjust.output_dir) / "checkpoint", items),
    }
    for ev in evaluate:
        probed[f"{ev.condition}-tuned"] = seed_mean([probe_model(folder, items) for folder in tuned_checkpoints(ev)])
    return probed


def alignment_findings(cfg: FindingsConfig, probed: dict[str, ProbeScores]) -> list[Finding]:
    """The gap and advantage findings of the module docstring, each a paired bootstrap over meanings."""
    gap = {name: p.related_gap.mean(axis=1) for name, p in probed.items()}
    common = {"n_resamples": cfg.resamples, "seed": cfg.seed}
    return [
        paired_finding("adjustment-separates", "adjustment widens the related - unrelated gap (adjusted vs"
                       " pretrained)", EFIMOV, gap[ADJUSTED], gap[PRETRAINED], cfg.smallest_gap, **common),
        paired_finding("forgetting", "English fine-tuning narrows the adjusted model's related - unrelated gap"
                       " (adjusted vs adjusted, fine-tuned)", EFIMOV, gap[ADJUSTED], gap["adjusted-tuned"],
                       cfg.smallest_gap, **common),
        paired_finding("continual-keeps-alignment", "continual learning keeps a wider related - unrelated gap than"
                       " plain fine-tuning (continual vs adjusted, fine-tuned)", EFIMOV, gap["continual-tuned"],
                       gap["adjusted-tuned"], cfg.smallest_gap, **common),
        paired_finding("finetuning-raises-alignment", "fine-tuning raises alignment (base fine-tuned vs"
                       " pretrained; translation advantage)", MOUSI, probed["base-tuned"].advantage.mean(axis=1),
                       probed[PRETRAINED].advantage.mean(axis=1), cfg.smallest_effect, **common),
    ]  # fmt: skip


def zero_shot_scores(evaluate: list[EvaluateConfig]) -> dict[str, dict[str, list[float]]]:
    """condition -> language -> accuracy per seed (findings.json's "transfer")."""
    import json

    scores: dict[str, dict[str, list[float]]] = {}
    for ev in evaluate:
        for folder in tuned_checkpoints(ev):
            result = json.loads((folder.parent / "result.json").read_text(encoding="utf-8"))
            for lang, row in result["scores"].items():
                scores.setdefault(ev.condition, {}).setdefault(lang, []).append(row["accuracy"])
    return scores


def transfer_findings(
    cfg: FindingsConfig, model: Path, items: list[Probe], out: Path, sink: Sink
) -> tuple[list[Finding], dict[str, Any]]:
    """Run the stages (resuming finished ones) and return the findings and findings.json's "transfer" part."""
    adjust, evaluate = stage_configs(cfg, model, out)
    run_stages(adjust, evaluate, sink)
    probed = probe_conditions(model, adjust, evaluate, items)
    found = [*zero_shot_findings(cfg, evaluate), *alignment_findings(cfg, probed)]
    part = {
        "model": str(model),
        "zero_shot": zero_shot_scores(evaluate),
        "related_gap": {name: p.related_gap.mean(axis=0).tolist() for name, p in probed.items()},
        "advantage": {name: p.advantage.mean(axis=0).tolist() for name, p in probed.items()},
    }
    return found, part
