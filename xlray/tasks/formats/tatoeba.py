"""Tatoeba retrieval pairs as XTREME ships them: ``tatoeba.{lang}-eng.{lang}`` and ``….eng``, line-aligned."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from xlray.corpora import ParallelFiles, check_lengths, parallel_lines
from xlray.outputs import atomic_text
from xlray.textio import check_field


class SentencePair(NamedTuple):
    """Line ``line`` of both files: a sentence in the other language and its English translation."""

    source: str
    english: str
    line: int


def tatoeba_paths(folder: str | Path, lang: str) -> tuple[Path, Path]:
    """The (foreign, English) file paths for one language in an XTREME tatoeba folder."""
    folder = Path(folder)
    return folder / f"tatoeba.{lang}-eng.{lang}", folder / f"tatoeba.{lang}-eng.eng"


def read_tatoeba(source_path: str | Path, english_path: str | Path) -> Iterator[SentencePair]:
    """Stream aligned sentence pairs; different line counts are an error before anything is yielded."""
    files = ParallelFiles(source=str(source_path), target=str(english_path))
    check_lengths(files)
    for number, source, english in parallel_lines(files):
        yield SentencePair(source, english, number)


def write_tatoeba(folder: str | Path, lang: str, pairs: Iterable[tuple[str, str] | SentencePair]) -> tuple[Path, Path]:
    """Write both files of one language atomically (each to a temporary name first); returns their paths."""
    source_path, english_path = tatoeba_paths(folder, lang)
    with atomic_text(source_path) as src, atomic_text(english_path) as eng:
        for pair in pairs:
            src.write(check_field(pair[0], "sentence", source_path) + "\n")
            eng.write(check_field(pair[1], "sentence", english_path) + "\n")
    return source_path, english_path
