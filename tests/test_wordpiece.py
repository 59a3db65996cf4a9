"""The tiny models' vocabularies are the same in every process (tokenizers' own trainers are not): bert's WordPiece
and the Unigram of xlm-roberta and mt5."""

import json
import os
import subprocess
import sys

import pytest

from xlray.world.wordpiece import merge_pair, wordpiece_vocab

SPECIALS = ["[PAD]", "[UNK]"]


def test_specials_then_characters_then_merges_with_ties_broken_alphabetically():
    vocab = wordpiece_vocab({"cd": 2, "ab": 2, "abab": 1}, 9, SPECIALS)
    tokens = list(vocab)
    assert tokens[:2] == SPECIALS and vocab == {t: i for i, t in enumerate(tokens)}
    assert tokens[2:7] == ["##a", "##b", "##d", "a", "c"]  # every character, sorted, before any merge
    assert tokens[7:] == ["ab", "cd"]  # "a ##b" occurs 3 times, then "c ##d" twice
    tie = list(wordpiece_vocab({"cd": 1, "ab": 1}, 7, SPECIALS))
    assert tie[-1] == "ab"  # equal counts: the alphabetically first pair is merged first


def test_a_merge_replaces_non_overlapping_pairs_left_to_right():
    assert merge_pair(("a", "##a", "##a"), ("a", "##a"), "aa") == ("aa", "##a")
    assert merge_pair(("##a", "##a", "##a", "##a"), ("##a", "##a"), "##aa") == ("##aa", "##aa")


def test_the_bert_tokenizer_is_the_same_in_every_process(assets):
    """Two processes with different string-hash seeds train the tiny bert's tokenizer on the world: one vocabulary."""
    code = (
        "import json, sys; from xlray.world.tiny_models import bert_tokenizer, world_texts;"
        " print(json.dumps(bert_tokenizer(world_texts(sys.argv[1]), 600).get_vocab(), sort_keys=True))"
    )
    vocabs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", code, str(assets / "world")], capture_output=True, text=True,
                              env=env, check=True)  # fmt: skip
        vocabs.append(json.loads(done.stdout))
    assert vocabs[0] == vocabs[1] and len(vocabs[0]) == 600


def test_the_unigram_tokenizers_are_the_same_in_every_process(assets):
    """Two processes train the tiny xlm-roberta's and mt5's Unigram tokenizer on the world: one vocabulary, one
    score per piece (the trainer alone orders tied pieces, and so their ids, differently in each process)."""
    code = (
        "import sys; from xlray.world.tiny_models import unigram_tokenizer, world_texts;"
        " t = unigram_tokenizer(world_texts(sys.argv[1]), 600, ['<s>', '<pad>', '</s>', '<unk>', '<mask>'],"
        " '<s> $A </s>'); print(t.to_str())"
    )
    models = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", code, str(assets / "world")], capture_output=True, text=True,
                              check=True)  # fmt: skip
        models.append(json.loads(done.stdout)["model"])
    assert models[0] == models[1] and models[0]["type"] == "Unigram" and len(models[0]["vocab"]) > 300
    pieces = [piece for piece, _ in models[0]["vocab"]]
    assert pieces[:5] == ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    scores = [score for _, score in models[0]["vocab"][5:]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("family", ["xlm-roberta", "mt5"])
def test_the_unigram_tokenizers_know_every_word_of_the_world_after_a_reload(assets, family):
    """Saved and loaded back through transformers, no sentence of the world has an <unk> and each decodes back to
    itself (with an NFKC normaliser, which the reload drops, every decomposed diacritic was <unk>)."""
    from transformers import AutoTokenizer

    from xlray.world.tiny_models import world_texts

    tok = AutoTokenizer.from_pretrained(assets / "models" / family)
    texts = world_texts(assets / "world")
    encoded = tok(texts, add_special_tokens=False)["input_ids"]
    assert not any(tok.unk_token_id in ids for ids in encoded)
    assert [tok.decode(ids) for ids in encoded[:2000]] == texts[:2000]
