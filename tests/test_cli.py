"""The CLI: every shipped config validates, user errors are one line with exit status 2."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from xlray.cli import main

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "sweeps").rglob("*.yaml"))


def test_every_shipped_config_validates():
    assert len(SHIPPED) >= 3, "the sweeps/ folder lost its example configs"
    for path in SHIPPED:
        assert main(["validate", str(path)]) == 0, path


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
