"""Paired significance tests and seed summaries: known answers on constructed inputs."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from xlray.stats import compare_conditions, paired_bootstrap, permutation_test, pool_seeds, seed_summary, welch_test
from xlray.tasks.metrics import f1_statistic

TESTS = [paired_bootstrap, permutation_test]


@pytest.mark.parametrize("test", TESTS)
def test_identical_conditions_give_p_one(test):
    outcomes = np.array([1, 0, 1, 1, 0, 1, 0, 0, 1, 1] * 20, dtype=float)
    result = test(outcomes, outcomes.copy(), n_resamples=2000, seed=3)
    assert result.delta == 0.0
    assert result.p_value == 1.0


@pytest.mark.parametrize("test", TESTS)
def test_always_right_against_always_wrong_is_significant(test):
    result = test(np.ones(200), np.zeros(200), n_resamples=2000, seed=0)
    assert result.delta == 1.0
    assert result.p_value == pytest.approx(1 / 2001)  # no resample is as extreme; add-one keeps p above 0
    assert result.p_value < 0.01


@pytest.mark.parametrize("test", TESTS)
def test_seeded_determinism(test):
    rng = np.random.default_rng(7)
    a = (rng.random(150) < 0.6).astype(float)
    b = (rng.random(150) < 0.5).astype(float)
    first, again = test(a, b, n_resamples=3000, seed=11), test(a, b, n_resamples=3000, seed=11)
    assert first == again
    assert test(a, b, n_resamples=3000, seed=12).p_value != first.p_value


def test_permutation_matches_exact_sign_flip_distribution():
    # differences (1, 1, 1, 1, 0): of the 16 sign patterns of the non-zero ones, 2 reach |mean| >= 0.8
    a, b = np.array([1.0, 1, 1, 1, 0]), np.zeros(5)
    result = permutation_test(a, b, n_resamples=20_000, seed=1)
    assert result.p_value == pytest.approx(2 / 16, abs=0.01)


def test_bootstrap_matches_exact_resampling_distribution():
    a, b = np.array([1.0, 0, 0, 0, 1]), np.array([0.0, 0, 0, 1, 0])  # differences (1, 0, 0, -1, 1), mean 0.2
    diffs = a - b
    draws = [np.mean(diffs[list(idx)]) for idx in itertools.product(range(5), repeat=5)]
    exact = np.mean([abs(d - 0.2) >= 0.2 - 1e-12 for d in draws])
    result = paired_bootstrap(a, b, n_resamples=20_000, seed=2)
    assert result.delta == pytest.approx(0.2)
    assert result.p_value == pytest.approx(exact, abs=0.015)
    assert result.ci_low < 0.2 < result.ci_high


def test_bootstrap_ci_of_a_constant_difference():
    result = paired_bootstrap(np.ones(50), np.zeros(50), n_resamples=500, seed=0)
    assert (result.ci_low, result.ci_high) == (1.0, 1.0)


@pytest.mark.parametrize("test", TESTS)
def test_f1_statistic_on_count_rows(test):
    # per-sentence (tp, predicted, gold): A finds every entity, B finds none of them
    a = np.array([[2, 2, 2]] * 40, dtype=float)
    b = np.array([[0, 1, 2]] * 40, dtype=float)
    result = test(a, b, n_resamples=1000, seed=0, statistic=f1_statistic)
    assert result.delta == 1.0
    assert result.p_value == pytest.approx(1 / 1001)
    assert test(a, a, n_resamples=200, seed=0, statistic=f1_statistic).p_value == 1.0


def test_mismatched_outcomes_are_refused():
    with pytest.raises(ValueError, match=r"equal, non-empty shapes; got \(3,\) and \(4,\)"):
        paired_bootstrap(np.ones(3), np.ones(4))


def test_seed_summary_t_interval():
    summary = seed_summary([0.7, 0.8, 0.9])
    assert summary.n == 3
    assert summary.mean == pytest.approx(0.8)
    assert summary.std == pytest.approx(0.1)
    half = 0.24841377117503302  # t(0.975, df=2) * 0.1 / sqrt(3)
    assert (summary.ci_low, summary.ci_high) == pytest.approx((0.8 - half, 0.8 + half))
    single = seed_summary([0.5])
    assert single.mean == 0.5 and math.isnan(single.std) and math.isnan(single.ci_low)


def test_compare_conditions_pools_seeds_per_example():
    a_runs = [np.array([1.0, 1, 0, 1]), np.array([1.0, 0, 0, 1])]
    b_runs = [np.array([0.0, 0, 0, 1]), np.array([0.0, 0, 1, 1])]
    assert pool_seeds(a_runs).tolist() == [1.0, 0.5, 0.0, 1.0]
    result = compare_conditions(a_runs, b_runs, method="permutation", n_resamples=500, seed=0)
    assert (result.a.mean, result.b.mean) == (pytest.approx(0.625), pytest.approx(0.375))
    assert result.test.method == "permutation"
    assert result.test.delta == pytest.approx(0.25)
    with pytest.raises(ValueError, match="same examples"):
        pool_seeds([np.ones(3), np.ones(4)])


def test_compare_conditions_tests_each_seeds_own_score_over_seeds():
    # entity F1 per seed from its own counts (tp, predicted, gold): A 1, 0.8, 0.5 and B 0.5, 0, 0.25 ...
    a_runs = [np.array([[2.0, 2, 2]]), np.array([[2.0, 3, 2]]), np.array([[1.0, 2, 2]])]
    b_runs = [np.array([[1.0, 2, 2]]), np.array([[0.0, 1, 2]]), np.array([[1.0, 6, 2]])]
    result = compare_conditions(a_runs, b_runs, n_resamples=200, statistic=f1_statistic)
    a_f1, b_f1 = [1.0, 0.8, 0.5], [0.5, 0.0, 0.25]  # ... 2 tp / (3 + 2) * 2 = 0.8, 2 / (6 + 2) = 0.25
    assert result.seeds == welch_test(a_f1, b_f1)
    assert result.seeds.delta == pytest.approx(np.mean(a_f1) - np.mean(b_f1)) and 0 < result.seeds.p_value < 1
    assert result.test.method == "bootstrap"  # over examples: F1 of the counts pooled over seeds
    assert result.test.delta == pytest.approx(2 * (5 / 3) / (7 / 3 + 2) - 2 * (2 / 3) / (3 + 2))
