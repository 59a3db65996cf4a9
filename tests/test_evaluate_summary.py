"""An evaluate run's summary over seeds, its metric names and its terminal table, on hand-made seed results."""

from __future__ import annotations

import re

import polars as pl
import pytest
import yaml

from xlray.configs import ModelConfig
from xlray.evaluate.summary import (
    SIGNIFICANCE,
    flat_summary,
    missing_test_metrics,
    paired_test_metrics,
    summarise,
    table,
)
from xlray.outputs import write_parquet
from xlray.stats import welch_test
from xlray.tasks.config import EvaluateConfig
from xlray.tasks.outcomes import SCHEMA, compare_runs


def config(seeds: list[int]) -> EvaluateConfig:
    task = {"kind": "nli", "train": "train.tsv", "test": "test.tsv"}
    return EvaluateConfig(stage="evaluate", model=ModelConfig(name="m"), task=task, languages=["en", "xl", "xc"],
                          seeds=seeds, output_dir="out")  # fmt: skip


def results(*rows: tuple[float, float, float]) -> dict[int, dict]:
    return {seed: {"scores": {lang: {"accuracy": v} for lang, v in zip(("en", "xl", "xc"), row, strict=True)}}
            for seed, row in enumerate(rows)}  # fmt: skip


def test_mean_std_and_targets_mean_over_seeds_and_their_metric_names():
    summary = summarise(config([0, 1]), results((0.8, 0.5, 0.3), (0.6, 0.4, 0.5)))
    assert summary["languages"]["xl"] == pytest.approx({"accuracy": 0.45, "accuracy_std": 0.0707107, "seeds": 2})
    assert summary["targets_mean"] == pytest.approx({"accuracy": 0.425})  # (0.45 + 0.4) / 2, English left out
    flat = flat_summary(summary)
    assert sorted(flat) == ["en.accuracy", "en.accuracy_std", "en.seeds", "targets_mean.accuracy", "xc.accuracy",
                            "xc.accuracy_std", "xc.seeds", "xl.accuracy", "xl.accuracy_std", "xl.seeds"]  # fmt: skip
    assert table(config([0, 1]), summary["languages"]).splitlines()[2] == "  xl: accuracy 0.4500 ± 0.0707  (2 seed(s))"


def test_one_seed_has_no_std_to_log_or_print():
    summary = summarise(config([0]), results((0.8, 0.5, 0.3)))
    assert "xl.accuracy_std" not in flat_summary(summary) and flat_summary(summary)["xl.accuracy"] == 0.5
    assert table(config([0]), summary["languages"]).splitlines()[1] == "  en: accuracy 0.8000  (1 seed(s))"


def outcomes(condition: str, seeds: int, hits: list[float]) -> pl.DataFrame:
    """``seeds`` seeds of one language's 0/1 outcomes on 40 examples: seed s gets hits[s] of them right."""
    rows = [{"condition": condition, "task": "nli", "seed": s, "language": "xl", "metric": "accuracy", "example": i,
             "example_id": f"e{i}", "outcome": [float(i < 40 * hits[s])]}
            for s in range(seeds) for i in range(40)]  # fmt: skip
    return pl.DataFrame(rows, schema=SCHEMA)


def seed_tests(tmp_path) -> pl.DataFrame:
    """continual (3 seeds) against base (3 seeds: the test over seeds runs) and adjusted (2: it cannot)."""
    mine = outcomes("continual", 3, [0.75, 0.8, 0.85])
    frames = [compare_runs(mine, outcomes(name, len(hits), hits), n_resamples=200)
              for name, hits in (("base", [0.5, 0.55, 0.6]), ("adjusted", [0.7, 0.8]))]  # fmt: skip
    write_parquet(pl.concat(frames), tmp_path / SIGNIFICANCE)
    return pl.read_parquet(tmp_path / SIGNIFICANCE)


def test_significance_has_the_test_over_seeds_and_the_test_over_examples_apart(tmp_path):
    tests = seed_tests(tmp_path)
    base, adjusted = tests.sort("condition_b", descending=True).iter_rows(named=True)
    expected = welch_test([0.75, 0.8, 0.85], [0.5, 0.55, 0.6])
    assert base["seeds_test"] == "welch" and base["p_value_seeds"] == pytest.approx(expected.p_value)
    assert base["p_value_seeds_missing"] is None and base["seeds_ci_low"] < 0.25 < base["seeds_ci_high"]
    assert base["seeds_df"] == pytest.approx(expected.df)
    assert base["method"] == "bootstrap" and base["p_value"] == pytest.approx(1 / 201)  # no resample as extreme
    assert base["delta"] == pytest.approx(0.25)
    assert adjusted["p_value_seeds"] is None and adjusted["seeds_df"] is None and adjusted["seeds_ci_low"] is None
    assert adjusted["p_value_seeds_missing"] == "3 and 2 seeds; the test over seeds needs at least 3 per condition"
    assert 0 < adjusted["p_value"] <= 1
    assert tests.schema["p_value_seeds"] == pl.Float64 and tests.schema["p_value_seeds_missing"] == pl.String
    assert paired_test_metrics(tests) == {
        "xl.accuracy.vs_base.p_value_seeds": base["p_value_seeds"],
        "xl.accuracy.vs_base.p_value": base["p_value"],
        "xl.accuracy.vs_base.delta": base["delta"],
        "xl.accuracy.vs_adjusted.p_value": adjusted["p_value"],
        "xl.accuracy.vs_adjusted.delta": adjusted["delta"],
    }
    assert missing_test_metrics(tests) == {"xl.accuracy.vs_adjusted.p_value_seeds": adjusted["p_value_seeds_missing"]}


def test_the_report_reads_both_tests_and_the_missing_reason_back_from_mlflow(tmp_path):
    from xlray.sweep.report import cell, zero_shot_table
    from xlray.tracking import MlflowSink, PrefixedSink, client_for

    tests = seed_tests(tmp_path)
    client = client_for(f"sqlite:///{tmp_path / 'mlflow.db'}")
    tags = {"xlray.trial_id": "t1", "xlray.model": "bert", "xlray.languages": "xl"}
    run_id = client.create_run(client.create_experiment("x"), tags=tags).info.run_id
    sink = PrefixedSink(MlflowSink(client, run_id), "zero_shot.continual.")
    sink.log_metrics({"xl.accuracy": 0.8, **paired_test_metrics(tests)})
    for name, reason in missing_test_metrics(tests).items():
        sink.log_missing(name, reason)

    (row,) = zero_shot_table([client.get_run(run_id)], []).iter_rows(named=True)
    p_seeds = tests.filter(pl.col("condition_b") == "base")["p_value_seeds"][0]
    assert row["p_seeds_vs_base"] == pytest.approx(p_seeds) and row["p_seeds_vs_base_missing"] is None
    assert row["p_seeds_vs_adjusted"] is None and row["p_seeds_vs_adjusted_missing"].startswith("3 and 2 seeds")
    assert row["p_vs_base"] < 0.01 and row["p_vs_adjusted"] is not None
    assert (
        cell(row)
        == f"0.800 (b p_seeds={p_seeds:.3g} p={row['p_vs_base']:.3g}, a p_seeds=n/a p={row['p_vs_adjusted']:.3g})"
    )


@pytest.mark.parametrize(
    "task, seeds, why",
    [("nli", [0, 1], "seeds has 2"), ("xsr", [0, 1, 2], "XSR runs once \\(no training\\)")],
)
def test_asking_for_the_seed_test_without_three_seeds_is_a_one_line_error(tmp_path, capsys, task, seeds, why):
    from xlray.cli import main

    data = config(seeds).model_dump(mode="json") | {"significance": {"seed_test": "welch"}}
    data["task"] = {"kind": "xsr", "folder": "tatoeba"} if task == "xsr" else data["task"]
    path = tmp_path / "evaluate.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert re.fullmatch(f"xlray: error: {re.escape(str(path))}: significance.seed_test: 'welch' needs at least 3 "
                        f"seeds, but {why}; add seeds or set it to 'auto'", err)  # fmt: skip
    path.write_text(yaml.safe_dump(data | {"seeds": [0, 1, 2], "task": config([0]).task.model_dump()}))
    assert main(["validate", str(path)]) == 0
