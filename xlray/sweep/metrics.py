"""Names of the results a trial reports, checked against the config before any trial runs.

zero_shot.<condition>.<language | targets_mean>.<metric>   e.g. zero_shot.continual.targets_mean.accuracy
align.<checkpoint>.<aligned | unaligned | drift | ratio>.<language | all>   at the adjustment's layer
concepts.<checkpoint>.<lang>-en.<metric>                  at the last analysed layer
"""

from __future__ import annotations

from xlray.errors import XlrayError
from xlray.sweep.config import SweepConfig

KINDS = ("aligned", "unaligned", "drift", "ratio")


def metric_problem(cfg: SweepConfig, name: str) -> str | None:
    """Why no trial of this sweep can report ``name``; None if it can."""
    parts = name.split(".")
    groups = {lang for g in cfg.language_groups() for lang in g}
    if parts[0] == "zero_shot":
        conditions = cfg.conditions if cfg.evaluate is not None else []
        if len(parts) < 4 or parts[1] not in conditions:
            return f"expected zero_shot.<condition>.<language|targets_mean>.<metric> with a condition in {conditions}"
        if parts[2] not in groups | {"en", "targets_mean"}:
            return f"language {parts[2]!r} is not evaluated (languages: en, {sorted(groups)}, or targets_mean)"
        return None
    if parts[0] == "align":
        checkpoints = cfg.alignment_checkpoints()
        if len(parts) != 4 or parts[1] not in checkpoints or parts[2] not in KINDS:
            return (
                f"expected align.<checkpoint>.<kind>.<language|all> with a checkpoint in {checkpoints}, kind in {KINDS}"
            )
        if parts[3] not in groups | {"all"}:
            return f"language {parts[3]!r} is not adjusted (languages: {sorted(groups)} or all)"
        return None
    if parts[0] == "concepts":
        checkpoints = cfg.concepts.checkpoints if cfg.concepts else []
        if len(parts) < 4 or parts[1] not in checkpoints:
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
    if cfg.scheduler.kind != "none" and cfg.scheduler.metric.split(".")[1] not in ("original", "adjusted"):
        raise XlrayError(
            "scheduler.metric: ASHA needs a result of the first step: align.original.* or align.adjusted.*"
        )
