"""The three conditions of Efimov et al. generated from one evaluate config: base, adjusted, continual.

base: the original model fine-tuned plainly; adjusted: the adjusted checkpoint fine-tuned plainly, compared with
base; continual: the adjusted checkpoint fine-tuned with alignment batches (f0 = the original model), compared with
both. Run them in this order (each comparison reads the earlier runs' outcomes).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xlray.configs import ModelConfig
from xlray.errors import XlrayError
from xlray.storage import join
from xlray.tasks.config import EvaluateConfig

CONDITIONS = ("base", "adjusted", "continual")


def variant(template: EvaluateConfig, **changes: Any) -> EvaluateConfig:
    """A validated copy of ``template`` with some top-level fields replaced."""
    return EvaluateConfig.model_validate({**template.model_dump(mode="json"), **changes})


def efimov_conditions(
    template: EvaluateConfig,
    original: ModelConfig,
    adjusted: ModelConfig,
    root: str | Path,
    conditions: Sequence[str] = CONDITIONS,
) -> list[EvaluateConfig]:
    """Configs for the listed conditions of base, adjusted and continual (in run order), each in ``root/<condition>``
    (a local folder or a URI) and compared with the earlier listed ones.

    The template's task, languages, seeds, training and continual settings are shared; its ``continual.pairs``
    must name the pool (the pairs file of the adjustment that produced ``adjusted``) if continual is listed.
    """
    if "continual" in conditions and not template.continual.pairs:
        raise XlrayError("continual.pairs: the continual condition needs the pairs file of the adjustment")
    plain = {**template.continual.model_dump(mode="json"), "enabled": False}
    sig = template.significance.model_dump(mode="json")
    reference = template.continual.reference or original
    cont = {**template.continual.model_dump(mode="json"), "enabled": True, "reference": reference.model_dump()}
    setups = {
        "base": (original, plain),
        "adjusted": (adjusted, plain),
        "continual": (adjusted, cont),
    }
    configs, earlier = [], {}
    for name in CONDITIONS:
        if name not in conditions:
            continue
        model, continual = setups[name]
        configs.append(
            variant(
                template,
                model=model.model_dump(),
                condition=name,
                continual=continual,
                significance={**sig, "compare_with": dict(earlier)},
                output_dir=join(root, name),
            )
        )
        earlier[name] = join(root, name)
    return configs
