"""An evaluate run's summary over seeds, its metric names and its terminal table, on hand-made seed results."""

from __future__ import annotations

import pytest

from xlray.configs import ModelConfig
from xlray.evaluate.summary import flat_summary, summarise, table
from xlray.tasks.config import EvaluateConfig


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
