"""The per-word-type occurrence cap, decided the same way wherever and in whatever order chunks run.

Each occurrence gets a hash of (sentence id, word index, word); a type keeps the ``cap`` occurrences with the
smallest hashes (a uniform sample of its occurrences, not the first ones in the corpus). A first cheap pass
collects each chunk's smallest hashes per type; merged, they give a threshold per type that occurs more than
``cap`` times. Resumed and distributed runs therefore keep exactly the same rows.

Hashes are computed a chunk at a time: blake2b of each sentence id and of each distinct word, mixed with the word's
index by splitmix64 in numpy, so no Python-level hash runs per occurrence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

UNCAPPED = (1 << 64) - 1
GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def stable_hash(text: str) -> int:
    """A 64-bit hash of a string, the same on every machine and Python version."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a bijective mix of 64-bit values (arithmetic wraps modulo 2**64)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def type_key(language: str | None, word: str) -> str:
    """Types are per language: ``.`` or a shared name in two languages are two types."""
    return f"{language}\x1f{word}"


def occurrences(sentences: Iterable[tuple[str, str | None, list[str]]]) -> tuple[list[str], np.ndarray]:
    """Type keys and hashes of every word occurrence of (sentence id, language, words), sentence after sentence."""
    word_hashes: dict[str, int] = {}
    keys, sentence_hashes, word_hash_list, indices = [], [], [], []
    for sentence_id, language, words in sentences:
        sentence_hashes += [stable_hash(sentence_id)] * len(words)
        indices += range(len(words))
        for word in words:
            keys.append(type_key(language, word))
            h = word_hashes.get(word)
            if h is None:
                h = word_hashes[word] = stable_hash(word)
            word_hash_list.append(h)
    per_word = splitmix64(np.asarray(word_hash_list, np.uint64) + (np.asarray(indices, np.uint64) + 1) * GOLDEN)
    return keys, splitmix64(np.asarray(sentence_hashes, np.uint64) ^ per_word)


def smallest_hashes(keys: list[str], hashes: np.ndarray, cap: int) -> dict[str, list[int]]:
    """Per type key, its ``cap + 1`` smallest hashes (sorted).

    One more than the cap is kept so that a merge can tell whether a type occurs more than ``cap`` times.
    """
    ids: dict[str, int] = {}
    type_of = np.fromiter((ids.setdefault(k, len(ids)) for k in keys), np.int64, len(keys))
    order = np.lexsort((hashes, type_of))
    type_sorted = type_of[order]
    starts = np.flatnonzero(np.r_[True, type_sorted[1:] != type_sorted[:-1]]) if len(keys) else np.zeros(0, int)
    names = list(ids)
    out: dict[str, list[int]] = {}
    for start, end in zip(starts, [*starts[1:], len(keys)], strict=True):
        out[names[type_sorted[start]]] = [int(h) for h in hashes[order[start : min(end, start + cap + 1)]]]
    return out


def merge_thresholds(parts: Iterable[dict[str, list[int]]], cap: int, batch: int = 1 << 21) -> dict[str, int]:
    """The ``cap``-th smallest hash of each type with more than ``cap`` occurrences (others keep everything).

    Parts are pooled and cut back to ``cap + 1`` hashes per type whenever the pool has doubled since the last cut
    (and holds at least ``batch``), so memory stays within twice what the types' smallest hashes take.
    """
    keys: list[str] = []
    hashes: list[int] = []
    limit = batch
    for part in parts:
        for key, values in part.items():
            keys += [key] * len(values)
            hashes += values
        if len(hashes) > limit:
            smallest = smallest_hashes(keys, np.asarray(hashes, np.uint64), cap)
            keys = [key for key, values in smallest.items() for _ in values]
            hashes = [h for values in smallest.values() for h in values]
            limit = max(batch, 2 * len(hashes))
    smallest = smallest_hashes(keys, np.asarray(hashes, np.uint64), cap)
    return {key: values[cap - 1] for key, values in smallest.items() if len(values) > cap}


def keep_mask(keys: list[str], hashes: np.ndarray, thresholds: dict[str, int]) -> np.ndarray:
    """Whether each occurrence is among its type's kept ones."""
    limits = np.fromiter((thresholds.get(k, UNCAPPED) for k in keys), np.uint64, len(keys))
    return hashes <= limits
