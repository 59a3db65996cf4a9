"""Task-format readers and writers on small files in the real layouts, including the bad inputs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from xlray.errors import XlrayError
from xlray.tasks.formats import (
    Answer,
    NliExample,
    QAExample,
    ReadStats,
    TaggedSentence,
    read_iob,
    read_squad,
    read_tatoeba,
    read_xnli,
    tatoeba_paths,
    write_iob,
    write_multinli,
    write_squad,
    write_tatoeba,
    write_xnli,
)
from xlray.textio import count_lines

XNLI_HEADER = (
    "language\tgold_label\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\t"
    "sentence1\tsentence2\tpromptID\tpairID\tgenre\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\t"
    "sentence1_tokenized\tsentence2_tokenized\tmatch"
)


def xnli_row(lang: str, label: str, s1: str, s2: str) -> str:
    return "\t".join([lang, label, "", "", "", "", s1, s2, "1", "1", "fiction", label, "", "", "", "", s1, s2, "True"])


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


# --- XNLI / MultiNLI ---


def test_xnli_reads_pairs_and_filters_languages(tmp_path):
    rows = [
        xnli_row("en", "entailment", 'He said "yes".', "He agreed."),
        xnli_row("es", "neutral", "Dijo que sí.", "Estaba feliz."),
        xnli_row("es", "contradiction", "Llueve.", "No llueve."),
    ]
    path = write(tmp_path / "xnli.dev.tsv", "\n".join([XNLI_HEADER, *rows]) + "\n")
    got = list(read_xnli(path, languages={"es"}))
    assert got == [
        NliExample("Dijo que sí.", "Estaba feliz.", "neutral", "es", 3),
        NliExample("Llueve.", "No llueve.", "contradiction", "es", 4),
    ]
    everything = list(read_xnli(path))
    assert [ex.language for ex in everything] == ["en", "es", "es"]
    assert everything[0].premise == 'He said "yes".'  # no CSV quoting, as XTREME reads it


def test_multinli_train_maps_contradictory(tmp_path):
    text = "premise\thypo\tlabel\nA man eats.\tA person eats.\tentailment\nIt is dark.\tIt is bright.\tcontradictory\n"
    got = list(read_xnli(write(tmp_path / "multinli.train.en.tsv", text)))
    assert [(ex.label, ex.language, ex.line) for ex in got] == [
        ("entailment", "en", 2),
        ("contradiction", "en", 3),
    ]


def test_xnli_bad_label_names_file_and_line(tmp_path):
    rows = [
        xnli_row("en", "entailment", "a", "b"),
        xnli_row("en", "contradiction", "c", "d"),
        xnli_row("en", "-", "e", "f"),
    ]
    path = write(tmp_path / "xnli.test.tsv", "\n".join([XNLI_HEADER, *rows]) + "\n")
    with pytest.raises(XlrayError, match=r"xnli\.test\.tsv:4: label '-' is not one of"):
        list(read_xnli(path))


def test_xnli_structural_errors(tmp_path):
    with pytest.raises(XlrayError, match=r"bad\.tsv:1: header has neither"):
        list(read_xnli(write(tmp_path / "bad.tsv", "a\tb\nx\ty\n")))
    with pytest.raises(XlrayError, match=r"short\.tsv:3: expected at least 3 tab-separated fields, found 2"):
        list(read_xnli(write(tmp_path / "short.tsv", "premise\thypo\tlabel\na\tb\tneutral\na\tb\n")))
    with pytest.raises(XlrayError, match=r"no rows for language\(s\) zz"):
        list(read_xnli(write(tmp_path / "ok.tsv", "premise\thypo\tlabel\na\tb\tneutral\n"), languages={"en", "zz"}))


def test_invalid_utf8_names_file_and_line(tmp_path):
    path = write(tmp_path / "xnli.dev.tsv", (XNLI_HEADER + "\n").encode() + b"en\tneutral\t\xff\xfe\n")
    with pytest.raises(XlrayError, match=r"xnli\.dev\.tsv:2: invalid UTF-8 at byte 12 of the line"):
        list(read_xnli(path))


def test_nli_writers_round_trip(tmp_path):
    examples = [
        NliExample("Ein Hund bellt.", "Ein Tier macht Lärm.", "entailment", "de"),
        NliExample("Es regnet.", "Die Sonne scheint.", "contradiction", "de"),
    ]
    assert write_xnli(tmp_path / "x.tsv", examples) == 2
    back = [NliExample(e.premise, e.hypothesis, e.label, e.language) for e in read_xnli(tmp_path / "x.tsv")]
    assert back == examples
    assert (tmp_path / "x.tsv").read_text().splitlines()[0] == XNLI_HEADER
    assert write_multinli(tmp_path / "m.tsv", examples) == 2
    assert (tmp_path / "m.tsv").read_text().splitlines()[2] == "Es regnet.\tDie Sonne scheint.\tcontradictory"
    assert [e.label for e in read_xnli(tmp_path / "m.tsv")] == ["entailment", "contradiction"]
    with pytest.raises(XlrayError, match="contains a tab"):
        write_xnli(tmp_path / "y.tsv", [NliExample("a\tb", "c", "neutral", "en")])
    assert not (tmp_path / "y.tsv").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # temp file cleaned up


# --- IOB ---

PANX = "en:Rick\tB-PER\nen:Astley\tI-PER\nen:sang\tO\n\nen:in\tO\nen:New\tB-LOC\nen:York\tI-LOC\n\n"


def test_iob_reads_panx_with_language_prefix(tmp_path):
    got = list(read_iob(write(tmp_path / "test-en.tsv", PANX)))
    assert got == [
        TaggedSentence(("Rick", "Astley", "sang"), ("B-PER", "I-PER", "O"), 1),
        TaggedSentence(("in", "New", "York"), ("O", "B-LOC", "I-LOC"), 5),
    ]


def test_iob_reads_conll_columns_without_prefix(tmp_path):
    text = "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n\nhttp://x.org NN I-NP O\n"
    got = list(read_iob(write(tmp_path / "conll.txt", text)))
    assert [s.tokens for s in got] == [("EU", "rejects"), ("http://x.org",)]
    assert [s.tags for s in got] == [("B-ORG", "O"), ("O",)]
    assert [s.line for s in got] == [3, 7]


def test_iob_bad_tag_and_bad_line(tmp_path):
    path = write(tmp_path / "train.tsv", "en:Paris\tB-LOC\nen:is\tO\n\nen:Kant\tB-MISC\n")
    with pytest.raises(XlrayError, match=r"train\.tsv:4: tag 'B-MISC' is not in the label set"):
        list(read_iob(path))
    assert len(list(read_iob(path, entity_types=("LOC", "MISC")))) == 2
    with pytest.raises(XlrayError, match=r"one\.tsv:2: expected 'token<TAB>tag'"):
        list(read_iob(write(tmp_path / "one.tsv", "Paris\tB-LOC\nalone\n")))
    with pytest.raises(XlrayError, match=r"mixed\.tsv:2: token 'Berlin' lacks the 'de:' prefix"):
        list(read_iob(write(tmp_path / "mixed.tsv", "de:in\tO\nBerlin\tB-LOC\n")))


def test_iob_writer_round_trip(tmp_path):
    sents = [TaggedSentence(("Ana", "vive", "en", "Lima"), ("B-PER", "O", "O", "B-LOC"))]
    assert write_iob(tmp_path / "es.tsv", sents, lang="es") == 1
    assert (tmp_path / "es.tsv").read_text() == "es:Ana\tB-PER\nes:vive\tO\nes:en\tO\nes:Lima\tB-LOC\n\n"
    assert [(s.tokens, s.tags) for s in read_iob(tmp_path / "es.tsv")] == [(sents[0].tokens, sents[0].tags)]
    with pytest.raises(XlrayError, match="sentence 1: cannot write token 'x' with tag 'B-FOO'"):
        write_iob(tmp_path / "bad.tsv", [TaggedSentence(("x",), ("B-FOO",))])


# --- Tatoeba ---


def test_tatoeba_pairs_and_length_mismatch(tmp_path):
    src, eng = write_tatoeba(tmp_path, "es", [("Hola.", "Hello."), ("Adiós.", "Bye.")])
    assert (src.name, eng.name) == ("tatoeba.es-eng.es", "tatoeba.es-eng.eng")
    assert [tuple(p) for p in read_tatoeba(src, eng)] == [("Hola.", "Hello.", 1), ("Adiós.", "Bye.", 2)]
    src2, eng2 = tatoeba_paths(tmp_path, "ru")
    write(src2, "Привет.\nПока.\nДа.")  # last line without a newline still counts
    write(eng2, "Hi.\nBye.\n")
    assert count_lines(src2) == 3
    with pytest.raises(XlrayError) as err:
        list(read_tatoeba(src2, eng2))
    assert str(err.value).startswith(f"{src2} has 3 lines but {eng2} has 2;")


# --- SQuAD / XQuAD / MLQA ---

CONTEXT = "The Normans gave their name to Normandy, a region in France."


def squad_doc(answer_start: int = 31, question_id: str = "q2") -> dict:
    qas = [
        {
            "id": "q1",
            "question": "Who gave their name?",
            "answers": [{"text": "The Normans", "answer_start": 0}],
        },
        {
            "id": question_id,
            "question": "Named what?",
            "answers": [{"text": "Normandy", "answer_start": answer_start}],
        },
    ]
    return {
        "version": "1.1",
        "data": [{"title": "Normans", "paragraphs": [{"context": CONTEXT, "qas": qas}]}],
    }


def test_squad_reads_questions(tmp_path):
    path = write(tmp_path / "dev-v1.1.json", json.dumps(squad_doc()))
    got = list(read_squad(path))
    assert [ex.id for ex in got] == ["q1", "q2"]
    assert got[1] == QAExample("q2", "Named what?", CONTEXT, (Answer("Normandy", 31),), "Normans")


def test_squad_bad_answer_is_error_or_counted_skip(tmp_path, caplog):
    path = write(tmp_path / "xquad.es.json", json.dumps(squad_doc(answer_start=30, question_id="56be4db0")))
    with pytest.raises(XlrayError, match=r"xquad\.es\.json: question '56be4db0': answer 'Normandy' does not occur"):
        list(read_squad(path))
    stats = ReadStats()
    with caplog.at_level(logging.WARNING):
        kept = list(read_squad(path, skip_bad_answers=True, stats=stats))
    assert [ex.id for ex in kept] == ["q1"]
    assert (stats.examples, stats.skipped, stats.skipped_ids) == (1, 1, ["56be4db0"])
    assert "skipped 1 of 2 questions" in caplog.text


def test_squad_structural_errors(tmp_path):
    doc = squad_doc()
    del doc["data"][0]["paragraphs"][0]["qas"][1]["question"]
    with pytest.raises(XlrayError, match=r"q\.json: question 'q2': expected 'question' to be a str"):
        list(read_squad(write(tmp_path / "q.json", json.dumps(doc))))
    with pytest.raises(XlrayError, match=r"dup\.json: question id 'q1' occurs twice"):
        list(read_squad(write(tmp_path / "dup.json", json.dumps(squad_doc(question_id="q1")))))
    with pytest.raises(XlrayError, match=r"broken\.json:3: malformed JSON"):
        list(read_squad(write(tmp_path / "broken.json", '{"data": [\n  {"title": "x",\n  "paragraphs": ]}')))
    with pytest.raises(XlrayError, match=r"latin\.json:2: invalid UTF-8"):
        list(read_squad(write(tmp_path / "latin.json", b'{"data":\n ["caf\xe9"]}')))


def test_squad_writer_groups_and_round_trips(tmp_path):
    examples = list(read_squad(write(tmp_path / "in.json", json.dumps(squad_doc()))))
    extra = QAExample("q3", "Where?", "Paris is in France.", (Answer("France", 12),), "Paris")
    assert write_squad(tmp_path / "out.json", [*examples, extra]) == 3
    doc = json.loads((tmp_path / "out.json").read_text())
    assert [a["title"] for a in doc["data"]] == ["Normans", "Paris"]
    assert len(doc["data"][0]["paragraphs"][0]["qas"]) == 2
    assert list(read_squad(tmp_path / "out.json")) == [*examples, extra]
    with pytest.raises(XlrayError, match="cannot write question 'q4'"):
        write_squad(tmp_path / "bad.json", [QAExample("q4", "?", "abc", (Answer("zzz", 0),))])
