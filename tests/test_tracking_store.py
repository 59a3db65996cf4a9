"""The default local store: a sqlite file in the output folder, seeded from a migrated empty store, with the runs'
artifacts beside it."""

import sqlite3
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from xlray.configs import TrackingConfig
from xlray.tracking import open_run


def log_one_run(folder: Path, artifact: Path) -> str:
    with open_run(TrackingConfig(experiment="store test"), "r", folder) as sink:
        sink.log_metrics({"m": 1.0})
        sink.log_artifact(artifact)
        return sink.run_id


def test_new_stores_start_from_one_migrated_template_and_keep_artifacts_beside_them(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)  # MLflow's own default would put artifacts in ./mlruns here
    artifact = tmp_path / "note.txt"
    artifact.write_text("hello")
    template = tmp_path / "cache" / "xlray" / f"mlflow-{mlflow.__version__}-empty.db"
    runs = {}
    for name in ("first", "second"):
        runs[name] = log_one_run(tmp_path / name, artifact)
        assert template.is_file()  # built by the first store, copied by both
    with sqlite3.connect(template) as db:
        assert db.execute("select count(*) from runs").fetchone() == (0,)  # the template stays empty
    for name, run_id in runs.items():
        client = MlflowClient(f"sqlite:///{tmp_path / name / 'mlflow.db'}")
        run = client.get_run(run_id)
        assert run.data.metrics == {"m": 1.0} and run.info.status == "FINISHED"
        assert Path(run.info.artifact_uri).is_relative_to(tmp_path / name / "mlruns" / "store_test")
        assert (Path(run.info.artifact_uri) / "note.txt").read_text() == "hello"
    assert not (tmp_path / "mlruns").exists()


def test_an_unwritable_cache_leaves_mlflow_to_create_the_store(tmp_path, monkeypatch):
    blocked = tmp_path / "cache-is-a-file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    artifact = tmp_path / "note.txt"
    artifact.write_text("hello")
    run_id = log_one_run(tmp_path / "out", artifact)
    assert MlflowClient(f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}").get_run(run_id).data.metrics == {"m": 1.0}
