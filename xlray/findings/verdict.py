"""A finding's verdict from its effect and confidence interval, against the smallest effect that would count.

Three outcomes, as in an equivalence test (Lakens 2017), with ``smallest`` the smallest effect of interest (in
the direction the finding predicts, > 0):

- **reproduced**: the interval lies above 0 and the effect is at least ``smallest``;
- **not reproduced**: the interval lies below ``smallest``, so any effect there is too small to count (or has the
  wrong sign);
- **inconclusive**: neither (the interval is too wide to say).

The two cannot both hold: reproduced means ``high >= effect >= smallest``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from xlray.stats import Statistic, mean_statistic, paired_bootstrap

Verdict = Literal["reproduced", "not reproduced", "inconclusive"]
VERDICTS: tuple[Verdict, ...] = ("reproduced", "not reproduced", "inconclusive")


def judge(effect: float, ci_low: float, ci_high: float, smallest: float) -> Verdict:
    """The verdict on a predicted-positive effect (see the module docstring)."""
    if smallest <= 0:
        raise ValueError(f"the smallest effect of interest must be > 0, got {smallest}")
    if ci_low > 0 and effect >= smallest:
        return "reproduced"
    if ci_high < smallest:
        return "not reproduced"
    return "inconclusive"


@dataclass(frozen=True)
class Finding:
    """One claim, its measured effect with a 95% interval and p-value, and the verdict."""

    name: str
    claim: str
    source: str  # where the claim comes from: "planted" (the world's truth) or a paper
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    smallest: float
    verdict: Verdict
    n: int  # paired units the interval is over
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def interval_finding(
    name: str,
    claim: str,
    source: str,
    effect: float,
    interval: tuple[float, float],
    p_value: float,
    smallest: float,
    n: int,
    detail: dict[str, Any] | None = None,
) -> Finding:
    """The finding whose effect and 95% interval were measured elsewhere; the verdict follows from them (an
    interval that could not be computed is NaN, so the verdict is inconclusive)."""
    low, high = interval
    return Finding(name, claim, source, effect, low, high, p_value, smallest, judge(effect, low, high, smallest), n,
                   detail or {})  # fmt: skip


def paired_finding(
    name: str,
    claim: str,
    source: str,
    a: np.ndarray,
    b: np.ndarray,
    smallest: float,
    n_resamples: int = 10_000,
    seed: int = 0,
    detail: dict[str, Any] | None = None,
    statistic: Statistic = mean_statistic,
) -> Finding:
    """The finding that statistic(a) > statistic(b) (by default their means), from outcomes paired unit by unit
    (a paired bootstrap over units, the first axis)."""
    test = paired_bootstrap(a, b, n_resamples=n_resamples, seed=seed, statistic=statistic)
    return interval_finding(name, claim, source, test.delta, (test.ci_low, test.ci_high), test.p_value, smallest,
                            len(a), detail)  # fmt: skip
