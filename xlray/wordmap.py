"""From whitespace-split words to subword inputs and back: word maps, whole-word truncation, subword pooling.

The papers' corpora are pre-tokenized, so words are given. An encoder's fast tokenizer takes them as words, and
its ``word_ids`` tell which subwords belong to which word. A decoder-only LLM's tokenizer takes the sentence as text
(words joined by one space, as the model read text in pretraining: the space before a word is part of the word's
first token, ``Ġword`` or ``▁word``), and each token belongs to the word its characters cover (``text_word_ids``).
Truncation at the model's limit drops whole words only, and is counted, never silent. Special tokens (BOS, EOS,
[CLS], padding) belong to no word.
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


def text_word_ids(words: list[str], offsets: list[tuple[int, int]], special: list[int]) -> list[int | None]:
    """Which word of ``" ".join(words)`` each token belongs to, from its character ``offsets``: the word holding
    its last character, where the space before a word counts as that word's (None: a special token)."""
    # Word k starts at starts[k]; from k >= 1 on it owns the space before it too, so its first character is one
    # earlier (word 0 has no space before it).
    starts = np.cumsum([0] + [len(w) + 1 for w in words[:-1]])
    bounds = np.maximum(starts - 1, 0)
    spans = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    owner = np.searchsorted(bounds, spans[:, 1] - 1, side="right") - 1
    no_word = np.asarray(special, dtype=bool) | (spans[:, 1] <= spans[:, 0])
    return [None if none else int(w) for w, none in zip(owner.tolist(), no_word.tolist(), strict=True)]


def tokenize_words(
    tokenizer: Any, sentences: list[list[str]], max_length: int, as_text: bool = False
) -> tuple[list[list[int]], list[list[int]], np.ndarray]:
    """Token ids and word ids (-1 for special tokens) per sentence, cut at whole words; and which were cut.
    ``as_text``: tokenize each sentence as text, its words joined by one space (decoder-only LLMs, see above)."""
    if as_text:
        enc = tokenizer(
            [" ".join(words) for words in sentences],
            truncation=False,
            add_special_tokens=True,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
        )
        word_ids = [
            text_word_ids(words, enc["offset_mapping"][b], enc["special_tokens_mask"][b])
            for b, words in enumerate(sentences)
        ]
    else:
        enc = tokenizer(sentences, is_split_into_words=True, truncation=False, add_special_tokens=True)
        word_ids = [enc.word_ids(b) for b in range(len(sentences))]
    ids, wids, cut = [], [], []
    for b in range(len(sentences)):
        kept_ids, kept_wids, was_cut = fit(enc["input_ids"][b], word_ids[b], max_length)
        ids.append(kept_ids)
        wids.append([-1 if w is None else w for w in kept_wids])
        cut.append(was_cut)
    return ids, wids, np.asarray(cut, dtype=bool)


def pad_id(tokenizer: Any) -> int:
    """The id that pads a batch: the tokenizer's pad token, else its EOS (LLMs often have no pad token)."""
    for token_id in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return int(token_id)
    return 0


def collate(
    ids: list[list[int]], word_ids: list[list[int]], truncated: np.ndarray, pad_id: int, left: bool = False
) -> Encoded:
    """Pad a batch of tokenized sentences (on the right, or on the ``left``) and build the flat subword-to-word
    maps."""
    import torch

    width = max((len(row) for row in ids), default=0)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    kept, first, last, token_pos, token_word = [], [], [], [], []
    for b, (row, wids) in enumerate(zip(ids, word_ids, strict=True)):
        start = width - len(row) if left else 0
        input_ids[b, start : start + len(row)] = torch.as_tensor(row, dtype=torch.long)
        mask[b, start : start + len(row)] = 1
        words: list[int] = []
        for t, w in enumerate(wids):
            if w < 0:
                continue
            flat = b * width + start + t
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


def encode_words(
    tokenizer: Any, sentences: list[list[str]], max_length: int, as_text: bool = False, left: bool = False
) -> Encoded:
    """Tokenize pre-split sentences, truncate at whole words and build the subword-to-word maps (``as_text`` and
    ``left``: see ``tokenize_words`` and ``collate``)."""
    ids, wids, cut = tokenize_words(tokenizer, sentences, max_length, as_text)
    return collate(ids, wids, cut, pad_id(tokenizer), left)


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
