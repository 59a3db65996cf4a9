"""Task heads on the tiny models: each learns its synthetic English task above chance; every family runs each head.

Fine-tuning runs single-threaded: on a shared 2-core box, torch's two threads contend and a step takes 3x longer.
"""

from __future__ import annotations

import pytest
import torch

from xlray.configs import ModelConfig
from xlray.models import layer_states, load_model
from xlray.tasks import ner, nli, qa
from xlray.tasks.common import predict
from xlray.tasks.config import EvaluateConfig
from xlray.tasks.heads import pad_batch
from xlray.tasks.protocol import task_module
from xlray.tasks.train import fine_tune
from xlray.tracking import NullSink
from xlray.wordmap import tokenize_words

FAMILIES = ("bert", "xlm-roberta", "mt5")


def task_paths(assets, kind: str) -> dict:
    t = assets / "world" / "tasks"
    return {
        "nli": {"train": f"{t}/xnli/multinli.train.en.tsv", "test": f"{t}/xnli/xnli.test.tsv"},
        "ner": {"train": f"{t}/panx/train-en.tsv", "test": f"{t}/panx/test-{{lang}}.tsv"},
        "qa": {"train": f"{t}/squad/train-v1.1.json", "test": f"{t}/xquad/xquad.{{lang}}.json"},
    }[kind]


def make_cfg(assets, kind: str, family: str = "bert", languages=("en",), train=None, **task) -> EvaluateConfig:
    return EvaluateConfig.model_validate(
        {
            "stage": "evaluate",
            "model": {"name": str(assets / "models" / family)},
            "task": {"kind": kind, **task_paths(assets, kind), **task},
            "languages": list(languages),
            "train": train or {},
            "output_dir": "unused",
            "tracking": {"enabled": False},
        }
    )


def train_and_score(cfg: EvaluateConfig) -> tuple[dict, dict, list[dict]]:
    """English scores of the untrained and the fine-tuned head, and the per-epoch losses."""
    torch.manual_seed(0)
    task = task_module(cfg.task.kind)
    lm = load_model(cfg.model.model_copy(update={"dtype": "float32"}))
    data = task.load(cfg)
    model = task.build(cfg, lm)
    before = task.evaluate(cfg, lm, model, data, "en").scores()
    features, _ = task.train_features(cfg, lm, data)
    history = fine_tune(model, features, task.loss, cfg.task, cfg.train, 0, NullSink())
    return before, task.evaluate(cfg, lm, model, data, "en").scores(), history


def test_nli_head_learns_above_chance(assets):
    cfg = make_cfg(assets, "nli", lr=1e-3, epochs=3, batch_size=16)
    before, after, history = train_and_score(cfg)
    assert after["accuracy"] > 0.5 > before["accuracy"]  # three balanced labels: chance is 1/3
    assert len(history) == 3 and history[-1]["train.task_loss"] < history[0]["train.task_loss"]


def test_ner_head_learns_entities(assets):
    train = {"max_grad_norm": 1.0}  # at 100x the paper's lr, the tiny model needs clipping (the papers' default: none)
    cfg = make_cfg(assets, "ner", "xlm-roberta", train=train, lr=2e-3, epochs=3, batch_size=16)
    before, after, _ = train_and_score(cfg)
    assert before["entity_f1"] < 0.2
    assert after["entity_f1"] > 0.6


def test_qa_head_learns_spans(assets):
    cfg = make_cfg(assets, "qa", lr=2e-3, epochs=10, batch_size=16, max_length=64, stride=16)
    before, after, _ = train_and_score(cfg)
    # Each context has three sentences led by names; picking a name at random gives EM about 1/3 at best.
    assert before["exact_match"] < 0.05
    assert after["exact_match"] > 0.15 and after["f1"] > before["f1"] + 0.1


def test_ner_labels_sit_on_each_words_first_subword(assets):
    cfg = make_cfg(assets, "ner", "xlm-roberta", train={"max_train_examples": 50})
    lm = load_model(cfg.model)
    data = ner.load(cfg)
    features, counts = ner.train_features(cfg, lm, data)
    for feat, sent in zip(features, data.train, strict=True):
        labelled = [(pos, lab) for pos, lab in enumerate(feat["labels"]) if lab != -100]
        assert [data.labels[lab] for _, lab in labelled] == list(sent.tags)  # one label per word, in order
        _, word_ids, _ = tokenize_words(lm.tokenizer, [list(sent.tokens)], 128)
        firsts = ner.first_subwords(word_ids[0])
        assert [pos for pos, _ in labelled] == [firsts[w] for w in range(len(sent.tokens))]
    assert counts["train_words_unlabelled"] == 0


@pytest.mark.parametrize("family", FAMILIES)
def test_every_head_trains_on_every_family(assets, family):
    """One optimiser step per head: finite loss, gradients reach the encoder, logits have the right shapes."""
    lm = load_model(ModelConfig(name=str(assets / "models" / family), dtype="float32"))
    for kind, extra in (("nli", {}), ("ner", {}), ("qa", {"max_length": 48, "stride": 8})):
        cfg = make_cfg(assets, kind, family, train={"max_train_examples": 4}, **extra)
        task = task_module(kind)
        model = task.build(cfg, lm)
        features, _ = task.train_features(cfg, lm, task.load(cfg))
        batch = pad_batch(features[:4], lm.tokenizer.pad_token_id or 0)
        model.zero_grad()
        loss = task.loss(model, batch)
        loss.backward()
        assert torch.isfinite(loss)
        grads = [p.grad for n, p in model.named_parameters() if "shared" in n or "embeddings" in n]
        assert any(g is not None and g.abs().sum() > 0 for g in grads)
        logits = predict(model, features[:2], 2)
        width = {"nli": (3,), "ner": (len(features[0]["input_ids"]), 7), "qa": (len(features[0]["input_ids"]), 2)}
        assert tuple(logits[0].shape) == width[kind]


@pytest.mark.parametrize("family", FAMILIES)
def test_qa_answers_map_to_tokens_exactly(assets, family):
    """Character answers map to token spans whose offsets give back the answer text, in every window that holds
    the whole answer; windows short enough to split contexts also miss some answers, and are counted."""
    cfg = make_cfg(assets, "qa", family, max_length=40, stride=10, train={"max_train_examples": 60})
    lm = load_model(cfg.model)
    data = qa.load(cfg)
    features, counts = qa.train_features(cfg, lm, data)
    assert counts["train_answers_not_on_token_boundaries"] == 0
    assert counts["train_windows"] > counts["train_examples"]  # contexts were split
    assert 0 < counts["train_windows_without_answer"] < counts["train_windows"]
    hits = sum(f["start"] > 0 for f in features)
    assert hits + counts["train_windows_without_answer"] == counts["train_windows"]
    assert hits >= counts["train_examples"]  # every question's answer lies wholly inside some window


def test_nli_cut_pairs_are_counted(assets):
    cfg = make_cfg(assets, "nli", max_length=12, train={"max_train_examples": 30})
    lm = load_model(cfg.model)
    features, counts = nli.train_features(cfg, lm, nli.load(cfg))
    assert max(len(f["input_ids"]) for f in features) == 12
    assert 0 < counts["train_truncated"] <= sum(len(f["input_ids"]) == 12 for f in features)


def test_bert_nli_classifies_through_its_pretrained_pooler(assets):
    """As BertForSequenceClassification: the checkpoint's pooler, then a fresh linear layer (same logits once that
    layer is copied over); XLM-R gets the fresh dense + tanh head, and so does BERT with the switch off."""
    from transformers import BertForSequenceClassification

    cfg = make_cfg(assets, "nli", train={"max_train_examples": 6})
    lm = load_model(cfg.model.model_copy(update={"dtype": "float32"}))
    model = nli.build(cfg, lm).eval()
    batch = pad_batch(nli.train_features(cfg, lm, nli.load(cfg))[0], lm.tokenizer.pad_token_id)
    reference = BertForSequenceClassification.from_pretrained(cfg.model.name, num_labels=3).eval()
    reference.classifier.load_state_dict(model.head.out.state_dict())
    keys = ("input_ids", "attention_mask", "token_type_ids")
    with torch.no_grad():
        torch.testing.assert_close(model(batch), reference(**{k: batch[k] for k in keys}).logits)
    assert model.head.pooler is lm.model.pooler  # trained with the encoder, not a copy
    with torch.no_grad():
        states = layer_states(lm, batch)["encoder"][-1]
        fresh = nli.build(make_cfg(assets, "nli", pretrained_pooler=False), lm).eval()
        assert not hasattr(fresh.head, "pooler")
        torch.testing.assert_close(fresh(batch), fresh.head.out(torch.tanh(fresh.head.dense(states[:, 0]))))
    xlmr = load_model(ModelConfig(name=str(assets / "models" / "xlm-roberta"), dtype="float32"))
    assert not hasattr(nli.build(make_cfg(assets, "nli", "xlm-roberta"), xlmr).head, "pooler")


def test_fine_tuning_does_not_clip_gradients_by_default(assets, monkeypatch):
    """Efimov et al. do not clip; ``train.max_grad_norm`` turns clipping on, at every step."""
    clipped = []
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda params, norm: clipped.append(norm))
    lm = load_model(ModelConfig(name=str(assets / "models" / "bert"), dtype="float32"))
    for train, calls in (({}, []), ({"max_grad_norm": 1.0}, [1.0, 1.0])):
        cfg = make_cfg(assets, "nli", train={"max_train_examples": 8, **train}, epochs=1, batch_size=4)
        model = nli.build(cfg, lm)
        features, _ = nli.train_features(cfg, lm, nli.load(cfg))
        fine_tune(model, features, nli.loss, cfg.task, cfg.train, 0, NullSink())
        assert clipped == calls
        clipped.clear()
