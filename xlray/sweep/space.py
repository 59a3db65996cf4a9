"""The search space and the stage configs of one trial, generated from the sweep's templates.

A trial is ``{"model": label, "languages": "xl+xc", "adjust.loss.reg_lambda": 1.0, ...}``: the sweep's model and
language group plus one value per hyperparameter. From it and the templates come the trial's `xlray adjust`
config and its evaluate configs (one per condition), so a trial runs exactly what the stage commands run. The
trial's folder may be a local path or a URI (``xlray.storage``); its stage configs get the sweep's storage settings.
"""

from __future__ import annotations

import copy
import difflib
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from xlray.adjust.config import AdjustConfig
from xlray.configs import ModelConfig, TrackingConfig, validate
from xlray.errors import XlrayError
from xlray.storage import join
from xlray.sweep.config import TEMPLATES, Dimension, SweepConfig, group_label
from xlray.tasks.config import EvaluateConfig

SWEPT = ("model", "languages")  # the trial keys that are not hyperparameters


def template(cfg: SweepConfig, stage: str) -> dict[str, Any]:
    """A stage template as a complete dict (defaults filled in) with placeholder model and folders (the sweep
    config checked it when it loaded, see ``SweepConfig.template``)."""
    if getattr(cfg, stage) is None:
        raise XlrayError(f"space: a hyperparameter of {stage}.* needs the sweep's {stage} template")
    return cfg.template(stage).model_dump(mode="json")


def check_space(cfg: SweepConfig) -> None:
    """The templates make valid stage configs for every model and language group, every hyperparameter names an
    existing field, and every value it can take gives a valid stage config."""
    for label in cfg.models:
        for group in cfg.language_groups():
            probe(cfg, {"model": label, "languages": group_label(group)}, "")
    first = {"model": next(iter(cfg.models)), "languages": group_label(cfg.language_groups()[0])}
    for key, dim in cfg.space.items():
        stage, _, path = key.partition(".")
        if stage not in TEMPLATES or not path:
            raise XlrayError(f"space.{key}: a hyperparameter is adjust.<field path> or evaluate.<field path>")
        fields = template(cfg, stage)
        if not has_path(fields, path.split(".")):
            known = sorted(f"{stage}.{p}" for p in leaf_paths(fields))
            close = difflib.get_close_matches(key, known, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(known[:40])}"
            raise XlrayError(f"space.{key}: unknown hyperparameter{hint}")
        if cfg.search.algorithm == "grid" and dim.kind != "grid":
            raise XlrayError(f"space.{key}: search.algorithm grid needs grid values, not {dim.kind}")
        for value in dim.probe_values():
            probe(cfg, {**first, key: value}, f"space.{key}={value!r}: ")


def probe(cfg: SweepConfig, trial: dict[str, Any], where: str) -> None:
    """Build (and so validate) one trial's stage configs; errors say which hyperparameter value caused them."""
    try:
        stage_configs(cfg, trial, "trial", TrackingConfig(enabled=False))
    except XlrayError as exc:
        raise XlrayError(f"{where}{exc}") from None


def has_path(data: Any, parts: list[str]) -> bool:
    for part in parts:
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return True


def leaf_paths(data: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in data.items():
        if key in ("stage", "model", "languages", "output_dir", "tracking", "storage", "condition"):
            continue
        out.extend(leaf_paths(value, f"{prefix}{key}.") if isinstance(value, dict) else [f"{prefix}{key}"])
    return out


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in nested dicts, creating the parents a partial template leaves out."""
    *parents, last = dotted.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[last] = value


def overridden(cfg: SweepConfig, stage: str, trial: dict[str, Any]) -> dict[str, Any]:
    """The stage template with this trial's hyperparameters set."""
    fields = copy.deepcopy(getattr(cfg, stage))
    for key, value in trial.items():
        if key.startswith(f"{stage}."):
            set_path(fields, key.split(".", 1)[1], value)
    return fields


def stage_configs(
    cfg: SweepConfig, trial: dict[str, Any], folder: str | Path, tracking: TrackingConfig
) -> dict[str, BaseModel | list[EvaluateConfig] | None]:
    """``{"adjust": AdjustConfig | None, "evaluate": [EvaluateConfig per condition, in run order]}``, their outputs
    in ``folder`` (local or a URI)."""
    from xlray.tasks.conditions import efimov_conditions, variant

    original = cfg.models[trial["model"]]
    group = trial["languages"].split("+")
    per_trial = {"tracking": tracking.model_dump(), "storage": cfg.storage.model_dump()}
    adjust = None
    if cfg.adjust is not None:
        fields = overridden(cfg, "adjust", trial)
        fields.update(stage="adjust", model=original.model_dump(), languages=group,
                      output_dir=join(folder, "adjust"), **per_trial)  # fmt: skip
        adjust = validate(AdjustConfig, fields, "adjust (with this trial's hyperparameters)")
    evaluate: list[EvaluateConfig] = []
    if cfg.evaluate is not None:
        fields = overridden(cfg, "evaluate", trial)
        if adjust is not None:
            continual = {**fields.get("continual", {}), "pairs": join(folder, "adjust", "pairs.parquet")}
            fields["continual"] = continual
        fields.update(stage="evaluate", model=original.model_dump(), languages=["en", *group],
                      output_dir=join(folder, "evaluate"), **per_trial)  # fmt: skip
        tmpl = validate(EvaluateConfig, fields, "evaluate (with this trial's hyperparameters)")
        if adjust is None:
            evaluate = [variant(tmpl, condition="base", output_dir=join(folder, "evaluate", "base"))]
        else:
            adjusted = ModelConfig(name=adjusted_checkpoint(adjust))
            # Retrieval (XSR) has no fine-tuning, so there is nothing to learn continually.
            conditions = [c for c in cfg.conditions if not (tmpl.task.kind == "xsr" and c == "continual")]
            evaluate = efimov_conditions(tmpl, original, adjusted, join(folder, "evaluate"), conditions)
    return {"adjust": adjust, "evaluate": evaluate}


def adjusted_checkpoint(adjust: AdjustConfig) -> str:
    """Where the trial's adjustment writes its checkpoint (a local path or a URI)."""
    return join(adjust.output_dir, "checkpoint")


def tuned_checkpoint(ev: EvaluateConfig) -> str:
    """The model a condition fine-tuned with its first seed (the ``<condition>-tuned`` checkpoint of a trial)."""
    from xlray.tasks.outcomes import seed_folder

    return join(seed_folder(ev.output_dir, ev.seeds[0]), "checkpoint")


def param_space(cfg: SweepConfig) -> dict[str, Any]:
    """The Tune search space: model and language group as grids (categorical under Optuna), then the space."""
    from ray import tune

    optuna = cfg.search.algorithm == "optuna"
    space: dict[str, Any] = {}
    for key, values in (("model", list(cfg.models)), ("languages", [group_label(g) for g in cfg.language_groups()])):
        space[key] = (tune.choice(values) if optuna else tune.grid_search(values)) if len(values) > 1 else values[0]
    for key, dim in cfg.space.items():
        space[key] = distribution(dim, optuna)
    return space


def distribution(dim: Dimension, optuna: bool) -> Any:
    from ray import tune

    if dim.grid is not None:
        return tune.choice(dim.grid) if optuna else tune.grid_search(dim.grid)
    if dim.choice is not None:
        return tune.choice(dim.choice)
    if dim.uniform is not None:
        return tune.uniform(*dim.uniform)
    if dim.loguniform is not None:
        return tune.loguniform(*dim.loguniform)
    return tune.randint(*dim.randint)


def trial_label(trial: dict[str, Any]) -> str:
    """A run name from the model, the languages and the hyperparameters' last field names."""
    parts = [str(trial["model"]), str(trial["languages"])]
    for key, value in sorted(trial.items()):
        if key not in SWEPT:
            shown = f"{value:.3g}" if isinstance(value, float) else str(value)
            if isinstance(value, dict):  # a whole sub-config, e.g. evaluate.task: named by its kind
                shown = str(value.get("kind", "+".join(map(str, value.values()))))
            parts.append(f"{key.rsplit('.', 1)[-1]}={shown}")
    return "-".join(parts)


def count_trials(cfg: SweepConfig) -> int:
    """Trials the sweep runs: the product of its grids (models, language groups, grid dimensions) times
    ``num_samples``; under Optuna, ``num_samples``."""
    if cfg.search.algorithm == "optuna":
        return cfg.search.num_samples
    grids = [len(cfg.models), len(cfg.language_groups())] + [len(d.grid) for d in cfg.space.values() if d.grid]
    return math.prod(grids) * cfg.search.num_samples
