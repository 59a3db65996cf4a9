"""Object-storage paths: URI joins and listings, whole-object writes to a real S3-compatible server (moto), and the
one-line refusals of an output URI that cannot be used, before anything is written."""

from __future__ import annotations

import time

import pytest
from conftest import free_port, start_moto, stop

from xlray.errors import XlrayError
from xlray.outputs import atomic_dir, read_json, write_json
from xlray.storage import check_output, exists, join, list_names, name, parent, redact, scratch_dir
from xlray.textio import is_file, open_binary


def test_join_keeps_the_scheme_and_local_paths_stay_local(tmp_path):
    assert join("s3://bucket/runs/", "extract", "shards") == "s3://bucket/runs/extract/shards"
    assert join(tmp_path, "a", "b.json") == str(tmp_path / "a" / "b.json")
    assert parent("s3://bucket/runs/x.json") == "s3://bucket/runs"
    assert name("gs://bucket/runs/extract/") == "extract"


def test_redact_removes_credentials_from_every_uri():
    text = "s3://AKIA:SECRET@bucket/p failed; also gs://token@b/x and http://u:p@host:9000"
    assert redact(text) == "s3://***@bucket/p failed; also gs://***@b/x and http://***@host:9000"
    assert "SECRET" not in str(scratch_dir("s3://AKIA:SECRET@bucket/runs"))


def test_scratch_dir_is_stable_per_uri_and_local_paths_are_their_own(tmp_path, monkeypatch):
    monkeypatch.setenv("XLRAY_SCRATCH", str(tmp_path))
    assert scratch_dir("s3://b/runs/a") == scratch_dir("s3://b/runs/a/")
    assert scratch_dir("s3://b/runs/a") != scratch_dir("s3://b/runs/b")
    assert scratch_dir("s3://b/runs/a").parent == tmp_path
    assert scratch_dir(tmp_path / "out") == tmp_path / "out"


def test_round_trip_through_s3(s3_server):
    out = join(s3_server(), "run")
    write_json(join(out, "manifest.json"), {"layers": [0, 1]})
    atomic_dir(join(out, "checkpoint"), lambda tmp: (tmp / "model.safetensors").write_bytes(b"\0" * 10))
    assert read_json(join(out, "manifest.json")) == {"layers": [0, 1]}
    assert is_file(join(out, "checkpoint", "model.safetensors"))
    with open_binary(join(out, "checkpoint", "model.safetensors")) as f:
        assert f.read() == b"\0" * 10
    assert list_names(out, ".json") == ["manifest.json"]
    assert exists(join(out, "checkpoint")) and not exists(join(out, "nothing"))
    assert list_names(join(out, "nothing")) == []


def test_check_output_accepts_a_writable_bucket_and_local_paths(s3_server, tmp_path):
    check_output(join(s3_server(), "runs", "new"))
    check_output(tmp_path / "anything")


def refusal(uri: str, field: str = "output_dir") -> str:
    start = time.monotonic()
    with pytest.raises(XlrayError) as err:
        check_output(uri, field)
    assert time.monotonic() - start < 15, "a refusal must come within seconds"
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{field}: ")
    return message


def test_a_missing_bucket_is_refused(s3_server):
    s3_server()  # the server runs
    message = refusal("s3://no-such-bucket/runs")
    assert "bucket 'no-such-bucket' does not exist" in message and "s3://no-such-bucket/runs" in message


def test_an_unsupported_scheme_is_refused():
    assert "unsupported URI scheme" in refusal("ftpx://host/runs", "storage_path")


def test_an_endpoint_that_does_not_answer_is_refused(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    assert "does not answer" in refusal("s3://bucket/runs")


@pytest.fixture(scope="module")
def strict_s3(tmp_path_factory):
    """A second moto server that checks credentials: only an access key it issued may write."""
    import boto3

    port = free_port()
    # Its first three requests need no credentials: a user, the user's policy, the user's key.
    proc = start_moto(tmp_path_factory.mktemp("strict-s3"), port, {"INITIAL_NO_AUTH_ACTION_COUNT": "3"})
    endpoint = f"http://127.0.0.1:{port}"
    iam = boto3.client("iam", endpoint_url=endpoint)
    iam.create_user(UserName="xlray")
    policy = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'
    iam.put_user_policy(UserName="xlray", PolicyName="all", PolicyDocument=policy)
    key = iam.create_access_key(UserName="xlray")["AccessKey"]
    creds = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                 aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"]).create_bucket(Bucket="strict")  # fmt: skip
    yield endpoint, creds
    stop(proc)


def test_wrong_or_missing_credentials_are_refused_and_never_shown(strict_s3, monkeypatch):
    endpoint, creds = strict_s3
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    for key, value in creds.items():
        monkeypatch.setenv(key, value)
    check_output("s3://strict/runs")  # the issued key works
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    message = refusal("s3://strict/runs")
    assert "refused the credentials" in message and "wrong-secret" not in message
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert "no S3 credentials in the environment" in refusal("s3://strict/runs")


def test_logged_params_never_hold_credentials():
    from xlray.tracking import flatten

    flat = flatten({"output_dir": "s3://AKIA123:SeCrEt@bucket/runs", "storage": {"endpoint_url": "http://u:pw@h:9"},
                    "aws_secret_access_key": "x"})  # fmt: skip
    assert flat == {"output_dir": "s3://***@bucket/runs", "storage.endpoint_url": "http://***@h:9"}


def test_a_file_uri_is_a_path_not_a_bucket(tmp_path):
    check_output(f"file://{tmp_path}/new/run")  # its first part ("tmp") is a folder, not a bucket to look up


def test_a_port_with_403_in_it_is_not_a_refusal(monkeypatch):
    """The failure seen in a full run: nothing listened on port 40375, and its "403" read as HTTP 403."""
    from xlray.storage import why_unusable

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    error = "When getting information for bucket 'b': AWS Error NETWORK_CONNECTION: Failed to connect to port 40375"
    assert "does not answer" in why_unusable(error)
    assert "refused the credentials" in why_unusable("When getting information for bucket 'b': HTTP 403 Forbidden")
