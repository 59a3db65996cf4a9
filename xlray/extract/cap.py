"""The per-word-type occurrence cap, decided the same way wherever and in whatever order chunks run.

Each occurrence gets a hash of (sentence id, word index, word); a type keeps the ``cap`` occurrences with the
smallest hashes (a uniform sample of its occurrences, not the first ones in the corpus). A first cheap pass
collects each chunk's smallest hashes per type; merged, they give a threshold per type that occurs more than
``cap`` times. Resumed and distributed runs therefore keep exactly the same rows.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable

UNCAPPED = (1 << 64) - 1


def occurrence_hash(sentence_id: str, index: int, word: str) -> int:
    """A stable 64-bit hash of one word occurrence."""
    digest = hashlib.blake2b(f"{sentence_id}\x1f{index}\x1f{word}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def type_key(language: str | None, word: str) -> str:
    """Types are per language: ``.`` or a shared name in two languages are two types."""
    return f"{language}\x1f{word}"


def smallest_hashes(occurrences: Iterable[tuple[str, str, int, str]], cap: int) -> dict[str, list[int]]:
    """Per type key, its ``cap + 1`` smallest hashes (sorted) among (key, sentence id, index, word) occurrences.

    One more than the cap is kept so that a merge can tell whether a type occurs more than ``cap`` times.
    """
    heaps: dict[str, list[int]] = {}
    for key, sentence_id, index, word in occurrences:
        h = -occurrence_hash(sentence_id, index, word)  # a max-heap of the smallest hashes
        heap = heaps.setdefault(key, [])
        if len(heap) <= cap:
            heapq.heappush(heap, h)
        elif h > heap[0]:
            heapq.heapreplace(heap, h)
    return {word: sorted(-h for h in heap) for word, heap in heaps.items()}


def merge_thresholds(parts: Iterable[dict[str, list[int]]], cap: int) -> dict[str, int]:
    """The ``cap``-th smallest hash of each type with more than ``cap`` occurrences (others keep everything)."""
    merged: dict[str, list[int]] = {}
    for part in parts:
        for word, hashes in part.items():
            old = merged.get(word)
            merged[word] = hashes if old is None else heapq.nsmallest(cap + 1, heapq.merge(old, hashes))
    return {word: hashes[cap - 1] for word, hashes in merged.items() if len(hashes) > cap}


def keep(sentence_id: str, index: int, word: str, key: str, thresholds: dict[str, int]) -> bool:
    """Whether this occurrence is among its type's kept ones."""
    return occurrence_hash(sentence_id, index, word) <= thresholds.get(key, UNCAPPED)
