"""`xlray sweep` end to end on local Ray against a real `mlflow server`: nested runs, metrics, report, resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from xlray.cli import main
from xlray.errors import XlrayError
from xlray.sweep.config import SweepConfig
from xlray.sweep.run import run_sweep

pytestmark = pytest.mark.integration


def sweep_data(assets: Path, out: Path, uri: str, experiment: str, **changes) -> dict:
    """A small sweep over the shared synthetic world: 2 languages x reg_lambda {0, 1}, NLI, one seed."""
    world = assets / "world"
    xnli = world / "tasks" / "xnli"
    data = {
        "stage": "sweep",
        "name": "small",
        "output_dir": str(out),
        "models": {"bert": {"name": str(assets / "models" / "bert")}},
        "languages": ["xl", "xc"],
        "space": {"adjust.loss.reg_lambda": {"grid": [0.0, 1.0]}},
        "adjust": {
            "corpus": {"format": "lines", "source": str(world / "parallel" / "{lang}-en.{lang}"),
                       "english": str(world / "parallel" / "{lang}-en.en")},
            "pairs": {"max_sent": 400, "heldout_sent": 60},
            "optim": {"lr": 5e-4},
        },
        "evaluate": {
            "task": {"kind": "nli", "train": str(xnli / "multinli.train.en.tsv"), "test": str(xnli / "xnli.test.tsv"),
                     "lr": 1e-3, "epochs": 2, "batch_size": 16},
            "train": {"max_train_examples": 300},
            "significance": {"n_resamples": 200},
        },
        "tracking": {"uri": uri, "experiment": experiment},
    }  # fmt: skip
    data.update(changes)
    return data


def children(client: MlflowClient, experiment: str, parent_id: str) -> list:
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'")


def test_sweep_nests_one_run_per_trial_with_metrics_and_report(ray_session, mlflow_server, assets, tmp_path, capsys):
    cfg = SweepConfig.model_validate(sweep_data(assets, tmp_path / "out", mlflow_server, "sweep-nested"))
    manifest = run_sweep(cfg)
    assert len(manifest["trials"]) == 4
    assert "[sweep] small: 4 trials finished" in capsys.readouterr().out

    client = MlflowClient(mlflow_server)
    parent = client.get_run(manifest["parent_run_id"])
    assert parent.info.run_name == "sweep-small" and parent.info.status == "FINISHED"
    runs = children(client, "sweep-nested", parent.info.run_id)
    assert sorted(r.info.run_name for r in runs) == [
        "bert-xc-reg_lambda=0", "bert-xc-reg_lambda=1", "bert-xl-reg_lambda=0", "bert-xl-reg_lambda=1"
    ]  # fmt: skip
    assert all(r.info.status == "FINISHED" for r in runs)
    assert {r.data.tags["xlray.trial_id"] for r in runs} == set(manifest["trials"])
    for run in runs:
        metrics, params = run.data.metrics, run.data.params
        lang = run.data.tags["xlray.languages"]
        assert params["hp.adjust.loss.reg_lambda"] in ("0.0", "1.0") and params["languages"] == lang
        for cond in ("base", "adjusted", "continual"):
            assert 0 <= metrics[f"zero_shot.{cond}.{lang}.accuracy"] <= 1
        assert "zero_shot.continual.xl.accuracy.vs_base.p_value" in metrics or lang != "xl"
        # per-layer curves, step = layer (embeddings + 2 layers), each logged once
        history = client.get_metric_history(run.info.run_id, "align.adjusted.ratio.all")
        assert sorted(m.step for m in history) == [0, 1, 2]
        assert len(client.get_metric_history(run.info.run_id, "adjust.loss")) > 1  # loss over optimiser steps
        # the adjustment brings translations closer than chance at the trained layer, more than the original
        assert metrics["align.adjusted.ratio.all"] < metrics["align.original.ratio.all"]
    drift = {float(r.data.params["hp.adjust.loss.reg_lambda"]): [] for r in runs}
    for r in runs:
        drift[float(r.data.params["hp.adjust.loss.reg_lambda"])].append(r.data.metrics["align.adjusted.drift.all"])
    assert min(drift[0.0]) > max(drift[1.0])  # without the regulariser English drifts further

    report = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/trials.csv", "report/zero_shot.parquet", "report/layers.png", "report/summary.md"} <= report
    import polars as pl

    table = pl.read_parquet(tmp_path / "out" / "report" / "zero_shot.parquet")
    assert set(table["condition"]) == {"base", "adjusted", "continual"}
    assert table.filter(pl.col("condition") == "continual", pl.col("language") == "xc")["p_vs_base"].is_not_null().all()

    # `xlray report` again from MLflow, and a re-run of the finished sweep does nothing
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    assert main(["report", str(config)]) == 0
    assert main(["sweep", str(config)]) == 0
    assert "already complete" in capsys.readouterr().out
    assert len(children(client, "sweep-nested", parent.info.run_id)) == 4


def test_resources_no_node_offers_fail_before_any_trial(ray_session, mlflow_server, assets, tmp_path):
    data = sweep_data(assets, tmp_path / "out", mlflow_server, "sweep-resources", resources={"cpu": 1, "gpu": 4})
    with pytest.raises(XlrayError, match=r"resources: a trial asks for 1 CPU \+ 4 GPU, but no node offers that"):
        run_sweep(SweepConfig.model_validate(data))
    assert not (tmp_path / "out" / "trials").exists()
    assert MlflowClient(mlflow_server).get_experiment_by_name("sweep-resources") is None


def events(out: Path) -> dict[str, list[str]]:
    found = {}
    for path in (out / "trials").glob("*/events.jsonl"):
        found[path.parent.name] = [json.loads(line)["event"] for line in path.read_text().splitlines()]
    return found


def test_killed_driver_then_resume_runs_each_trial_once(mlflow_server, assets, tmp_path):
    out = tmp_path / "out"
    data = sweep_data(assets, out, mlflow_server, "sweep-resume", languages=["xl"],
                      space={"adjust.loss.reg_lambda": {"grid": [0.0, 0.5, 1.0]}},
                      search={"max_concurrent_trials": 1}, ray={"num_cpus": 2})  # fmt: skip
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump(data))
    cmd = [sys.executable, "-m", "xlray", "sweep", str(config)]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    driver = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)  # fmt: skip
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not any("finished" in e for e in events(out).values()):
            assert driver.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.5)
        os.kill(driver.pid, signal.SIGKILL)  # a real kill of the driver, mid-sweep
        driver.wait(timeout=30)
    finally:
        time.sleep(3)
        try:
            os.killpg(driver.pid, signal.SIGKILL)  # anything the driver's local Ray left behind
        except ProcessLookupError:
            pass
    before = events(out)
    done_before = {t for t, e in before.items() if "finished" in e}
    assert done_before and len(done_before) < 3

    refused = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "add --resume to finish it" in refused.stderr

    resumed = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = events(out)
    assert len(after) == 3
    for trial, history in after.items():
        assert history.count("finished") == 1, (trial, history)
        if trial in done_before:
            assert history.count("started") == 1, (trial, history)  # completed trials are not run again

    client = MlflowClient(mlflow_server)
    parent_id = json.loads((out / "sweep.json").read_text())["parent_run_id"]
    runs = children(client, "sweep-resume", parent_id)
    assert sorted(r.data.tags["xlray.trial_id"] for r in runs) == sorted(after)  # one run per trial
    assert all(r.info.status == "FINISHED" for r in runs)
    assert client.get_run(parent_id).info.status == "FINISHED"


def test_concepts_sweep_fails_clearly_then_resumes_the_errored_trial_in_its_own_run(
    ray_session, mlflow_server, assets, tmp_path
):
    """Base vs fine-tuned concepts (no adjustment): a missing corpus fails the trial with the file named; once the
    file is there, --resume finishes that trial under the same id and MLflow run."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for side in ("xd-en.xd", "xd-en.en"):
        (data_dir / side).write_text("\n".join((assets / "world" / "parallel" / side).read_text().splitlines()[:300]))
    missing = data_dir / "xd-en.xd"
    kept = missing.read_text()
    missing.unlink()
    data = sweep_data(assets, tmp_path / "out", mlflow_server, "sweep-concepts", languages=["xd"], space={},
                      adjust=None, conditions=["base"], resources={"cpu": 0.5},
                      search={"metric": "concepts.base-tuned.xd-en.colap"})  # fmt: skip
    data["concepts"] = {
        "source": str(data_dir / "{lang}-en.{lang}"),
        "english": str(data_dir / "{lang}-en.en"),
        "checkpoints": ["original", "base-tuned"],
        "extract": {"cpus_per_actor": 0.5, "gpus_per_actor": 0},
        "concepts": {"points": {"pca_dim": 8}, "clustering": {"method": "fast-hdbscan", "min_cluster_size": 5}},
    }
    cfg = SweepConfig.model_validate(data)
    with pytest.raises(XlrayError, match=rf"1 of 1 trials failed: trial \w+: .*{missing}: .*No such file") as err:
        run_sweep(cfg)
    assert "\n" not in str(err.value) and str(err.value).endswith(
        "xlray sweep <config> --resume (finished trials are kept)"
    )
    missing.write_text(kept)
    manifest = run_sweep(cfg, resume=True)

    client = MlflowClient(mlflow_server)
    (run,) = children(client, "sweep-concepts", manifest["parent_run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["xlray.trial_id"] in manifest["trials"]
    assert events(tmp_path / "out") == {run.data.tags["xlray.trial_id"]: ["started", "started", "finished"]}
    for checkpoint in ("original", "base-tuned"):
        history = client.get_metric_history(run.info.run_id, f"concepts.{checkpoint}.xd-en.colap")
        assert sorted(m.step for m in history) == [0, 1, 2] and all(0 <= m.value <= 1 for m in history)
    assert 0 <= run.data.metrics["zero_shot.base.xd.accuracy"] <= 1


def test_asha_stops_a_trial_after_its_adjustment_and_its_run_is_closed(ray_session, mlflow_server, assets, tmp_path):
    """λ=2 then λ=0 (one at a time): λ=0 lets English drift far more, so ASHA stops it after the first step."""
    data = sweep_data(assets, tmp_path / "out", mlflow_server, "sweep-asha", languages=["xl"],
                      space={"adjust.loss.reg_lambda": {"grid": [2.0, 0.0]}}, search={"max_concurrent_trials": 1},
                      scheduler={"kind": "asha", "metric": "align.adjusted.drift.all", "mode": "min"})  # fmt: skip
    manifest = run_sweep(SweepConfig.model_validate(data))
    client = MlflowClient(mlflow_server)
    runs = {r.info.run_name: r for r in children(client, "sweep-asha", manifest["parent_run_id"])}
    assert set(runs) == {"bert-xl-reg_lambda=2", "bert-xl-reg_lambda=0"}
    assert all(r.info.status == "FINISHED" for r in runs.values())
    full, stopped = runs["bert-xl-reg_lambda=2"], runs["bert-xl-reg_lambda=0"]
    assert "zero_shot.continual.xl.accuracy" in full.data.metrics and "xlray.stopped_early" not in full.data.tags
    assert stopped.data.tags["xlray.stopped_early"] == "true"
    assert (
        "align.adjusted.drift.all" in stopped.data.metrics and "zero_shot.base.xl.accuracy" not in stopped.data.metrics
    )
