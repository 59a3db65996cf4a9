"""The fine-tuning loop, written out: AdamW, linear warm-up then linear decay, gradient clipping, per-epoch losses.

Continual learning plugs in as ``extra_loss``: a callable run at every task step that returns more weighted loss
terms (alignment, regulariser); the loop adds them to the task loss and logs each unweighted mean per epoch.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import torch

from xlray import result_names as names
from xlray.tasks.config import FineTunedTask, TrainConfig
from xlray.tasks.heads import TaskModel, pad_batch, to_device
from xlray.tracking import Sink
from xlray.wordmap import pad_id

LossFn = Callable[[TaskModel, dict[str, torch.Tensor]], torch.Tensor]
ExtraLoss = Callable[[], dict[str, tuple[float, torch.Tensor]]]  # name -> (weight, unweighted loss)


def optimizer(model: TaskModel, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with no decay on biases and normalisation weights (the usual BERT fine-tuning recipe)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 or "norm" in name.lower() else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr)


def linear_schedule(opt: torch.optim.Optimizer, total: int, warmup_ratio: float) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = int(total * warmup_ratio)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def fine_tune(
    model: TaskModel,
    features: list[dict[str, Any]],
    loss_fn: LossFn,
    hyper: FineTunedTask,
    cfg: TrainConfig,
    seed: int,
    sink: Sink,
    extra_loss: ExtraLoss | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` on ``features`` for ``hyper.epochs`` epochs of ``hyper.batch_size`` at ``hyper.lr`` (the
    task's config; seeded order); returns and logs (step = epoch) the mean of each loss term per epoch."""
    if not features:
        raise ValueError("fine_tune: no training features")
    device = model.lm.device
    gen = torch.Generator().manual_seed(seed)
    steps = math.ceil(len(features) / hyper.batch_size)
    opt = optimizer(model, hyper.lr, cfg.weight_decay)
    schedule = linear_schedule(opt, steps * hyper.epochs, cfg.warmup_ratio)
    autocast = (
        torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        if cfg.mixed_precision == "bf16"
        else nullcontext()
    )
    pad = pad_id(model.lm.tokenizer)
    history = []
    model.train()
    for epoch in range(1, hyper.epochs + 1):
        order = torch.randperm(len(features), generator=gen).tolist()
        sums: dict[str, float] = defaultdict(float)
        for step in range(steps):
            rows = [features[i] for i in order[step * hyper.batch_size : (step + 1) * hyper.batch_size]]
            batch = to_device(pad_batch(rows, pad), device)
            with autocast:
                terms = {"task": (1.0, loss_fn(model, batch))}
                terms.update(extra_loss() if extra_loss else {})
                loss = sum(weight * value for weight, value in terms.values())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            opt.step()
            schedule.step()
            for name, (_, value) in terms.items():
                sums[name] += float(value.detach())
            sums["total"] += float(loss.detach())
        row = {names.train_loss(name): total / steps for name, total in sums.items()}
        row[names.TRAIN_LR] = schedule.get_last_lr()[0]
        sink.log_metrics(row, step=epoch)
        history.append(row)
    model.eval()
    return history
