"""Seeds and significance: paired tests over per-example outcomes, and mean/spread/CI over seeds.

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
class Comparison:
    """Condition A against B: each summarised over its seeds, and the paired test on pooled outcomes."""

    a: SeedSummary
    b: SeedSummary
    test: PairedTest


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
    """Compare two conditions run over seeds on the same examples: per-seed scores summarised, outcomes
    pooled over seeds per example, then one paired test."""
    tests = {"bootstrap": paired_bootstrap, "permutation": permutation_test}
    if method not in tests:
        raise ValueError(f"unknown significance test {method!r}; expected one of {sorted(tests)}")
    test = tests[method]
    return Comparison(
        seed_summary([score(r, statistic) for r in a_runs]),
        seed_summary([score(r, statistic) for r in b_runs]),
        test(pool_seeds(a_runs), pool_seeds(b_runs), n_resamples, seed, statistic),
    )
