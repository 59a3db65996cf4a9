"""The cluster-scale path end to end, without a cloud: a real 3-node Ray cluster on this machine and a real
S3-compatible server on 127.0.0.1. Extraction writes its shards to the bucket, concept discovery reads them back
as Ray tasks that land on more than one node, and a 2-trial sweep keeps its trials and Tune's state there; the
inputs (world, corpora, task files, model) are read from the bucket too. See tests/multinode_s3_run.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
HERE = Path(__file__).parent


def keys(bucket: str, prefix: str = "") -> list[str]:
    import boto3

    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket[5:], Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


@pytest.fixture(scope="module")
def cluster_run(assets, s3_server, tmp_path_factory):
    bucket = s3_server("multinode")
    work, scratch = tmp_path_factory.mktemp("multinode-cwd"), tmp_path_factory.mktemp("multinode-scratch")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([sys.executable, str(HERE / "multinode_s3_run.py"), str(assets), bucket, str(scratch)],
                          cwd=work, env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), bucket, work


def test_three_nodes_ran_it(cluster_run):
    result, _, _ = cluster_run
    assert len(result["nodes"]) == 3


def test_extraction_shards_and_manifest_are_in_the_bucket(cluster_run):
    _, bucket, _ = cluster_run
    names = keys(bucket, "extract/")
    assert "extract/manifest.json" in names
    assert any(n.startswith("extract/shards/") and n.endswith(".parquet") for n in names)
    assert not any(n.endswith(".tmp") for n in names)


def test_concept_tasks_landed_on_more_than_one_node(cluster_run):
    result, bucket, _ = cluster_run
    placement = result["concepts"]["tasks"]  # layer -> view (and distances) -> the task's node, seconds, ...
    used = {task["node_id"] for views in placement.values() for task in views.values()}
    assert len(used) > 1 and used <= set(result["nodes"])
    assert "concepts/manifest.json" in keys(bucket, "concepts/")


def test_sweep_trials_and_tune_state_are_in_the_bucket(cluster_run):
    result, bucket, _ = cluster_run
    assert len(result["sweep"]["trials"]) == 2
    names = keys(bucket, "sweep/")
    assert any(n.startswith("sweep/tune/") for n in names), "Tune's experiment state is in the bucket"
    trial_manifests = [n for n in names if n.startswith("sweep/trials/") and n.endswith("evaluate/base/manifest.json")]
    assert len(trial_manifests) == 2


def test_nothing_was_written_under_a_local_path(cluster_run):
    _, _, work = cluster_run
    assert sorted(p.name for p in work.iterdir()) == []
