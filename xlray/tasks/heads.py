"""Task heads on a multilingual encoder: sequence classification, token classification and span extraction.

The encoder is the loaded base model (``LoadedModel.model``); for mT5 only its encoder runs. Heads read the
family's last layer from :func:`xlray.models.layer_states`. Heads are fresh, small modules, except that
:class:`PoolerHead` reuses the checkpoint's pretrained pooler; ``TaskModel`` holds encoder and head so that one
optimiser trains both.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from xlray.models import LoadedModel, layer_states


class ClassificationHead(nn.Module):
    """Pooled sequence -> dense + tanh -> labels (the RoBERTa classification head, for every family)."""

    def __init__(self, hidden: int, n_labels: int, pooling: Literal["first", "mean"], dropout: float = 0.1):
        super().__init__()
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, n_labels)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[batch, tokens, hidden] -> [batch, labels]."""
        if self.pooling == "first":
            pooled = states[:, 0]
        else:
            weights = mask.unsqueeze(-1).to(states.dtype)
            pooled = (states * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        return self.out(self.dropout(torch.tanh(self.dense(self.dropout(pooled)))))


class PoolerHead(nn.Module):
    """The checkpoint's own pooler (first token -> dense + tanh) -> dropout -> labels, as
    ``AutoModelForSequenceClassification`` builds it for BERT; the pooler is the encoder's module, trained with it."""

    def __init__(self, pooler: nn.Module, hidden: int, n_labels: int, dropout: float = 0.1):
        super().__init__()
        self.pooler = pooler
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, n_labels)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[batch, tokens, hidden] -> [batch, labels]."""
        return self.out(self.dropout(self.pooler(states)))


class TokenHead(nn.Module):
    """Per-token labels: [batch, tokens, hidden] -> [batch, tokens, labels]."""

    def __init__(self, hidden: int, n_labels: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, n_labels)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(states))


class SpanHead(nn.Module):
    """Start and end logits per token: [batch, tokens, hidden] -> [batch, tokens, 2]; padding gets -inf."""

    def __init__(self, hidden: int):
        super().__init__()
        self.out = nn.Linear(hidden, 2)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = self.out(states)
        return logits.masked_fill(~mask.bool().unsqueeze(-1), torch.finfo(logits.dtype).min)


class TaskModel(nn.Module):
    """Encoder plus head; ``forward(batch)`` returns the head's logits."""

    def __init__(self, lm: LoadedModel, head: nn.Module):
        super().__init__()
        self.encoder = lm.model
        self.head = head
        self.lm = lm

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """Logits of the head on the last layer's states [batch, tokens, hidden] (BERT also gets segment ids)."""
        states = layer_states(self.lm, batch)["encoder"][self.lm.family.last_layer]
        return self.head(states, batch["attention_mask"])


def pad_batch(features: list[dict[str, Any]], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad token-level lists to the longest row: input ids with ``pad_id``, ``labels`` with -100, others 0."""
    out: dict[str, torch.Tensor] = {}
    for key in features[0]:
        values = [f[key] for f in features]
        if not isinstance(values[0], list):
            out[key] = torch.tensor(values)
            continue
        fill = pad_id if key == "input_ids" else (-100 if key == "labels" else 0)
        width = max(len(v) for v in values)
        out[key] = torch.tensor([v + [fill] * (width - len(v)) for v in values], dtype=torch.long)
    return out


def to_device(batch: dict[str, torch.Tensor], device: Any) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}
