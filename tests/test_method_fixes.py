"""Differences from Efimov et al. fixed (issue #14): float32 measurements, QA test questions, the unaligned baseline.

The other items have their test beside the code they touch: the NLI pooler and gradient clipping in
``test_task_training.py``, the regulariser's special tokens in ``test_adjust_loss.py``, the continual reference in
``test_continual.py``.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from xlray.adjust.measure import distance_stats
from xlray.adjust.pairs import AlignedPairs, PairBatch
from xlray.adjust.run import fresh_accelerator_state
from xlray.configs import ModelConfig
from xlray.errors import XlrayError
from xlray.models import encoder_of, load_model
from xlray.tasks import qa, xsr
from xlray.tasks.config import EvaluateConfig


def aligned_pairs(lang: str, batch: PairBatch) -> AlignedPairs:
    n = len(batch)
    return AlignedPairs([lang] * n, list(range(1, n + 1)), ["heldout"] * n, batch)


def gold_pairs(assets, n: int) -> AlignedPairs:
    """The first ``n`` sentence pairs of the synthetic world with their gold word alignments."""
    parallel = assets / "world" / "parallel"
    read = lambda suffix: (parallel / f"xl-en.{suffix}").read_text(encoding="utf-8").splitlines()[:n]  # noqa: E731
    links = [[tuple(map(int, link.split("-"))) for link in line.split()] for line in read("gold.align")]
    return aligned_pairs("xl", PairBatch([s.split() for s in read("xl")], [e.split() for e in read("en")], links))


def test_retrieval_and_distances_run_in_float32(assets):
    """A bf16 model retrieves from float32 weights, and held-out distances are computed in float32 from bf16
    weights and from a model prepared for bf16 mixed precision; the measured model keeps its own dtype."""
    name = str(assets / "models" / "bert")
    full = load_model(ModelConfig(name=name, dtype="float32"))
    half = load_model(ModelConfig(name=name, dtype="bfloat16"))
    sentences = (assets / "world" / "parallel" / "xl-en.en").read_text(encoding="utf-8").splitlines()[:8]
    want = xsr.embed(full, sentences, -1, "mean", 4, 64)
    np.testing.assert_allclose(xsr.embed(half, sentences, -1, "mean", 4, 64), want, rtol=0, atol=1e-6)

    pairs = gold_pairs(assets, 6)
    bf16 = encoder_of(load_model(ModelConfig(name=name, dtype="bfloat16")))
    rounded = copy.deepcopy(bf16).float()  # the same bf16-rounded weights, as float32
    fresh_accelerator_state("bf16")
    accelerator = Accelerator(mixed_precision="bf16", cpu=True)
    trained = accelerator.unwrap_model(accelerator.prepare(copy.deepcopy(rounded)))  # as `xlray adjust` has it
    tokenizer = full.tokenizer
    reference = distance_stats(rounded, rounded, tokenizer, pairs, "mean", 64)["all"]
    for encoder in (bf16, trained):  # bf16 weights, and a model accelerate prepared for bf16
        got = distance_stats(encoder, encoder, tokenizer, pairs, "mean", 64)["all"]
        for kind in ("aligned", "unaligned"):
            assert got[kind] == pytest.approx(reference[kind], rel=1e-7), kind  # computed in bf16: 1e-6 to 1e-4 off
    assert {p.dtype for p in bf16.parameters()} == {torch.bfloat16}
    assert trained.forward is not trained._original_forward  # accelerate's wrapper is back after measuring


def squad(path, qas) -> str:
    doc = {"data": [{"title": "t", "paragraphs": [{"context": "Ana met Bo in Rome .", "qas": qas}]}]}
    path.write_text(json.dumps(doc), encoding="utf-8")
    return str(path)


def test_skip_bad_answers_skips_training_questions_only(assets, tmp_path):
    """A misplaced answer offset matters to training (token labels), not to EM/F1 (answer texts)."""
    good = {"id": "good", "question": "who ?", "answers": [{"text": "Ana", "answer_start": 0}]}
    misplaced = {"id": "bad-1", "question": "where ?", "answers": [{"text": "Rome", "answer_start": 2}]}
    train = squad(tmp_path / "train.json", [good, {**misplaced, "id": "bad-train"}])
    squad(tmp_path / "xquad.xl.json", [good, misplaced])
    task = {"kind": "qa", "train": train, "test": str(tmp_path / "xquad.{lang}.json"), "skip_bad_answers": True}
    cfg = EvaluateConfig.model_validate(
        {
            "model": {"name": str(assets / "models" / "bert")},
            "task": {**task, "max_length": 64, "stride": 16},
            "languages": ["xl"],
            "output_dir": str(tmp_path / "o"),
            "tracking": {"enabled": False},
        }
    )
    data = qa.load(cfg)
    assert [ex.id for ex in data.train] == ["good"] and data.skipped["train"] == 1
    assert [ex.id for ex in data.test["xl"]] == ["good", "bad-1"]
    lm = load_model(cfg.model)
    result = qa.evaluate(cfg, lm, qa.build(cfg, lm), data, "xl")
    assert result.example_ids == ["xl:good", "xl:bad-1"]
    assert result.counts["examples"] == 2 and result.counts["answers_not_at_offset"] == 1
    strict = cfg.model_copy(update={"task": cfg.task.model_copy(update={"skip_bad_answers": False})})
    with pytest.raises(XlrayError, match=r"train.json: question 'bad-train': answer 'Rome' does not occur"):
        qa.load(strict)


# A context-free encoder over a word-level vocabulary: h0 = zeros, h1 = a fixed 2-d vector per token.
WORDS = {"[PAD]": (0, 0), "[UNK]": (0, 0), "[CLS]": (0, 0), "[SEP]": (0, 0), "a": (1, 0), "b": (0, 1)}


class TableEncoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding.from_pretrained(torch.tensor(list(WORDS.values()), dtype=torch.float32))

    def forward(self, input_ids, attention_mask, output_hidden_states):
        h1 = self.emb(input_ids)
        return type("Out", (), {"hidden_states": (torch.zeros_like(h1), h1)})


def word_tokenizer() -> PreTrainedTokenizerFast:
    raw = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    raw.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="[PAD]", unk_token="[UNK]")


def test_unaligned_pairs_never_come_from_the_same_sentence_pair():
    """Pair 1 has three links of a~a, pair 2 one of b~b; |a - b|^2 = 2. Every unaligned pair crosses the two
    pairs (mean 2; rolling the links by half the batch gave 1, half of them within pair 1), and a language with
    a single pair has no unaligned pair at all."""
    a3, a3_links = ["a", "a", "a"], [(0, 0), (1, 1), (2, 2)]
    batch = PairBatch([a3, a3, ["b"]], [a3, a3, ["b"]], [a3_links, a3_links, [(0, 0)]])
    pairs = AlignedPairs(["xa", "xb", "xb"], [1, 1, 2], ["heldout"] * 3, batch)  # xa: a lone pair
    encoder = TableEncoder()
    stats = distance_stats(encoder, encoder, word_tokenizer(), pairs, "mean", 16)
    assert stats["xb"]["aligned"] == [0.0, 0.0]
    assert stats["xb"]["unaligned"] == [0.0, pytest.approx(2.0)]
    assert stats["xa"]["unaligned"] == [None, None]
    assert stats["all"]["unaligned"] == [0.0, pytest.approx(2.0)]  # the lone pair adds no unaligned pair
