"""The results a trial reports, checked against the config before any trial runs (names: ``xlray.result_names``).

zero_shot.<condition>.<language | targets_mean>.<metric>   e.g. zero_shot.continual.targets_mean.accuracy
align.<checkpoint>.<aligned | unaligned | drift | ratio>.<language | all>   at the adjustment's layer
concepts.<checkpoint>.<lang>-en.<metric>                  at the last analysed layer
"""

from __future__ import annotations

from xlray.errors import XlrayError
from xlray.result_names import ALIGN, ALIGN_KINDS, ALL, CONCEPTS, TARGETS_MEAN, ZERO_SHOT, parse
from xlray.sweep.config import SweepConfig


def metric_problem(cfg: SweepConfig, name: str) -> str | None:
    """Why no trial of this sweep can report ``name``; None if it can."""
    result = parse(name)
    groups = {lang for g in cfg.language_groups() for lang in g}
    if result.family == ZERO_SHOT:
        conditions = cfg.conditions if cfg.evaluate is not None else []
        if len(result.rest) < 2 or result.source not in conditions:
            return f"expected zero_shot.<condition>.<language|targets_mean>.<metric> with a condition in {conditions}"
        if result.rest[0] not in groups | {"en", TARGETS_MEAN}:
            return f"language {result.rest[0]!r} is not evaluated (languages: en, {sorted(groups)}, or targets_mean)"
        return None
    if result.family == ALIGN:
        checkpoints = cfg.alignment_checkpoints()
        if len(result.rest) != 2 or result.source not in checkpoints or result.rest[0] not in ALIGN_KINDS:
            return (
                f"expected align.<checkpoint>.<kind>.<language|all> with a checkpoint in {checkpoints}, "
                f"kind in {ALIGN_KINDS}"
            )
        if result.rest[1] not in groups | {ALL}:
            return f"language {result.rest[1]!r} is not adjusted (languages: {sorted(groups)} or all)"
        return None
    if result.family == CONCEPTS:
        checkpoints = cfg.concepts.checkpoints if cfg.concepts else []
        if len(result.rest) < 2 or result.source not in checkpoints:
            return f"expected concepts.<checkpoint>.<lang>-en.<metric> with a checkpoint in {checkpoints}"
        return None
    return "a result name starts with zero_shot., align. or concepts."


def check_metrics(cfg: SweepConfig) -> None:
    """The search metric (and the scheduler's) must be a result this sweep's trials report."""
    named = [("search.metric", cfg.search.metric)]
    if cfg.scheduler.kind != "none":
        named.append(("scheduler.metric", cfg.scheduler.metric))
    for field, name in named:
        problem = metric_problem(cfg, name)
        if problem:
            raise XlrayError(f"{field}: {name!r} is not a result of this sweep: {problem}")
    if cfg.scheduler.kind != "none" and parse(cfg.scheduler.metric).source not in ("original", "adjusted"):
        raise XlrayError(
            "scheduler.metric: ASHA needs a result of the first step: align.original.* or align.adjusted.*"
        )
