"""The family table is the one source of family names and quirks; ``layer_states`` is what the HF model returns."""

import re
from pathlib import Path
from typing import get_args

import pytest
import torch

from xlray.cli import build_parser
from xlray.configs import ModelConfig
from xlray.demo import DemoConfig
from xlray.families import ENCODER_FAMILIES, FAMILIES, FAMILY_NAMES, LLM_FAMILIES
from xlray.models import UNLIMITED, encoder_of, layer_states, length_limit, load_model
from xlray.sweep.config import WorldAssets
from xlray.world import tiny_models

PAIRS = (["Bezotu cámã tạ .", "безоту хямылано ."], ["a .", "बएजओतउ खीमा दे ."])


def test_every_family_list_is_the_table():
    assert get_args(ModelConfig.model_fields["family"].annotation) == ("auto", *FAMILY_NAMES)
    assert get_args(DemoConfig.model_fields["family"].annotation) == ENCODER_FAMILIES  # its sweep trains the model
    (item,) = get_args(WorldAssets.model_fields["families"].annotation)
    assert get_args(item) == FAMILY_NAMES
    assert build_parser().parse_args(["world"]).families == list(FAMILY_NAMES)
    assert tiny_models.FAMILIES == FAMILY_NAMES and set(tiny_models.SAVERS) == set(FAMILY_NAMES)
    model_types = [t for f in FAMILIES.values() for t in f.model_types]
    assert len(model_types) == len(set(model_types)), "a model_type must resolve to one family"


def test_no_module_spells_the_names_as_its_own_literal():
    root = Path(__file__).resolve().parents[1] / "xlray"
    spelled = re.compile(r"Literal\[[^\]]*[\"'](" + "|".join(map(re.escape, FAMILY_NAMES)) + r")[\"']")
    found = [str(p.relative_to(root)) for p in sorted(root.rglob("*.py")) if spelled.search(p.read_text())]
    assert found == []


def test_config_validates_exactly_the_table_names():
    for name in ("auto", *FAMILY_NAMES):
        assert ModelConfig(name="x", family=name).family == name
    with pytest.raises(ValueError, match="family"):
        ModelConfig(name="x", family="gpt2")


@pytest.mark.parametrize(
    ("family", "conf", "expected"),
    [
        ("xlm-roberta", {"max_position_embeddings": 514}, 512),  # XLM-R's two positions before the first token
        ("xlm-roberta", {"max_position_embeddings": 130}, 128),
        ("xlm-roberta", {}, 512),
        ("bert", {"max_position_embeddings": 130}, 130),
        ("bert", {"max_position_embeddings": 1024}, 512),
        ("mt5", {}, 512),  # relative positions: no table
    ],
)
def test_length_limit_takes_the_position_offset_off_the_table(family, conf, expected):
    assert length_limit(ModelConfig(name="x"), FAMILIES[family], conf, UNLIMITED) == expected
    assert length_limit(ModelConfig(name="x", max_length=20), FAMILIES[family], conf, UNLIMITED) == 20


def assert_same(ours, theirs):
    assert len(ours) == len(theirs) == 3  # embeddings + 2 layers
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_layer_states_equal_the_models_own_hidden_states(assets, family):
    """Sentence pairs, so that BERT's segment ids are not all zero and must reach the model."""
    lm = load_model(ModelConfig(name=str(assets / "models" / family), dtype="float32"))
    enc = lm.tokenizer(*PAIRS, padding=True, return_tensors="pt")
    assert ("token_type_ids" in enc and enc["token_type_ids"].any()) == (family == "bert")
    with torch.inference_mode():
        ours = layer_states(lm, enc)
        ids_and_mask = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
        from_encoder = layer_states(encoder_of(lm), ids_and_mask)
        if FAMILIES[family].decoder:
            targets = lm.tokenizer(PAIRS[1], padding=True, return_tensors="pt")
            shifted = lm.model._shift_right(targets["input_ids"])
            ref = lm.model(
                **enc,
                decoder_input_ids=shifted,
                decoder_attention_mask=targets["attention_mask"],
                output_hidden_states=True,
            )
            theirs, last = ref.encoder_hidden_states, ref.encoder_last_hidden_state
            both = layer_states(lm, enc, targets)
            assert set(both) == {"encoder", "decoder"}
            assert_same(both["encoder"], theirs)
            assert_same(both["decoder"], ref.decoder_hidden_states)
        elif lm.family.causal:  # left-padded rows keep their own positions (counted over real tokens only)
            positions = (enc["attention_mask"].cumsum(-1) - 1).clamp_min(0)
            ref = lm.model(**enc, position_ids=positions, output_hidden_states=True)
            theirs, last = ref.hidden_states, ref.last_hidden_state
        else:
            ref = lm.model(**enc, output_hidden_states=True)
            theirs, last = ref.hidden_states, ref.last_hidden_state
            assert set(layer_states(lm, enc, enc)) == {"encoder"}  # targets mean nothing without a decoder
    assert set(ours) == {"encoder"}
    assert_same(ours["encoder"], theirs)
    torch.testing.assert_close(ours["encoder"][lm.family.last_layer], last, rtol=0, atol=0)
    if family != "bert" and not lm.family.causal:  # a module gets ids and mask only: no segment ids, positions
        assert_same(from_encoder["encoder"], theirs)


@pytest.mark.parametrize("family", LLM_FAMILIES)
def test_llm_last_layer_comes_after_the_final_norm(assets, family):
    lm = load_model(ModelConfig(name=str(assets / "models" / family), dtype="float32"))
    enc = lm.tokenizer(PAIRS[0], padding=True, return_tensors="pt")
    raw = []
    hook = lm.model.layers[-1].register_forward_hook(lambda module, args, out: raw.append(out))
    try:
        with torch.inference_mode():
            states = layer_states(lm, enc)["encoder"]
    finally:
        hook.remove()
    layer_out = raw[0][0] if isinstance(raw[0], tuple) else raw[0]
    last = states[lm.family.last_layer]
    torch.testing.assert_close(last, lm.model.norm(layer_out))
    assert not torch.allclose(last, layer_out)


def test_mt5_last_layer_comes_after_the_final_norm(assets):
    lm = load_model(ModelConfig(name=str(assets / "models" / "mt5"), dtype="float32"))
    enc = lm.tokenizer(PAIRS[0], padding=True, return_tensors="pt")
    encoder, raw = encoder_of(lm), []
    hook = encoder.block[-1].register_forward_hook(lambda module, args, out: raw.append(out[0]))
    try:
        with torch.inference_mode():
            states = layer_states(lm, enc)["encoder"]
    finally:
        hook.remove()
    last = states[lm.family.last_layer]
    torch.testing.assert_close(last, encoder.final_layer_norm(raw[0]))
    assert not torch.allclose(last, raw[0])
