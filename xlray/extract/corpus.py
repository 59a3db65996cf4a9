"""Corpus input for extraction: plan byte-offset chunks on the driver, read one chunk per Ray task.

Every sentence gets a stable id ``<input name>:<line>`` (or the id column of a table; of a ``parallel_ids`` input,
the same id in every language), so resumed and re-run extractions produce the same rows. Reading streams local
paths and URIs (s3://, gs://) through ``xlray.textio``; parallel inputs go through the shared reader of
``xlray.corpora``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from xlray.corpora import parallel_entries, unequal_lengths
from xlray.errors import XlrayError, one_line
from xlray.extract.config import ExtractInput, IdParallelCorpus, ParallelCorpus, TableCorpus, TextCorpus
from xlray.textio import READ_BLOCK, BadLine, open_fs, raw_lines


@dataclass(frozen=True)
class Chunk:
    """``n_lines`` lines of input ``input_index`` starting at 1-based line ``first_line`` (byte offsets per file).

    Parquet inputs: ``first_line`` is the row group and ``n_lines`` its rows; for ``parallel_ids`` ``offsets`` is
    (the file's position in ``files``,).
    """

    chunk_id: str
    input_index: int
    first_line: int
    n_lines: int
    offsets: tuple[int, ...]


@dataclass
class Item:
    """One unit of extraction: a sentence, or a source/target pair for a decoder site."""

    sentence_id: str
    language: str
    words: list[str]
    where: str
    target_language: str | None = None
    target_words: list[str] | None = None

    def side(self, name: str) -> tuple[str, str | None, list[str]]:
        """(sentence id, language, words) of the ``source`` or the ``target`` side."""
        if name == "source":
            return self.sentence_id, self.language, self.words
        return self.sentence_id, self.target_language, self.target_words or []


def input_files(corpus: ExtractInput) -> list[str]:
    if isinstance(corpus, ParallelCorpus):
        return list(corpus.files())
    if isinstance(corpus, IdParallelCorpus):
        return list(corpus.files.values())
    return [corpus.path]


def input_name(corpus: ExtractInput) -> str:
    """The stem that sentence ids start with: ``corpus`` for corpus.txt, ``xl-en`` for xl-en.xl / xl-en.en."""
    return PurePosixPath(input_files(corpus)[0]).name.rsplit(".", 1)[0]


def line_offsets(path: str, every: int) -> tuple[list[int], int]:
    """Byte offset of line 1, 1+every, 1+2*every, ...; and the number of lines (a last line without newline counts)."""
    filesystem, where = open_fs(path)
    try:
        stream = filesystem.open_input_stream(where)
    except (FileNotFoundError, OSError) as exc:
        raise XlrayError(f"{path}: cannot open input: {one_line(exc)}") from None
    starts, lines, pos, last_byte = [0], 0, 0, b"\n"
    with stream:
        while block := stream.read(READ_BLOCK):
            newlines = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
            for k in newlines:
                lines += 1
                if lines % every == 0:
                    starts.append(pos + int(k) + 1)
            pos += len(block)
            last_byte = block[-1:]
    if last_byte != b"\n":
        lines += 1
    elif starts[-1] == pos:
        starts.pop()
    return starts, lines


def plan_chunks(inputs: list[ExtractInput], chunk_lines: int) -> list[Chunk]:
    """Split every input into chunks of ``chunk_lines`` lines; parallel files must have equal line counts."""
    chunks = []
    for index, corpus in enumerate(inputs):
        if corpus.format == "parquet":
            chunks += parquet_chunks(index, corpus)
            continue
        if corpus.format == "parallel_ids":
            chunks += id_chunks(index, corpus)
            continue
        planned = [line_offsets(path, chunk_lines) for path in input_files(corpus)]
        counts = [n for _, n in planned]
        if len(set(counts)) > 1:
            raise unequal_lengths(corpus, (counts[0], counts[1]))
        per_file = list(zip(*[starts for starts, _ in planned], strict=True))
        for k, offsets in enumerate(per_file):
            first = k * chunk_lines + 1
            n = min(chunk_lines, counts[0] - first + 1)
            chunks.append(Chunk(f"{index:03d}-{k:06d}", index, first, n, offsets))
    return chunks


def parquet_chunks(index: int, corpus: TableCorpus) -> list[Chunk]:
    import pyarrow.parquet as pq

    filesystem, where = open_fs(corpus.path)
    try:
        meta = pq.ParquetFile(where, filesystem=filesystem).metadata
    except (FileNotFoundError, OSError) as exc:
        raise XlrayError(f"{corpus.path}: cannot open Parquet input: {one_line(exc)}") from None
    return [Chunk(f"{index:03d}-{g:06d}", index, g, meta.row_group(g).num_rows, ()) for g in range(meta.num_row_groups)]


def id_chunks(index: int, corpus: IdParallelCorpus) -> list[Chunk]:
    """One chunk per (file, row group), after checking that every file holds unique ids, the first file's set."""
    chunks, first = [], None
    for f, (lang, path) in enumerate(corpus.files.items()):
        meta, ids = file_ids(index, lang, path, corpus)
        if first is None:
            first = path, ids
        else:
            same_ids(index, first, (path, ids))
        groups = range(meta.num_row_groups)
        chunks += [Chunk(f"{index:03d}-{f:03d}-{g:06d}", index, g, meta.row_group(g).num_rows, (f,)) for g in groups]
    return chunks


def open_parquet(path: str, field: str) -> Any:
    """A ``pyarrow.parquet.ParquetFile`` (local path or URI); a missing or unreadable file names ``field``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    filesystem, where = open_fs(path)
    try:
        return pq.ParquetFile(where, filesystem=filesystem)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise XlrayError(f"{path}: cannot read Parquet input ({field}): {one_line(exc)}") from None


def file_ids(index: int, lang: str, path: str, corpus: IdParallelCorpus) -> tuple[Any, np.ndarray]:
    """A file's Parquet metadata and its ids, sorted (the id column only is read: ids, not text, are held)."""
    import pyarrow as pa

    field = f"inputs[{index}].files.{lang}"
    parquet = open_parquet(path, field)
    names = parquet.schema_arrow.names
    for column, option in ((corpus.id_column, "id_column"), (corpus.text_column, "text_column")):
        if column not in names:
            raise XlrayError(f"{path}: no column {column!r} (inputs[{index}].{option}); it has {', '.join(names)}")
    try:
        ids = parquet.read(columns=[corpus.id_column]).column(0)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise XlrayError(f"{path}: cannot read Parquet input ({field}): {one_line(exc)}") from None
    if ids.null_count:
        raise XlrayError(f"{path}: {ids.null_count} null id(s) in column {corpus.id_column!r}")
    ids = np.sort(ids.to_numpy(zero_copy_only=False))
    repeated = ids[1:][ids[1:] == ids[:-1]]
    if repeated.size:
        raise XlrayError(f"{path}: duplicate id {repeated[:1].tolist()[0]!r} in column {corpus.id_column!r}")
    return parquet.metadata, ids


def same_ids(index: int, first: tuple[str, np.ndarray], other: tuple[str, np.ndarray]) -> None:
    """Raise, naming one id and the file that has it, unless ``other`` holds exactly the ids of ``first``."""
    (a, a_ids), (b, b_ids) = first, other
    missing = np.setdiff1d(a_ids, b_ids, assume_unique=True)
    extra = np.setdiff1d(b_ids, a_ids, assume_unique=True)
    if missing.size or extra.size:
        has, lacks, example = (a, b, missing) if missing.size else (b, a, extra)
        raise XlrayError(
            f"{b}: its ids differ from those of {a} ({missing.size} missing, {extra.size} extra): id "
            f"{example[:1].tolist()[0]!r} is in {has} but not in {lacks}; every file of inputs[{index}] must hold "
            "the same ids"
        )


class Invalid(Exception):
    """A bad line; becomes an XlrayError or a skip, as the config says."""


def decode(raw: bytes, path: str, number: int) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid(f"{path}:{number}: not valid UTF-8 (byte {exc.start})") from None
    if not text.strip():
        raise Invalid(f"{path}:{number}: empty line")
    return text


def text_items(corpus: TextCorpus, chunk: Chunk, name: str) -> Iterator[Item | Invalid]:
    for number, raw in raw_lines(corpus.path, chunk.offsets[0], chunk.first_line, chunk.n_lines):
        try:
            text = decode(raw, corpus.path, number)
            yield Item(f"{name}:{number}", corpus.language, text.split(), f"{corpus.path}:{number}")
        except Invalid as bad:
            yield bad


def parallel_items(corpus: ParallelCorpus, chunk: Chunk, name: str, pairs: bool) -> Iterator[Item | Invalid]:
    lines = parallel_entries(
        corpus, offsets=chunk.offsets, first_line=chunk.first_line, n_lines=chunk.n_lines, allow_empty=False
    )
    for entry in lines:
        if isinstance(entry, BadLine):
            yield Invalid(str(entry))
            continue
        number, s_words, t_words = entry.line, entry.source.split(), entry.target.split()
        sid, where = f"{name}:{number}", f"{corpus.source}:{number}"
        if pairs:
            yield Item(sid, corpus.source_language, s_words, where, corpus.target_language, t_words)
        else:
            yield Item(sid, corpus.source_language, s_words, where)
            yield Item(sid, corpus.target_language, t_words, f"{corpus.target}:{number}")


def table_items(corpus: TableCorpus, chunk: Chunk) -> Iterator[Item | Invalid]:
    if corpus.format == "parquet":
        yield from parquet_items(corpus, chunk)
        return
    cols = (corpus.id_column, corpus.language_column, corpus.text_column)
    header = None
    if corpus.format == "tsv":
        first = next(raw_lines(corpus.path, 0, 1, 1))[1].decode("utf-8", "replace").split("\t")
        missing = [c for c in cols if c not in first]
        if missing:
            raise XlrayError(f"{corpus.path}:1: header lacks column(s) {missing}")
        header = [first.index(c) for c in cols]
    for number, raw in raw_lines(corpus.path, chunk.offsets[0], chunk.first_line, chunk.n_lines):
        if header is not None and number == 1:
            continue
        try:
            text = decode(raw, corpus.path, number)
            values = table_row(text, header, cols, corpus.path, number)
        except Invalid as bad:
            yield bad
            continue
        yield Item(str(values[0]), str(values[1]), str(values[2]).split(), f"{corpus.path}:{number}")


def table_row(text: str, header: list[int] | None, cols: tuple[str, ...], path: str, number: int) -> list[Any]:
    if header is not None:
        fields = text.split("\t")
        if len(fields) <= max(header):
            raise Invalid(f"{path}:{number}: expected at least {max(header) + 1} tab-separated fields")
        return [fields[i] for i in header]
    try:
        obj = json.loads(text)
        return [obj[c] for c in cols]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise Invalid(f"{path}:{number}: bad JSON line ({type(exc).__name__}: {exc})") from None


def parquet_items(corpus: TableCorpus, chunk: Chunk) -> Iterator[Item | Invalid]:
    import pyarrow.parquet as pq

    filesystem, where = open_fs(corpus.path)
    cols = [corpus.id_column, corpus.language_column, corpus.text_column]
    try:
        table = pq.ParquetFile(where, filesystem=filesystem).read_row_group(chunk.first_line, columns=cols)
    except (KeyError, ValueError) as exc:
        raise XlrayError(f"{corpus.path}: Parquet input lacks column(s) {cols}: {exc}") from None
    for k, (sid, lang, text) in enumerate(zip(*(table[c].to_pylist() for c in cols), strict=True)):
        if not text or not str(text).strip():
            yield Invalid(f"{corpus.path}: row group {chunk.first_line} row {k}: empty text")
            continue
        yield Item(str(sid), str(lang), str(text).split(), f"{corpus.path}: row group {chunk.first_line} row {k}")


def id_items(corpus: IdParallelCorpus, chunk: Chunk) -> Iterator[Item | Invalid]:
    """The rows of one row group of one language's file; the sentence id is ``str(id)`` in every language."""
    lang, path = list(corpus.files.items())[chunk.offsets[0]]
    cols, g = [corpus.id_column, corpus.text_column], chunk.first_line
    try:
        table = open_parquet(path, f"inputs[{chunk.input_index}].files.{lang}").read_row_group(g, columns=cols)
    except (KeyError, ValueError, OSError) as exc:
        raise XlrayError(f"{path}: cannot read columns {cols} of row group {g}: {one_line(exc)}") from None
    for k, (sid, text) in enumerate(zip(*(table[c].to_pylist() for c in cols), strict=True)):
        where = f"{path}: row group {g} row {k}"
        if text is None or not str(text).strip():
            yield Invalid(f"{where}: empty text")
            continue
        yield Item(str(sid), lang, str(text).split(), where)


def read_chunk(inputs: list[ExtractInput], chunk: Chunk, pairs: bool) -> Iterator[Item | Invalid]:
    """The items of one chunk, and an ``Invalid`` for each bad line, in input order."""
    corpus = inputs[chunk.input_index]
    if isinstance(corpus, TextCorpus):
        yield from text_items(corpus, chunk, input_name(corpus))
    elif isinstance(corpus, ParallelCorpus):
        yield from parallel_items(corpus, chunk, input_name(corpus), pairs)
    elif isinstance(corpus, IdParallelCorpus):
        if pairs:
            raise XlrayError(
                f"inputs[{chunk.input_index}].format: parallel_ids has no source/target pairs for the decoder site;"
                " extract it with sites: [encoder], or give the pairs as a 'parallel' input"
            )
        yield from id_items(corpus, chunk)
    else:
        yield from table_items(corpus, chunk)
