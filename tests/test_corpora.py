"""The one reader of two line-aligned files: streaming, offsets, BOM and CRLF, URIs, and one wording per error."""

from __future__ import annotations

import pytest

from xlray.adjust.config import LinesCorpus
from xlray.adjust.pairs import read_corpus
from xlray.concepts.config import DictionaryFromParallel
from xlray.corpora import (
    ParallelFiles,
    ParallelLine,
    UnequalLengths,
    check_lengths,
    parallel_entries,
    parallel_lines,
    parallel_words,
)
from xlray.errors import XlrayError
from xlray.extract.config import ParallelCorpus
from xlray.extract.corpus import Invalid, plan_chunks, read_chunk
from xlray.sweep.config import ConceptsStep
from xlray.tasks.formats import read_tatoeba
from xlray.textio import BOM, BadLine


def pair(tmp_path, source: bytes, target: bytes) -> ParallelFiles:
    (tmp_path / "xl-en.xl").write_bytes(source)
    (tmp_path / "xl-en.en").write_bytes(target)
    return ParallelFiles(source=str(tmp_path / "xl-en.xl"), target=str(tmp_path / "xl-en.en"))


def test_world_corpus_streams_whole_and_from_byte_offsets(assets):
    folder = assets / "world" / "parallel"
    files = ParallelFiles(source=str(folder / "{lang}-en.{lang}"), target=str(folder / "{lang}-en.en"))
    files = files.for_language("xl")
    src = (folder / "xl-en.xl").read_bytes().split(b"\n")[:-1]
    eng = (folder / "xl-en.en").read_bytes().split(b"\n")[:-1]
    expected = [ParallelLine(k + 1, s.decode(), e.decode()) for k, (s, e) in enumerate(zip(src, eng, strict=True))]
    assert len(expected) == 2000 and list(parallel_lines(files)) == expected
    assert next(iter(parallel_words(files))) == (1, expected[0].source.split(), expected[0].target.split())
    # A chunk: lines 701-710, each file entered at its own byte offset (the sides' line lengths differ).
    offsets = (len(b"".join(s + b"\n" for s in src[:700])), len(b"".join(e + b"\n" for e in eng[:700])))
    assert offsets[0] != offsets[1]
    chunk = list(parallel_lines(files, offsets=offsets, first_line=701, n_lines=10))
    assert chunk == expected[700:710]
    assert list(parallel_lines(files, offsets=offsets, first_line=701)) == expected[700:]  # to the end
    # A pyarrow filesystem URI reads the same as the local path.
    uri = ParallelFiles(source=f"file://{files.source}", target=f"file://{files.target}")
    assert list(parallel_lines(uri, offsets=offsets, first_line=701, n_lines=10)) == chunk


def test_bom_at_offset_0_only_and_crlf(tmp_path):
    files = pair(tmp_path, BOM + b"bom a\r\n\xef\xbb\xbfkept\r\nc\r\n", BOM + b"mob A\r\nB\r\nC")
    assert list(parallel_lines(files)) == [(1, "bom a", "mob A"), (2, "\ufeffkept", "B"), (3, "c", "C")]
    # Entering mid-file, a BOM is text: only a file's first bytes are a mark.
    assert list(parallel_lines(files, offsets=(10, 10), first_line=2, n_lines=1)) == [(2, "\ufeffkept", "B")]
    assert list(parallel_words(files))[0] == (1, ["bom", "a"], ["mob", "A"])


def test_unequal_lengths_have_one_wording_in_every_stage(tmp_path):
    files = pair(tmp_path, b"a\nb\nc\n", b"A\nB")  # a last line without a newline still counts
    a, b = files.files()
    message = f"{a} has 3 lines but {b} has 2; line-aligned files must have the same number of lines"
    lines = parallel_lines(files)
    assert [next(lines), next(lines)] == [(1, "a", "A"), (2, "b", "B")]  # streamed until one file ends
    with pytest.raises(UnequalLengths) as err:
        next(lines)
    assert str(err.value) == message and err.value.counts == f"{a} has 3 lines but {b} has 2"
    reverse = ParallelFiles(source=b, target=a)
    with pytest.raises(XlrayError, match=rf"^{b} has 2 lines but {a} has 3;"):
        list(parallel_entries(reverse))
    with pytest.raises(UnequalLengths, match=f"^{message}$"):
        check_lengths(files)

    extract = ParallelCorpus(source=a, target=b, source_language="xl", target_language="en")
    lines_corpus = LinesCorpus(format="lines", source=a, english=b)
    for read in (
        lambda: plan_chunks([extract], 2),
        lambda: list(read_corpus(lines_corpus, "xl")),
        lambda: list(read_tatoeba(a, b)),
    ):
        with pytest.raises(XlrayError) as err:
            read()
        assert str(err.value) == message


def test_bad_utf8_names_file_and_line_and_can_be_skipped(tmp_path):
    files = pair(tmp_path, b"a\nb\nc\n", b"A\n\xff\xfe B\nC\n")
    message = f"{files.target}:2: invalid UTF-8 at byte 1 of the line; re-encode the file as UTF-8"
    entries = list(parallel_entries(files))
    assert [str(e) if isinstance(e, BadLine) else e for e in entries] == [(1, "a", "A"), message, (3, "c", "C")]
    with pytest.raises(BadLine, match=f"^{message}$"):
        list(parallel_lines(files))
    # Extraction turns the same message into a skippable bad line.
    corpus = ParallelCorpus(source=files.source, target=files.target, source_language="xl", target_language="en")
    (chunk,) = plan_chunks([corpus], 10)
    got = list(read_chunk([corpus], chunk, pairs=True))
    assert [str(e) for e in got if isinstance(e, Invalid)] == [message]
    assert [i.sentence_id for i in got if not isinstance(i, Invalid)] == ["xl-en:1", "xl-en:3"]


def test_empty_lines_are_kept_or_refused_with_file_and_line(tmp_path):
    files = pair(tmp_path, b"a\n\nc\n", b"A\nB\n  \n")
    assert list(parallel_words(files)) == [(1, ["a"], ["A"]), (2, [], ["B"]), (3, ["c"], [])]
    entries = list(parallel_entries(files, allow_empty=False))
    assert [str(e) for e in entries if isinstance(e, BadLine)] == [f"{files.source}:2: empty line",
                                                                   f"{files.target}:3: empty line"]  # fmt: skip
    assert [e for e in entries if not isinstance(e, BadLine)] == [(1, "a", "A")]


def test_missing_files_local_or_uri(tmp_path):
    files = pair(tmp_path, b"a\n", b"A\n")
    for missing in (str(tmp_path / "nope.en"), f"file://{tmp_path / 'nope.en'}"):
        with pytest.raises(XlrayError, match=f"^{missing}: file not found$"):
            list(parallel_lines(ParallelFiles(source=files.source, target=missing)))


def test_every_stage_config_is_or_gives_the_spec():
    paths = {"source": "d/{lang}-en.{lang}", "target": "d/{lang}-en.en"}
    expected = ParallelFiles(source="d/xl-en.xl", target="d/xl-en.en")
    lines = LinesCorpus(format="lines", source=paths["source"], english=paths["target"])
    step = ConceptsStep(source=paths["source"], english=paths["target"])
    assert lines.files("xl") == step.files("xl") == expected
    extract = ParallelCorpus(**paths, source_language="xl", target_language="en")
    dictionary = DictionaryFromParallel(**paths)
    assert isinstance(extract, ParallelFiles) and isinstance(dictionary, ParallelFiles)
    assert extract.files() == dictionary.files() == (paths["source"], paths["target"])
    with pytest.raises(ValueError, match="english"):
        ParallelFiles(source="a", english="b")
