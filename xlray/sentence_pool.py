"""Sentence vectors from token states: one vector per sentence and layer (``granularity: sentence``).

Poolings, over each sentence's own tokens (padding never counts, on either side):

- ``mean``: the mean of its content tokens (those of its words; BOS, EOS, [CLS], [SEP] excluded);
- ``weighted-mean``: MEXA's position-weighted mean over the content tokens, the k-th content token weighing k:
  sum_k k·h_k / sum_k k (later tokens, which have seen more of a causal model's context, weigh more);
- ``last``: the last content token;
- ``mexa``: MEXA's own embedding (Kargaran et al. 2025, ``embd_weighted``): the position-weighted mean over every
  token the tokenizer returned, special tokens (BOS) included, the t-th real token weighing t. Its reference code
  embeds one sentence at a time; with batches the weights follow each sentence's own real tokens, so left padding
  changes nothing.

All in float32 whatever the model's dtype; the caller casts for storage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from xlray.wordmap import Encoded

SentencePooling = Literal["mean", "weighted-mean", "last", "mexa"]


def content_mask(enc: Encoded) -> Any:
    """[batch, tokens] 1 where a token belongs to a kept word (content), 0 for special tokens and padding."""
    import torch

    mask = torch.zeros(enc.attention_mask.shape, dtype=torch.float32)
    mask.view(-1)[enc.token_pos] = 1.0
    return mask


def pool_sentences(states: Any, enc: Encoded, mode: SentencePooling) -> Any:
    """Sentence vectors [batch, hidden] (float32) from token states [batch, tokens, hidden] of the batch ``enc``."""
    counted = enc.attention_mask.float() if mode == "mexa" else content_mask(enc)
    counted = counted.to(states.device)
    rank = counted.cumsum(-1) * counted  # 1, 2, ... over each sentence's counted tokens, 0 elsewhere
    if mode == "last":
        return states[range(states.shape[0]), rank.argmax(-1)].float()
    weights = counted if mode == "mean" else rank
    total = (states.float() * weights.unsqueeze(-1)).sum(1)
    return total / weights.sum(-1, keepdim=True).clamp_min(1e-12)
