"""Local mode beside a running `ray start --head`: `ray.address: null` is a private Ray, `auto` joins the head,
whatever the head's auth mode (token or disabled) and the client's default."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import tempfile

import pytest
import yaml
from ray_heads import start_head, stop_head

pytestmark = pytest.mark.integration


def client_env(home, **extra: str) -> dict[str, str]:
    """A researcher's shell: no Ray variables of this test process, a home of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return env | {"HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0", **extra}


@pytest.fixture(scope="module", params=["token", "disabled"])
def head(request, tmp_path_factory):
    """A running head with token auth on or off, and a client whose default auth mode differs from it."""
    tmpdir = tempfile.mkdtemp(prefix="xlm", dir="/tmp")  # short: Ray's socket paths must stay < 108 chars
    home = tmp_path_factory.mktemp("home")
    token = secrets.token_hex(32)
    if request.param == "token":
        head_env = client_env(home, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
        client = client_env(home, RAY_AUTH_MODE="disabled", RAY_AUTH_TOKEN=token)
    else:
        (home / ".ray").mkdir()
        (home / ".ray" / "auth_token").write_text(token)  # Ray alone would join an open head in token mode
        head_env = client_env(home, RAY_AUTH_MODE="disabled")
        client = client_env(home)
    ports = start_head(tmpdir, head_env)
    try:
        yield {"port": ports["port"], "env": client | {"RAY_TMPDIR": tmpdir}}
    finally:
        stop_head(tmpdir, ports["port"])


def extract(assets, tmp_path, head, address: str | None) -> subprocess.CompletedProcess:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"Bezotu hutu {i} .\n" for i in range(40)), encoding="utf-8")
    cfg = {
        "stage": "extract",
        "model": {"name": str(assets / "models" / "bert")},
        "inputs": [{"format": "text", "path": str(corpus), "language": "en"}],
        "languages": ["en"],
        "layers": [1],
        "output_dir": str(tmp_path / "out"),
        "tracking": {"enabled": False},
        "ray": {"address": address, "num_cpus": 1},
    }
    path = tmp_path / "extract.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "xlray", "extract", str(path)]
    return subprocess.run(cmd, env=head["env"], capture_output=True, text=True, timeout=300)


def test_null_address_runs_on_a_private_ray(head, assets, tmp_path):
    done = extract(assets, tmp_path, head, None)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert re.search(r"^\[extract\] Ray: a private local Ray at [\d.]+:(\d+) with 1 CPU", done.stdout, re.M)
    assert f":{head['port']}" not in done.stdout
    assert (tmp_path / "out" / "manifest.json").is_file()


def test_auto_address_joins_the_running_head(head, assets, tmp_path):
    done = extract(assets, tmp_path, head, "auto")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert re.search(rf"^\[extract\] Ray: joined the cluster at [\d.]+:{head['port']} with 2 CPU", done.stdout, re.M)
    assert done.stderr == "", done.stderr
    assert (tmp_path / "out" / "manifest.json").is_file()
