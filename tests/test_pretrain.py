"""Pretraining of the tiny models is deterministic, cached by its config, and loads through the production loader."""

import json

import pytest
import torch
from safetensors.torch import load_file

from xlray.configs import ModelConfig
from xlray.errors import XlrayError
from xlray.models import load_model
from xlray.world.build import World, WorldConfig, write_world
from xlray.world.pretrain import (
    MANIFEST,
    PretrainConfig,
    Rows,
    batch,
    hidden_positions,
    noise_mask,
    objective,
    pretrained_model,
    sentinel_ids,
    span_corrupt,
)
from xlray.world.tiny_models import build_tiny_model, world_texts

SMALL = WorldConfig(parallel_sentences=40, task_train=10, task_test=10, task_dev=10)
QUICK = PretrainConfig(steps=6, batch_size=8)


@pytest.fixture(scope="module")
def small_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    world = write_world(SMALL, root / "world")
    texts = world_texts(world)
    families = ("bert", "llama", "mt5")
    models = {f: build_tiny_model(f, texts, root / f, hidden=32, layers=2, vocab=300) for f in families}
    return root, world, models


def weights(folder):
    return load_file(folder / "model.safetensors")


@pytest.mark.parametrize("family", ["bert", "llama", "mt5"])
def test_same_seed_and_threads_give_the_same_weights(small_world, family):
    root, world, models = small_world
    a = pretrained_model(family, world, models[family], QUICK, root / f"{family}-a")
    b = pretrained_model(family, world, models[family], QUICK, root / f"{family}-b")
    other = pretrained_model(family, world, models[family], QUICK.model_copy(update={"seed": 1}), root / f"{family}-c")
    wa, wb, wc = weights(a), weights(b), weights(other)
    assert wa.keys() == wb.keys() == weights(models[family]).keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    assert json.loads((a / MANIFEST).read_text())["objective"] == objective(family)


def test_the_pretrained_twin_loads_through_the_loader_and_differs_from_random_init(small_world):
    root, world, models = small_world
    trained = pretrained_model("bert", world, models["bert"], QUICK, root / "bert-loaded")
    twin, base = load_model(ModelConfig(name=str(trained))), load_model(ModelConfig(name=str(models["bert"])))
    assert twin.family.name == "bert" and twin.num_layers == base.num_layers == 2
    enc = twin.tokenizer("ka tu .", return_tensors="pt")
    with torch.no_grad():
        a = twin.model(**enc).last_hidden_state
        b = base.model(**enc).last_hidden_state
    assert a.shape == b.shape and not torch.allclose(a, b)
    # the pooler is trained by no objective, so it keeps its initial values
    assert torch.equal(weights(trained)["pooler.dense.weight"], weights(models["bert"])["pooler.dense.weight"])


def test_a_finished_twin_is_reused_and_a_changed_config_rebuilds_it(small_world):
    root, world, models = small_world
    out = pretrained_model("bert", world, models["bert"], QUICK, root / "bert-cached")
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert pretrained_model("bert", world, models["bert"], QUICK, out) == out
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp
    changed = QUICK.model_copy(update={"code_switch": 0.3})
    pretrained_model("bert", world, models["bert"], changed, out)
    assert json.loads((out / MANIFEST).read_text())["key"]["config"]["code_switch"] == 0.3
    embeddings = "embeddings.word_embeddings.weight"
    assert not torch.equal(weights(out)[embeddings], weights(models["bert"])[embeddings])


def test_code_switching_swaps_content_words_for_gold_translations_only():
    import random
    import unicodedata

    world = World(SMALL)
    rows = Rows(world, 20)
    forms = {form for lang in world.languages.values() for form in lang.lexicon.values()}
    function_words = {lang.form(k) for lang in world.languages.values() for k in lang.lexicon if k.startswith("fn:")}
    changed = kept = 0
    for seed in range(30):  # the same seed picks the same row and language, with and without switching
        plain = rows.monolingual(random.Random(seed), 0.0).split()
        switched = rows.monolingual(random.Random(seed), 1.0).split()
        assert len(plain) == len(switched)
        for p, q in zip(plain, switched, strict=True):
            if p in function_words or all(unicodedata.category(ch).startswith("P") for ch in p):
                assert p == q  # function words and punctuation stay
            elif p != q:
                assert q in forms
                changed += 1
            else:
                kept += 1  # a shared name or digit, the same in both languages
    assert changed > 3 * kept


def test_the_pretrained_mt5_loads_through_the_loader_with_the_random_init_layout(small_world):
    root, world, models = small_world
    trained = pretrained_model("mt5", world, models["mt5"], QUICK, root / "mt5-loaded")
    twin, base = load_model(ModelConfig(name=str(trained))), load_model(ModelConfig(name=str(models["mt5"])))
    assert type(twin.model).__name__ == type(base.model).__name__ == "MT5Model"
    assert twin.family.name == "mt5" and twin.num_layers == base.num_layers == 2
    assert twin.tokenizer.convert_tokens_to_ids("<extra_id_0>") == len(twin.tokenizer) - 1
    enc = twin.tokenizer("ka tu .", return_tensors="pt")
    with torch.no_grad():
        a = twin.model.encoder(**enc).last_hidden_state
        b = base.model.encoder(**enc).last_hidden_state
    assert a.shape == b.shape and not torch.allclose(a, b)
    trained_weights, initial = weights(trained), weights(models["mt5"])
    assert trained_weights.keys() == initial.keys()  # no lm_head of its own: transformers ties it to shared
    assert not torch.equal(trained_weights["shared.weight"], initial["shared.weight"])
    assert not torch.equal(
        trained_weights["decoder.final_layer_norm.weight"], initial["decoder.final_layer_norm.weight"]
    )


def test_the_tiny_mt5_tokenizer_has_mt5s_sentinels_and_knows_all_world_text(small_world):
    _, world, models = small_world
    tok = load_model(ModelConfig(name=str(models["mt5"]))).tokenizer
    sentinels = tok.convert_tokens_to_ids([f"<extra_id_{i}>" for i in range(100)])
    assert sentinels == list(range(len(tok) - 1, len(tok) - 101, -1))  # at the end, <extra_id_0> the highest
    assert set(sentinels) <= set(tok.all_special_ids) and "<extra_id_100>" not in tok.get_vocab()
    texts = world_texts(world)
    encoded = tok(texts)["input_ids"]
    assert not any(tok.unk_token_id in ids or set(ids) & set(sentinels) for ids in encoded)
    assert tok.batch_decode(encoded, skip_special_tokens=True) == texts  # decomposed diacritics too


def test_span_corruption_puts_one_sentinel_per_span_and_the_spans_in_the_target():
    s0, s1, s2 = 99, 98, 97  # as in mT5, <extra_id_0> has the highest id
    inputs, targets = span_corrupt([10, 11, 12, 13, 14, 15, 16, 17, 1], {2, 3, 6}, [s0, s1, s2], eos=1)
    assert inputs == [10, 11, s0, 14, 15, s1, 17, 1]
    assert targets == [s0, 12, 13, s1, 16, s2, 1]  # each span after its sentinel, a final sentinel, eos
    # a span that the pair's separator (1) cuts is two spans, neither holding the separator
    assert span_corrupt([10, 11, 1, 20, 21, 1], {1, 3}, [s0, s1, s2], eos=1) == (
        [10, s0, 1, s1, 21, 1],
        [s0, 11, s1, 20, s2, 1],
    )


def test_the_noise_is_a_mask_rate_share_of_the_content_in_spans_of_mean_span_tokens():
    import random

    rng, cfg = random.Random(0), PretrainConfig()
    special = [True, *[False] * 20, True, *[False] * 20, True]  # a special token, A, separator, B, eos
    starts = ends = 0
    for _ in range(200):
        hidden = hidden_positions(special, cfg, rng)
        assert len(hidden) == 6  # round(40 * 0.15), in round(6 / 3) = 2 spans
        assert not any(special[p] for p in hidden)
        mask = noise_mask(40, cfg.mask_rate, cfg.mean_span, rng)
        runs = [i for i, m in enumerate(mask) if m and (i == 0 or not mask[i - 1])]
        assert sum(mask) == 6 and len(runs) == 2  # two spans, never touching
        starts, ends = starts + mask[0], ends + mask[-1]
    assert 0 < starts < 100 and 0 < ends < 100  # a row may start or end in noise, not always (T5's ends in it)
    assert noise_mask(1, 0.15, 3.0, rng) == [False]  # one token: nothing to hide
    assert sum(noise_mask(10, 0.99, 1.0, rng)) == 9  # never the whole row


def hidden_spans(targets, sentinels):
    """Sentinel -> the tokens it hides, read from a span-corruption target (eos at its end)."""
    spans = {}
    for t in targets[:-1]:
        if t in sentinels:
            span = spans.setdefault(t, [])
        else:
            span.append(t)
    return spans


def test_a_span_batch_corrupts_the_rows_the_other_objectives_draw_and_pads_apart(small_world):
    import random

    from transformers import AutoTokenizer

    models = small_world[2]
    tok = AutoTokenizer.from_pretrained(models["mt5"])
    rows = Rows(World(SMALL), 40)
    cfg = PretrainConfig(batch_size=16, tlm_share=0.5)
    span = batch(tok, rows, cfg, random.Random(5), "span")
    plain = batch(tok, rows, cfg, random.Random(5), "clm")  # the same rows, uncorrupted
    sentinels = sentinel_ids(tok)
    assert len(sentinels) == 100 and sentinels[0] == len(tok) - 1
    hidden = content = 0
    for r in range(cfg.batch_size):
        inputs = span["input_ids"][r][span["attention_mask"][r] == 1].tolist()
        assert (span["input_ids"][r][span["attention_mask"][r] == 0] == tok.pad_token_id).all()
        targets = span["labels"][r][span["labels"][r] != -100].tolist()
        assert (span["labels"][r][len(targets) :] == -100).all() and targets[-1] == tok.eos_token_id
        used = [t for t in inputs if t in sentinels]
        assert used == sentinels[: len(used)] and targets[0] == sentinels[0]
        spans = hidden_spans(targets, sentinels)
        assert list(spans) == sentinels[: len(used) + 1] and spans[sentinels[len(used)]] == []  # the final one
        restored = [t for i in inputs for t in (spans[i] if i in spans else [i])]
        assert restored == plain["input_ids"][r][plain["attention_mask"][r] == 1].tolist()
        assert not set(t for s in spans.values() for t in s) & set(tok.all_special_ids)
        hidden += sum(len(s) for s in spans.values())
        content += sum(i not in tok.all_special_ids for i in restored)
    assert 0.12 < hidden / content < 0.2


def test_a_tokenizer_without_sentinels_is_a_one_line_error(small_world):
    from transformers import AutoTokenizer

    models = small_world[2]
    with pytest.raises(XlrayError, match=r"no sentinel tokens .*rebuild it with `xlray world`"):
        sentinel_ids(AutoTokenizer.from_pretrained(models["bert"]))


def test_each_family_has_its_objective():
    from xlray.families import FAMILY_NAMES

    assert [objective(f) for f in ("bert", "xlm-roberta", "mt5", "llama")] == ["mlm", "mlm", "span", "clm"]
    assert all(objective(f) for f in FAMILY_NAMES)


@pytest.mark.parametrize("family", ["nonesuch"])
def test_a_family_without_an_objective_is_a_one_line_error(family):
    with pytest.raises(XlrayError, match=family):
        objective(family)
