"""A parallel corpus joined by id (FLORES+: one Parquet file per language): planning checks, reading by chunk."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from xlray.errors import XlrayError
from xlray.extract.config import ExtractConfig, IdParallelCorpus, TextCorpus
from xlray.extract.corpus import Chunk, Invalid, Item, input_files, input_name, plan_chunks, read_chunk
from xlray.extract.stages import chunk_items

# Three languages of one 10-sentence devtest; each file lists its rows in its own order.
SENTENCES = {k: f"sentence {k} of the devtest ." for k in range(1, 11)}
LANGS = {"eng_Latn": ("eng", "Latn", "stan1293"), "fra_Latn": ("fra", "Latn", "stan1290"),
         "hin_Deva": ("hin", "Deva", "hind1269")}  # fmt: skip
ORDERS = {"eng_Latn": list(range(1, 11)), "fra_Latn": [10, 9, 8, 7, 6, 5, 4, 3, 2, 1],
          "hin_Deva": [3, 1, 4, 10, 5, 9, 2, 6, 8, 7]}  # fmt: skip
ROW_GROUP = 4  # 10 rows: row groups of 4, 4 and 2


def text_of(lang: str, k: int) -> str:
    return f"{lang}: {SENTENCES.get(k, f'sentence {k}, not in the devtest .')}"


def flores_file(path: Path, lang: str, ids: list[int], texts: list[str | None] | None = None) -> str:
    """A Parquet file with the columns of the FLORES+ release, ``ROW_GROUP`` rows per row group."""
    iso, script, glotto = LANGS.get(lang, ("xxx", "Latn", "none0000"))
    n = len(ids)
    table = pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "iso_639_3": [iso] * n,
            "iso_15924": [script] * n,
            "glottocode": [glotto] * n,
            "text": texts if texts is not None else [text_of(lang, k) for k in ids],
            "url": [f"https://en.wikinews.org/wiki/{k}" for k in ids],
            "domain": ["wikinews"] * n,
            "topic": ["science"] * n,
            "has_image": [k % 2 == 0 for k in ids],
            "has_hyperlink": [k % 3 == 0 for k in ids],
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=ROW_GROUP)
    return str(path)


@pytest.fixture
def flores(tmp_path) -> dict[str, str]:
    """language -> devtest file, as the release lays them out."""
    return {lang: flores_file(tmp_path / "devtest" / f"{lang}.parquet", lang, ORDERS[lang]) for lang in LANGS}


def read_all(inputs, chunks: list[Chunk], pairs: bool = False) -> list[Item | Invalid]:
    """Every chunk's entries, each chunk sent through JSON first as the Ray stages send it."""
    return [e for c in chunks for e in read_chunk(inputs, Chunk(**json.loads(json.dumps(asdict(c)))), pairs)]


def test_items_share_ids_across_languages_and_chunks_cover_every_row_once(tmp_path, flores):
    text = tmp_path / "corpus.txt"
    text.write_text("one line\n", encoding="utf-8")
    inputs = [TextCorpus(path=str(text), language="eng_Latn"), IdParallelCorpus(files=flores)]
    chunks = plan_chunks(inputs, chunk_lines=1000)
    assert chunks == plan_chunks(inputs, chunk_lines=1000)  # the same ids on a re-run: resume finds its shards
    ids = [c.chunk_id for c in chunks]
    assert len(set(ids)) == len(ids) == 1 + 3 * 3  # the text file, then (3 files x 3 row groups)
    by_id = [c for c in chunks if c.input_index == 1]
    assert [c.chunk_id for c in by_id[:4]] == ["001-000-000000", "001-000-000001", "001-000-000002", "001-001-000000"]
    assert [c.n_lines for c in by_id] == [4, 4, 2] * 3 and sum(c.n_lines for c in by_id) == 30

    items = read_all(inputs, by_id)
    assert all(isinstance(it, Item) for it in items) and len(items) == 30
    seen = Counter((it.language, it.sentence_id) for it in items)
    assert set(seen.values()) == {1}  # every row exactly once
    for lang in LANGS:
        assert sorted(sid for lg, sid in seen if lg == lang) == sorted(str(k) for k in range(1, 11))
    # The same sentence has the same sentence id in every language, and its own words.
    hin = [it for it in items if it.language == "hin_Deva"]
    assert hin[4] == Item("5", "hin_Deva", "hin_Deva: sentence 5 of the devtest .".split(),
                          f"{flores['hin_Deva']}: row group 1 row 0")  # fmt: skip
    fra = {it.sentence_id: it for it in items if it.language == "fra_Latn"}
    assert fra["10"].words == text_of("fra_Latn", 10).split() and fra["10"].where.endswith("row group 0 row 0")
    assert all(it.target_language is None and it.target_words is None for it in items)

    assert input_files(inputs[1]) == list(flores.values())
    assert input_name(inputs[1]) == "eng_Latn"


def test_planning_reads_only_the_id_column(flores, monkeypatch):
    read_columns = []
    original = pq.ParquetFile.read

    def spy(self, columns=None, **kwargs):
        read_columns.append(columns)
        return original(self, columns=columns, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read", spy)
    plan_chunks([IdParallelCorpus(files=flores)], 1000)
    assert read_columns == [["id"]] * 3


def test_a_file_uri_reads_like_the_local_path(flores):
    local = IdParallelCorpus(files=flores)
    uri = IdParallelCorpus(files={lang: f"file://{path}" for lang, path in flores.items()})
    chunks = plan_chunks([uri], 1000)
    assert [c.chunk_id for c in chunks] == [c.chunk_id for c in plan_chunks([local], 1000)]
    got = read_all([uri], chunks)
    want = read_all([local], chunks)
    assert [(i.sentence_id, i.language, i.words) for i in got] == [(i.sentence_id, i.language, i.words) for i in want]
    assert got[0].where == f"file://{flores['eng_Latn']}: row group 0 row 0"


def bad_files(tmp_path: Path, flores: dict[str, str], case: str) -> tuple[dict[str, str], str]:
    """The files of one bad input and the exact error planning must give."""
    fra = tmp_path / "fra_Latn.parquet"
    if case == "missing file":
        gone = str(tmp_path / "nope" / "fra_Latn.parquet")
        return {**flores, "fra_Latn": gone}, rf"^{gone}: cannot read Parquet input \(inputs\[0\]\.files\.fra_Latn\): "
    if case == "not parquet":
        fra.write_text("id,text\n1,hello\n", encoding="utf-8")
        return {**flores, "fra_Latn": str(fra)}, rf"^{fra}: cannot read Parquet input \(inputs\[0\]\.files\.fra_Latn\)"
    if case in ("no id column", "no text column"):
        column = case.split()[1]
        table = pq.read_table(flores["fra_Latn"]).drop_columns([column])
        pq.write_table(table, fra)
        return {
            **flores,
            "fra_Latn": str(fra),
        }, rf"^{fra}: no column '{column}' \(inputs\[0\]\.{column}_column\); it has "
    if case == "duplicate id":
        flores_file(fra, "fra_Latn", [1, 2, 3, 4, 5, 6, 7, 8, 9, 7])
        return {**flores, "fra_Latn": str(fra)}, rf"^{fra}: duplicate id 7 in column 'id'$"
    if case == "id missing":
        flores_file(fra, "fra_Latn", [10, 9, 8, 7, 5, 4, 3, 2, 1])
        eng = flores["eng_Latn"]
        return {**flores, "fra_Latn": str(fra)}, (
            rf"^{fra}: its ids differ from those of {eng} \(1 missing, 0 extra\): id 6 is in {eng} but not in {fra}; "
            r"every file of inputs\[0\] must hold the same ids$"
        )
    assert case == "id extra"
    flores_file(fra, "fra_Latn", [*range(1, 11), 42])
    eng = flores["eng_Latn"]
    return {
        **flores,
        "fra_Latn": str(fra),
    }, rf"^{fra}: its ids differ .* \(0 missing, 1 extra\): id 42 is in {fra} but not in {eng};"


@pytest.mark.parametrize(
    "case", ["missing file", "not parquet", "no id column", "no text column", "duplicate id", "id missing", "id extra"]
)
def test_bad_files_are_one_line_errors_naming_file_and_what(tmp_path, flores, case):
    files, message = bad_files(tmp_path, flores, case)
    with pytest.raises(XlrayError, match=message) as err:
        plan_chunks([IdParallelCorpus(files=files)], 1000)
    assert "\n" not in str(err.value)


def test_empty_text_is_invalid_naming_file_and_row(tmp_path, flores):
    texts = [text_of("fra_Latn", k) for k in ORDERS["fra_Latn"]]
    texts[5], texts[9] = "  \t ", ""  # ids 5 and 1: row group 1 row 1, row group 2 row 1
    fra = flores_file(tmp_path / "fra_Latn.parquet", "fra_Latn", ORDERS["fra_Latn"], texts)
    inputs = [IdParallelCorpus(files={"eng_Latn": flores["eng_Latn"], "fra_Latn": fra})]
    entries = read_all(inputs, plan_chunks(inputs, 1000))
    assert [str(e) for e in entries if isinstance(e, Invalid)] == [
        f"{fra}: row group 1 row 1: empty text",
        f"{fra}: row group 2 row 1: empty text",
    ]
    assert len([e for e in entries if isinstance(e, Item)]) == 18


def test_the_decoder_site_is_refused_naming_the_format(flores):
    inputs = [IdParallelCorpus(files=flores)]
    chunk = plan_chunks(inputs, 1000)[0]
    with pytest.raises(XlrayError, match=r"^inputs\[0\]\.format: parallel_ids has no source/target pairs"):
        list(read_chunk(inputs, chunk, pairs=True))


def extract_config(files: dict[str, str], **more) -> ExtractConfig:
    return ExtractConfig.model_validate(
        {
            "model": {"name": "models/tiny-bert"},
            "inputs": [{"format": "parallel_ids", "files": files, **more}],
            "languages": list(files),
            "output_dir": "out",
        }
    )


def test_an_extract_config_takes_a_parallel_ids_input(flores):
    cfg = extract_config(flores)
    (corpus,) = cfg.inputs
    assert isinstance(corpus, IdParallelCorpus)
    assert (corpus.files, corpus.id_column, corpus.text_column) == (flores, "id", "text")
    # The config survives the JSON trip to the Ray actors, files in the same order (the chunk ids depend on it).
    again = ExtractConfig.model_validate_json(cfg.model_dump_json())
    assert list(again.inputs[0].files.items()) == list(flores.items())
    chunk = plan_chunks(cfg.inputs, cfg.chunk_lines)[3]
    items = chunk_items(again, chunk, pairs=False, stats=Counter())
    assert [it.language for it in items] == ["fra_Latn"] * 4 and [it.sentence_id for it in items] == [
        "10",
        "9",
        "8",
        "7",
    ]
    assert extract_config(flores, id_column="row", text_column="sentence").inputs[0].id_column == "row"
    with pytest.raises(ValueError, match="at least 2 items"):
        extract_config({"eng_Latn": flores["eng_Latn"]})
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        extract_config(flores, language_column="lang")


def test_a_config_asking_the_decoder_site_of_parallel_ids_is_refused(flores):
    config = {"model": {"name": "m"}, "inputs": [{"format": "parallel_ids", "files": flores}],
              "languages": list(flores), "output_dir": "out", "sites": ["encoder", "decoder"]}  # fmt: skip
    with pytest.raises(ValidationError, match=r"inputs\.0\.format: parallel_ids has no source/target pairs"):
        ExtractConfig.model_validate(config)
