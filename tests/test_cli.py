"""The CLI: every shipped config validates, user errors are one line with exit status 2."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from xlray.cli import main

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "sweeps").rglob("*.yaml"))


def test_every_shipped_config_validates(monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # a sweep's validation would probe that server
    assert len(SHIPPED) == 10, "the sweeps/ folder lost (or gained) example configs; update this count"
    for path in SHIPPED:
        assert main(["validate", str(path)]) == 0, path
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(SHIPPED) and all(": ok" in line for line in lines)
    assert sum("resources: checked against the cluster" in line for line in lines) == 4  # the four sweeps


def bad_sweep(tmp_path: Path, **changes) -> Path:
    import yaml

    data = yaml.safe_load((ROOT / "sweeps" / "demo.yaml").read_text())
    data.update(output_dir=str(tmp_path / "out"), **changes)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_validate_runs_the_sweeps_checks_made_before_trials(tmp_path, capsys):
    path = bad_sweep(tmp_path, space={"adjust.loss.reg_lamda": {"grid": [1.0]}})
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"xlray: error: {path}: space.adjust.loss.reg_lamda: unknown hyperparameter; did you mean")
    assert "\n" not in err
    assert not (tmp_path / "out").exists()  # validating writes nothing, not even the sqlite store


def test_validate_probes_a_tracking_server_but_not_a_local_store(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    dead = bad_sweep(tmp_path, tracking={"uri": "http://127.0.0.1:9", "experiment": "x"})
    assert main(["validate", str(dead)]) == 2
    assert "tracking: cannot reach MLflow at http://127.0.0.1:9" in capsys.readouterr().err
    local = bad_sweep(tmp_path, tracking={"uri": f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}", "experiment": "x"})
    assert main(["validate", str(local)]) == 0
    assert not (tmp_path / "out").exists()


def test_config_show_prints_the_resolved_config(capsys):
    assert main(["config", "show", str(ROOT / "sweeps" / "examples" / "extract_demo.yaml")]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["cap"] == 15 and shown["model"]["trust_remote_code"] is False and shown["pooling"] == "last"


def test_bad_config_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("stage: extract\nmodel: {name: x}\ninputs: []\nlanguages: [en]\noutput_dir: o\nbogus: 1\n")
    proc = subprocess.run([sys.executable, "-m", "xlray", "validate", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"xlray: error: {bad}: inputs: ")


@pytest.mark.parametrize("family", ["nope"])
def test_unknown_model_family_in_config(tmp_path, family):
    bad = tmp_path / "f.yaml"
    bad.write_text(f"stage: extract\nmodel: {{name: x, family: {family}}}\ninputs: [{{path: a, language: en}}]\n"
                   "languages: [en]\noutput_dir: o\n")  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "xlray", "validate", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2 and "model.family" in proc.stderr
