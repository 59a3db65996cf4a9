"""The model loader on tiny real checkpoints of each family, and its refusals."""

import json
import shutil
import unicodedata

import pytest
import torch

from xlray.configs import ModelConfig
from xlray.errors import XlrayError
from xlray.families import FAMILY_NAMES
from xlray.models import layer_states, load_model, model_facts
from xlray.wordmap import encode_words, pool_words

FAMILIES = list(FAMILY_NAMES)
# Latin with combining diacritics (NFD), Cyrillic, Devanagari with vowel signs, and a long word of many pieces.
SENTENCES = [
    "Bezotu ca\u0301ma\u0303 ta\u0323 Bezotuca\u0301ma\u0303ta\u0323 .".split(),
    "безоту хямылано зевэшэ хямыланозевэшэхямылано .".split(),
    "बएजओतउ खीमा दे खीमादेबएजओतउखीमा .".split(),
]


@pytest.mark.parametrize("family", FAMILIES)
def test_hidden_state_shapes_and_family(assets, family):
    lm = load_model(ModelConfig(name=str(assets / "models" / family)))
    assert lm.family.name == family and lm.num_layers == 2 and lm.hidden_size == 64
    enc = encode_words(lm.tokenizer, SENTENCES, lm.max_length)
    inputs = {"input_ids": enc.input_ids, "attention_mask": enc.attention_mask}
    targets = inputs if family == "mt5" else None
    with torch.inference_mode():
        states = layer_states(lm, inputs, targets)
    assert set(states) == ({"encoder", "decoder"} if family == "mt5" else {"encoder"})
    for site in states.values():
        assert len(site) == 3
        assert site[0].shape == (3, enc.input_ids.shape[1], 64)


@pytest.mark.parametrize("family", FAMILIES)
def test_facts_read_as_json_equal_those_of_the_loaded_model(assets, family, tmp_path):
    """The driver reads a local checkpoint's facts from its JSON files; they are what transformers reads."""
    cfg = ModelConfig(name=str(assets / "models" / family))
    lm = load_model(cfg)
    facts = model_facts(cfg)
    assert facts["family"] == family and facts["layers"] == lm.num_layers == 2
    assert (facts["hidden_size"], facts["max_length"]) == (lm.hidden_size, lm.max_length)
    path = copy_model(assets, tmp_path, family)  # without a saved model_max_length: transformers' default
    saved = json.loads((path / "tokenizer_config.json").read_text())
    saved.pop("model_max_length", None)
    (path / "tokenizer_config.json").write_text(json.dumps(saved))
    unset = ModelConfig(name=str(path))
    assert model_facts(unset)["max_length"] == load_model(unset).max_length


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: (p / "model.safetensors").rename(p / "pytorch_model.bin"), "no safetensors weights"),
        (lambda p: edit_config(p, auto_map={"AutoModel": "modeling_evil.EvilModel"}), "asks for remote code"),
        (lambda p: edit_config(p, model_type="gpt2"), "model_type 'gpt2'"),
    ],
)
def test_facts_read_as_json_refuse_what_loading_refuses(assets, tmp_path, change, message):
    path = copy_model(assets, tmp_path)
    change(path)
    for read in (model_facts, load_model):
        with pytest.raises(XlrayError, match=message):
            read(ModelConfig(name=str(path)))


def edit_config(path, **fields) -> None:
    conf = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps(conf | fields))


@pytest.mark.parametrize("family", FAMILIES)
def test_word_map_covers_every_word_with_its_subwords(assets, family):
    lm = load_model(ModelConfig(name=str(assets / "models" / family)))
    as_text = lm.family.causal  # an LLM reads the sentence as text: a word's first token holds its space
    sentences = [*SENTENCES, "火 ☃ x".split()] if as_text else SENTENCES  # LLMs: characters outside the vocabulary
    enc = encode_words(lm.tokenizer, sentences, lm.max_length, as_text=as_text)
    assert [len(k) for k in enc.kept_words] == [len(s) for s in sentences]
    assert not enc.truncated.any()
    pieces = (enc.last - enc.first + 1).tolist()
    assert max(pieces) >= 4, "the made-up long words must split into many subwords"
    # Each word's span holds exactly the pieces of that word tokenized alone (LLMs: that decode to the word).
    width = enc.input_ids.shape[1]
    for b, words in enumerate(sentences):
        offset = sum(len(k) for k in enc.kept_words[:b])
        for i, word in enumerate(words):
            lo, hi = enc.first[offset + i].item() - b * width, enc.last[offset + i].item() - b * width
            span = enc.input_ids[b, lo : hi + 1].tolist()
            if as_text:
                assert lm.tokenizer.unk_token_id not in span
                decoded = lm.tokenizer.decode(span).strip()  # Qwen's tokenizer normalises to NFC first
                assert unicodedata.normalize("NFC", decoded) == unicodedata.normalize("NFC", word)
                continue
            alone = lm.tokenizer([word], is_split_into_words=True, add_special_tokens=False)["input_ids"]
            assert span == alone
            if family == "bert":  # its vocabulary covers every character here: an exact round trip
                text = lm.tokenizer.decode(span).replace(" ", "").replace("##", "")
                assert unicodedata.normalize("NFC", text) == unicodedata.normalize("NFC", word)


def test_pooling_first_last_mean_match_direct_indexing():
    states = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)

    class Tok:
        pad_token_id = 0
        eos_token_id = None

        def __call__(self, sentences, **kw):
            class Enc(dict):
                def word_ids(self, b):
                    return [None, 0, 0, 1] if b == 0 else [None, 0, 1, 1]

            return Enc(input_ids=[[1, 2, 3, 4], [1, 5, 6, 7]])

    enc = encode_words(Tok(), [["a", "b"], ["c", "d"]], 16)
    assert pool_words(states, enc, "first").tolist() == [
        states[0, 1].tolist(),
        states[0, 3].tolist(),
        states[1, 1].tolist(),
        states[1, 2].tolist(),
    ]
    assert pool_words(states, enc, "last")[0].tolist() == states[0, 2].tolist()
    assert pool_words(states, enc, "mean")[3].tolist() == ((states[1, 2] + states[1, 3]) / 2).tolist()


def test_truncation_drops_whole_words_and_is_counted(assets):
    lm = load_model(ModelConfig(name=str(assets / "models" / "bert")))
    full = encode_words(lm.tokenizer, SENTENCES, 512)
    enc = encode_words(lm.tokenizer, SENTENCES, 8)
    assert enc.input_ids.shape[1] <= 8 and enc.truncated.all()
    for b in range(3):
        kept = len(enc.kept_words[b])
        assert 0 < kept < len(SENTENCES[b])
        # A kept word keeps all its pieces: same piece count as without truncation.
        n_before = sum(len(k) for k in full.kept_words[:b])
        m_before = sum(len(k) for k in enc.kept_words[:b])
        for i in range(kept):
            assert (enc.last[m_before + i] - enc.first[m_before + i]) == (
                full.last[n_before + i] - full.first[n_before + i]
            )


def copy_model(assets, tmp_path, family="bert"):
    dst = tmp_path / family
    shutil.copytree(assets / "models" / family, dst)
    return dst


def test_refuses_checkpoint_without_safetensors(assets, tmp_path):
    path = copy_model(assets, tmp_path)
    (path / "model.safetensors").rename(path / "pytorch_model.bin")
    with pytest.raises(XlrayError, match=r"no safetensors weights .*allow_pickle_weights"):
        load_model(ModelConfig(name=str(path)))


def test_refuses_remote_code(assets, tmp_path):
    path = copy_model(assets, tmp_path)
    conf = json.loads((path / "config.json").read_text())
    conf["auto_map"] = {"AutoModel": "modeling_evil.EvilModel"}
    (path / "config.json").write_text(json.dumps(conf))
    with pytest.raises(XlrayError, match="asks for remote code"):
        load_model(ModelConfig(name=str(path)))


def test_unknown_family(assets, tmp_path):
    path = copy_model(assets, tmp_path)
    conf = json.loads((path / "config.json").read_text())
    conf["model_type"] = "gpt2"
    (path / "config.json").write_text(json.dumps(conf))
    with pytest.raises(XlrayError, match=r"model.family: .* model_type 'gpt2'"):
        load_model(ModelConfig(name=str(path)))


def test_missing_model_path(tmp_path):
    with pytest.raises(XlrayError, match="model.name"):
        load_model(ModelConfig(name=str(tmp_path / "nothing-here")))
