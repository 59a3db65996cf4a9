"""The cross-lingual adjustment loss on one layer: L = L_align + λ · L_reg (Cao et al. 2020; Efimov et al. 2023).

L_align is the mean, over word links (and special-token anchors), of the squared L2 distance between the foreign
word vector and its English word vector; L_reg is the mean, over English words and special tokens (Efimov et al.
include [CLS]/[SEP]; ``reg_specials``), of the squared L2 distance between the trained model's English vectors and
those of the frozen original. Continual learning calls :func:`alignment_loss` with its own weights on the two parts.

An ``encoder`` here is what :func:`xlray.models.encoder_of` gives (``BertModel``, or mT5's ``model.encoder``), or
any module called as ``encoder(input_ids=, attention_mask=, output_hidden_states=True)`` whose output has
``hidden_states`` (h0 = embeddings, ..., hL); :func:`xlray.models.layer_states` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from xlray.adjust.config import LossConfig
from xlray.adjust.pairs import Link, PairBatch
from xlray.models import layer_states
from xlray.wordmap import Encoded, encode_words, pool_words


@dataclass
class LossParts:
    """The loss and its parts (scalar tensors), with the counts behind the means."""

    total: torch.Tensor  # align + reg_lambda * reg
    align: torch.Tensor
    reg: torch.Tensor
    n_links: int  # word links plus anchor links
    n_english_words: int
    lost_links: int  # links to a word cut off by the length limit
    n_reg_rows: int  # English words, plus their special tokens with reg_specials: the rows behind reg


def inputs_of(enc: Encoded) -> dict[str, torch.Tensor]:
    """The model inputs of a word-mapped batch, for :func:`xlray.models.layer_states`."""
    return {"input_ids": enc.input_ids, "attention_mask": enc.attention_mask}


def link_rows(
    src_kept: list[np.ndarray], en_kept: list[np.ndarray], links: list[list[Link]]
) -> tuple[list[int], list[int], int]:
    """Rows of the pooled foreign and English word matrices for each link, from each sentence's kept words;
    links to a word cut off by the length limit are counted, not used."""
    src_rows, en_rows, lost = [], [], 0
    src_off = np.cumsum([0] + [len(k) for k in src_kept])
    en_off = np.cumsum([0] + [len(k) for k in en_kept])
    for b, pair_links in enumerate(links):
        src_pos = {int(w): int(src_off[b]) + r for r, w in enumerate(src_kept[b])}
        en_pos = {int(w): int(en_off[b]) + r for r, w in enumerate(en_kept[b])}
        for i, j in pair_links:
            if i in src_pos and j in en_pos:
                src_rows.append(src_pos[i])
                en_rows.append(en_pos[j])
            else:
                lost += 1
    return src_rows, en_rows, lost


def special_positions(enc: Encoded) -> list[list[int]]:
    """Flat positions of each sentence's special tokens ([CLS]/[SEP], <s>/</s>, mT5's </s>), in order."""
    mask = enc.attention_mask.numpy().astype(bool).reshape(-1)
    mask[enc.token_pos.numpy()] = False
    width = enc.input_ids.shape[1]
    flat = np.flatnonzero(mask)
    return [flat[(flat >= b * width) & (flat < (b + 1) * width)].tolist() for b in range(enc.input_ids.shape[0])]


def anchor_rows(src: list[list[int]], en: list[list[int]]) -> tuple[list[int], list[int]]:
    """Pair the k-th special token of each foreign sentence with the k-th of its English sentence."""
    src_rows, en_rows = [], []
    for s, e in zip(src, en, strict=True):
        n = min(len(s), len(e))
        src_rows += s[:n]
        en_rows += e[:n]
    return src_rows, en_rows


def take(x: torch.Tensor, rows: list[int]) -> torch.Tensor:
    """Rows of a [n, hidden] matrix (or of a flattened [batch, tokens, hidden] one)."""
    flat = x.reshape(-1, x.shape[-1])
    return flat.index_select(0, torch.tensor(rows, dtype=torch.long, device=x.device))


def squared_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean over rows of the squared L2 distance, in float32 (0 for no rows)."""
    if a.shape[0] == 0:
        return a.new_zeros((), dtype=torch.float32)
    return (a.float() - b.float()).pow(2).sum(-1).mean()


def alignment_loss(
    encoder: torch.nn.Module,
    original: torch.nn.Module,
    tokenizer: Any,
    batch: PairBatch,
    cfg: LossConfig,
    max_length: int,
) -> LossParts:
    """The adjustment loss of one batch of aligned pairs; gradients flow into ``encoder`` only.

    Args:
        encoder: the model being trained (see the module docstring for what it must accept).
        original: the frozen original model of the same architecture (run without gradients).
        tokenizer: the fast tokenizer of both models.
        batch: word-aligned pairs; links are (foreign word index, English word index).
        cfg: layer, subword pooling, target (trainable or frozen English), λ, anchors and whether L_reg holds the
            special tokens.
        max_length: token limit; words beyond it are cut whole and their links counted in ``lost_links``.
    """
    # Both sides in one forward pass: one forward per backward, as DistributedDataParallel requires.
    n = len(batch)
    enc = encode_words(tokenizer, batch.source + batch.english, max_length)
    enc_en = encode_words(tokenizer, batch.english, max_length)
    h = layer_states(encoder, inputs_of(enc))["encoder"][cfg.layer]
    with torch.no_grad():
        h_orig = layer_states(original, inputs_of(enc_en))["encoder"][cfg.layer]
    words, w_orig = pool_words(h, enc, cfg.pooling), pool_words(h_orig, enc_en, cfg.pooling)
    n_src_words = sum(len(k) for k in enc.kept_words[:n])
    w_src, w_en = words[:n_src_words], words[n_src_words:]
    src_rows, en_rows, lost = link_rows(enc.kept_words[:n], enc.kept_words[n:], batch.links)
    a, b = take(w_src, src_rows), take(w_en if cfg.target == "trainable" else w_orig, en_rows)
    specials, orig_specials = special_positions(enc), special_positions(enc_en)
    if cfg.anchors:
        h_target, en_specials = (h, specials[n:]) if cfg.target == "trainable" else (h_orig, orig_specials)
        src_anchor, en_anchor = anchor_rows(specials[:n], en_specials)
        a, b = torch.cat([a, take(h, src_anchor)]), torch.cat([b, take(h_target, en_anchor)])
    en, en_orig = w_en, w_orig
    if cfg.reg_specials:
        now, then = anchor_rows(specials[n:], orig_specials)  # the same English sentences, k-th special with k-th
        en, en_orig = torch.cat([w_en, take(h, now)]), torch.cat([w_orig, take(h_orig, then)])
    align = squared_distance(a, b)
    reg = squared_distance(en, en_orig)
    return LossParts(align + cfg.reg_lambda * reg, align, reg, a.shape[0], enc_en.n_words, lost, en.shape[0])
