"""`xlray demo` end to end (extract, concepts, the demo sweep) on the shared local Ray, read back from its MLflow."""

import pytest
from mlflow.tracking import MlflowClient

from xlray.cli import main

pytestmark = pytest.mark.integration


def test_demo_runs_and_logs_to_mlflow(ray_session, tmp_path, capsys):
    config = tmp_path / "demo.yaml"
    config.write_text("stage: demo\nworld: {parallel_sentences: 300, languages: [xd], task_train: 60, task_test: 30}\n")
    assert main(["demo", "--config", str(config), "--output", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    uri = f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}"
    assert f"mlflow ui --backend-store-uri {uri}" in printed
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("xlray-demo").experiment_id])
    by_name = {r.info.run_name: r for r in runs}
    assert set(by_name) == {"extract bert", "concepts-bert-base-xd-en", "sweep-demo", "bert-xd-reg_lambda=0",
                            "bert-xd-reg_lambda=1"}  # fmt: skip
    parent = by_name["sweep-demo"].info.run_id
    assert by_name["bert-xd-reg_lambda=1"].data.tags["mlflow.parentRunId"] == parent
    assert "zero_shot.continual.xd.accuracy" in by_name["bert-xd-reg_lambda=0"].data.metrics
    assert all(r.info.status == "FINISHED" for r in runs)
    assert by_name["extract bert"].data.metrics["count.sentences"] == 600
    history = client.get_metric_history(by_name["concepts-bert-base-xd-en"].info.run_id, "colap")
    assert sorted(m.step for m in history) == [0, 1, 2]
    assert (tmp_path / "out" / "concepts" / "xd-en" / "browser.html").is_file()
    assert (tmp_path / "out" / "sweep" / "report" / "summary.md").is_file()
