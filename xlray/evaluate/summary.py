"""An evaluate run's results over its seeds: mean and spread per language, the paired tests against earlier
conditions, and the table printed for the terminal.

``summary.json``: ``{"languages": {language: {metric, metric_std, seeds}}, "targets_mean": {metric: value}}``;
``significance.parquet``: one row per (language, metric, earlier condition) with two tests, see
``xlray.tasks.outcomes.compare_runs``: ``p_value_seeds`` over seeds (Welch's t; None with a reason in
``p_value_seeds_missing`` below 3 seeds) and ``p_value`` over examples for this set of seeds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from xlray import result_names as names
from xlray.outputs import write_parquet
from xlray.stats import seed_summary
from xlray.storage import join
from xlray.tasks.config import EvaluateConfig
from xlray.tasks.outcomes import compare_runs, read_outcomes

SOURCE = "en"  # the fine-tuning language; the other languages are zero-shot targets
SIGNIFICANCE = "significance.parquet"


def summarise(cfg: EvaluateConfig, results: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Mean and spread over seeds per language and metric; ``targets_mean``: the unweighted mean over the
    non-English languages of each metric's seed mean."""
    languages: dict[str, dict[str, float]] = {}
    for lang in cfg.languages:
        metrics = next(iter(results.values()))["scores"][lang]
        row: dict[str, float] = {}
        for metric in metrics:
            stats = seed_summary([r["scores"][lang][metric] for r in results.values()])
            row[metric], row[names.std(metric)] = stats.mean, stats.std
        row[names.SEEDS] = len(results)
        languages[lang] = row
    targets = [lang for lang in cfg.languages if lang != SOURCE]
    metric_names = [m for m in languages[cfg.languages[0]] if names.is_metric(m)]
    targets_mean = {m: float(np.mean([languages[t][m] for t in targets])) for m in metric_names} if targets else {}
    return {"languages": languages, "targets_mean": targets_mean}


def flat_summary(summary: dict[str, Any]) -> dict[str, float]:
    """The summary as metrics (``<language>.<key>``, ``targets_mean.<metric>``), NaN (one seed's std) left out."""
    flat = {names.score(lang, k): v for lang, row in summary["languages"].items() for k, v in row.items()}
    flat.update({names.score(names.TARGETS_MEAN, k): v for k, v in summary["targets_mean"].items()})
    return {k: v for k, v in flat.items() if not (isinstance(v, float) and math.isnan(v))}


def significance(cfg: EvaluateConfig, out: str | Path, seeds: list[int]) -> pl.DataFrame | None:
    """Tests of this run's outcomes (its current seeds) against each earlier run in ``compare_with`` (local paths or
    URIs), over seeds and over examples, written to ``out/significance.parquet``; None if there are none."""
    sig = cfg.significance
    if not sig.compare_with:
        return None
    mine = read_outcomes(out).filter(pl.col("seed").is_in(seeds))
    frames = []
    for name, folder in sig.compare_with.items():
        other = read_outcomes(folder).with_columns(pl.lit(name).alias("condition"))
        frames.append(compare_runs(mine, other, sig.method, sig.n_resamples, sig.seed))
    tests = pl.concat(frames)
    write_parquet(tests, join(out, SIGNIFICANCE))
    return tests


def paired_test_metrics(tests: pl.DataFrame) -> dict[str, float]:
    """The tests as metrics: ``<language>.<metric>.vs_<other>.<delta | p_value>`` (over examples, this set of
    seeds) and ``...vs_<other>.p_value_seeds`` (over seeds) where it could be computed."""
    metrics = {}
    for r in tests.iter_rows(named=True):
        for k in names.TESTS:
            metrics[names.paired_test(r["language"], r["metric"], r["condition_b"], k)] = r[k]
        if r["p_value_seeds"] is not None:
            metrics[names.seed_test(r["language"], r["metric"], r["condition_b"])] = r["p_value_seeds"]
    return metrics


def missing_test_metrics(tests: pl.DataFrame) -> dict[str, str]:
    """``{...vs_<other>.p_value_seeds: why it is missing}`` for the tests over seeds that could not be computed."""
    return {
        names.seed_test(r["language"], r["metric"], r["condition_b"]): r["p_value_seeds_missing"]
        for r in tests.iter_rows(named=True)
        if r["p_value_seeds"] is None
    }


def table(cfg: EvaluateConfig, summary: dict[str, dict[str, float]]) -> str:
    """Per-language means (± std over seeds) for the terminal."""
    lines = [f"evaluate {cfg.task.kind} ({cfg.condition}), results in {cfg.output_dir}"]
    for lang, row in summary.items():
        cells = [
            f"{m} {v:.4f}" + (f" ± {std:.4f}" if (std := row.get(names.std(m))) is not None and std == std else "")
            for m, v in row.items()
            if names.is_metric(m)
        ]
        lines.append(f"  {lang}: " + ", ".join(cells) + f"  ({row[names.SEEDS]} seed(s))")
    return "\n".join(lines)
