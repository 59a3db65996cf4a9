"""The world's dose knobs: shared anchor words and the source's word order, each 0 by default (the world as it was)."""

import hashlib

import polars as pl
import pytest

from xlray.world.build import World, WorldConfig, gold_dictionary, write_world
from xlray.world.languages import CONCEPT_CLASSES, OWN_FORM_CLASSES, anchor_concepts

SMALL = {"parallel_sentences": 40, "task_train": 10, "task_test": 10, "task_dev": 10}


def test_the_default_world_is_the_world_before_the_knobs(tmp_path):
    """The parallel text of the default world, byte for byte as it was written before the knobs existed (the
    README's measurements are on it)."""
    out = write_world(WorldConfig(), tmp_path / "w")
    digest = hashlib.sha256()
    for path in sorted((out / "parallel").iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    assert digest.hexdigest() == "c1c631c5d0cb122f16e8fe09cb9f3d525d164dede51b517162ea98bb9432dcf2"


@pytest.mark.parametrize("share", [0.25, 0.5, 1.0])
def test_anchor_words_are_written_as_in_english_and_the_rest_stays(share):
    plain, world = World(WorldConfig()), World(WorldConfig(anchors=share))
    english = world.languages["en"]
    assert english.lexicon == plain.languages["en"].lexicon
    for cls in OWN_FORM_CLASSES:
        assert sum(c.startswith(f"{cls}:") for c in world.anchors) == round(share * CONCEPT_CLASSES[cls])
    loans = {english.form(c) for c in world.anchors}
    redrawn = 0
    for code in world.targets:
        lexicon, before = world.languages[code].lexicon, plain.languages[code].lexicon
        assert all(lexicon[c] == english.form(c) for c in world.anchors)
        others = [c for c in lexicon if c not in world.anchors]
        assert not {lexicon[c] for c in others} & loans  # no native word is spelt like a loan
        assert len(set(lexicon.values())) == len(lexicon)  # a form still names one concept
        redrawn += sum(lexicon[c] != before[c] for c in others)
    assert redrawn <= 2  # only a native word that a loan happened to equal is redrawn
    dictionary = gold_dictionary(world).filter(pl.col("concept").is_in(world.anchors))
    assert len(dictionary) == len(world.anchors) * len(world.targets)
    assert (dictionary["word"] == dictionary["translation"]).all()


def test_a_higher_anchor_share_keeps_the_lower_ones_anchors():
    shares = [0.0, 0.25, 0.5, 0.75, 1.0]
    sets = [set(anchor_concepts(0, s)) for s in shares]
    assert sets[0] == set() and all(a < b for a, b in zip(sets, sets[1:], strict=False))
    assert set(anchor_concepts(1, 0.5)) != sets[2]  # another seed, other anchors


def content_slots(words):
    """The slot order of a rendering without the determiners (a language keeps its own)."""
    return [w.slot for w in words if ".det." not in w.slot]


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_a_share_of_sentences_follows_the_source_word_order(share):
    plain, world = World(WorldConfig()), World(WorldConfig(word_order=share))
    meanings = list(world.meanings("parallel", 600))
    for code in world.targets:
        same = reordered = 0
        for m in meanings:
            words, before = world.render(m, code), plain.render(m, code)
            assert sorted(w.slot for w in words) == sorted(w.slot for w in before)  # the same words, moved
            assert [w.form for w in words if w.slot.endswith(".det." + code)] == [
                w.form for w in before if w.slot.endswith(".det." + code)
            ]
            same += content_slots(words) == content_slots(world.render(m, "en"))
            reordered += words != before
        own = sum(content_slots(plain.render(m, code)) == content_slots(plain.render(m, "en")) for m in meanings)
        if share == 0.0:
            assert reordered == 0
        elif share == 1.0:
            assert same == len(meanings)
        elif own < len(meanings):  # about half of the sentences; those already in English order do not move
            assert 0.4 < (same - own) / (len(meanings) - own) < 0.6
        else:
            assert code == "xc"  # in the source's order already (it drops the determiners)


def test_a_world_with_both_knobs_writes_gold_links_between_words_of_one_concept(tmp_path):
    cfg = WorldConfig(**SMALL, anchors=0.5, word_order=0.5)
    out = write_world(cfg, tmp_path / "w")
    gold = pl.read_parquet(out / "gold" / "words.parquet")
    concept = {(r["language"], r["sentence"], r["index"]): r["concept"] for r in gold.iter_rows(named=True)}
    links = 0
    for code in cfg.languages:
        lines = (out / "parallel" / f"{code}-en.gold.align").read_text().splitlines()
        for k, line in enumerate(lines):
            for link in line.split():
                i, j = map(int, link.split("-"))
                assert concept[(code, k, i)] == concept[("en", k, j)]
                links += 1
    assert links > 40 * 3 * 4
    world = World(cfg)
    shared = {world.languages["en"].form(c) for c in world.anchors}
    latin = {w for w in (out / "parallel" / "xd-en.xd").read_text().split() if w.isascii() and w.isalpha()}
    assert len(latin) >= 10 and latin <= shared  # in Devanagari text, the only Latin words are the loans


def test_xlray_world_takes_the_knobs(tmp_path, capsys):
    from xlray.cli import main
    from xlray.world.build import read_world_config

    out = tmp_path / "w"
    assert main(["world", "--output", str(out), "--families", "bert", "--anchors", "0.25", "--word-order", "1"]) == 0
    written = read_world_config(out / "world")
    assert (written.anchors, written.word_order) == (0.25, 1.0)
    assert (out / "models" / "bert" / "config.json").is_file()
    with pytest.raises(SystemExit) as exit_:
        main(["world", "--output", str(tmp_path / "bad"), "--anchors", "1.5"])
    assert exit_.value.code == 2 and "--anchors: '1.5' is not a share between 0 and 1" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
