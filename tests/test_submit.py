"""`xlray submit` and `ray job submit` against a real local Ray head with token auth on.

The head is a separate `ray start --head` (own temp dir and ports, 127.0.0.1 only), never the shared
`ray_session` of other tests. It is stopped by killing only its own processes (those whose command line names
its temp dir or GCS port, and their children): `ray stop` would kill every Ray on the machine, including the
`ray.init` session other tests in this pytest process use.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from ray_heads import HEAD_PORT_FLAGS, free_ports, stop_head

from xlray.errors import XlrayError
from xlray.submit import (
    add_submit_parser,
    check_upload_size,
    load_runtime_env,
    resolve_address,
    resolve_token,
    run_submit,
    submit,
    upload_files,
)

REPO = Path(__file__).resolve().parents[1]


def demo_entrypoint(output: Path) -> list[str]:
    """The job both submit paths run: the demo sweep, each time into a folder of its own (Ray reuses one unpacked
    working dir for identical uploads, where a second run would find the first one's finished sweep)."""
    return ["python", "-m", "xlray", "sweep", "sweeps/demo.yaml", "--output", str(output)]


def demo_sweep_runs(tracking_uri: str, t0_ms: int) -> tuple:
    """The parent run the demo sweep made since ``t0_ms`` and its children."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    runs = runs_since(tracking_uri, t0_ms)
    (parent,) = [r for r in runs if r.data.tags.get("xlray.role") == "sweep"]
    kids = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    return client.get_run(parent.info.run_id), kids


# ---------------------------------------------------------------- unit tests: no Ray processes


def test_address_comes_from_flag_then_api_server_then_ray_address(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.2:8265")
    assert resolve_address(None) == "http://10.0.0.2:8265"
    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", "https://ray.example.org/")
    assert resolve_address(None) == "https://ray.example.org"
    assert resolve_address("http://127.0.0.1:8265") == "http://127.0.0.1:8265"


def test_bad_addresses_are_one_line_errors(monkeypatch):
    for var in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(XlrayError, match="no cluster address: pass --address"):
        resolve_address(None)
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    with pytest.raises(XlrayError, match=r"\$RAY_ADDRESS=ray://head:10001: jobs go to the Ray dashboard"):
        resolve_address(None)


def test_token_is_found_in_rays_order(monkeypatch, tmp_path):
    for var in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_token(None) is None
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("from-home\n")
    assert resolve_token(None) == "from-home"
    (tmp_path / "tok").write_text("from-path")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "tok"))
    assert resolve_token(None) == "from-path"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-env")
    assert resolve_token(None) == "from-env"
    assert resolve_token("explicit") == "explicit"
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "missing"))
    with pytest.raises(XlrayError, match="missing: cannot read the Ray token file"):
        resolve_token(None)


def test_rayignore_keeps_data_outputs_envs_and_secrets_out(tmp_path):
    shutil.copy(REPO / ".rayignore", tmp_path / ".rayignore")
    files = [
        "xlray/core.py", "xlray/data/vocab.txt", "sweeps/demo.yaml", ".env.example",
        "data/corpus.txt", "outputs/run/x.npy", ".venv/lib/a.py", "venv/b.py", "mlruns/0/meta.yaml",
        "mlflow.db", ".git/HEAD", "xlray/__pycache__/core.pyc", ".env", "key.pem", "xlray-runs/demo/m.json",
    ]  # fmt: skip
    for rel in files:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    uploaded = {rel for rel, _ in upload_files(tmp_path)}
    assert uploaded == {".rayignore", "xlray/core.py", "xlray/data/vocab.txt", "sweeps/demo.yaml", ".env.example"}


def test_working_dir_over_the_limit_names_limit_and_biggest_folders(tmp_path):
    (tmp_path / "bigdata").mkdir()
    with open(tmp_path / "bigdata" / "blob.bin", "wb") as f:
        f.truncate(150 * 1024**2)  # sparse: 150 MiB by size, nothing written
    (tmp_path / "model.bin").write_bytes(b"0" * 4096)
    (tmp_path / "run.py").write_text("print(1)\n")
    with pytest.raises(XlrayError) as err:
        submit(["python", "run.py"], address="http://127.0.0.1:9", working_dir=tmp_path)
    msg = str(err.value)
    assert "150.0 MiB to upload, over Ray's limit of 100.0 MiB" in msg
    assert "biggest: bigdata/ (150.0 MiB), model.bin (0.0 MiB), run.py (0.0 MiB)" in msg
    assert "\n" not in msg
    assert 4096 + 9 < check_upload_size(tmp_path, excludes=["bigdata/"]) < 4096 + 9 + 400


def test_unreachable_dashboard_is_a_one_line_error(monkeypatch):
    (port, other) = free_ports(2)
    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", f"http://127.0.0.1:{other}")  # the flag must win over it
    with pytest.raises(XlrayError, match=rf"cannot reach the Ray dashboard at http://127.0.0.1:{port}: is the"):
        submit(["python", "-V"], address=f"http://127.0.0.1:{port}", working_dir=None, token="t")
    assert os.environ["RAY_API_SERVER_ADDRESS"] == f"http://127.0.0.1:{other}"


def test_bad_cli_input(monkeypatch, tmp_path):
    parser = argparse.ArgumentParser(prog="xlray")
    add_submit_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["submit", "--address", "http://h:8265", "--env", "X", "--", "python", "-c", "1"])
    assert args.entrypoint == ["--", "python", "-c", "1"] and args.func is run_submit
    monkeypatch.delenv("X", raising=False)
    with pytest.raises(XlrayError, match="--env X: not set in this shell"):
        run_submit(args)
    with pytest.raises(XlrayError, match="nothing to run: put the command after --"):
        run_submit(parser.parse_args(["submit", "--address", "http://h:8265", "--"]))
    with pytest.raises(XlrayError, match="entrypoint_num_gpus: must be >= 0"):
        submit(["python"], entrypoint_num_gpus=-1)
    with pytest.raises(XlrayError, match="--runtime-env-json: not valid JSON"):
        load_runtime_env(None, "{env_vars:")
    (tmp_path / "env.yaml").write_text("env_vars: {A: '1'}\n")
    assert load_runtime_env(str(tmp_path / "env.yaml"), None) == {"env_vars": {"A": "1"}}


# ---------------------------------------------------------------- integration: a real Ray head


@dataclass
class Head:
    url: str
    token: str
    env: dict[str, str]


def client_env(token: str | None) -> dict[str, str]:
    """This environment minus Ray's variables, plus token auth (as a researcher's shell would have it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    if token:
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    return env


def wait_for_dashboard(url: str, token: str, timeout_s: float = 60) -> None:
    request = urllib.request.Request(f"{url}/api/version", headers={"Authorization": f"Bearer {token}"})
    deadline = time.time() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            if time.time() > deadline:
                raise RuntimeError(f"Ray dashboard at {url} did not come up in {timeout_s} s") from None
        time.sleep(0.5)


@pytest.fixture(scope="module")
def ray_head():
    """A local Ray head (127.0.0.1, dashboard on, token auth on) in its own temp dir; stopped even on failure."""
    temp_dir = tempfile.mkdtemp(prefix="xlr", dir="/tmp")  # short: Ray's socket paths must stay < 108 chars
    ports = dict(zip(HEAD_PORT_FLAGS, free_ports(len(HEAD_PORT_FLAGS)), strict=True))
    token = secrets.token_hex(32)
    ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
    cmd = [ray, "start", "--head", "--node-ip-address", "127.0.0.1", "--dashboard-host", "127.0.0.1"]
    cmd += ["--temp-dir", temp_dir, "--num-cpus", "2", "--num-gpus", "0", "--include-dashboard", "true"]
    cmd += ["--disable-usage-stats", *[arg for flag, p in ports.items() for arg in (f"--{flag}", str(p))]]
    try:
        started = subprocess.run(cmd, env=client_env(token), capture_output=True, text=True, timeout=120)
        assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
        url = f"http://127.0.0.1:{ports['dashboard-port']}"
        wait_for_dashboard(url, token)
        yield Head(url=url, token=token, env=client_env(token))
    finally:
        stop_head(temp_dir, ports["port"])


def runs_since(tracking_uri: str, t0_ms: int) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, filter_string=f"attributes.start_time >= {t0_ms}")


@pytest.mark.integration
def test_ray_job_submit_runs_the_demo_sweep(ray_head, mlflow_server, tmp_path):
    t0_ms = int(time.time() * 1000)
    env = {**ray_head.env, "RAY_API_SERVER_ADDRESS": ray_head.url}
    runtime_env = json.dumps({"env_vars": {"MLFLOW_TRACKING_URI": mlflow_server}})
    cmd = ["ray", "job", "submit", "--working-dir", str(REPO), "--runtime-env-json", runtime_env, "--"]
    done = subprocess.run(cmd + demo_entrypoint(tmp_path / "job"), env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"Job 'raysubmit_\w+' succeeded", done.stdout + done.stderr)
    parent, trials = demo_sweep_runs(mlflow_server, t0_ms)
    assert parent.info.status == "FINISHED" and len(trials) == 4
    assert all(r.info.status == "FINISHED" and "zero_shot.continual.targets_mean.accuracy" in r.data.metrics
               for r in trials)  # fmt: skip
    assert (tmp_path / "job" / "manifest.json").is_file()


@pytest.mark.integration
def test_xlray_submit_streams_the_demo_sweep_and_exits_0(ray_head, mlflow_server, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("RAY_AUTH_TOKEN", ray_head.token)  # found the way a researcher's shell provides it
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:9")  # --address must win over it
    parser = argparse.ArgumentParser(prog="xlray")
    add_submit_parser(parser.add_subparsers(dest="command"))
    argv = ["submit", "--address", ray_head.url, "--working-dir", str(REPO), "--env", "MLFLOW_TRACKING_URI"]
    t0_ms = int(time.time() * 1000)
    assert run_submit(parser.parse_args([*argv, "--", *demo_entrypoint(tmp_path / "job")])) == 0
    out, err = capsys.readouterr()
    assert "[sweep] demo: 4 trials finished" in out  # streamed from the job's stdout
    assert re.search(r"xlray: job raysubmit_\w+ succeeded", err)
    parent, trials = demo_sweep_runs(mlflow_server, t0_ms)
    assert parent.info.status == "FINISHED" and len(trials) == 4


@pytest.mark.integration
def test_failing_job_exits_1_with_its_reason(ray_head, capsys):
    cmd = ["python", "-c", "import sys; print('about to fail'); sys.exit(3)"]
    assert submit(cmd, address=ray_head.url, working_dir=None, token=ray_head.token) == 1
    out, err = capsys.readouterr()
    assert "about to fail" in out
    assert re.search(r"xlray: job raysubmit_\w+ failed: .*exit code 3", err)


@pytest.mark.integration
def test_wrong_token_is_rejected_with_a_one_line_error(ray_head):
    with pytest.raises(XlrayError, match=r"rejected the token: it is not this cluster's token") as err:
        submit(["python", "-V"], address=ray_head.url, working_dir=None, token="not-the-token")
    assert "\n" not in str(err.value)


@pytest.mark.integration
def test_missing_token_says_how_to_provide_it(ray_head, tmp_path):
    # A fresh process: after any ray.init in this one, Ray itself would attach the local session's token.
    code = (
        "import sys\nfrom xlray.errors import XlrayError\nfrom xlray.submit import submit\n"
        "try:\n    submit(['python', '-V'], address=sys.argv[1], working_dir=None)\n"
        "except XlrayError as exc:\n    print(exc)\n    sys.exit(2)\n"
    )
    env = {**client_env(None), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code, ray_head.url], env=env, capture_output=True, text=True)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout.startswith(f"{ray_head.url} needs the cluster's token (Ray token auth is on)")
