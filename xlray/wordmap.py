"""From whitespace-split words to subword inputs and back: word maps, whole-word truncation, subword pooling.

The papers' corpora are pre-tokenized, so words are given; the fast tokenizer's ``word_ids`` tell which subwords
belong to which word. Truncation at the model's limit drops whole words only, and is counted, never silent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Pooling = Literal["first", "last", "mean"]


@dataclass
class Encoded:
    """A padded batch plus, for every kept word, where its subwords are.

    Flat positions index ``states.reshape(batch * tokens, hidden)``.
    """

    input_ids: Any  # LongTensor [batch, tokens]
    attention_mask: Any  # LongTensor [batch, tokens]
    kept_words: list[np.ndarray]  # per sentence: indices of the input words that have vectors
    truncated: np.ndarray  # bool [batch]: sentence lost words to the length limit
    first: Any  # LongTensor [n_words] flat position of each kept word's first subword
    last: Any  # LongTensor [n_words]
    token_pos: Any  # LongTensor [n_subwords] flat positions of all kept words' subwords
    token_word: Any  # LongTensor [n_subwords] which kept word each belongs to

    @property
    def n_words(self) -> int:
        return int(self.first.shape[0])


def split_specials(word_ids: list[int | None]) -> tuple[int, int]:
    """Number of special tokens before and after the content (e.g. [CLS] ... [SEP] gives (1, 1))."""
    head = 0
    while head < len(word_ids) and word_ids[head] is None:
        head += 1
    tail = 0
    while tail < len(word_ids) - head and word_ids[len(word_ids) - 1 - tail] is None:
        tail += 1
    return head, tail


def fit(ids: list[int], word_ids: list[int | None], max_length: int) -> tuple[list[int], list[int | None], bool]:
    """Cut the content so that the sequence fits ``max_length``, dropping only whole words."""
    if len(ids) <= max_length:
        return ids, word_ids, False
    head, tail = split_specials(word_ids)
    cut = max_length - tail
    if cut < len(ids) - tail and cut > head and word_ids[cut] is not None and word_ids[cut] == word_ids[cut - 1]:
        partial = word_ids[cut]
        while cut > head and word_ids[cut - 1] == partial:
            cut -= 1
    end = len(ids) - tail
    return ids[:cut] + ids[end:], word_ids[:cut] + word_ids[end:], True


def tokenize_words(
    tokenizer: Any, sentences: list[list[str]], max_length: int
) -> tuple[list[list[int]], list[list[int]], np.ndarray]:
    """Token ids and word ids (-1 for special tokens) per sentence, cut at whole words; and which were cut."""
    enc = tokenizer(sentences, is_split_into_words=True, truncation=False, add_special_tokens=True)
    ids, wids, cut = [], [], []
    for b in range(len(sentences)):
        kept_ids, kept_wids, was_cut = fit(enc["input_ids"][b], enc.word_ids(b), max_length)
        ids.append(kept_ids)
        wids.append([-1 if w is None else w for w in kept_wids])
        cut.append(was_cut)
    return ids, wids, np.asarray(cut, dtype=bool)


def collate(ids: list[list[int]], word_ids: list[list[int]], truncated: np.ndarray, pad_id: int) -> Encoded:
    """Pad a batch of tokenized sentences and build the flat subword-to-word maps."""
    import torch

    width = max((len(row) for row in ids), default=0)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    kept, first, last, token_pos, token_word = [], [], [], [], []
    for b, (row, wids) in enumerate(zip(ids, word_ids, strict=True)):
        input_ids[b, : len(row)] = torch.as_tensor(row, dtype=torch.long)
        mask[b, : len(row)] = 1
        words: list[int] = []
        for t, w in enumerate(wids):
            if w < 0:
                continue
            flat = b * width + t
            if not words or words[-1] != w:
                words.append(w)
                first.append(flat)
                last.append(flat)
            else:
                last[-1] = flat
            token_pos.append(flat)
            token_word.append(len(first) - 1)
        kept.append(np.asarray(words, dtype=np.int32))

    def as_long(xs: list[int]) -> Any:
        return torch.tensor(xs, dtype=torch.long)

    return Encoded(
        input_ids,
        mask,
        kept,
        np.asarray(truncated, dtype=bool),
        as_long(first),
        as_long(last),
        as_long(token_pos),
        as_long(token_word),
    )


def encode_words(tokenizer: Any, sentences: list[list[str]], max_length: int) -> Encoded:
    """Tokenize pre-split sentences, truncate at whole words and build the subword-to-word maps."""
    ids, wids, cut = tokenize_words(tokenizer, sentences, max_length)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return collate(ids, wids, cut, pad)


def pool_words(states: Any, enc: Encoded, mode: Pooling) -> Any:
    """Word vectors [n_words, hidden] from subword states [batch, tokens, hidden]: first, last or mean subword."""
    flat = states.reshape(-1, states.shape[-1])
    if mode == "first":
        return flat.index_select(0, enc.first.to(flat.device))
    if mode == "last":
        return flat.index_select(0, enc.last.to(flat.device))
    import torch

    pos, word = enc.token_pos.to(flat.device), enc.token_word.to(flat.device)
    sums = torch.zeros((enc.n_words, flat.shape[-1]), dtype=torch.float32, device=flat.device)
    sums.index_add_(0, word, flat.index_select(0, pos).float())
    counts = torch.bincount(word, minlength=enc.n_words).clamp_min(1)
    return (sums / counts.unsqueeze(1)).to(flat.dtype)
