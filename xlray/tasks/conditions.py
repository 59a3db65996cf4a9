"""The three conditions of Efimov et al. generated from one evaluate config: base, adjusted, continual.

base: the original model fine-tuned plainly; adjusted: the adjusted checkpoint fine-tuned plainly, compared with
base; continual: the adjusted checkpoint fine-tuned with alignment batches (f0 = the original model), compared with
both. Run them in this order (each comparison reads the earlier runs' outcomes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xlray.configs import ModelConfig
from xlray.errors import XlrayError
from xlray.tasks.config import EvaluateConfig


def variant(template: EvaluateConfig, **changes: Any) -> EvaluateConfig:
    """A validated copy of ``template`` with some top-level fields replaced."""
    return EvaluateConfig.model_validate({**template.model_dump(mode="json"), **changes})


def efimov_conditions(
    template: EvaluateConfig, original: ModelConfig, adjusted: ModelConfig, root: str | Path
) -> list[EvaluateConfig]:
    """Configs for base, adjusted and continual (in run order), each in ``root/<condition>``.

    The template's task, languages, seeds, training and continual settings are shared; its ``continual.pairs``
    must name the pool (the pairs file of the adjustment that produced ``adjusted``).
    """
    if not template.continual.pairs:
        raise XlrayError("continual.pairs: the continual condition needs the pairs file of the adjustment")
    root = Path(root)
    folders = {name: str(root / name) for name in ("base", "adjusted", "continual")}
    plain = {**template.continual.model_dump(mode="json"), "enabled": False}
    sig = template.significance.model_dump(mode="json")
    reference = template.continual.reference or original
    cont = {**template.continual.model_dump(mode="json"), "enabled": True, "reference": reference.model_dump()}
    return [
        variant(
            template,
            model=original.model_dump(),
            condition="base",
            continual=plain,
            significance={**sig, "compare_with": {}},
            output_dir=folders["base"],
        ),
        variant(
            template,
            model=adjusted.model_dump(),
            condition="adjusted",
            continual=plain,
            significance={**sig, "compare_with": {"base": folders["base"]}},
            output_dir=folders["adjusted"],
        ),
        variant(
            template,
            model=adjusted.model_dump(),
            condition="continual",
            continual=cont,
            significance={**sig, "compare_with": {"base": folders["base"], "adjusted": folders["adjusted"]}},
            output_dir=folders["continual"],
        ),
    ]


def run_conditions(configs: list[EvaluateConfig], parent_run_id: str | None = None) -> dict[str, dict]:
    """Run the conditions in order; ``{condition: per-language summary}`` (see ``run_evaluation``)."""
    from xlray.tasks.run import run_evaluation

    return {cfg.condition: run_evaluation(cfg, parent_run_id) for cfg in configs}
