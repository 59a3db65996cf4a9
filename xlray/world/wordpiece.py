"""A WordPiece vocabulary learnt deterministically: the same words always give the same vocabulary.

`tokenizers`' WordPieceTrainer learns its vocabulary with BPE merges but gives its continuing-subword tokens ids
in hash-map order, and those ids break ties between merges, so the same corpus can give a different vocabulary in
every process (huggingface/tokenizers#1794; measured here: six processes, six vocabularies of the tiny bert). This
is the same algorithm with every tie broken by the tokens themselves:

start from the characters (a word's first as is, the rest with the ``##`` prefix), then repeatedly merge the most
frequent adjacent pair (ties: the alphabetically first pair) until the vocabulary has ``vocab_size`` tokens or
no pair is left. Tokenization is then WordPiece's greedy longest match (``tokenizers.models.WordPiece``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

PREFIX = "##"


def merged(a: str, b: str) -> str:
    return a + b.removeprefix(PREFIX)


def pieces(word: str) -> tuple[str, ...]:
    return (word[0], *(PREFIX + c for c in word[1:]))


def wordpiece_vocab(word_counts: Mapping[str, int], vocab_size: int, specials: Iterable[str]) -> dict[str, int]:
    """token -> id: the specials first, then the characters (sorted), then the merges in the order they were made."""
    vocab = list(dict.fromkeys(specials))
    words = {pieces(w): n for w, n in sorted(word_counts.items()) if w}
    vocab += sorted({p for word in words for p in word} - set(vocab))
    known = set(vocab)
    while len(vocab) < vocab_size:
        pairs: Counter[tuple[str, str]] = Counter()
        for word, n in words.items():
            for pair in zip(word, word[1:], strict=False):
                pairs[pair] += n
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        token = merged(*best)
        if token not in known:
            vocab.append(token)
            known.add(token)
        words = {merge_pair(word, best, token): n for word, n in words.items()}
    return {token: i for i, token in enumerate(vocab)}


def merge_pair(word: tuple[str, ...], pair: tuple[str, str], token: str) -> tuple[str, ...]:
    """``word`` with every non-overlapping occurrence of ``pair`` (left to right) replaced by ``token``."""
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(token)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)
