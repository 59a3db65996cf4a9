"""Per-example outcomes as Parquet, and significance between conditions computed from them.

Each seed of an `xlray evaluate` run writes ``seed-<s>/outcomes.parquet``: one row per (language, metric,
example) with the example's outcome (a list: ``[hit]``, ``[f1]``, or ``[tp, predicted, gold]`` for entity F1), so
that a later report can compare any two runs on the same examples without re-running them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import polars as pl

from xlray.errors import XlrayError
from xlray.stats import compare_conditions, mean_statistic
from xlray.storage import join, list_folders
from xlray.tasks.common import LangResult
from xlray.tasks.metrics import f1_statistic
from xlray.textio import is_file, open_binary

OUTCOMES = "outcomes.parquet"
SCHEMA = {
    "condition": pl.String,
    "task": pl.String,
    "seed": pl.Int64,
    "language": pl.String,
    "metric": pl.String,
    "example": pl.Int64,
    "example_id": pl.String,
    "outcome": pl.List(pl.Float64),
}
STATISTICS = {"entity_f1": f1_statistic}  # metric -> statistic over outcomes; default: the mean
# compare_runs' columns whose values may all be missing (None), typed so frames concatenate
NULLABLE = {"p_value_seeds": pl.Float64, "seeds_df": pl.Float64, "seeds_ci_low": pl.Float64,
            "seeds_ci_high": pl.Float64, "p_value_seeds_missing": pl.String}  # fmt: skip


def outcome_frame(results: Iterable[LangResult], condition: str, task: str, seed: int) -> pl.DataFrame:
    """One row per (language, metric, example)."""
    columns: dict[str, list] = {key: [] for key in SCHEMA}
    for res in results:
        for metric in res.metrics:
            values = metric.per_example.reshape(len(res.example_ids), -1).tolist()
            n = len(values)
            columns["condition"] += [condition] * n
            columns["task"] += [task] * n
            columns["seed"] += [seed] * n
            columns["language"] += [res.language] * n
            columns["metric"] += [metric.name] * n
            columns["example"] += list(range(n))
            columns["example_id"] += res.example_ids
            columns["outcome"] += values
    return pl.DataFrame(columns, schema=SCHEMA)


def read_outcomes(output_dir: str | Path) -> pl.DataFrame:
    """All seeds' outcomes of one evaluate run (its ``seed-*/outcomes.parquet``, a local folder or a URI)."""
    files = outcome_files(output_dir)
    if not files:
        raise XlrayError(f"{output_dir}: no seed-*/{OUTCOMES}; is it the output_dir of a finished `xlray evaluate`?")
    frames = []
    for path in files:
        with open_binary(path) as f:
            frames.append(pl.read_parquet(f))
    return pl.concat(frames)


SEED_PREFIX = "seed-"


def seed_folder(output_dir: str | Path, seed: int) -> str:
    """One seed's folder of an evaluate run (``seed-<s>``: its checkpoint, outcomes and result.json)."""
    return join(output_dir, f"{SEED_PREFIX}{seed}")


def outcome_files(output_dir: str | Path) -> list[str]:
    """The ``seed-*/outcomes.parquet`` files of an evaluate run, in seed-folder order (local or in a bucket)."""
    seeds = list_folders(output_dir, SEED_PREFIX)
    return [path for seed in seeds if is_file(path := join(output_dir, seed, OUTCOMES))]


def runs_of(frame: pl.DataFrame, language: str, metric: str) -> tuple[list[np.ndarray], list[str]]:
    """Per-seed outcome arrays (seed order) for one language and metric, and the example ids they cover."""
    part = frame.filter((pl.col("language") == language) & (pl.col("metric") == metric)).sort("seed", "example")
    runs, ids = [], None
    for (_seed,), rows in part.group_by("seed", maintain_order=True):
        seed_ids = rows["example_id"].to_list()
        if ids is not None and seed_ids != ids:
            raise XlrayError(f"outcomes: seeds of {language}/{metric} scored different examples")
        ids = seed_ids
        values = np.array(rows["outcome"].to_list(), dtype=np.float64)
        runs.append(values[:, 0] if values.shape[1] == 1 else values)
    return runs, ids or []


def compare_runs(
    a: pl.DataFrame, b: pl.DataFrame, method: str = "bootstrap", n_resamples: int = 10_000, seed: int = 0
) -> pl.DataFrame:
    """Condition A against B per (language, metric) they share: mean, std and n over seeds of each, and two tests
    (``xlray.stats.compare_conditions``).

    Over seeds (seed variance in the null): ``p_value_seeds`` (Welch's t on per-seed scores, ``seeds_test``),
    ``seeds_df``, ``seeds_ci_low``/``seeds_ci_high`` (95% CI of a_mean - b_mean); all None, with the reason in
    ``p_value_seeds_missing``, when a condition has fewer than 3 seeds.
    Over examples, for this set of seeds (outcomes averaged over seeds per example, seeds held fixed): ``delta``,
    ``p_value``, ``ci_low``/``ci_high``, ``method`` (bootstrap or permutation), ``n_examples``.
    """
    rows = []
    shared = ["language", "metric"]
    keys = a.select(shared).unique().join(b.select(shared).unique(), on=shared)
    for language, metric in sorted(keys.iter_rows()):
        a_runs, a_ids = runs_of(a, language, metric)
        b_runs, b_ids = runs_of(b, language, metric)
        if a_ids != b_ids:
            raise XlrayError(
                f"outcomes: {language}/{metric}: the conditions scored different examples "
                f"({len(a_ids)} vs {len(b_ids)}); compare runs on the same test files"
            )
        cmp = compare_conditions(a_runs, b_runs, method, n_resamples, seed, STATISTICS.get(metric, mean_statistic))
        rows.append(
            {
                "language": language,
                "metric": metric,
                "condition_a": a["condition"][0],
                "condition_b": b["condition"][0],
                "a_mean": cmp.a.mean,
                "a_std": cmp.a.std,
                "a_seeds": cmp.a.n,
                "b_mean": cmp.b.mean,
                "b_std": cmp.b.std,
                "b_seeds": cmp.b.n,
                "p_value_seeds": cmp.seeds.p_value,
                "p_value_seeds_missing": cmp.seeds.missing,
                "seeds_test": cmp.seeds.method,
                "seeds_df": cmp.seeds.df,
                "seeds_ci_low": cmp.seeds.ci_low,
                "seeds_ci_high": cmp.seeds.ci_high,
                "delta": cmp.test.delta,
                "p_value": cmp.test.p_value,
                "ci_low": cmp.test.ci_low,
                "ci_high": cmp.test.ci_high,
                "method": cmp.test.method,
                "n_examples": len(a_ids),
            }
        )
    return pl.DataFrame(rows, schema_overrides=NULLABLE if rows else None)
