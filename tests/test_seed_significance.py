"""The test over seeds (Welch's t on per-seed scores) on simulated runs whose seeds differ: calibrated where the
paired test over examples is not, powerful on a planted difference, and missing with a reason below 3 seeds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ttest_ind

from xlray.stats import MIN_SEEDS, compare_conditions, welch_test

ALPHA = 0.05
TOLERANCE = 0.03  # 300 repeats: the false-positive rate's standard error at alpha 0.05 is 1.3 points


def condition(rng: np.random.Generator, difficulty: np.ndarray, seeds: int, spread: float, shift: float = 0.0):
    """Per-example 0/1 outcomes ``(n,)`` of each seed: a seed moves every example's chance of a hit by one draw
    of N(0, spread), the way a fine-tuning seed moves the whole score."""
    return [
        (rng.random(difficulty.size) < np.clip(difficulty + shift + rng.normal(0, spread), 0, 1)).astype(float)
        for _ in range(seeds)
    ]


def rejections(repeats: int, n: int, seeds: int, spread: float, shift: float, n_resamples: int | None):
    """How often each test rejects at ALPHA: (over seeds, over examples or None if not run)."""
    rng = np.random.default_rng(20240514)
    difficulty = rng.beta(2, 1, n)  # mean accuracy ~0.67, spread across examples; one test set for all repeats
    over_seeds = over_examples = 0
    for r in range(repeats):
        a = condition(rng, difficulty, seeds, spread, shift)
        b = condition(rng, difficulty, seeds, spread)
        if n_resamples is None:
            over_seeds += welch_test([x.mean() for x in a], [x.mean() for x in b]).p_value < ALPHA
            continue
        cmp = compare_conditions(a, b, "bootstrap", n_resamples, seed=r)
        over_seeds += cmp.seeds.p_value < ALPHA
        over_examples += cmp.test.p_value < ALPHA
    return over_seeds / repeats, (over_examples / repeats if n_resamples is not None else None)


def test_identical_conditions_with_seed_spread_keep_the_seed_test_at_alpha_but_not_the_example_test():
    # 1,000 examples, 5 seeds, 2 points of seed spread: the example-level test takes seed noise for an effect
    seeds_rate, examples_rate = rejections(300, 1000, 5, 0.02, 0.0, n_resamples=300)
    assert seeds_rate <= ALPHA + TOLERANCE
    assert examples_rate > ALPHA + TOLERANCE
    assert examples_rate > 3 * seeds_rate


def test_calibrated_at_three_seeds():
    seeds_rate, _ = rejections(1000, 1000, 3, 0.01, 0.0, n_resamples=None)
    assert seeds_rate <= ALPHA + TOLERANCE


def test_a_planted_three_point_difference_is_found_in_most_repeats():
    seeds_rate, _ = rejections(200, 5010, 5, 0.005, 0.03, n_resamples=None)
    assert seeds_rate >= 0.9


def test_welch_matches_hand_computation():
    # a: mean 0.8, var 0.01, n 3; b: mean 0.7, var 0.005/3, n 4; se^2 = 0.01/3 + 0.005/12 = 0.00375
    result = welch_test([0.7, 0.8, 0.9], [0.65, 0.7, 0.75, 0.7])
    assert result.method == "welch" and result.delta == pytest.approx(0.1)
    assert result.df == pytest.approx(0.00375**2 / ((0.01 / 3) ** 2 / 2 + (0.005 / 12) ** 2 / 3))
    expected = ttest_ind([0.7, 0.8, 0.9], [0.65, 0.7, 0.75, 0.7], equal_var=False).pvalue
    assert result.p_value == pytest.approx(expected)
    assert result.ci_low < 0.1 < result.ci_high and result.missing is None


def test_fewer_than_three_seeds_is_missing_with_a_reason():
    rng = np.random.default_rng(0)
    difficulty = rng.beta(2, 1, 200)
    cmp = compare_conditions(condition(rng, difficulty, 2, 0.01), condition(rng, difficulty, 5, 0.01), n_resamples=200)
    assert MIN_SEEDS == 3
    assert cmp.seeds.p_value is None and cmp.seeds.df is None and cmp.seeds.ci_low is None
    assert cmp.seeds.missing == "2 and 5 seeds; the test over seeds needs at least 3 per condition"
    assert 0 < cmp.test.p_value <= 1  # the example-level test for this set of seeds still runs
    same = welch_test([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
    assert same.p_value is None and same.missing == "scores identical across seeds in both conditions"
