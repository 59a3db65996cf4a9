"""Dev splits: the tasks score them beside the test split (``dev_<metric>``), the sweep's default metric is a dev
score, and random / optuna / ASHA refuse to pick trials by a test score unless told so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from xlray import result_names as names
from xlray.cli import main
from xlray.configs import ModelConfig
from xlray.demo import DemoConfig, demo_sweep
from xlray.evaluate.run import run_evaluation
from xlray.models import load_model
from xlray.sweep.config import SearchConfig
from xlray.tasks.config import EvaluateConfig
from xlray.tasks.outcomes import read_outcomes
from xlray.tasks.protocol import task_module

METRICS = {"nli": ["accuracy"], "ner": ["entity_f1"], "qa": ["exact_match", "f1"]}


def paths(assets, kind: str, dev: str) -> dict:
    """The world's train and test files of a task, and as dev its real dev file or (dev == "test") the test one."""
    t = assets / "world" / "tasks"
    files = {
        "nli": (f"{t}/xnli/multinli.train.en.tsv", f"{t}/xnli/xnli.test.tsv", f"{t}/xnli/xnli.dev.tsv"),
        "ner": (f"{t}/panx/train-en.tsv", f"{t}/panx/test-{{lang}}.tsv", f"{t}/panx/dev-{{lang}}.tsv"),
        "qa": (
            f"{t}/squad/train-v1.1.json",
            f"{t}/xquad/xquad.{{lang}}.json",
            f"{t}/mlqa/dev/dev-context-{{lang}}-question-{{lang}}.json",
        ),
    }[kind]
    extra = {"stride": 32} if kind == "qa" else {}  # the tiny model's 128-token windows
    return {"train": files[0], "test": files[1], "dev": files[1] if dev == "test" else files[2], **extra}


def config(assets, task: dict, out: str = "unused", **fields) -> EvaluateConfig:
    data = {
        "model": {"name": str(assets / "models" / "bert")},
        "task": task,
        "languages": ["en", "xl"],
        "output_dir": out,
        "tracking": {"enabled": False},
    }
    return EvaluateConfig.model_validate({**data, **fields})


@pytest.mark.parametrize("kind", ["nli", "ner", "qa"])
def test_each_task_scores_its_dev_split_as_it_scores_the_test_split(assets, kind):
    """With the test file as dev, dev_<metric> equals <metric> exactly; with the world's dev file, the dev
    examples are counted and the outcomes stay the test split's."""
    task = task_module(kind)
    lm = load_model(ModelConfig(name=str(assets / "models" / "bert"), dtype="float32"))
    torch.manual_seed(0)
    cfg = config(assets, {"kind": kind, **paths(assets, kind, "test")})
    model = task.build(cfg, lm)
    same = task.evaluate(cfg, lm, model, task.load(cfg), "xl")
    scores = same.scores()
    assert sorted(scores) == sorted(METRICS[kind] + [names.dev(m) for m in METRICS[kind]])
    for metric in METRICS[kind]:
        assert scores[names.dev(metric)] == scores[metric]
    assert same.counts[names.dev("examples")] == same.counts["examples"]

    cfg = config(assets, {"kind": kind, **paths(assets, kind, "dev")})
    own = task.evaluate(cfg, lm, model, task.load(cfg), "xl")
    assert own.counts[names.dev("examples")] == {"nli": 100, "ner": 100, "qa": 99}[kind]  # the world's dev size
    assert own.counts["examples"] == len(own.example_ids) == same.counts["examples"]
    assert [m.name for m in own.metrics] == METRICS[kind] and [m.name for m in own.dev] == METRICS[kind]

    no_dev = config(assets, {"kind": kind, **{k: v for k, v in paths(assets, kind, "dev").items() if k != "dev"}})
    assert sorted(task.evaluate(no_dev, lm, model, task.load(no_dev), "xl").scores()) == METRICS[kind]


def test_evaluate_logs_dev_scores_over_seeds_and_keeps_test_outcomes(assets, tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    task = {"kind": "nli", **paths(assets, "nli", "dev"), "lr": 1e-3, "epochs": 1, "batch_size": 16}
    cfg = config(assets, task, str(tmp_path / "run"), train={"max_train_examples": 100},
                 tracking={"uri": uri, "experiment": "dev"})  # fmt: skip
    summary = run_evaluation(cfg)
    dev_accuracy = names.dev("accuracy")
    assert {"accuracy", dev_accuracy} <= set(summary["xl"]) and 0 <= summary["xl"][dev_accuracy] <= 1
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["targets_mean"][dev_accuracy] == pytest.approx(summary["xl"][dev_accuracy])  # xl: the one target
    assert read_outcomes(tmp_path / "run").height == 2 * 150  # languages x test examples: no dev rows
    client = MlflowClient(tracking_uri=uri)
    (run,) = [r for r in client.search_runs([client.get_experiment_by_name("dev").experiment_id])
              if "seed" not in r.data.params]  # fmt: skip
    logged = run.data.metrics
    assert logged[names.score("xl", dev_accuracy)] == pytest.approx(summary["xl"][dev_accuracy])
    assert names.score(names.TARGETS_MEAN, dev_accuracy) in logged
    inputs = {d.dataset.name: [t.value for t in d.tags] for d in run.inputs.dataset_inputs}
    assert inputs["nli dev"] == ["dev"]


def test_a_dev_file_per_language_needs_its_placeholder(assets):
    from xlray.configs import validate
    from xlray.errors import XlrayError

    task = {"kind": "ner", **paths(assets, "ner", "dev"), "dev": "panx/dev.tsv"}
    with pytest.raises(XlrayError, match=r"^c\.yaml: task\.ner\.dev: 'panx/dev\.tsv' needs a \{lang\} placeholder$"):
        validate(
            EvaluateConfig, {"model": {"name": "m"}, "task": task, "languages": ["en"], "output_dir": "o"}, "c.yaml"
        )


# --- the sweep's search metric ---


def sweep_file(tmp_path: Path, search: dict, scheduler: dict | None = None, dev: bool = True) -> Path:
    data = demo_sweep(DemoConfig(), Path("out")).model_dump(mode="json")
    data["output_dir"], data["search"] = str(tmp_path / "out"), search
    if scheduler:
        data["scheduler"] = scheduler
    if not dev:
        del data["evaluate"]["task"]["dev"]
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_default_metric_is_a_dev_score_and_the_demo_reports_it():
    default = SearchConfig().metric
    assert default == names.zero_shot("continual", names.TARGETS_MEAN, names.dev("accuracy"))
    assert not SearchConfig().allow_test_metric
    sweep = demo_sweep(DemoConfig(), Path("out"))
    assert sweep.search.metric == default and sweep.evaluate["task"]["dev"].endswith("xnli.dev.tsv")


TEST_METRIC = "zero_shot.continual.targets_mean.accuracy"


@pytest.mark.parametrize(
    ("search", "scheduler", "picker"),
    [
        ({"algorithm": "random", "num_samples": 2}, None, "search.algorithm random"),
        ({"algorithm": "optuna", "num_samples": 2}, None, "search.algorithm optuna"),
        ({"algorithm": "grid"}, {"kind": "asha", "metric": "align.adjusted.drift.all", "mode": "min"},
         "scheduler.kind asha"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("command", ["validate", "sweep"])
def test_a_search_that_picks_trials_refuses_a_test_score_in_one_line(
    tmp_path, capsys, monkeypatch, search, scheduler, picker, command
):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = sweep_file(tmp_path, {**search, "metric": TEST_METRIC}, scheduler)
    assert main([command, str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("xlray: error: ")
    assert f"search.metric: {TEST_METRIC!r} is a test-split score, and with {picker}" in err
    assert "'zero_shot.continual.targets_mean.dev_accuracy'" in err and "search.allow_test_metric: true" in err
    if command == "validate":  # said explicitly, it passes (a sweep would start Ray here, so only validate)
        path = sweep_file(tmp_path, {**search, "metric": TEST_METRIC, "allow_test_metric": True}, scheduler)
        assert main(["validate", str(path)]) == 0
        path = sweep_file(tmp_path, search, scheduler)  # the default: the dev score
        assert main(["validate", str(path)]) == 0


def test_grid_search_may_rank_by_a_test_score_but_optuna_needs_the_dev_split(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["validate", str(sweep_file(tmp_path, {"algorithm": "grid", "metric": TEST_METRIC}))]) == 0
    assert main(["validate", str(sweep_file(tmp_path, {"algorithm": "grid"}, dev=False))]) == 0  # only unranked
    capsys.readouterr()
    assert main(["validate", str(sweep_file(tmp_path, {"algorithm": "optuna"}, dev=False))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(
        "search.metric: 'zero_shot.continual.targets_mean.dev_accuracy' is a dev-split score, but evaluate.task: "
        "the nli task names no dev split; set its dev file"
    )
