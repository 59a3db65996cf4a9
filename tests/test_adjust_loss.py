"""The adjustment loss: exact values on a hand-built input, and its anchors on the real tiny models."""

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from xlray.adjust.config import LossConfig
from xlray.adjust.loss import alignment_loss, special_positions
from xlray.adjust.pairs import PairBatch
from xlray.configs import ModelConfig
from xlray.models import encoder_of, load_model
from xlray.wordmap import encode_words

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "b", "c", "d", "x", "##y"]
# Layer -1 vectors (2-d) per token; "xy" is two subwords x + ##y, whose mean is (2, 1).
TRAINED = {
    "[CLS]": (0, 0),
    "[SEP]": (1, 1),
    "a": (1, 0),
    "b": (0, 1),
    "c": (2, 0),
    "d": (0, 2),
    "x": (1, 2),
    "##y": (3, 0),
}
ORIGINAL = {**TRAINED, "c": (2, 1), "d": (0, 0), "[CLS]": (1, 0)}
BATCH = PairBatch(
    source=[["a", "xy"], ["b"]],
    english=[["c", "d"], ["d", "a"]],
    links=[[(0, 1), (1, 0)], [(0, 0)]],
)


class TableEncoder(torch.nn.Module):
    """A context-free stand-in for an encoder: h0 = zeros, h1 = a fixed vector per token id."""

    def __init__(self, table: dict[str, tuple[float, float]]):
        super().__init__()
        weight = torch.zeros(len(VOCAB), 2)
        for token, vec in table.items():
            weight[VOCAB.index(token)] = torch.tensor(vec, dtype=torch.float32)
        self.emb = torch.nn.Embedding.from_pretrained(weight, freeze=False)

    def forward(self, input_ids, attention_mask, output_hidden_states):
        h1 = self.emb(input_ids)
        return type("Out", (), {"hidden_states": (torch.zeros_like(h1), h1)})


@pytest.fixture(scope="module")
def tokenizer():
    raw = Tokenizer(models.WordPiece({t: i for i, t in enumerate(VOCAB)}, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    raw.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="[PAD]", unk_token="[UNK]")
    assert tok(["xy"], is_split_into_words=True)["input_ids"] == [2, 8, 9, 3]
    return tok


# Hand computation, layer -1, mean pooling. Links: a~d (1,0)-(0,2): 5; xy~c (2,1)-(2,0): 1; b~d (0,1)-(0,2): 1.
# Anchors: [CLS]~[CLS] and [SEP]~[SEP] for both pairs: 0 against the trained English, and against the original
# English [CLS] (1,0): 1 each. Drift of English words c, d, d, a from the original: 1, 4, 4, 0; of the English
# [CLS], [SEP] of both sentences (Efimov includes them): 1, 0, 1, 0 -> mean 11/8 (words only: 9/4).
@pytest.mark.parametrize(
    "settings, align, reg",
    [
        ({}, 7 / 7, 11 / 8),  # (5 + 1 + 1 + 4 * 0) / 7 links
        ({"reg_specials": False}, 7 / 7, 9 / 4),
        ({"anchors": False}, 7 / 3, 11 / 8),
        ({"anchors": False, "pooling": "first"}, 11 / 3, 11 / 8),  # x (1,2) ~ c: 5
        ({"anchors": False, "pooling": "last"}, 7 / 3, 11 / 8),  # ##y (3,0) ~ c: 1
        # Cao: foreign against the original English: a~d (1,0)-(0,0): 1; xy~c (2,1)-(2,1): 0; b~d: 1; anchors 1+0+1+0
        ({"target": "frozen"}, 4 / 7, 11 / 8),
        ({"layer": 0}, 0.0, 0.0),
    ],
)
def test_loss_matches_hand_computed_value(tokenizer, settings, align, reg):
    cfg = LossConfig(reg_lambda=0.5, **settings)
    trained, original = TableEncoder(TRAINED), TableEncoder(ORIGINAL)
    parts = alignment_loss(trained, original, tokenizer, BATCH, cfg, max_length=16)
    assert parts.align.item() == pytest.approx(align, abs=1e-6)
    assert parts.reg.item() == pytest.approx(reg, abs=1e-6)
    assert parts.total.item() == pytest.approx(align + 0.5 * reg, abs=1e-6)
    assert parts.n_links == (7 if cfg.anchors else 3) and parts.n_english_words == 4 and parts.lost_links == 0
    assert parts.n_reg_rows == (8 if cfg.reg_specials else 4)
    if settings.get("layer") != 0:
        parts.total.backward()
        assert trained.emb.weight.grad.abs().sum() > 0 and original.emb.weight.grad is None


def test_links_to_words_cut_by_the_length_limit_are_counted(tokenizer):
    # At 4 tokens "[CLS] a x ##y [SEP]" loses the whole word "xy" (never half of it), and with it one link.
    parts = alignment_loss(TableEncoder(TRAINED), TableEncoder(ORIGINAL), tokenizer, BATCH, LossConfig(), max_length=4)
    assert parts.lost_links == 1


@pytest.mark.parametrize("family, n_special", [("bert", 2), ("xlm-roberta", 2), ("mt5", 1)])
def test_identical_sides_give_zero_loss_and_anchor_the_special_tokens(assets, family, n_special):
    lm = load_model(ModelConfig(name=str(assets / "models" / family)))
    words = (assets / "world" / "parallel" / "xl-en.en").read_text(encoding="utf-8").splitlines()[0].split()
    enc = encode_words(lm.tokenizer, [words, words[:2]], lm.max_length)
    specials = special_positions(enc)
    assert [len(s) for s in specials] == [n_special, n_special]
    special_ids = set(lm.tokenizer.all_special_ids) - {lm.tokenizer.pad_token_id}
    assert all(enc.input_ids.reshape(-1)[p].item() in special_ids for s in specials for p in s)
    # The same sentence on both sides, linked to itself, with the unchanged model: nothing to pull or to drift.
    batch = PairBatch([words], [words], [[(i, i) for i in range(len(words))]])
    encoder = encoder_of(lm)
    parts = alignment_loss(encoder, encoder, lm.tokenizer, batch, LossConfig(), lm.max_length)
    assert parts.n_links == len(words) + n_special
    assert parts.align.item() == pytest.approx(0.0, abs=1e-8) and parts.reg.item() == pytest.approx(0.0, abs=1e-8)
