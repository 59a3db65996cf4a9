"""Result names are built and parsed in one module: what the evaluate stage logs, what a sweep trial reports,
and what the report reads back."""

from __future__ import annotations

import pytest

from xlray import result_names as names
from xlray.result_names import ResultName, ZeroShotScore, is_over_seeds, parse, parse_zero_shot


def test_an_evaluate_run_names_its_summary_tests_seeds_and_training():
    assert names.score("xl", "accuracy") == "xl.accuracy"
    assert names.score("xl", names.std("accuracy")) == "xl.accuracy_std"
    assert names.score(names.TARGETS_MEAN, "f1") == "targets_mean.f1"
    assert names.count("xl", "truncated") == "xl.n.truncated"
    assert names.paired_test("xl", "accuracy", "base", "p_value") == "xl.accuracy.vs_base.p_value"
    assert names.seed_prefix(3) + names.score("xl", "f1") == "seed3.xl.f1"
    assert names.data_count("train_examples") == "data.train_examples"
    assert (names.train_loss("align"), names.TRAIN_LR) == ("train.align_loss", "train.lr")
    assert [k for k in ("accuracy", "accuracy_std", "seeds", "f1") if names.is_metric(k)] == ["accuracy", "f1"]


def test_a_trial_names_zero_shot_align_and_concepts_results():
    assert names.zero_shot("continual", "targets_mean", "accuracy") == "zero_shot.continual.targets_mean.accuracy"
    assert names.zero_shot_prefix("base") + names.score("xl", "f1") == "zero_shot.base.xl.f1"
    assert names.align("adjusted", "ratio", names.ALL) == "align.adjusted.ratio.all"
    assert names.concepts_prefix("original", "xl") + "calign" == "concepts.original.xl-en.calign"
    assert parse("align.adjusted.ratio.all") == ResultName("align", "adjusted", ("ratio", "all"))
    assert parse("concepts.original.xl-en.calign") == ResultName("concepts", "original", ("xl-en", "calign"))
    assert parse("zero_shot") == ResultName("zero_shot", None, ())


@pytest.mark.parametrize(
    "name, score",
    [
        ("zero_shot.base.xl.accuracy", ZeroShotScore("base", "xl", "accuracy")),
        ("zero_shot.base.xl.accuracy_std", ZeroShotScore("base", "xl", "accuracy", std=True)),
        ("zero_shot.adjusted.targets_mean.f1", ZeroShotScore("adjusted", "targets_mean", "f1")),
        (
            "zero_shot.continual.xl.accuracy.vs_base.p_value",
            ZeroShotScore("continual", "xl", "accuracy", versus="base", test="p_value"),
        ),
        (
            "zero_shot.continual.xl.entity_f1.vs_adjusted.delta",
            ZeroShotScore("continual", "xl", "entity_f1", versus="adjusted", test="delta"),
        ),
    ],
)
def test_zero_shot_scores_parse_and_build_back(name, score):
    assert parse_zero_shot(name) == score
    assert score.name == name
    assert is_over_seeds(name)


@pytest.mark.parametrize(
    "name",
    [
        "zero_shot.base.xl.seeds",  # the number of seeds
        "zero_shot.base.xl.n.examples",  # a count
        "zero_shot.continual.seed0.xl.accuracy",  # one seed's score
        "zero_shot.continual.seed0.train.task_loss",
        "zero_shot.base.xl",  # too short
        "zero_shot.base.xl.accuracy.p_value",  # a test without the other condition
        "align.adjusted.ratio.all",
        "concepts.original.xl-en.calign",
    ],
)
def test_other_names_are_no_zero_shot_score(name):
    assert parse_zero_shot(name) is None


def test_over_seeds_leaves_out_one_seeds_results_and_the_seed_count():
    kept = ["zero_shot.base.xl.accuracy", "zero_shot.base.xl.n.examples", "zero_shot.base.xl.accuracy.vs_x.delta"]
    left = ["zero_shot.base.seed0.xl.accuracy", "zero_shot.base.xl.seeds", "align.adjusted.ratio.all", "zero_shot"]
    assert [n for n in kept + left if is_over_seeds(n)] == kept
