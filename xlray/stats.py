"""Seeds and significance: paired tests over per-example outcomes, a test over seeds, and mean/spread/CI over seeds.

Two tests answer two questions. ``welch_test`` on per-seed scores asks whether the conditions differ beyond
seed-to-seed variance (fine-tuning mBERT moves zero-shot scores by a point or more between seeds, Wu & Dredze
2020). ``paired_bootstrap`` and ``permutation_test`` on outcomes pooled over seeds ask whether they differ beyond
test-set sampling *for this set of seeds*: they treat the seeds as fixed, so seed variance alone makes them reject.

Per-example outcomes are arrays of shape ``(n,)`` (0/1 or per-example F1) or ``(n, k)`` (e.g. per-sentence
entity counts). A *statistic* maps a batch of resampled outcomes ``(B, n, ...)`` to one score per resample
``(B,)``; the default is the mean, and ``xlray.tasks.metrics.f1_statistic`` recomputes micro F1 from counts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Statistic = Callable[[np.ndarray], np.ndarray]
CHUNK_ELEMENTS = 2_000_000  # resampled values held at once; bounds memory, results do not depend on it
MIN_SEEDS = 3  # per condition, for the test over seeds: with 2 the seed variance is a guess from one difference


def mean_statistic(batch: np.ndarray) -> np.ndarray:
    """Mean outcome per resample: ``(B, n)`` -> ``(B,)``."""
    return batch.mean(axis=1)


@dataclass(frozen=True)
class PairedTest:
    """A two-sided paired test of condition A against B; ``delta`` = statistic(A) - statistic(B)."""

    method: str
    delta: float
    p_value: float
    n_resamples: int
    ci_low: float = math.nan
    ci_high: float = math.nan


@dataclass(frozen=True)
class SeedSummary:
    """Mean, sample standard deviation and a t-based confidence interval of one score over seeds."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class SeedTest:
    """A two-sided test of A's per-seed scores against B's; ``delta`` = mean(A) - mean(B) over seeds.

    ``p_value``, ``df`` and the CI are None when the test cannot be computed, and ``missing`` says why.
    """

    method: str
    delta: float
    p_value: float | None
    df: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    missing: str | None = None


@dataclass(frozen=True)
class Comparison:
    """Condition A against B: each summarised over its seeds; ``seeds``: the test over seeds; ``test``: the
    paired test on outcomes pooled over seeds (test-set sampling only, for this set of seeds)."""

    a: SeedSummary
    b: SeedSummary
    test: PairedTest
    seeds: SeedTest


def paired(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check that two outcome arrays pair up example by example."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim == 0 or a.shape[0] == 0:
        raise ValueError(f"paired outcomes need equal, non-empty shapes; got {a.shape} and {b.shape}")
    return a, b


def score(outcomes: np.ndarray, statistic: Statistic) -> float:
    """The statistic of one (unresampled) outcome array."""
    return float(statistic(np.asarray(outcomes, dtype=np.float64)[None])[0])


def chunks(n_resamples: int, row_size: int) -> list[int]:
    """Split resamples into batches that hold at most ``CHUNK_ELEMENTS`` values."""
    size = max(1, CHUNK_ELEMENTS // max(1, row_size))
    return [min(size, n_resamples - start) for start in range(0, n_resamples, size)]


def p_value(extreme: int, n_resamples: int) -> float:
    """Add-one p-value, never exactly zero: (1 + resamples at least as extreme) / (1 + resamples)."""
    return (1 + extreme) / (1 + n_resamples)


def paired_bootstrap(
    a: np.ndarray,
    b: np.ndarray,
    n_resamples: int = 10_000,
    seed: int = 0,
    statistic: Statistic = mean_statistic,
) -> PairedTest:
    """Paired bootstrap: resample examples with replacement; p is how often the resampled delta, shifted
    to the null, is as far from 0 as the observed one; the CI is the 95% percentile interval of delta."""
    a, b = paired(a, b)
    delta = score(a, statistic) - score(b, statistic)
    rng = np.random.default_rng(seed)
    deltas = []
    for size in chunks(n_resamples, a.size):
        idx = rng.integers(0, a.shape[0], size=(size, a.shape[0]))
        deltas.append(statistic(a[idx]) - statistic(b[idx]))
    boot = np.concatenate(deltas)
    tol = 1e-12 * max(1.0, abs(delta))
    extreme = int(np.count_nonzero(np.abs(boot - delta) >= abs(delta) - tol))
    low, high = np.percentile(boot, [2.5, 97.5])
    return PairedTest("bootstrap", delta, p_value(extreme, n_resamples), n_resamples, float(low), float(high))


def permutation_test(
    a: np.ndarray,
    b: np.ndarray,
    n_resamples: int = 10_000,
    seed: int = 0,
    statistic: Statistic = mean_statistic,
) -> PairedTest:
    """Approximate randomisation: swap each example's A and B outcomes with probability 1/2; p is how often
    the swapped delta is at least as far from 0 as the observed one."""
    a, b = paired(a, b)
    delta = score(a, statistic) - score(b, statistic)
    rng = np.random.default_rng(seed)
    tol = 1e-12 * max(1.0, abs(delta))
    extreme = 0
    for size in chunks(n_resamples, a.size):
        swap = rng.random((size, a.shape[0])) < 0.5
        swap = swap.reshape(swap.shape + (1,) * (a.ndim - 1))
        shuffled = statistic(np.where(swap, b, a)) - statistic(np.where(swap, a, b))
        extreme += int(np.count_nonzero(np.abs(shuffled) >= abs(delta) - tol))
    return PairedTest("permutation", delta, p_value(extreme, n_resamples), n_resamples)


def seed_summary(values: Sequence[float], confidence: float = 0.95) -> SeedSummary:
    """Mean, sample std (ddof 1) and Student-t CI over seeds; std and CI are NaN for a single seed."""
    from scipy.stats import t

    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"seed_summary needs a non-empty list of scores, got shape {x.shape}")
    mean = float(x.mean())
    if x.size == 1:
        return SeedSummary(1, mean, math.nan, math.nan, math.nan)
    std = float(x.std(ddof=1))
    half = float(t.ppf(0.5 + confidence / 2, df=x.size - 1)) * std / math.sqrt(x.size)
    return SeedSummary(int(x.size), mean, std, mean - half, mean + half)


def welch_test(a_scores: Sequence[float], b_scores: Sequence[float], confidence: float = 0.95) -> SeedTest:
    """Welch's t-test on per-seed scores, each condition's seeds an independent sample (unequal variances).

    t = (mean_a - mean_b) / se,  se^2 = s_a^2/n_a + s_b^2/n_b,
    df = se^4 / ((s_a^2/n_a)^2/(n_a-1) + (s_b^2/n_b)^2/(n_b-1))  (Welch-Satterthwaite),  p = 2 P(T_df > |t|).

    Why this test: its null includes the seed variance, estimated from the seeds themselves, and it stays
    calibrated at 3-10 seeds because the t distribution accounts for that estimate being noisy; a per-seed score
    is a mean over thousands of examples, so near normal. Reimers & Gurevych (2017, "Reporting Score
    Distributions Makes a Difference"; 2018, "Why Comparing Single Performance Scores Does Not Allow to Draw
    Conclusions") compare score distributions over seeds with Welch's t-test for this reason. The alternatives
    fail at few seeds: a hierarchical bootstrap resamples 3-5 seeds with replacement, which shrinks their variance
    by (n-1)/n and leaves few distinct resamples (anti-conservative); a permutation over 3 + 3 seeds has 20
    splits, so p never falls below 0.1; ASO (Dror et al. 2019; Ulmer et al. 2022) gives a violation ratio, not a
    p-value, and Bouthillier et al. (2021) ask for ~30 runs per condition. Seeds are not paired across conditions
    (different starting checkpoints), hence the two-sample form. ``missing`` when a condition has fewer than
    ``MIN_SEEDS`` seeds, or neither condition's scores vary over seeds (t undefined).
    """
    from scipy.stats import t

    a, b = np.asarray(a_scores, dtype=np.float64), np.asarray(b_scores, dtype=np.float64)
    delta = float(a.mean() - b.mean()) if a.size and b.size else math.nan
    if min(a.size, b.size) < MIN_SEEDS:
        reason = f"{a.size} and {b.size} seeds; the test over seeds needs at least {MIN_SEEDS} per condition"
        return SeedTest("welch", delta, None, missing=reason)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    if se <= 1e-12 * max(1.0, abs(float(a.mean())), abs(float(b.mean()))):  # rounding, not spread
        return SeedTest("welch", delta, None, missing="scores identical across seeds in both conditions")
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    p = float(2 * t.sf(abs(delta) / se, df))
    half = float(t.ppf(0.5 + confidence / 2, df)) * se
    return SeedTest("welch", delta, p, float(df), delta - half, delta + half)


def pool_seeds(runs: Sequence[np.ndarray]) -> np.ndarray:
    """Average per-example outcomes over seeds (same examples, same order), keeping the example pairing."""
    arrays = [np.asarray(r, dtype=np.float64) for r in runs]
    if not arrays or any(r.shape != arrays[0].shape for r in arrays):
        raise ValueError(f"seeds must score the same examples; got shapes {[r.shape for r in arrays]}")
    return np.mean(arrays, axis=0)


def compare_conditions(
    a_runs: Sequence[np.ndarray],
    b_runs: Sequence[np.ndarray],
    method: Literal["bootstrap", "permutation"] = "bootstrap",
    n_resamples: int = 10_000,
    seed: int = 0,
    statistic: Statistic = mean_statistic,
) -> Comparison:
    """Compare two conditions run over seeds on the same examples: per-seed scores summarised and tested over
    seeds (``welch_test``), and outcomes pooled over seeds per example for the paired test over examples."""
    tests = {"bootstrap": paired_bootstrap, "permutation": permutation_test}
    if method not in tests:
        raise ValueError(f"unknown significance test {method!r}; expected one of {sorted(tests)}")
    test = tests[method]
    a_scores, b_scores = [score(r, statistic) for r in a_runs], [score(r, statistic) for r in b_runs]
    return Comparison(
        seed_summary(a_scores),
        seed_summary(b_scores),
        test(pool_seeds(a_runs), pool_seeds(b_runs), n_resamples, seed, statistic),
        welch_test(a_scores, b_scores),
    )
