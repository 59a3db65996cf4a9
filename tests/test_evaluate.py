"""`xlray evaluate` end to end: seeds, per-example outcomes, significance, MLflow read back from a sqlite store;
decoding and metrics against hand-computed values; bad input fails with file and line (or question id)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from xlray.configs import ModelConfig
from xlray.errors import XlrayError
from xlray.evaluate.run import run_evaluation
from xlray.models import load_model
from xlray.tasks import ner, qa, xsr
from xlray.tasks.config import EvaluateConfig
from xlray.tasks.formats import QAExample, tatoeba_paths
from xlray.tasks.metrics import entity_f1, squad_em_f1
from xlray.tasks.outcomes import read_outcomes


def config(assets, out, task: dict, **fields) -> EvaluateConfig:
    data = {
        "stage": "evaluate",
        "model": {"name": str(assets / "models" / "bert")},
        "task": task,
        "languages": ["en", "xl"],
        "output_dir": str(out),
        "tracking": {"enabled": False},
    }
    return EvaluateConfig.model_validate({**data, **fields})


def nli_task(assets, **extra) -> dict:
    t = assets / "world" / "tasks" / "xnli"
    return {"kind": "nli", "train": str(t / "multinli.train.en.tsv"), "test": str(t / "xnli.test.tsv"), **extra}


@pytest.fixture(scope="module")
def nli_run(assets, tmp_path_factory):
    """Two seeds of NLI fine-tuning, logged to a real MLflow sqlite store."""
    out = tmp_path_factory.mktemp("nli-run")
    uri = f"sqlite:///{out / 'mlflow.db'}"
    cfg = config(
        assets,
        out / "run",
        nli_task(assets, lr=1e-3, epochs=3, batch_size=16),
        seeds=[0, 1],
        tracking={"uri": uri, "experiment": "test-evaluate"},
    )
    return cfg, run_evaluation(cfg), uri


def test_seeds_are_summarised_from_their_outcomes(nli_run):
    cfg, summary, _ = nli_run
    out = cfg.output_dir
    per_seed = [json.load(open(f"{out}/seed-{s}/result.json"))["scores"] for s in (0, 1)]
    outcomes = read_outcomes(out)
    assert outcomes.height == 2 * 2 * 150  # seeds x languages x test examples, nothing dropped
    for lang in ("en", "xl"):
        scores = [s[lang]["accuracy"] for s in per_seed]
        assert summary[lang]["accuracy"] == pytest.approx(np.mean(scores))
        assert summary[lang]["accuracy_std"] == pytest.approx(np.std(scores, ddof=1))
        for seed, score in zip((0, 1), scores, strict=True):
            rows = outcomes.filter((pl.col("seed") == seed) & (pl.col("language") == lang))
            assert rows["outcome"].list.first().mean() == pytest.approx(score)
    assert summary["en"]["accuracy"] > 0.45  # learned English above chance (1/3)
    manifest = json.load(open(f"{out}/manifest.json"))
    assert manifest["targets_mean"]["accuracy"] == pytest.approx(summary["xl"]["accuracy"])


def test_mlflow_holds_params_epochs_languages_and_checkpoints(nli_run):
    from mlflow.tracking import MlflowClient

    cfg, summary, uri = nli_run
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("test-evaluate")
    runs = client.search_runs([exp.experiment_id])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(runs) == 3 and len(children) == 2
    assert parent.data.params["config.task.lr"] == "0.001"
    assert parent.data.tags["condition"] == "base"
    inputs = {d.dataset.name: (d.tags[0].value, json.loads(d.dataset.source)) for d in parent.inputs.dataset_inputs}
    assert inputs == {"nli train": ("train", {"uri": cfg.task.train}), "nli test": ("test", {"uri": cfg.task.test})}
    for lang in ("en", "xl"):
        assert parent.data.metrics[f"{lang}.accuracy"] == pytest.approx(summary[lang]["accuracy"])
        assert parent.data.metrics[f"{lang}.accuracy_std"] == pytest.approx(summary[lang]["accuracy_std"])
    for child in children:
        seed = int(child.data.tags["seed"])
        result = json.load(open(f"{cfg.output_dir}/seed-{seed}/result.json"))
        history = client.get_metric_history(child.info.run_id, "train.task_loss")
        assert sorted(m.step for m in history) == [1, 2, 3]
        assert [m.value for m in sorted(history, key=lambda m: m.step)] == pytest.approx(
            [h["train.task_loss"] for h in result["history"]]
        )
        assert child.data.metrics["xl.accuracy"] == pytest.approx(result["scores"]["xl"]["accuracy"])
        assert child.data.metrics["data.train_examples"] == 600
        checkpoint = Path(child.data.tags["checkpoint"])
        assert checkpoint == Path(result["checkpoint"]).resolve()
        assert (checkpoint / "model.safetensors").is_file() and (checkpoint / "head.safetensors").is_file()
    # A finished run is not redone: same answer, no new MLflow runs.
    assert run_evaluation(cfg) == json.load(open(f"{cfg.output_dir}/manifest.json"))["summary"]
    assert len(client.search_runs([exp.experiment_id])) == 3


def test_finished_seed_with_another_config_is_an_error(nli_run, assets):
    cfg, _, _ = nli_run
    update = {"task": cfg.task.model_copy(update={"lr": 5e-4}), "tracking": {"enabled": False}}
    changed = EvaluateConfig.model_validate({**cfg.model_dump(), **update})
    with pytest.raises(XlrayError, match=r"seed-0/result.json: .*different config"):
        run_evaluation(changed)


def manual_retrieval(lm, pairs, layer: int) -> float:
    """Top-1 retrieval computed directly: HF forward, masked mean, cosine, argmax."""

    def embed(texts):
        enc = lm.tokenizer(texts, padding=True, return_tensors="pt")
        with torch.no_grad():
            states = lm.model(**enc, output_hidden_states=True).hidden_states[layer]
        mask = enc["attention_mask"].unsqueeze(-1).float()
        x = ((states * mask).sum(1) / mask.sum(1)).numpy().astype(np.float64)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    src, eng = embed([p.source for p in pairs]), embed([p.english for p in pairs])
    return float(((src @ eng.T).argmax(1) == np.arange(len(pairs))).mean())


def test_xsr_matches_hand_computation_and_significance(assets, tmp_path):
    folder = str(assets / "world" / "tasks" / "tatoeba")
    langs = ["xl", "xd"]
    first = config(
        assets, tmp_path / "l0", {"kind": "xsr", "folder": folder, "layer": 0}, languages=langs, condition="layer0"
    )
    low = run_evaluation(first)
    last = config(
        assets,
        tmp_path / "l2",
        {"kind": "xsr", "folder": folder, "layer": -1},
        languages=langs,
        condition="last",
        seeds=[0, 1],  # no training: one run stands for all seeds
        significance={"compare_with": {"layer0": str(tmp_path / "l0")}, "n_resamples": 2000},
    )
    high = run_evaluation(last)
    lm = load_model(ModelConfig(name=str(assets / "models" / "bert")))
    for lang in langs:
        pairs = xsr.load(first).test[lang]
        assert low[lang]["retrieval_top1"] == pytest.approx(manual_retrieval(lm, pairs, 0))
        assert high[lang]["retrieval_top1"] == pytest.approx(manual_retrieval(lm, pairs, -1))
        assert high[lang]["seeds"] == 1 and math.isnan(high[lang]["retrieval_top1_std"])
    assert high["xl"]["retrieval_top1"] > 10 / 150  # shared names and numbers: far above chance (1/150)
    tests = pl.read_parquet(tmp_path / "l2" / "significance.parquet")
    assert tests.height == 2 and set(tests["condition_b"]) == {"layer0"}
    for row in tests.iter_rows(named=True):
        lang = row["language"]
        assert row["delta"] == pytest.approx(high[lang]["retrieval_top1"] - low[lang]["retrieval_top1"])
        assert 0 < row["p_value"] <= 1 and row["n_examples"] == 150
        assert row["ci_low"] <= row["delta"] <= row["ci_high"]


def test_qa_decoding_picks_the_best_span_over_windows():
    context = "Ana Lo met Bo Ki in Rome ."
    ex = QAExample("q1", "who met Bo Ki ?", context, ())
    # Two windows over the context (tokens: question/special tokens carry None offsets).
    win_a = qa.Window(0, [None, None, (0, 3), (4, 6), (7, 10), (11, 13)])
    win_b = qa.Window(0, [None, (11, 13), (14, 16), (17, 19), (20, 24), (25, 26)])
    logits_a = torch.tensor([[9.0, 9.0], [0, 0], [2.0, 0], [0, 3.0], [0, 0], [0, 0]])  # best: "Ana Lo" = 5
    logits_b = torch.tensor([[0, 0], [1.0, 0], [0, 1.0], [4.0, 0], [0, 0.5], [0, 0]])  # best: "in Rome" = 4.5
    # The question token with logit 9 is never chosen: only context tokens are spans.
    answers = qa.decode([ex], [win_a, win_b], [logits_a, logits_b], n_best=20, max_tokens=30)
    assert answers == ["Ana Lo"]
    # An end before its start or a span longer than max_tokens is not allowed.
    # start 2 + end 1 would score 10 but ends before it starts; the best valid span is token 1 alone (1 + 5).
    assert qa.best_span(torch.tensor([[0, 0], [1.0, 5.0], [5.0, 0]]), [None, (0, 1), (2, 3)], 20, 30) == (6.0, 0, 1)
    assert qa.best_span(logits_a, win_a.offsets, 20, 1)[1:] == (4, 6)  # "Lo": start 0 + end 3 on one token
    em, f1 = squad_em_f1({"q1": ["Ana Lo", "Ana"], "q2": ["Rome"]}, {"q1": "Ana Lo", "q2": "in Rome"})
    assert em.per_example.tolist() == [1.0, 0.0] and f1.score == pytest.approx((1 + 2 / 3) / 2)


def test_ner_tags_come_from_first_subwords():
    labels = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")
    # Tokens: [CLS] Ana(0) Lo(1) ##s(1) in(2) Rome(3) [SEP]; word 4 was cut by the length limit.
    first = {0: 1, 1: 2, 2: 4, 3: 5}
    logits = torch.full((7, 5), -1.0)
    for pos, lab in ((1, 1), (2, 2), (3, 3), (4, 0), (5, 3)):  # the second subword of "Los" says B-LOC: ignored
        logits[pos, lab] = 1.0
    pred = ner.word_tags(logits, first, 5, labels)
    assert pred == ["B-PER", "I-PER", "O", "B-LOC", "O"]
    gold = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC"]
    result = entity_f1([gold], [pred])
    assert result.score == pytest.approx(2 * (2 / 2) * (2 / 3) / (2 / 2 + 2 / 3))  # P = 2/2, R = 2/3


def test_labels_outside_the_task_label_set_name_file_and_line(assets, tmp_path):
    bad = tmp_path / "test-xl.tsv"
    bad.write_text("xl:Ana\tB-PER\nxl:Lo\tI-PER\n\nxl:Rome\tB-CITY\n", encoding="utf-8")
    cfg = config(assets, tmp_path, ner_task(assets, str(tmp_path / "test-{lang}.tsv")), languages=["xl"])
    with pytest.raises(XlrayError, match=r"test-xl.tsv:4: tag 'B-CITY' is not in the label set"):
        ner.load(cfg)
    nli_bad = tmp_path / "xnli.tsv"
    nli_bad.write_text("premise\thypo\tlabel\na b\ta\tentailment\na b\tc\tmaybe\n", encoding="utf-8")
    with pytest.raises(XlrayError, match=r"xnli.tsv:3: label 'maybe' is not one of"):
        run_evaluation(config(assets, tmp_path / "o", nli_task(assets, train=str(nli_bad))))


def ner_task(assets, test: str) -> dict:
    return {"kind": "ner", "train": str(assets / "world" / "tasks" / "panx" / "train-en.tsv"), "test": test}


def squad_file(path, answer_start: int) -> None:
    qas = [
        {"id": "good", "question": "who ?", "answers": [{"text": "Ana", "answer_start": 0}]},
        {"id": "bad-1", "question": "where ?", "answers": [{"text": "Rome", "answer_start": answer_start}]},
    ]
    doc = {"data": [{"title": "t", "paragraphs": [{"context": "Ana met Bo in Rome .", "qas": qas}]}]}
    path.write_text(json.dumps(doc), encoding="utf-8")


def test_qa_test_answers_at_another_offset_are_kept_and_counted(assets, tmp_path):
    """EM/F1 compare answer texts, never offsets: a test answer whose offset is off is scored like any other and
    counted (skip_bad_answers drops training questions only)."""
    squad_file(tmp_path / "xquad.xl.json", answer_start=2)
    task = {
        "kind": "qa",
        "train": str(assets / "world" / "tasks" / "squad" / "train-v1.1.json"),
        "test": str(tmp_path / "xquad.{lang}.json"),
        "max_length": 64,
        "stride": 16,
    }
    cfg = config(assets, tmp_path / "o", task, languages=["xl"], train={"max_train_examples": 20})
    data = qa.load(cfg)
    lm = load_model(cfg.model)
    result = qa.evaluate(cfg, lm, qa.build(cfg, lm), data, "xl")
    assert result.counts["answers_not_at_offset"] == 1 and result.counts["examples"] == 2
    assert sorted(result.example_ids) == ["xl:bad-1", "xl:good"]


def test_bad_configs_and_files_are_one_line_errors(assets, tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="needs a {lang} placeholder"):
        config(assets, tmp_path, ner_task(assets, "test.tsv"))
    with pytest.raises(ValidationError, match="continual.pairs: needed"):
        config(assets, tmp_path, nli_task(assets), continual={"enabled": True})
    folder = tmp_path / "tatoeba"
    folder.mkdir()
    src, eng = tatoeba_paths(folder, "xl")
    src.write_text("a\nb\nc\n", encoding="utf-8")
    eng.write_text("a\nb\n", encoding="utf-8")
    cfg = config(assets, tmp_path / "o", {"kind": "xsr", "folder": str(folder), "layer": 1}, languages=["xl"])
    with pytest.raises(XlrayError, match=r"has 3 lines but .*eng has 2"):
        run_evaluation(cfg)
    good = str(assets / "world" / "tasks" / "tatoeba")
    deep = config(assets, tmp_path / "d", {"kind": "xsr", "folder": good, "layer": 5}, languages=["xl"])
    with pytest.raises(XlrayError, match=r"task.layer: 5 is out of range .* layers 0..2"):
        run_evaluation(deep)
    mt5 = config(
        assets,
        tmp_path / "m",
        {"kind": "xsr", "folder": good, "layer": 1, "pooling": "cls"},
        languages=["xl"],
        model={"name": str(assets / "models" / "mt5")},
    )
    with pytest.raises(XlrayError, match="task.pooling: cls needs"):
        run_evaluation(mt5)


def test_cli_runs_a_yaml_config_and_reports_errors_in_one_line(assets, tmp_path, capsys, repo_root):
    import yaml

    from xlray.cli import main
    from xlray.configs import load_stage_config

    assert isinstance(load_stage_config(repo_root / "sweeps" / "examples" / "evaluate_demo.yaml"), EvaluateConfig)
    task = {"kind": "xsr", "folder": str(assets / "world" / "tasks" / "tatoeba"), "layer": 1}
    cfg = config(assets, tmp_path / "out", task, languages=["xl"])
    path = tmp_path / "evaluate.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")), encoding="utf-8")
    assert main(["evaluate", str(path)]) == 0
    assert "xl: retrieval_top1 " in capsys.readouterr().out
    bad = cfg.model_dump(mode="json")
    bad["languages"] = ["xq"]
    path.write_text(yaml.safe_dump({**bad, "output_dir": str(tmp_path / "bad")}), encoding="utf-8")
    assert main(["evaluate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("xlray: error: ") and "tatoeba.xq-eng.xq: file not found" in err and "\n" not in err


def test_efimov_conditions_share_the_template_and_compare_in_order(assets, tmp_path):
    from xlray.tasks.conditions import efimov_conditions

    template = config(
        assets,
        tmp_path / "t",
        nli_task(assets),
        seeds=[0, 1, 2],
        continual={"pairs": "pool.parquet", "align_weight": 0.05},
    )
    original, adjusted = ModelConfig(name="orig"), ModelConfig(name="adj")
    base, adj, cont = efimov_conditions(template, original, adjusted, tmp_path / "c")
    assert [c.condition for c in (base, adj, cont)] == ["base", "adjusted", "continual"]
    assert (base.model.name, adj.model.name, cont.model.name) == ("orig", "adj", "adj")
    assert (base.continual.enabled, adj.continual.enabled, cont.continual.enabled) == (False, False, True)
    assert cont.continual.align_weight == 0.05 and cont.continual.reference.name == "orig"
    assert cont.significance.compare_with == {"base": base.output_dir, "adjusted": adj.output_dir}
    assert adj.significance.compare_with == {"base": base.output_dir}
    assert all(c.task == template.task and c.seeds == [0, 1, 2] for c in (base, adj, cont))
