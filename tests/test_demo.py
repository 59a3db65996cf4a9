"""`xlray demo` end to end (extract, concepts, sentence alignment, the demo sweep) in its own local Ray, read back
from its MLflow."""

import json
import os
import re
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.integration


def test_demo_runs_quietly_and_logs_to_mlflow(tmp_path):
    """The demo as a user runs it (a process of its own, its own local Ray): a short console, then MLflow."""
    config = tmp_path / "demo.yaml"
    config.write_text("stage: demo\nworld: {parallel_sentences: 300, languages: [xd], task_train: 60, task_test: 30}\n")
    cmd = [sys.executable, "-m", "xlray", "demo", "--config", str(config), "--output", str(tmp_path / "out")]
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "XLRAY_VERBOSE")}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = (done.stdout + done.stderr).splitlines()
    assert len(lines) <= 60, "\n".join(lines)  # Ray's, Tune's and MLflow's own output went to the log file
    assert done.stderr.strip() == "", done.stderr[-3000:]
    assert "demo results (the pretrained tiny model)" in done.stdout and "sweep, best trial" in done.stdout
    # the pretrained path: the encoder is pretrained on the world, and the demo ends with its findings table
    assert json.loads((tmp_path / "out" / "assets" / "models" / "bert-pretrained" / "pretrain.json").read_text())
    assert "findings: pretrained vs random init" in done.stdout
    for name in ("planted", "related-gap-planted", "concepts-planted"):
        assert re.search(rf"{name}\s*│\s*[-\d.e]+\s*│.*│\s*(reproduced|not reproduced|inconclusive)", done.stdout), name
    doc = json.loads((tmp_path / "out" / "findings" / "findings.json").read_text())
    assert [f["name"] for f in doc["findings"]] == ["planted", "related-gap-planted", "concepts-planted"]
    assert set(doc["curves"]) == {"random init", "bert pretrained"}
    assert re.search(r"sentence alignment, llama\s*│\s*en-xd\s*│\s*mexa_mean\s*│\s*[\d.]+", done.stdout)
    printed = done.stdout
    uri = f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}"
    assert f"mlflow ui --backend-store-uri {uri}" in printed
    assert re.search(r"then open http://127.0.0.1:5000/#/experiments/\d+/runs\?workflowType=machine_learning", printed)
    log = (tmp_path / "out" / "xlray.log").read_text()
    assert "Started a local Ray instance" in log  # Ray's own chatter is kept, in the log file
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("xlray-demo").experiment_id])
    by_name = {r.info.run_name: r for r in runs}
    assert set(by_name) == {"extract-bert-pretrained", "concepts-bert-base-xd-en", "extract-llama",
                            "sentence-alignment-llama", "sweep-demo", "bert-xd-reg_lambda=0",
                            "bert-xd-reg_lambda=1"}  # fmt: skip
    parent = by_name["sweep-demo"].info.run_id
    assert by_name["bert-xd-reg_lambda=1"].data.tags["mlflow.parentRunId"] == parent
    assert "zero_shot.continual.xd.accuracy" in by_name["bert-xd-reg_lambda=0"].data.metrics
    assert all(r.info.status == "FINISHED" for r in runs)
    assert by_name["extract-bert-pretrained"].data.metrics["count.sentences"] == 600
    history = client.get_metric_history(by_name["concepts-bert-base-xd-en"].info.run_id, "colap")
    assert sorted(m.step for m in history) == [0, 1, 2]
    assert by_name["extract-llama"].data.metrics["count.sentences"] == 600  # both sides of the xd-en corpus
    mexa = client.get_metric_history(by_name["sentence-alignment-llama"].info.run_id, "mexa.en-xd")
    assert sorted(m.step for m in mexa) == [0, 1, 2] and all(0 <= m.value <= 1 for m in mexa)
    assert (tmp_path / "out" / "concepts" / "xd-en" / "explorer.html").is_file()
    assert (tmp_path / "out" / "sweep" / "report" / "summary.md").is_file()
