"""Shared fixtures: the synthetic world and tiny models (built once), one Ray session, one MLflow server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, what: str, timeout_s: float = 120) -> None:
    """Wait until ``proc`` listens on 127.0.0.1:``port``; a process that exits or never listens is an error."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited: {log.read_text()[-2000:]}") from None
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"{what} did not start in {timeout_s:.0f} s")


# The S3-compatible server the object-storage tests use (moto's server mode, started on first use). Its endpoint
# and dummy credentials are set here, before any Ray starts, so every Ray worker of the session inherits them.
S3_PORT = free_port()
S3_ENV = {
    "AWS_ENDPOINT_URL": f"http://127.0.0.1:{S3_PORT}",
    "AWS_ACCESS_KEY_ID": "xlray-test-key",
    "AWS_SECRET_ACCESS_KEY": "xlray-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",  # no instance-metadata look-up for credentials
}
os.environ.update(S3_ENV)
# Where stages keep the local side of outputs in a bucket (logs, checkpoint copies): a folder of this session's
# (removed at its end), set before any Ray starts so that workers use it too, never the user's ~/.cache/xlray.
SCRATCH = tempfile.mkdtemp(prefix="xlray-test-scratch-")
os.environ["XLRAY_SCRATCH"] = SCRATCH


def start_moto(root: Path, port: int, env: dict[str, str] | None = None) -> subprocess.Popen:
    """moto's S3-compatible server on 127.0.0.1:``port`` (log in ``root``), once it listens."""
    log = root / f"moto-{port}.log"
    cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **(env or {})})  # fmt: skip
    wait_for_port(port, proc, log, "moto server")
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3-compatible server (moto) on 127.0.0.1, reached through $AWS_ENDPOINT_URL; yields a function that
    creates a fresh bucket and returns its ``s3://`` URI."""
    import boto3

    proc = start_moto(tmp_path_factory.mktemp("s3"), S3_PORT)
    client = boto3.client("s3")
    made = iter(range(1_000_000))

    def bucket(prefix: str = "xlray") -> str:
        name = f"{prefix}-{next(made)}"
        client.create_bucket(Bucket=name)
        return f"s3://{name}"

    yield bucket
    stop(proc)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` on 127.0.0.1 with a sqlite backend and proxied artifacts; yields its URI."""
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--workers",
        "1",
    ]
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_port(port, proc, root / "server.log", "mlflow server")
    yield f"http://127.0.0.1:{port}"
    stop(proc)


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray shared by all integration tests, with a fake GPU resource so GPU paths are exercised."""
    import ray

    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def assets(tmp_path_factory) -> Path:
    """The synthetic world and tiny bert / xlm-roberta / mt5 models, built once per test session."""
    from xlray.world.assets import write_assets

    return write_assets(tmp_path_factory.mktemp("assets"))


@pytest.fixture(scope="session")
def xc_en_activations(ray_session, assets, tmp_path_factory):
    """Word activations of the world's xc-en corpus at layers 0 and 2 of the tiny bert, extracted once per session
    (the concepts and explorer tests read them)."""
    from xlray.configs import ModelConfig
    from xlray.extract.config import ExtractConfig
    from xlray.extract.run import run_extract

    world = assets / "world" / "parallel"
    out = tmp_path_factory.mktemp("concepts") / "activations"
    run_extract(
        ExtractConfig(
            model=ModelConfig(name=str(assets / "models" / "bert")),
            inputs=[
                {
                    "format": "parallel",
                    "source": str(world / "xc-en.xc"),
                    "target": str(world / "xc-en.en"),
                    "source_language": "xc",
                    "target_language": "en",
                }
            ],
            languages=["xc", "en"],
            output_dir=str(out),
            layers=[0, 2],
            chunk_lines=1000,
            tracking={"enabled": False},
        )  # fmt: skip
    )
    return out


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tiny models on a shared 2-core box run ~3x faster on one thread than on two contending ones."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session", autouse=True)
def remove_scratch():
    yield
    shutil.rmtree(SCRATCH, ignore_errors=True)
