"""`xlray extract` into object storage: a real S3-compatible server (moto), shards written straight from the Ray
workers, the manifest last; a run killed mid-upload resumes; an unusable bucket is refused before any write."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from xlray.configs import ModelConfig
from xlray.extract.config import ExtractConfig
from xlray.extract.reader import Activations, open_activations
from xlray.extract.run import THRESHOLDS, run_extract
from xlray.extract.shards import finished_shards
from xlray.extract.stages import load_thresholds
from xlray.storage import join
from xlray.textio import open_fs

pytestmark = pytest.mark.integration

LINES, CHUNK_LINES = 240, 40  # 6 chunks, so 6 shards


@pytest.fixture(scope="module")
def corpus(assets, tmp_path_factory):
    """The first LINES lines of the world's xc-en parallel files: small enough for seconds per run."""
    folder = tmp_path_factory.mktemp("corpus")
    for side in ("xc", "en"):
        lines = (assets / "world" / "parallel" / f"xc-en.{side}").read_text(encoding="utf-8").splitlines()
        (folder / f"xc-en.{side}").write_text("\n".join(lines[:LINES]) + "\n", encoding="utf-8")
    return folder


def config(assets, corpus, output_dir: str, **overrides) -> ExtractConfig:
    fields = {
        "model": ModelConfig(name=str(assets / "models" / "bert")),
        "inputs": [{"format": "parallel", "source": str(corpus / "xc-en.xc"), "target": str(corpus / "xc-en.en"),
                    "source_language": "xc", "target_language": "en"}],
        "languages": ["xc", "en"],
        "output_dir": output_dir,
        "layers": [0, 2],
        "chunk_lines": CHUNK_LINES,
        "gpus_per_actor": 0,
        "actors": 1,
        "tracking": {"enabled": False},
    }  # fmt: skip
    return ExtractConfig(**(fields | overrides))


@pytest.fixture(scope="module")
def local(ray_session, assets, corpus, tmp_path_factory) -> Activations:
    """The same extraction into a local folder: what every object-storage run must read back exactly."""
    out = tmp_path_factory.mktemp("local") / "run"
    run_extract(config(assets, corpus, str(out)))
    return open_activations(out)


def assert_same_activations(got: Activations, want: Activations) -> None:
    """Every layer's vectors and row metadata are equal, value for value."""
    assert got.layers == want.layers and got.manifest["counts"] == want.manifest["counts"]
    for layer in want.layers:
        (x, meta), (x_want, meta_want) = got.matrix(layer), want.matrix(layer)
        assert meta.height > 0 and meta.equals(meta_want)
        assert np.array_equal(x, x_want)


def objects(bucket_uri: str) -> dict[str, tuple[str, object]]:
    """Each object in the bucket (folder markers left out): key -> (ETag, LastModified)."""
    import boto3

    listed = boto3.client("s3").list_objects_v2(Bucket=bucket_uri.removeprefix("s3://")).get("Contents", [])
    return {o["Key"]: (o["ETag"], o["LastModified"]) for o in listed if not o["Key"].endswith("/")}


def local_files(root: Path, but: Path) -> list[Path]:
    """The files under ``root`` outside the folder ``but``."""
    return [p for p in root.rglob("*") if p.is_file() and but not in p.parents]


def test_an_extraction_into_s3_round_trips(ray_session, assets, corpus, local, s3_server, tmp_path, monkeypatch,
                                           capsys):  # fmt: skip
    """Through the GPU stages: the shards are uploaded by Ray Data writer tasks (the CPU actors upload theirs in the
    test below)."""
    scratch = tmp_path / "scratch"
    monkeypatch.setenv("XLRAY_SCRATCH", str(scratch))
    monkeypatch.chdir(tmp_path)  # a URI taken for a local path would land here ("s3:/...")
    bucket = s3_server()
    out = join(bucket, "run")
    cfg = config(assets, corpus, out, gpus_per_actor="auto", actors="auto")
    manifest = run_extract(cfg)
    shards = [f"run/shards/000-{k:06d}.parquet" for k in range(LINES // CHUNK_LINES)]
    assert set(objects(bucket)) == {"run/manifest.json", "run/cap_thresholds.json", *shards}
    assert manifest["shards"] == [s.removeprefix("run/") for s in shards]
    assert_same_activations(open_activations(out), local)
    thresholds = load_thresholds(join(out, THRESHOLDS))  # as the actors of a resumed run read them
    assert thresholds and thresholds == load_thresholds(join(local.folder, THRESHOLDS))
    assert local_files(tmp_path, scratch) == []  # only the scratch folder may hold anything (the log file)
    assert run_extract(cfg) == manifest and f"{out} is already complete" in capsys.readouterr().out


class StallingProxy:
    """A TCP proxy in front of the S3 server that passes everything on, except one upload: once the request
    ``marker`` (``PUT /bucket/key``) comes, half of what came with it is passed on and then nothing more, as a
    connection that stops mid-upload. ``stalled`` is set then."""

    def __init__(self, upstream_port: int, marker: bytes):
        self.upstream, self.marker, self.stalled = ("127.0.0.1", upstream_port), marker, threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:  # closed
                return
            upstream = socket.create_connection(self.upstream)
            threading.Thread(target=self.pipe, args=(upstream, client, False), daemon=True).start()
            threading.Thread(target=self.pipe, args=(client, upstream, True), daemon=True).start()

    def pipe(self, src: socket.socket, dst: socket.socket, watch: bool) -> None:
        try:
            while data := src.recv(1 << 16):
                at = data.find(self.marker) if watch else -1
                if at >= 0:
                    dst.sendall(data[: at + (len(data) - at) // 2])
                    self.stalled.set()
                    while src.recv(1 << 16):  # swallowed until the uploader is gone
                        pass
                    return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                sock.close()


def extraction_workers() -> list:
    import psutil

    return [p for p in psutil.process_iter(["cmdline"]) if " ".join(p.info["cmdline"] or []).startswith(
        "ray::ExtractChunks")]  # fmt: skip


def wait_until(done, what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_run_killed_mid_upload_resumes_with_the_finished_shards(ray_session, assets, corpus, local, s3_server,
                                                                   tmp_path):  # fmt: skip
    """`xlray extract` (its own process, joined to the test's Ray) reaches S3 through a proxy that stalls the third
    shard's upload; the process is SIGKILLed while that upload hangs. Nothing of the third shard and no manifest is
    in the bucket (an object store shows an object only once its upload is complete: pyarrow's multipart upload is
    left open); the re-run computes only the missing shards and reads back exactly the local run's rows."""
    from conftest import S3_PORT

    bucket = s3_server()
    out, stalled = join(bucket, "run"), "000-000002"
    proxy = StallingProxy(S3_PORT, f"PUT /{bucket.removeprefix('s3://')}/run/shards/{stalled}.parquet".encode())
    cfg = config(assets, corpus, out, ray={"actor_restarts": 0})
    path = tmp_path / "extract.yaml"
    through_proxy = cfg.model_dump(mode="json") | {"storage": {"endpoint_url": f"http://127.0.0.1:{proxy.port}"}}
    path.write_text(yaml.safe_dump(through_proxy))
    env = os.environ | {"RAY_ADDRESS": ray_session.get_runtime_context().gcs_address,
                        "XLRAY_SCRATCH": str(tmp_path / "scratch")}  # fmt: skip
    with (tmp_path / "killed.log").open("w") as log:
        run = subprocess.Popen([sys.executable, "-m", "xlray", "extract", str(path)], stdout=log, stderr=log, env=env)
    try:
        wait_until(lambda: proxy.stalled.is_set() or run.poll() is not None, "the third shard's upload", 120)
        if not proxy.stalled.is_set():
            pytest.fail(f"the run ended before the third shard's upload: {(tmp_path / 'killed.log').read_text()}")
        os.kill(run.pid, signal.SIGKILL)  # the driver: Ray then kills its actor, stalled mid-upload
        assert run.wait(30) == -signal.SIGKILL
        wait_until(lambda: not extraction_workers(), "the killed run's actor to die")
    finally:
        run.kill()
        proxy.server.close()
    kept = objects(bucket)
    assert set(kept) == {"run/shards/000-000000.parquet", "run/shards/000-000001.parquet"}  # no manifest
    assert finished_shards(join(out, "shards")) == {"000-000000", "000-000001"}
    for key in kept:  # whole objects, each a readable Parquet file
        filesystem, inner = open_fs(f"{bucket}/{key}")
        assert pq.read_metadata(inner, filesystem=filesystem).num_rows > 0

    manifest = run_extract(cfg)
    assert manifest["this_run"]["shards"] == 4  # the two finished shards were not recomputed ...
    after = objects(bucket)
    assert {k: after[k] for k in kept} == kept  # ... nor rewritten
    assert_same_activations(open_activations(out), local)


def test_a_missing_bucket_is_refused_before_anything_is_written(assets, corpus, s3_server, tmp_path, monkeypatch,
                                                               capsys):  # fmt: skip
    import boto3

    from xlray.cli import main

    monkeypatch.setenv("XLRAY_SCRATCH", str(tmp_path / "scratch"))
    monkeypatch.chdir(tmp_path)
    buckets = {b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]}
    for uri, shown in [("s3://no-such-bucket/run", "s3://no-such-bucket/run"),
                       ("s3://KEY:SECRET@no-such-bucket/run", "s3://***@no-such-bucket/run")]:  # fmt: skip
        path = tmp_path / "extract.yaml"
        path.write_text(yaml.safe_dump(config(assets, corpus, uri).model_dump(mode="json")))
        assert main(["extract", str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        assert err[0].startswith("xlray: error: output_dir: ") and shown in err[0] and "SECRET" not in err[0]
        assert "bucket 'no-such-bucket' does not exist" in err[0]
        path.unlink()
    assert {b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]} == buckets  # no bucket made
    assert list(tmp_path.iterdir()) == []  # no output folder, no scratch folder, no log
