"""Pretraining of the tiny models is deterministic, cached by its config, and loads through the production loader."""

import json

import pytest
import torch
from safetensors.torch import load_file

from xlray.cli import main
from xlray.configs import ModelConfig
from xlray.errors import XlrayError
from xlray.models import load_model
from xlray.world.build import World, WorldConfig, write_world
from xlray.world.pretrain import MANIFEST, PretrainConfig, Rows, objective, pretrained_model
from xlray.world.tiny_models import build_tiny_model, world_texts

SMALL = WorldConfig(parallel_sentences=40, task_train=10, task_test=10, task_dev=10)
QUICK = PretrainConfig(steps=6, batch_size=8)


@pytest.fixture(scope="module")
def small_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    world = write_world(SMALL, root / "world")
    texts = world_texts(world)
    models = {f: build_tiny_model(f, texts, root / f, hidden=32, layers=2, vocab=300) for f in ("bert", "llama")}
    return root, world, models


def weights(folder):
    return load_file(folder / "model.safetensors")


@pytest.mark.parametrize("family", ["bert", "llama"])
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


@pytest.mark.parametrize("family", ["mt5", "nonesuch"])
def test_a_family_without_an_objective_is_a_one_line_error(family):
    with pytest.raises(XlrayError, match=family):
        objective(family)


def test_cli_refuses_to_pretrain_mt5_before_any_work(tmp_path, capsys):
    assert main(["world", "--output", str(tmp_path / "w"), "--families", "mt5", "--pretrain"]) == 2
    assert "span corruption" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()
