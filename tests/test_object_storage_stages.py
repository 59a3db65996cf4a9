"""adjust, evaluate and sweep with every output in object storage, against a real S3-compatible server (moto):
checkpoints uploaded before the manifest that names them, readers that load a checkpoint by its URI, Tune's state
and the trial folders in the bucket, --resume from the URI, and a missing bucket refused before anything is
written."""

from __future__ import annotations

import json

import pytest
import yaml
from mlflow.tracking import MlflowClient
from pyarrow import fs as pafs
from test_adjust import config as adjust_config
from test_evaluate import config as evaluate_config
from test_evaluate import nli_task
from test_sweep_run import children, sweep_data

from xlray.adjust.run import run_adjust
from xlray.cli import main as cli_main
from xlray.errors import XlrayError
from xlray.evaluate.run import run_evaluation
from xlray.outputs import read_json
from xlray.storage import exists, join, list_names, scratch_dir
from xlray.sweep.config import SweepConfig
from xlray.sweep.run import run_sweep
from xlray.tasks.continual import reference_config
from xlray.tasks.outcomes import read_outcomes
from xlray.textio import is_file, open_binary, open_fs


def mtime_ns(uri: str) -> int:
    filesystem, inner = open_fs(uri)
    return filesystem.get_file_info(inner).mtime_ns


def newest_ns(folder: str) -> int:
    """The latest modification time of the objects under ``folder``."""
    filesystem, inner = open_fs(folder)
    infos = filesystem.get_file_info(pafs.FileSelector(inner, recursive=True))
    return max(i.mtime_ns for i in infos if i.type == pafs.FileType.File)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """This process's scratch root (log files, checkpoints before their upload, downloaded models)."""
    root = tmp_path_factory.mktemp("scratch")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XLRAY_SCRATCH", str(root))
        yield root


@pytest.fixture(scope="module")
def adjusted(assets, s3_server, scratch):
    """One adjustment written to a bucket: its config and manifest."""
    cfg = adjust_config(assets, join(s3_server("stages"), "adjust"))
    return cfg, run_adjust(cfg)


def test_adjust_uploads_its_checkpoint_then_the_manifest_that_names_it(adjusted, capsys):
    cfg, manifest = adjusted
    out = cfg.output_dir
    checkpoint = join(out, "checkpoint")
    assert manifest["checkpoint"] == checkpoint and read_json(join(out, "manifest.json")) == manifest
    names = list_names(checkpoint)
    assert {"model.safetensors", "tokenizer.json", "adjust_config.yaml", "alignment_stats.json"} <= set(names)
    assert all(is_file(join(out, n)) for n in ("pairs.parquet", "pairs.json", "stats.json"))
    assert mtime_ns(join(out, "manifest.json")) >= newest_ns(checkpoint)  # the manifest came last
    assert not (scratch_dir(out) / "checkpoint").exists()  # built there, uploaded, then removed
    assert run_adjust(cfg) == manifest
    assert "already complete (manifest.json)" in capsys.readouterr().out


def test_evaluate_loads_the_checkpoint_by_its_uri_and_writes_to_the_bucket(adjusted, assets, s3_server, capsys):
    adjust, manifest = adjusted
    out = join(s3_server("stages"), "evaluate")
    continual = {"enabled": True, "pairs": join(adjust.output_dir, "pairs.parquet"), "pool_size": 100}
    cfg = evaluate_config(assets, out, nli_task(assets, lr=1e-3, epochs=1, batch_size=16),
                          model={"name": manifest["checkpoint"]}, train={"max_train_examples": 100},
                          continual=continual, condition="continual")  # fmt: skip
    # Continual learning's f0 comes from the adjust_config.yaml in the bucket: the original model, not the adjusted.
    assert reference_config(cfg) == adjust.model
    summary = run_evaluation(cfg)
    result = read_json(join(out, "seed-0", "result.json"))
    assert result["checkpoint"] == join(out, "seed-0", "checkpoint")
    assert {"model.safetensors", "head.safetensors", "tokenizer.json"} <= set(list_names(result["checkpoint"]))
    assert result["counts"]["train"]["pool_pairs"] == 100  # the pool read from the bucket
    assert summary["xl"]["accuracy"] == pytest.approx(result["scores"]["xl"]["accuracy"])
    assert read_outcomes(out).height == 2 * 150  # languages x test examples, read back from the bucket
    saved = read_json(join(out, "manifest.json"))["summary"]
    assert saved["xl"]["accuracy"] == summary["xl"]["accuracy"]
    assert mtime_ns(join(out, "manifest.json")) >= mtime_ns(join(out, "seed-0", "result.json"))
    # The adjusted checkpoint was downloaded once, whole, to this node's cache for its URI.
    copies = [p.name for p in scratch_dir(manifest["checkpoint"]).iterdir()]
    assert len(copies) == 1 and copies[0].startswith("copy-")
    with open_binary(join(out, "seed-0", "outcomes.parquet")) as f:
        assert f.read(4) == b"PAR1"
    capsys.readouterr()
    assert run_evaluation(cfg) == saved
    assert "already complete (manifest.json)" in capsys.readouterr().out


def delete(uri: str) -> None:
    filesystem, inner = open_fs(uri)
    filesystem.delete_file(inner)


def test_sweep_keeps_tune_state_and_trials_in_the_bucket_and_resumes_from_it(
    ray_session, mlflow_server, assets, s3_server, scratch, tmp_path, capsys
):
    out = join(s3_server("sweep"), "small")
    data = sweep_data(assets, out, mlflow_server, "sweep-s3", languages=["xl"], conditions=["base", "adjusted"],
                      search={"metric": "zero_shot.adjusted.targets_mean.accuracy"})  # fmt: skip
    data["adjust"]["pairs"] = {"max_sent": 200, "heldout_sent": 40, "align_on": "sample"}
    data["align_checkpoints"] = ["original", "adjusted", "adjusted-tuned"]
    data["evaluate"]["task"]["epochs"] = 1
    data["evaluate"]["train"] = {"max_train_examples": 100}
    cfg = SweepConfig.model_validate(data)
    manifest = run_sweep(cfg)
    assert len(manifest["trials"]) == 2

    state = read_json(join(out, "sweep.json"))
    experiment = join(out, "tune", "small")
    assert state["experiment"] == experiment
    tune_files = list_names(experiment)
    assert "tuner.pkl" in tune_files and any(n.startswith("experiment_state-") for n in tune_files)
    for trial in manifest["trials"]:
        folder = join(out, "trials", trial)
        assert read_json(join(folder, "result.json"))["result"] == pytest.approx(manifest["trials"][trial]["result"])
        assert exists(join(folder, "adjust", "checkpoint", "model.safetensors"))
        assert exists(join(folder, "evaluate", "adjusted", "seed-0", "outcomes.parquet"))
        assert is_file(join(folder, "align", "adjusted-tuned.json"))  # a fine-tuned checkpoint read by its URI
    assert not (scratch_dir(out) / "trials").exists()  # nothing of a trial's only on the driver
    assert {"trials.csv", "summary.md", "zero_shot.parquet"} <= set(list_names(join(out, "report")))

    client = MlflowClient(mlflow_server)
    runs = children(client, "sweep-s3", manifest["parent_run_id"])
    assert {r.data.tags["xlray.trial_id"] for r in runs} == set(manifest["trials"])
    assert all(r.info.status == "FINISHED" for r in runs)
    assert all(0 <= r.data.metrics["zero_shot.adjusted.xl.accuracy"] <= 1 for r in runs)
    assert all("vs_base" in " ".join(r.data.metrics) for r in runs)  # adjusted read base's outcomes from the bucket

    # A driver killed after Tune finished but before the manifest: --resume restores Tune's state from the bucket
    # and reruns nothing.
    delete(join(out, "manifest.json"))
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    capsys.readouterr()
    assert cli_main(["sweep", str(config), "--resume"]) == 0
    assert f"resuming {experiment}" in capsys.readouterr().out
    assert read_json(join(out, "manifest.json"))["trials"].keys() == manifest["trials"].keys()
    for trial in manifest["trials"]:
        with open_binary(join(out, "trials", trial, "events.jsonl")) as f:
            assert [json.loads(line)["event"] for line in f.read().decode().splitlines()] == ["started", "finished"]
    assert len(children(client, "sweep-s3", manifest["parent_run_id"])) == 2
    assert cli_main(["sweep", str(config), "--resume"]) == 0
    assert "already complete" in capsys.readouterr().out
    delete(join(out, "report", "summary.md"))
    assert cli_main(["report", str(config)]) == 0  # reads sweep.json from the bucket, writes the report back there
    assert is_file(join(out, "report", "summary.md"))


def test_a_missing_bucket_is_refused_before_anything_is_written(assets, s3_server, scratch, tmp_path, capsys):
    s3_server()  # the server runs; the bucket below does not exist
    uri = "s3://no-such-bucket/runs/adjust"
    config = tmp_path / "adjust.yaml"
    config.write_text(yaml.safe_dump(adjust_config(assets, uri).model_dump(mode="json")))
    before = sorted(scratch.iterdir())
    assert cli_main(["adjust", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("xlray: error: output_dir: cannot write to s3://no-such-bucket/runs")
    assert "bucket 'no-such-bucket' does not exist" in err
    assert sorted(scratch.iterdir()) == before  # not even a log file
    data = sweep_data(assets, tmp_path / "sweep", None, "unused", storage_path="s3://no-such-bucket/tune")
    with pytest.raises(XlrayError, match=r"^storage_path: cannot write to s3://no-such-bucket/tune: bucket"):
        run_sweep(SweepConfig.model_validate(data))
    assert not (tmp_path / "sweep").exists()


def test_credentials_in_an_output_uri_never_reach_mlflow(assets, s3_server, scratch, tmp_path):
    """pyarrow takes an access key and secret from a URI's user part; the run logs the URI without them."""
    bucket = s3_server("creds")[len("s3://") :]
    secret = "xlray-test-secret"  # the conftest's credentials: the server takes them
    out = f"s3://xlray-test-key:{secret}@{bucket}/adjust"
    db = tmp_path / "mlflow.db"
    cfg = adjust_config(assets, out, tracking={"uri": f"sqlite:///{db}", "experiment": "creds"})
    manifest = run_adjust(cfg)
    assert is_file(join(f"s3://{bucket}/adjust", "manifest.json"))
    run = MlflowClient(f"sqlite:///{db}").get_run(manifest["mlflow_run_id"])
    logged = json.dumps([run.data.params, run.data.tags])
    assert secret not in logged and f"s3://***@{bucket}/adjust" in logged
