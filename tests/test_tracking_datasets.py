"""Dataset inputs, the experiment's kind tag and the runs-table link, read back from real MLflow stores."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from mlflow.tracking import MlflowClient

from xlray.configs import TrackingConfig
from xlray.datasets import EDGE, clean_uri, dataset
from xlray.tracking import EXPERIMENT_KIND, PrefixedSink, experiment_id, open_run, runs_url


def inputs_of(client: MlflowClient, run_id: str) -> dict[str, tuple]:
    """``{name: (context, source dict, digest, profile dict, source type)}`` of a run's dataset inputs."""
    out = {}
    for di in client.get_run(run_id).inputs.dataset_inputs:
        tags = {t.key: t.value for t in di.tags}
        d = di.dataset
        out[d.name] = (
            tags["mlflow.data.context"],
            json.loads(d.source),
            d.digest,
            json.loads(d.profile),
            d.source_type,
        )
    return out


@pytest.mark.parametrize("store", ["sqlite", "server"])
def test_sink_logs_named_files_as_datasets_with_their_context(tmp_path, store, request):
    (tmp_path / "xl-en.xl").write_text("a b\n")
    (tmp_path / "xl-en.en").write_text("c d\n")
    (tmp_path / "test.tsv").write_text("x\ty\n")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}" if store == "sqlite" else request.getfixturevalue("mlflow_server")
    cfg = TrackingConfig(uri=uri, experiment="datasets")
    with open_run(cfg, "r") as sink:
        pair = [str(tmp_path / "xl-en.xl"), str(tmp_path / "xl-en.en")]
        sink.log_datasets({"corpus xl-en": pair}, "train")
        PrefixedSink(sink, "zero_shot.base.").log_datasets({"nli test": str(tmp_path / "test.tsv")}, "test")
        sink.log_datasets({"corpus xl-en": pair}, "test")  # already an input of the run: not logged again
        run_id = sink.run_id
    got = inputs_of(MlflowClient(uri), run_id)
    assert set(got) == {"corpus xl-en", "nli test"}
    context, source, digest, profile, kind = got["corpus xl-en"]
    assert context == "train" and kind == "local" and len(digest) == 12
    assert source == {"uri": pair[0], "uris": pair} and profile == {"files": 2, "bytes": 8}
    assert got["nli test"][:2] == ("test", {"uri": str(tmp_path / "test.tsv")})


def test_digest_reads_both_ends_of_a_big_file_and_follows_size_and_mtime(tmp_path):
    path = tmp_path / "big.txt"
    path.write_bytes(b"a" * (3 * EDGE))
    stamp = (1_700_000_000, 1_700_000_000)
    os.utime(path, stamp)
    first = dataset("big", str(path)).digest

    def rewrite(offset: int) -> str:
        data = bytearray(b"a" * (3 * EDGE))
        data[offset] = ord("b")
        path.write_bytes(bytes(data))
        os.utime(path, stamp)
        return dataset("big", str(path)).digest

    assert rewrite(0) != first and rewrite(3 * EDGE - 1) != first  # the first and last MiB are hashed
    assert rewrite(EDGE + EDGE // 2) == first  # the middle is not read: same size, mtime and ends
    os.utime(path, (stamp[0], stamp[1] + 1))
    assert dataset("big", str(path)).digest != first
    # The whole digest, pinned: sha256 over uri, size:mtime_ns, first MiB, last MiB.
    path.write_bytes(b"xy")
    os.utime(path, stamp)
    expected = hashlib.sha256(f"{path}\0".encode() + f"2:{stamp[1] * 10**9}\0".encode() + b"xy").hexdigest()[:12]
    assert dataset("small", str(path)).digest == expected


def test_missing_file_is_recorded_not_fatal(tmp_path):
    d = dataset("gone", str(tmp_path / "nope.txt"))
    assert json.loads(d.profile) == {"files": 1, "bytes": 0, "unreadable": [str(tmp_path / "nope.txt")]}


@pytest.mark.parametrize(
    ("given", "recorded"),
    [
        ("s3://AKIA:s3cr3t@bucket/corpora/xl-en.xl?secret_key=s3cr3t&region=eu", "s3://bucket/corpora/xl-en.xl"),
        ("gs://bucket/a/b.txt", "gs://bucket/a/b.txt"),
        ("hdfs://user:pw@namenode:8020/data/x", "hdfs://namenode:8020/data/x"),
    ],
)
def test_sources_never_carry_credentials(given, recorded):
    assert clean_uri(given) == recorded


def test_relative_paths_are_recorded_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert clean_uri("data/x.txt") == str(tmp_path / "data" / "x.txt")


def test_experiments_are_tagged_as_model_development(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    ((key, value),) = EXPERIMENT_KIND.items()
    made = experiment_id(client, "new")
    assert client.get_experiment(made).tags[key] == value == "custom_model_development"
    old = client.create_experiment("old")
    assert experiment_id(client, "old") == old and client.get_experiment(old).tags[key] == value
    chosen = client.create_experiment("chosen", tags={key: "genai_development"})
    experiment_id(client, "chosen")
    assert client.get_experiment(chosen).tags[key] == "genai_development"  # a kind someone chose is kept


def test_runs_url_for_a_sqlite_store_and_a_server(tmp_path, mlflow_server):
    from xlray.errors import XlrayError

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    local = experiment_id(MlflowClient(uri), "urls")
    assert runs_url(uri, "urls", ui_port=5055) == (
        f"http://127.0.0.1:5055/#/experiments/{local}/runs?workflowType=machine_learning"
    )
    remote = experiment_id(MlflowClient(mlflow_server), "urls")
    assert runs_url(mlflow_server + "/", "urls") == (
        f"{mlflow_server}/#/experiments/{remote}/runs?workflowType=machine_learning"
    )
    with pytest.raises(XlrayError, match="no experiment 'absent'"):
        runs_url(uri, "absent")


def test_runs_logging_the_same_new_dataset_at_once_all_get_it(tmp_path):
    """Sweep trials log their corpora concurrently: one insert of a new dataset wins, the others link to it."""
    import threading

    from xlray.tracking import MlflowSink

    corpus = tmp_path / "c.txt"
    corpus.write_text("a b\n", encoding="utf-8")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = experiment_id(client, "race")
    sinks = [MlflowSink(MlflowClient(uri), client.create_run(exp).info.run_id) for _ in range(8)]
    barrier, errors = threading.Barrier(len(sinks)), []

    def log(sink):
        barrier.wait()
        try:
            sink.log_datasets({"c": str(corpus)}, "train")
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=log, args=(sink,)) for sink in sinks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for sink in sinks:
        assert [d.dataset.name for d in client.get_run(sink.run_id).inputs.dataset_inputs] == ["c"]
