"""Every reader of user text drops a leading UTF-8 BOM (at byte offset 0 only) and reads CRLF files like LF ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xlray.adjust.config import LinesCorpus, TsvCorpus
from xlray.adjust.pairs import read_corpus
from xlray.errors import XlrayError
from xlray.extract.config import ParallelCorpus, TableCorpus, TextCorpus
from xlray.extract.corpus import Item, plan_chunks, read_chunk
from xlray.tasks.formats import (
    Answer,
    NliExample,
    QAExample,
    TaggedSentence,
    read_iob,
    read_squad,
    read_tatoeba,
    read_xnli,
)
from xlray.textio import BOM, read_lines, strip_bom


def bom_crlf(path: Path, lines: list[str]) -> Path:
    """Write ``lines`` as a Windows editor would: a UTF-8 BOM first, every line ended by CRLF."""
    path.write_bytes(BOM + "".join(f"{line}\r\n" for line in lines).encode("utf-8"))
    return path


def no_cr(values) -> bool:
    return not any("\r" in v or "\ufeff" in v for v in values)


def test_strip_bom_drops_only_a_leading_mark():
    assert strip_bom(b"\xef\xbb\xbfbom\r\n") == b"bom\r\n"
    assert strip_bom(b"bom\xef\xbb\xbf") == b"bom\xef\xbb\xbf"
    assert strip_bom(b"\xef\xbb") == b"\xef\xbb"
    assert strip_bom(b"") == b""


def test_read_lines_drops_the_bom_of_line_1_only_and_crlf(tmp_path):
    path = bom_crlf(tmp_path / "a.txt", ["bom word", "two", "\ufeffkept"])
    assert list(read_lines(path)) == [(1, "bom word"), (2, "two"), (3, "\ufeffkept")]


# --- extract: plan_chunks + read_chunk, no Ray ---


def items(inputs, chunk_lines: int, pairs: bool = False) -> list[list[Item]]:
    """The items of every chunk, one list per chunk."""
    return [list(read_chunk(inputs, chunk, pairs)) for chunk in plan_chunks(inputs, chunk_lines)]


def test_extract_text_drops_the_bom_at_offset_0_only(tmp_path):
    # Line 3 starts chunk 2 and starts with a BOM too: only the file's first bytes are a mark, the rest is text.
    path = bom_crlf(tmp_path / "corpus.txt", ["bom one", "two", "\ufeffthree x", "four", "five"])
    inputs = [TextCorpus(path=str(path), language="xl")]
    chunks = plan_chunks(inputs, 2)
    assert [(c.first_line, c.n_lines, c.offsets) for c in chunks] == [(1, 2, (0,)), (3, 2, (17,)), (5, 1, (35,))]
    by_chunk = items(inputs, 2)
    expected = [
        Item("corpus:1", "xl", ["bom", "one"], f"{path}:1"),
        Item("corpus:2", "xl", ["two"], f"{path}:2"),
        Item("corpus:3", "xl", ["\ufeffthree", "x"], f"{path}:3"),
        Item("corpus:4", "xl", ["four"], f"{path}:4"),
        Item("corpus:5", "xl", ["five"], f"{path}:5"),
    ]
    assert by_chunk == [expected[:2], expected[2:4], expected[4:]]
    assert items(inputs, 100) == [expected]


def test_extract_parallel_drops_both_files_boms(tmp_path):
    src = bom_crlf(tmp_path / "xl-en.xl", ["bom a", "b c", "d"])
    tgt = bom_crlf(tmp_path / "xl-en.en", ["mob A", "B C", "D"])
    inputs = [ParallelCorpus(source=str(src), target=str(tgt), source_language="xl", target_language="en")]
    by_chunk = items(inputs, 2, pairs=True)
    assert [[(i.sentence_id, i.words, i.target_words) for i in chunk] for chunk in by_chunk] == [
        [("xl-en:1", ["bom", "a"], ["mob", "A"]), ("xl-en:2", ["b", "c"], ["B", "C"])],
        [("xl-en:3", ["d"], ["D"])],
    ]
    first = items(inputs, 2)[0]
    assert [(i.sentence_id, i.language, i.words, i.where) for i in first[:2]] == [
        ("xl-en:1", "xl", ["bom", "a"], f"{src}:1"),
        ("xl-en:1", "en", ["mob", "A"], f"{tgt}:1"),
    ]


def test_extract_tsv_header_after_a_bom(tmp_path):
    # Without the strip the header's first column is '\ufeffid' and the file is refused.
    path = bom_crlf(tmp_path / "table.tsv", ["id\tlanguage\ttext", "s1\txl\tbom one", "s2\ten\ttwo", "s3\txl\tthree"])
    inputs = [TableCorpus(format="tsv", path=str(path))]
    by_chunk = items(inputs, 2)
    assert by_chunk == [
        [Item("s1", "xl", ["bom", "one"], f"{path}:2")],
        [Item("s2", "en", ["two"], f"{path}:3"), Item("s3", "xl", ["three"], f"{path}:4")],
    ]


def test_extract_tsv_text_column_first(tmp_path):
    path = bom_crlf(tmp_path / "table.tsv", ["text\tid\tlanguage", "bom one\ts1\txl"])
    assert items([TableCorpus(format="tsv", path=str(path))], 10) == [[Item("s1", "xl", ["bom", "one"], f"{path}:2")]]


def test_extract_jsonl_first_line_after_a_bom(tmp_path):
    rows = [{"id": "s1", "language": "xl", "text": "bom one"}, {"id": "s2", "language": "en", "text": "two"}]
    path = bom_crlf(tmp_path / "table.jsonl", [json.dumps(r) for r in rows])
    inputs = [TableCorpus(format="jsonl", path=str(path))]
    assert items(inputs, 1) == [
        [Item("s1", "xl", ["bom", "one"], f"{path}:1")],
        [Item("s2", "en", ["two"], f"{path}:2")],
    ]


# --- task formats ---


def test_xnli_header_after_a_bom_and_crlf_rows(tmp_path):
    header = ["language", "gold_label", "sentence1", "sentence2", "pairID"]
    path = bom_crlf(
        tmp_path / "xnli.test.tsv", ["\t".join(header), "xl\tneutral\tbom a\tb\t1", "en\tentailment\tc\td\t2"]
    )
    assert list(read_xnli(path)) == [
        NliExample("bom a", "b", "neutral", "xl", 2),
        NliExample("c", "d", "entailment", "en", 3),
    ]
    train = bom_crlf(tmp_path / "multinli.train.en.tsv", ["premise\thypo\tlabel", "p\th\tcontradictory"])
    assert list(read_xnli(train)) == [NliExample("p", "h", "contradiction", "en", 2)]


def test_iob_first_token_after_a_bom_and_crlf(tmp_path):
    # The BOM would hide the 'en:' prefix of the first token, and then the second token would be refused.
    path = bom_crlf(tmp_path / "test-en.tsv", ["en:Paris\tB-LOC", "en:is\tO", "", "en:Kant\tB-PER"])
    got = list(read_iob(path))
    assert got == [TaggedSentence(("Paris", "is"), ("B-LOC", "O"), 1), TaggedSentence(("Kant",), ("B-PER",), 4)]
    conll = bom_crlf(tmp_path / "conll.txt", ["Lima NNP B-LOC", "rains VBZ O"])
    assert list(read_iob(conll)) == [TaggedSentence(("Lima", "rains"), ("B-LOC", "O"), 1)]


def test_tatoeba_pair_after_boms_and_crlf(tmp_path):
    src = bom_crlf(tmp_path / "tatoeba.xl-eng.xl", ["bom a.", "b."])
    eng = bom_crlf(tmp_path / "tatoeba.xl-eng.eng", ["mob A.", "B."])
    assert [tuple(p) for p in read_tatoeba(src, eng)] == [("bom a.", "mob A.", 1), ("b.", "B.", 2)]


def test_squad_json_after_a_bom_with_crlf(tmp_path):
    context = "Bom is in Lima."
    doc = {"data": [{"title": "T", "paragraphs": [{"context": context, "qas": [
        {"id": "q1", "question": "Where?", "answers": [{"text": "Lima", "answer_start": 10}]},
    ]}]}]}  # fmt: skip
    path = bom_crlf(tmp_path / "xquad.xl.json", json.dumps(doc, indent=1).split("\n"))
    assert list(read_squad(path)) == [QAExample("q1", "Where?", context, (Answer("Lima", 10),), "T")]


# --- adjust corpus readers ---


def test_adjust_lines_and_tsv_after_a_bom_and_crlf(tmp_path):
    bom_crlf(tmp_path / "xl.src", ["bom a", "b"])
    bom_crlf(tmp_path / "xl.en", ["mob A", "B"])
    lines = LinesCorpus(format="lines", source=str(tmp_path / "{lang}.src"), english=str(tmp_path / "{lang}.en"))
    expected = [(1, ["bom", "a"], ["mob", "A"]), (2, ["b"], ["B"])]
    assert list(read_corpus(lines, "xl")) == expected
    bom_crlf(tmp_path / "xl.tsv", ["bom a\tmob A", "b\tB"])
    assert list(read_corpus(TsvCorpus(format="tsv", path=str(tmp_path / "{lang}.tsv")), "xl")) == expected
    bom_crlf(tmp_path / "yy.tsv", ["foreign\tenglish", "b\tB"])
    with_header = TsvCorpus(format="tsv", path=str(tmp_path / "{lang}.tsv"), header=True)
    assert list(read_corpus(with_header, "yy")) == [(2, ["b"], ["B"])]


# --- concepts: the eflomal dictionary's parallel input ---


def test_eflomal_dictionary_reads_boms_and_crlf(tmp_path, monkeypatch):
    import xlray.wordalign.eflomal
    from xlray.concepts.run import eflomal_dictionary

    seen = []

    def diagonal(src, tgt, n_samplers):
        seen.append((src, tgt))
        return [[(k, k) for k in range(min(len(s), len(t)))] for s, t in zip(src, tgt, strict=True)]

    monkeypatch.setattr(xlray.wordalign.eflomal, "word_align", diagonal)
    src = bom_crlf(tmp_path / "xl-en.xl", ["bom a", "bom b", "c"])
    tgt = bom_crlf(tmp_path / "xl-en.en", ["mob A", "mob B", "C"])
    df, _ = eflomal_dictionary(str(src), str(tgt), max_sentences=2, n_samplers=1)
    assert seen == [([["bom", "a"], ["bom", "b"]], [["mob", "A"], ["mob", "B"]])]
    assert df.rows() == [("a", "A", 1, 1.0), ("b", "B", 1, 1.0), ("bom", "mob", 2, 1.0)]
    assert no_cr(df["src"].to_list() + df["tgt"].to_list())
    short = bom_crlf(tmp_path / "short.en", ["mob A"])
    with pytest.raises(XlrayError, match=rf"^dictionary: {src} has 3 lines but {short} has 1$"):
        eflomal_dictionary(str(src), str(short), max_sentences=None, n_samplers=1)
    with pytest.raises(XlrayError, match=r"^dictionary: .*missing\.en: parallel file not found$"):
        eflomal_dictionary(str(src), str(tmp_path / "missing.en"), max_sentences=None, n_samplers=1)


# --- configs and the Ray token file ---


def test_yaml_config_and_token_file_after_a_bom_and_crlf(tmp_path):
    from xlray.configs import read_yaml
    from xlray.submit import read_token_file

    assert read_yaml(bom_crlf(tmp_path / "c.yaml", ["stage: extract", "seed: 3"])) == {"stage": "extract", "seed": 3}
    assert read_token_file(bom_crlf(tmp_path / "auth_token", ["tok123"])) == "tok123"
