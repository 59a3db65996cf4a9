"""Two line-aligned files, where line k of one translates line k of the other: one config spec and one streaming
reader for every stage that reads them (extraction, adjustment pairs, the concepts dictionary, Tatoeba retrieval).

The reader walks both files together, block by block, from a byte offset per file when a chunk starts mid-file, so
no stage holds a corpus in memory to read it. Local paths open as files, URIs (s3://, gs://, file://) through
pyarrow filesystems. Errors are one line with one wording everywhere: unequal lengths name both files and their
line counts, bad UTF-8 and refused empty lines name file:line. A leading UTF-8 BOM is dropped and CRLF reads like
LF (the rules of ``xlray.textio``).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import zip_longest
from typing import NamedTuple

from pydantic import Field

from xlray.configs import Strict
from xlray.errors import XlrayError
from xlray.textio import BadLine, count_lines, decode_line, raw_lines, refuse_empty

Words = tuple[int, list[str], list[str]]  # (line number from 1, source words, target words)


class ParallelFiles(Strict):
    """Two line-aligned files of whitespace-tokenized sentences; ``{lang}`` in a path becomes a language code where
    a stage reads one pair of files per language."""

    source: str = Field(description="Local path or URI (s3://, gs://); e.g. data/{lang}-en.{lang}")
    target: str = Field(description="Line-parallel to source; e.g. data/{lang}-en.en")

    def files(self) -> tuple[str, str]:
        return self.source, self.target

    def for_language(self, lang: str) -> ParallelFiles:
        """The two files of one language: ``{lang}`` in both paths replaced by ``lang``."""
        return ParallelFiles(source=self.source.replace("{lang}", lang), target=self.target.replace("{lang}", lang))


class ParallelLine(NamedTuple):
    """Line ``line`` of both files, decoded, without its line ending."""

    line: int
    source: str
    target: str


class UnequalLengths(XlrayError):
    """Two files meant to be line-aligned that are not: the message names both files and their line counts."""

    def __init__(self, source: str, source_lines: int, target: str, target_lines: int):
        self.counts = f"{source} has {source_lines} lines but {target} has {target_lines}"
        super().__init__(f"{self.counts}; line-aligned files must have the same number of lines")


def unequal_lengths(files: ParallelFiles, counts: tuple[int, int] | None = None) -> UnequalLengths:
    """The error for files of different lengths; ``counts`` (source, target lines) are counted if not given."""
    n_source, n_target = counts or (count_lines(files.source), count_lines(files.target))
    return UnequalLengths(files.source, n_source, files.target, n_target)


def check_lengths(files: ParallelFiles) -> None:
    """Count both files' lines first (one pass each, nothing decoded): a reader that must fail before it yields."""
    counts = count_lines(files.source), count_lines(files.target)
    if counts[0] != counts[1]:
        raise unequal_lengths(files, counts)


def parallel_entries(
    files: ParallelFiles,
    *,
    offsets: tuple[int, int] = (0, 0),
    first_line: int = 1,
    n_lines: int | None = None,
    allow_empty: bool = True,
) -> Iterator[ParallelLine | BadLine]:
    """Lines ``first_line ..`` of both files (at most ``n_lines``; None: to the end), each read from its byte offset.

    A bad line (invalid UTF-8; an empty line unless ``allow_empty``) is yielded as a BadLine in place of its pair,
    so that a caller can skip and count it; one file ending before the other raises UnequalLengths.
    """
    sides = [raw_lines(path, offset, first_line, n_lines) for path, offset in zip(files.files(), offsets, strict=True)]
    for a, b in zip_longest(*sides):
        if a is None or b is None:
            raise unequal_lengths(files)
        number = a[0]
        try:
            texts = [decode_line(raw, path, number) for raw, path in ((a[1], files.source), (b[1], files.target))]
            if not allow_empty:
                texts = [refuse_empty(text, path, number) for text, path in zip(texts, files.files(), strict=True)]
        except BadLine as bad:
            yield bad
            continue
        yield ParallelLine(number, *texts)


def parallel_lines(
    files: ParallelFiles,
    *,
    offsets: tuple[int, int] = (0, 0),
    first_line: int = 1,
    n_lines: int | None = None,
    allow_empty: bool = True,
) -> Iterator[ParallelLine]:
    """The line pairs of :func:`parallel_entries`, raising the first bad line instead of yielding it."""
    for entry in parallel_entries(
        files, offsets=offsets, first_line=first_line, n_lines=n_lines, allow_empty=allow_empty
    ):
        if isinstance(entry, BadLine):
            raise entry
        yield entry


def parallel_words(files: ParallelFiles, *, allow_empty: bool = True) -> Iterator[Words]:
    """(line number, source words, target words) per line pair of both whole files, split on whitespace; bad lines
    raise."""
    for number, source, target in parallel_lines(files, allow_empty=allow_empty):
        yield number, source.split(), target.split()
