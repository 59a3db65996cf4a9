"""Extraction stages without Ray: word activations equal a direct forward pass, for every family and pooling."""

import json
from collections import Counter
from dataclasses import asdict

import numpy as np
import pyarrow as pa
import pytest
import torch

from xlray.configs import ModelConfig
from xlray.extract.cap import keep_mask, merge_thresholds, occurrences, smallest_hashes
from xlray.extract.config import ExtractConfig
from xlray.extract.corpus import plan_chunks
from xlray.extract.stages import ForwardChunks, TokenizeChunks
from xlray.models import layer_states, load_model

STABLE_FIRST_HASH = 4246802137213973345  # hash of word 0 ("w") of sentence "s0": a change would mix resumed runs

SENTENCES = [
    "Bezotu ca\u0301ma\u0303 ta\u0323 Bezotuca\u0301ma\u0303ta\u0323 .",
    "безоту хямылано зевэшэ хямыланозевэшэхямылано .",
    "बएजओतउ खीमा दे खीमादेबएजओतउखीमा .",
    "a .",
]


def run_stages(cfg: ExtractConfig, thresholds=None) -> tuple[pa.Table, Counter]:
    """The tokenize and forward stages over every chunk: the rows and the summed counts."""
    chunks = plan_chunks(cfg.inputs, cfg.chunk_lines)
    tok = TokenizeChunks(cfg.model_dump_json(), 512, thresholds or {}, as_text=False)
    fwd = ForwardChunks(cfg.model_dump_json(), [0, 1, 2], threads=1)
    tables, counts = [], Counter()
    for c in chunks:
        batch = tok({"chunk_id": np.array([c.chunk_id]), "chunk": np.array([json.dumps(asdict(c))])})
        out = fwd(batch)
        tables.append(pa.ipc.open_stream(out["table"][0]).read_all())
        counts.update(json.loads(out["stats"][0]))
    return pa.concat_tables(tables), counts


def direct(lm, words, pooling, layer, target=None, site="encoder"):
    """Vectors of each word from a forward pass of this sentence alone (no padding)."""
    enc = lm.tokenizer([words], is_split_into_words=True, return_tensors="pt")
    targets = None
    if target is not None:
        t = lm.tokenizer([target], is_split_into_words=True, return_tensors="pt")
        targets = {"input_ids": t["input_ids"], "attention_mask": t["attention_mask"]}
        enc_for_words = t
    else:
        enc_for_words = enc
    with torch.inference_mode():
        states = layer_states(lm, {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}, targets)
    h = states[site][layer][0]
    ids = enc_for_words.word_ids(0)
    out = []
    for w in range(len(target if target is not None else words)):
        pos = [t for t, i in enumerate(ids) if i == w]
        out.append({"first": h[pos[0]], "last": h[pos[-1]], "mean": h[pos].mean(0)}[pooling].numpy())
    return np.stack(out)


@pytest.mark.parametrize("family", ["bert", "xlm-roberta", "mt5"])
@pytest.mark.parametrize("pooling", ["first", "last", "mean"])
def test_activations_equal_direct_forward(assets, tmp_path, family, pooling):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    cfg = ExtractConfig(
        model=ModelConfig(name=str(assets / "models" / family)), inputs=[{"format": "text", "path": str(corpus),
        "language": "xx"}], languages=["xx"], output_dir=str(tmp_path / "out"), pooling=pooling, dtype="float32",
        batch_size=4, cap=None,
    )  # fmt: skip
    table = run_stages(cfg)[0].to_pydict()
    lm = load_model(cfg.model)
    for s, sentence in enumerate(SENTENCES):
        words = sentence.split()
        for layer in (0, 2):
            rows = [k for k in range(len(table["word"])) if table["sentence_id"][k] == f"c:{s + 1}"
                    and table["layer"][k] == layer]  # fmt: skip
            assert [table["word_index"][k] for k in rows] == list(range(len(words)))
            assert [table["word"][k] for k in rows] == words
            got = np.stack([table["vector"][k] for k in rows])
            np.testing.assert_allclose(got, direct(lm, words, pooling, layer), atol=2e-5)


def test_mt5_decoder_reads_target_with_teacher_forcing(assets, tmp_path):
    src, tgt = tmp_path / "p.xd", tmp_path / "p.en"
    src.write_text(SENTENCES[2] + "\n" + SENTENCES[1] + "\n", encoding="utf-8")
    tgt.write_text(SENTENCES[0] + "\n" + SENTENCES[3] + "\n", encoding="utf-8")
    cfg = ExtractConfig(
        model=ModelConfig(name=str(assets / "models" / "mt5")), inputs=[{"format": "parallel", "source": str(src),
        "target": str(tgt), "source_language": "xd", "target_language": "en"}], languages=["xd", "en"],
        output_dir=str(tmp_path / "out"), sites=["encoder", "decoder"], dtype="float32", cap=None,
    )  # fmt: skip
    table = run_stages(cfg)[0].to_pydict()
    lm = load_model(cfg.model)
    for line in (1, 2):
        s_words = (src.read_text(encoding="utf-8").splitlines()[line - 1]).split()
        t_words = (tgt.read_text(encoding="utf-8").splitlines()[line - 1]).split()
        rows = [k for k in range(len(table["word"])) if table["sentence_id"][k] == f"p:{line}"
                and table["site"][k] == "decoder" and table["layer"][k] == 2]  # fmt: skip
        assert {table["language"][k] for k in rows} == {"en"}
        got = np.stack([table["vector"][k] for k in rows])
        want = direct(lm, s_words, "last", 2, target=t_words, site="decoder")
        np.testing.assert_allclose(got, want, atol=2e-5)


def test_sentences_without_kept_words_are_not_run_and_the_rest_is_unchanged(assets, tmp_path):
    corpus = tmp_path / "c.txt"
    lines = SENTENCES * 6  # each sentence six times: every type occurs at least six times
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = ExtractConfig(model=ModelConfig(name=str(assets / "models" / "bert")), inputs=[{"format": "text",
        "path": str(corpus), "language": "xx"}], languages=["xx"], output_dir=str(tmp_path / "out"), cap=2,
        dtype="float32", batch_size=5)  # fmt: skip
    keys, hashes = occurrences((f"c:{n}", "xx", line.split()) for n, line in enumerate(lines, 1))
    thresholds = merge_thresholds([smallest_hashes(keys, hashes, 2)], 2)
    capped, counts = run_stages(cfg, thresholds)
    capped = capped.to_pandas()
    everything = run_stages(cfg.model_copy(update={"cap": None}))[0].to_pandas()
    where = [(f"c:{n}", i) for n, line in enumerate(lines, 1) for i in range(len(line.split()))]
    kept = {at for at, k in zip(where, keep_mask(keys, hashes, thresholds), strict=True) if k}
    assert set(zip(capped["sentence_id"], capped["word_index"], strict=True)) == kept
    run = {sid for sid, _ in kept}
    assert len(run) < len(lines)  # some sentences keep nothing, so they were never run
    key = ["sentence_id", "word_index", "layer"]
    merged = capped.merge(everything, on=key, suffixes=("", "_all"))
    assert len(merged) == len(capped)
    np.testing.assert_allclose(np.stack(merged["vector"]), np.stack(merged["vector_all"]), atol=2e-5)
    assert counts["sentences_run"] == len(run) and counts["sentences"] == len(lines)


def test_cap_is_independent_of_chunking_and_order():
    sentences = [(f"s{i}", "en", ["w"]) for i in range(40)] + [("s1", "en", ["x", "rare"])]
    keys, hashes = occurrences(sentences)
    assert len(set(hashes.tolist())) == len(hashes) == 42
    whole = merge_thresholds([smallest_hashes(keys, hashes, 15)], 15)
    parts = [occurrences(sentences[k::3]) for k in range(3)]
    assert whole == merge_thresholds([smallest_hashes(*part, 15) for part in parts][::-1], 15)
    assert whole == merge_thresholds([smallest_hashes(*part, 15) for part in parts], 15, batch=1)  # cut every part
    assert set(whole) == {"en\x1fw"}
    kept = keep_mask(keys, hashes, whole)
    assert kept[:40].sum() == 15 and kept[40:].all()
    assert np.array_equal(occurrences(sentences)[1], hashes)  # deterministic; the constant pins it across versions
    assert int(hashes[0]) == STABLE_FIRST_HASH
