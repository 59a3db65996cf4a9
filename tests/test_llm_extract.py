"""Decoder-only LLMs through the extraction stages: every stored vector equals an unpadded one-sentence forward
pass (both padding sides, BOS present and absent, both tokenizer kinds), sentence poolings against hand
computations, the byte budget and the multi-GPU placement."""

import json
from dataclasses import asdict

import numpy as np
import pyarrow as pa
import pytest
import torch

from xlray.configs import ModelConfig
from xlray.errors import XlrayError
from xlray.extract.budget import check_budget
from xlray.extract.config import ExtractConfig
from xlray.extract.corpus import plan_chunks
from xlray.extract.stages import ForwardChunks, TokenizeChunks
from xlray.families import FAMILIES, LLM_FAMILIES
from xlray.models import load_model, refuse_llm, spread_over_gpus
from xlray.sentence_pool import pool_sentences
from xlray.wordmap import collate

# Latin with combining diacritics, Cyrillic, Devanagari, long made-up words of many pieces, characters outside
# every tiny vocabulary (byte fallback / bytes), and a one-word sentence: very different lengths, so padding.
SENTENCES = [
    "Bezotu ca\u0301ma\u0303 ta\u0323 Bezotuca\u0301ma\u0303ta\u0323 .",
    "безоту хямылано зевэшэ хямыланозевэшэхямылано 火 .",
    "बएजओतउ खीमा दे खीमादेबएजओतउखीमा ☃ .",
    "a",
]


def run_stages(cfg: ExtractConfig, padding_side: str) -> pa.Table:
    """Tokenize and forward every chunk without Ray, the tokenizer padding on ``padding_side``."""
    fwd = ForwardChunks(cfg.model_dump_json(), [0, 1, 2], threads=1)
    fwd.lm.tokenizer.padding_side = padding_side
    tok = TokenizeChunks(cfg.model_dump_json(), 512, {}, fwd.lm.family.causal, fwd.lm.tokenizer)
    tables = []
    for c in plan_chunks(cfg.inputs, cfg.chunk_lines):
        out = fwd(tok({"chunk_id": np.array([c.chunk_id]), "chunk": np.array([json.dumps(asdict(c))])}))
        assert not out["error"][0], out["error"][0]
        tables.append(pa.ipc.open_stream(out["table"][0]).read_all())
    return pa.concat_tables(tables)


def config(assets, tmp_path, family, **fields) -> ExtractConfig:
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    return ExtractConfig(
        model=ModelConfig(name=str(assets / "models" / family), dtype="float32"),
        inputs=[{"format": "text", "path": str(corpus), "language": "xx"}],
        languages=["xx"], output_dir=str(tmp_path / "out"), dtype="float32", batch_size=4, cap=None, **fields,
    )  # fmt: skip


def alone(lm, sentence: str):
    """One sentence, unpadded, without a mask or positions: its states per layer, token ids, which whitespace word
    each token belongs to (by its characters; None for special tokens), and the special-token mask."""
    enc = lm.tokenizer(sentence, return_offsets_mapping=True, return_special_tokens_mask=True)
    with torch.inference_mode():
        states = lm.model(torch.tensor([enc["input_ids"]]), output_hidden_states=True).hidden_states
    spans, start = [], 0
    for word in sentence.split(" "):
        spans.append((start, start + len(word)))
        start += len(word) + 1
    owner = []
    for (begin, end), special in zip(enc["offset_mapping"], enc["special_tokens_mask"], strict=True):
        inside = [w for w, (lo, hi) in enumerate(spans) if lo < end and begin < hi]  # the characters it covers
        inside = inside or [w for w, (lo, _) in enumerate(spans) if lo >= end][:1]  # a lone space: the next word's
        owner.append(None if special else inside[-1])
    return [h[0] for h in states], enc["input_ids"], owner


@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("family", LLM_FAMILIES)
def test_word_vectors_equal_an_unpadded_single_sentence_forward(assets, tmp_path, family, padding_side):
    cfg = config(assets, tmp_path, family, pooling="mean")
    table = run_stages(cfg, padding_side).to_pydict()
    lm = load_model(cfg.model)
    for s, sentence in enumerate(SENTENCES):
        states, _, owner = alone(lm, sentence)
        words = sentence.split()
        for layer in (0, 1, 2):
            rows = [k for k in range(len(table["word"]))
                    if table["sentence_id"][k] == f"c:{s + 1}" and table["layer"][k] == layer]  # fmt: skip
            assert [table["word"][k] for k in rows] == words
            got = np.stack([table["vector"][k] for k in rows])
            want = np.stack(
                [states[layer][[t for t, w in enumerate(owner) if w == i]].mean(0) for i in range(len(words))]
            )
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding_side", ["right", "left"])
# BOS + byte-level, no BOS, BOS + byte fallback; and encoders get sentence vectors too
@pytest.mark.parametrize("family", ["llama", "qwen2", "gemma2", "bert", "xlm-roberta"])
@pytest.mark.parametrize("pooling", ["mean", "weighted-mean", "last", "mexa"])
def test_sentence_vectors_equal_an_unpadded_single_sentence_forward(assets, tmp_path, family, pooling, padding_side):
    cfg = config(assets, tmp_path, family, granularity="sentence", sentence_pooling=pooling)
    table = run_stages(cfg, padding_side).to_pydict()
    assert "word" not in table
    lm = load_model(cfg.model)
    for s, sentence in enumerate(SENTENCES):
        states, ids, owner = alone(lm, sentence)
        content = np.asarray([w is not None for w in owner])
        assert content.sum() < len(ids) or lm.tokenizer.bos_token is None  # BOS present where the model has one
        for layer in (0, 2):
            (row,) = [k for k in range(len(table["sentence_id"]))
                      if table["sentence_id"][k] == f"c:{s + 1}" and table["layer"][k] == layer]  # fmt: skip
            h = states[layer].numpy().astype(np.float64)
            if pooling == "mexa":  # MEXA's embd_weighted: token t of all (BOS included) weighs t
                weights = np.arange(1, len(ids) + 1)
                want, tokens = (weights[:, None] * h).sum(0) / weights.sum(), len(ids)
            else:
                c = h[content]
                tokens = len(c)
                if pooling == "mean":
                    want = c.mean(0)
                elif pooling == "last":
                    want = c[-1]
                else:
                    weights = np.arange(1, len(c) + 1)
                    want = (weights[:, None] * c).sum(0) / weights.sum()
            assert table["tokens"][row] == tokens
            np.testing.assert_allclose(table["vector"][row], want, rtol=1e-5, atol=1e-5)


def test_sentence_poolings_by_hand_with_left_padding():
    """Two sentences, the second left-padded by two; token 0 of each is a special token (no word)."""
    states = torch.arange(2 * 5 * 1, dtype=torch.float32).reshape(2, 5, 1) + 1  # values 1..10
    enc = collate([[7, 8, 9, 10, 11], [7, 8, 9]], [[-1, 0, 0, 1, 2], [-1, 0, 1]], np.zeros(2, bool), 0, left=True)
    assert enc.attention_mask.tolist() == [[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]]
    got = {mode: pool_sentences(states, enc, mode)[:, 0].tolist() for mode in ("mean", "weighted-mean", "last", "mexa")}
    # sentence 0: values 1..5, content 2..5; sentence 1: values 8, 9, 10 (6 and 7 are padding), content 9, 10
    assert got["mean"] == [3.5, 9.5]
    assert got["last"] == [5.0, 10.0]
    assert got["weighted-mean"] == pytest.approx([(1 * 2 + 2 * 3 + 3 * 4 + 4 * 5) / 10, (1 * 9 + 2 * 10) / 3])
    assert got["mexa"] == pytest.approx([(1 + 4 + 9 + 16 + 25) / 15, (1 * 8 + 2 * 9 + 3 * 10) / 6])


def test_byte_budget_refuses_and_names_the_estimate(assets, tmp_path):
    cfg = config(assets, tmp_path, "llama", store_budget_gb=1e-6)
    chunks = plan_chunks(cfg.inputs, cfg.chunk_lines)
    words = sum(len(s.split()) for s in SENTENCES)
    with pytest.raises(XlrayError, match=rf"about 0.0 GB \({words} words x 3 layers x 64 values x 4 bytes\)"):
        check_budget(cfg, chunks, [0, 1, 2], 64)
    sentences = cfg.model_copy(update={"granularity": "sentence", "store_budget_gb": 1e-9})
    with pytest.raises(XlrayError, match=r"4 sentences x 3 layers x 64 values x 4 bytes.*store_budget_gb=1e-09"):
        check_budget(sentences, chunks, [0, 1, 2], 64)
    assert check_budget(cfg.model_copy(update={"store_budget_gb": 1.0}), chunks, [0, 1, 2], 64) == words * 3 * 64 * 4
    # For scale (the module's docstring): all 33 hidden states of an 8B model in float16, per word.
    assert 33 * 4096 * 2 == pytest.approx(270e3, rel=0.01)


def test_a_model_spreads_over_gpus_by_whole_layers_and_refuses_what_does_not_fit(assets):
    cfg = ModelConfig(name=str(assets / "models" / "llama"))
    device_map = spread_over_gpus(cfg, FAMILIES["llama"], torch.float32, {0: 400_000, 1: 400_000})
    assert set(device_map.values()) == {0, 1}
    assert all(not k.startswith("layers.") or k.count(".") == 1 for k in device_map)  # layers stay whole
    with pytest.raises(XlrayError, match=r"gpus_per_actor: .* does not fit on 2 GPUs"):
        spread_over_gpus(cfg, FAMILIES["llama"], torch.float32, {0: 1_000, 1: 1_000})


def test_gpus_per_actor_above_one_must_be_whole():
    with pytest.raises(ValueError, match="gpus_per_actor: 1.5: above 1 it must be whole"):
        ExtractConfig(model={"name": "m"}, inputs=[{"format": "text", "path": "p", "language": "x"}],
                      languages=["x"], output_dir="o", gpus_per_actor=1.5)  # fmt: skip


def test_stages_that_train_refuse_llms_before_any_work(assets):
    for family in LLM_FAMILIES:
        with pytest.raises(XlrayError, match=rf"decoder-only LLM \({family}\); xlray adjust trains encoders only"):
            refuse_llm(ModelConfig(name=str(assets / "models" / family)), "adjust")
    refuse_llm(ModelConfig(name=str(assets / "models" / "bert")), "adjust")  # an encoder passes
