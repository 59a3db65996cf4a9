"""The tiny bert's WordPiece vocabulary is the same in every process (tokenizers' own trainer is not)."""

import json
import os
import subprocess
import sys

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
