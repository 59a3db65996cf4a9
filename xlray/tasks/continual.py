"""Continual learning: every task step also takes an alignment batch from the aligned-pair pool (Efimov et al.).

loss = task + align_weight * L_align + base_weight * L_reg, with `xlray adjust`'s loss on pairs drawn with
replacement from the pool, and L_reg against the frozen original model f0 (see :func:`reference_config`).

The papers' weights (0.01 and 1) are relative to the task's cross-entropy and apply to ``F.mse_loss``, the mean
over words *and hidden units*; `xlray adjust`'s parts are per-word squared distances (summed over hidden units),
so they are divided by the hidden size here. Without that, alignment would weigh hidden_size times more (768x for
mBERT) and swamp the task gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import yaml
from pydantic import ValidationError

from xlray.configs import ModelConfig
from xlray.errors import XlrayError, one_line
from xlray.models import LoadedModel, encoder_of, load_model
from xlray.storage import join
from xlray.tasks.config import EvaluateConfig
from xlray.tasks.train import ExtraLoss
from xlray.textio import is_file, open_binary

ADJUST_RECORD = "adjust_config.yaml"  # the config `xlray adjust` saves into its checkpoint (xlray.adjust.run)


def reference_config(cfg: EvaluateConfig) -> ModelConfig:
    """f0: ``continual.reference``; else the model the starting checkpoint was adjusted from, as its
    ``adjust_config.yaml`` says; else the starting checkpoint, which `xlray adjust` then did not write (the
    original). Never the adjusted model itself: the regulariser must pull English back to the original. The
    starting checkpoint may be a local folder or a URI (the record is read where it is)."""
    if cfg.continual.reference is not None:
        return cfg.continual.reference
    record = join(cfg.model.name, ADJUST_RECORD)
    if not is_file(record):
        return cfg.model
    try:
        with open_binary(record) as f:
            return ModelConfig.model_validate(yaml.safe_load(f.read().decode("utf-8"))["model"])
    except (OSError, XlrayError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, ValidationError) as exc:
        raise XlrayError(
            f"{record}: cannot read the model {cfg.model.name} was adjusted from ({one_line(exc)}); "
            "set continual.reference to the original model"
        ) from None


def reference_model(cfg: EvaluateConfig, device: str) -> LoadedModel:
    """The frozen f0 of :func:`reference_config`, in float32 and without gradients."""
    ref = reference_config(cfg).model_copy(update={"dtype": "float32"})
    original = load_model(ref, device)
    original.model.requires_grad_(False).eval()
    return original


def alignment_terms(cfg: EvaluateConfig, lm: LoadedModel, seed: int) -> tuple[ExtraLoss, dict[str, int]]:
    """The extra loss terms of continual learning for the model being fine-tuned, and the pool's size."""
    from xlray.adjust.config import LossConfig
    from xlray.adjust.loss import alignment_loss
    from xlray.adjust.pairs import load_pool

    c = cfg.continual
    if not -(lm.num_layers + 1) <= c.layer <= lm.num_layers:
        raise XlrayError(f"continual.layer: {c.layer} is out of range; the model has hidden states 0..{lm.num_layers}")
    pool = load_pool(c.pairs, c.pool_size, seed, c.languages)
    if not len(pool):
        raise XlrayError(f"continual.pairs: {c.pairs} has no training pairs for languages {c.languages or 'any'}")
    original = reference_model(cfg, str(lm.device))
    if original.tokenizer.get_vocab() != lm.tokenizer.get_vocab():
        raise XlrayError(f"continual.reference: {original.cfg.name} has another vocabulary than {lm.cfg.name}")
    loss_cfg = LossConfig(
        layer=c.layer, pooling=c.pooling, target=c.target, anchors=c.anchors, reg_specials=c.reg_specials, reg_lambda=1
    )
    encoder, frozen = encoder_of(lm), encoder_of(original)
    rng = np.random.default_rng(seed)

    per_unit = 1.0 / lm.hidden_size  # per-word squared distance -> mean squared error per hidden unit

    def terms() -> dict[str, tuple[float, Any]]:
        parts = alignment_loss(encoder, frozen, lm.tokenizer, pool.sample(c.align_batch, rng), loss_cfg, lm.max_length)
        return {"align": (c.align_weight, parts.align * per_unit), "reg": (c.base_weight, parts.reg * per_unit)}

    return terms, {"pool_pairs": len(pool)}
