"""The results a trial reports, checked against the config before any trial runs (names: ``xlray.result_names``).

zero_shot.<condition>.<language | targets_mean>.<metric>   e.g. zero_shot.continual.targets_mean.accuracy
                                                          (dev_<metric>: the dev split's, e.g. dev_accuracy)
align.<checkpoint>.<aligned | unaligned | drift | ratio>.<language | all>   at the adjustment's layer
concepts.<checkpoint>.<lang>-en.<metric>                  at the last analysed layer
sentence_alignment.<mexa_mean | mexa_max>.<pivot>-<lang | targets_mean>   MEXA pooled over layers

A search that picks trials by its metric (random, optuna, or ASHA early stopping) must pick by a dev-split score
unless ``search.allow_test_metric`` says otherwise: picking by a test score tunes on the test set. A grid search
runs every point whatever the metric, so there the metric only ranks the finished trials.
"""

from __future__ import annotations

from xlray.errors import XlrayError
from xlray.result_names import (
    ALIGN,
    ALIGN_KINDS,
    ALL,
    CONCEPTS,
    SENTENCE_ALIGNMENT,
    TARGETS_MEAN,
    ZERO_SHOT,
    dev,
    is_dev,
    parse,
    zero_shot,
)
from xlray.sweep import sentence_alignment
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
    if result.family == SENTENCE_ALIGNMENT:
        return sentence_alignment.metric_problem(cfg, name)
    return "a result name starts with zero_shot., align., concepts. or sentence_alignment."


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
    check_split(cfg)


def check_split(cfg: SweepConfig) -> None:
    """A sweep that picks trials by ``search.metric`` picks by a dev-split score, which its trials must report."""
    search, result = cfg.search, parse(cfg.search.metric)
    picker = picked_by(cfg)
    if picker is None or result.family != ZERO_SHOT:
        return
    metric = result.rest[1]
    if not is_dev(metric) and not search.allow_test_metric:
        raise XlrayError(
            f"search.metric: {search.metric!r} is a test-split score, and with {picker} choosing trials by it "
            f"tunes on the test set; use the dev score {zero_shot(result.source, result.rest[0], dev(metric))!r} "
            "(needs evaluate.task.dev) or set search.allow_test_metric: true"
        )
    problem = dev_split_problem(cfg) if is_dev(metric) and search.algorithm != "grid" else None
    if problem:
        raise XlrayError(f"search.metric: {search.metric!r} is a dev-split score, but {problem}")


def picked_by(cfg: SweepConfig) -> str | None:
    """What makes the sweep choose among trials by the search metric, or None for a plain grid."""
    if cfg.search.algorithm != "grid":
        return f"search.algorithm {cfg.search.algorithm}"
    return "scheduler.kind asha (early stopping)" if cfg.scheduler.kind == "asha" else None


def dev_split_problem(cfg: SweepConfig) -> str | None:
    """Why some trial would have no dev split to score (its task names none), or None.

    Only random and optuna search are held to it: a grid sweep (ASHA included, which stops trials on
    ``scheduler.metric``) still runs and reports every trial, and a missing score only leaves it unranked.
    """
    if "evaluate.task.dev" in cfg.space:
        values = cfg.space["evaluate.task.dev"].probe_values()
        return "space.evaluate.task.dev: a value is null" if None in values else None
    swept = cfg.space.get("evaluate.task")
    tasks = swept.probe_values() if swept else [(cfg.evaluate or {}).get("task", {})]
    for task in tasks:
        if isinstance(task, dict) and not task.get("dev"):
            where = "space.evaluate.task" if swept else "evaluate.task"
            return f"{where}: the {task.get('kind')} task names no dev split; set its dev file"
    return None
