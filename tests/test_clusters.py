"""clusters/ and infra/ hold what they promise: `ray up` YAMLs valid under the schema inside the installed ray,
KubeRay manifests with the fields KubeRay needs, and infra files that agree with the project's versions.
Nothing here needs a cloud account, Kubernetes or Docker."""

from __future__ import annotations

import copy
import importlib.metadata
import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml

import xlray

REPO = Path(__file__).resolve().parents[1]
RAY_UP = sorted((REPO / "clusters").glob("*.yaml"))
KUBERAY = {path.name: yaml.safe_load(path.read_text()) for path in sorted((REPO / "clusters/kuberay").glob("*.yaml"))}
PAPER_SWEEPS = ("concepts_mousi2024", "adjust_efimov2023")
IMAGE = f"ghcr.io/xlray/xlray-worker:{xlray.__version__}-ray{ray.__version__}"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def containers(pod_template: dict) -> list[dict]:
    return pod_template["spec"]["containers"]


def test_every_cluster_file_is_found():
    assert [p.name for p in RAY_UP] == ["aws-gpu.yaml", "gcp-gpu.yaml"]
    assert sorted(KUBERAY) == ["raycluster.yaml", *(f"rayjob-{s.replace('_', '-')}.yaml" for s in sorted(PAPER_SWEEPS))]


@pytest.mark.parametrize("path", RAY_UP, ids=lambda p: p.name)
def test_ray_up_yaml_is_valid_for_the_installed_ray(path):
    from ray.autoscaler._private.commands import prepare_config
    from ray.autoscaler._private.util import validate_config

    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    config = load(path)
    jsonschema.validate(config, schema)
    validate_config(config)  # Ray's own extra checks: head type exists, min_workers fit max_workers
    prepared = prepare_config(copy.deepcopy(config))  # provider defaults filled in, validated again
    assert prepared["head_node_type"] == config["head_node_type"]


@pytest.mark.parametrize("path", RAY_UP, ids=lambda p: p.name)
def test_ray_up_yaml_has_cpu_head_autoscaling_gpus_image_and_setup(path):
    config = load(path)
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0 and "guestAccelerators" not in head["node_config"]
    assert not re.match(
        r"(g\d|p\d|a\d|a2|a3)", head["node_config"].get("InstanceType", head["node_config"].get("machineType"))
    )
    gpu_types = [t for name, t in types.items() if t["resources"].get("GPU", 0) >= 1]
    assert len(gpu_types) >= 2
    assert all(t["min_workers"] == 0 < t["max_workers"] for t in gpu_types)  # scale from zero
    assert sum(t.get("max_workers", 0) for t in types.values()) <= config["max_workers"]
    assert config["docker"]["image"] == IMAGE
    setup = " && ".join(config["setup_commands"])
    assert "pip install --no-deps --quiet /opt/xlray" in setup and f"'{ray.__version__}'" in setup


@pytest.mark.parametrize("path", RAY_UP, ids=lambda p: p.name)
def test_ray_up_yaml_has_token_auth_and_a_localhost_dashboard(path):
    config = load(path)
    assert "--env RAY_AUTH_MODE=token" in config["docker"]["run_options"]
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    head_start = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start and "0.0.0.0" not in head_start
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in head_start
    assert "dashboard" not in " ".join(config["worker_start_ray_commands"])


def test_raycluster_has_token_auth_and_an_autoscaling_gpu_group():
    cluster = KUBERAY["raycluster.yaml"]
    assert (cluster["apiVersion"], cluster["kind"]) == ("ray.io/v1", "RayCluster")
    spec = cluster["spec"]
    assert spec["rayVersion"] == ray.__version__
    assert spec["authOptions"] == {"mode": "token", "secretName": "xlray-ray-token"}
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["headGroupSpec"]["serviceType"] == "ClusterIP"
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    gpu = containers(groups["gpu"]["template"])[0]["resources"]
    assert gpu["limits"]["nvidia.com/gpu"] == gpu["requests"]["nvidia.com/gpu"] == "1"
    assert groups["gpu"]["minReplicas"] == 0 < groups["gpu"]["maxReplicas"]
    pods = [spec["headGroupSpec"]["template"], *(g["template"] for g in groups.values())]
    assert {c["image"] for pod in pods for c in containers(pod)} == {IMAGE}


@pytest.mark.parametrize("sweep", PAPER_SWEEPS)
def test_rayjob_runs_its_paper_sweep_on_the_raycluster(sweep):
    job = KUBERAY[f"rayjob-{sweep.replace('_', '-')}.yaml"]
    cluster = KUBERAY["raycluster.yaml"]
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    spec = job["spec"]
    assert spec["entrypoint"] == f"python -m xlray sweep sweeps/{sweep}.yaml"
    assert job["metadata"]["namespace"] == cluster["metadata"]["namespace"]
    assert spec["clusterSelector"] == {"ray.io/cluster": cluster["metadata"]["name"]}
    assert yaml.safe_load(spec["runtimeEnvYAML"]) == {"working_dir": "/opt/xlray"}
    assert spec["submissionMode"] == "K8sJobMode"
    submitter = spec["submitterPodTemplate"]["spec"]
    assert submitter["restartPolicy"] == "Never"
    env = {e["name"]: e for e in submitter["containers"][0]["env"]}
    assert env["RAY_AUTH_MODE"]["value"] == "token"
    secret = env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert secret == {"name": cluster["spec"]["authOptions"]["secretName"], "key": "auth_token"}


@pytest.mark.parametrize("sweep", PAPER_SWEEPS)
def test_paper_sweep_exists_and_validates(sweep):
    path = REPO / "sweeps" / f"{sweep}.yaml"
    from xlray.configs import load_stage_config

    assert load_stage_config(path).stage == "sweep"


def test_worker_image_pins_the_projects_ray_and_installs_xlray():
    dockerfile = (REPO / "infra/worker/Dockerfile").read_text()
    assert re.search(r"^FROM \$\{CUDA_IMAGE\}$", dockerfile, re.M)
    assert re.search(r"^ARG CUDA_IMAGE=nvidia/cuda:[\d.]+-\w*runtime-ubuntu[\d.]+$", dockerfile, re.M)
    assert re.search(rf"^ARG RAY_VERSION={re.escape(ray.__version__)}$", dockerfile, re.M)
    assert "pip install --no-deps /opt/xlray" in dockerfile
    assert f"-t {IMAGE} ." in dockerfile
    lines = (REPO / "infra/worker/Dockerfile.dockerignore").read_text().splitlines()
    ignore = [line for line in lines if line and not line.startswith("#")]
    copied = re.findall(r"^COPY --chown=ray:ray (\S+)", dockerfile, re.M)
    assert ignore[0] == "*" and {f"!{c.rstrip('/')}" for c in copied} <= {i.rstrip("/") for i in ignore}


def test_mlflow_server_has_postgres_s3_and_basic_auth():
    mlflow_version = importlib.metadata.version("mlflow")
    dockerfile = (REPO / "infra/mlflow/Dockerfile").read_text()
    assert f"ARG MLFLOW_VERSION={mlflow_version}" in dockerfile and "mlflow[auth]==" in dockerfile
    assert "--app-name basic-auth" in (REPO / "infra/mlflow/entrypoint.sh").read_text()
    compose = load(REPO / "infra/mlflow/compose.yaml")["services"]
    env = compose["mlflow"]["environment"]
    assert env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql://") and env[
        "MLFLOW_ARTIFACTS_DESTINATION"
    ].startswith("s3://")
    assert env["MLFLOW_AUTH_DATABASE_URI"].endswith("/mlflow_auth")
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000" and "MLFLOW_AUTH_ADMIN_PASSWORD" in env
    assert compose["mlflow"]["ports"] == ["${MLFLOW_BIND:-127.0.0.1}:5000:5000"]
    assert compose["postgres"]["image"].startswith("postgres:") and "minio" in compose
    assert "CREATE DATABASE mlflow_auth" in (REPO / "infra/mlflow/initdb/10-mlflow-auth.sql").read_text()


def test_mlflow_entrypoint_refuses_to_start_without_its_settings(tmp_path):
    done = subprocess.run(
        ["sh", str(REPO / "infra/mlflow/entrypoint.sh")],
        env={"PATH": "/usr/bin:/bin", "MLFLOW_BACKEND_STORE_URI": "postgresql://u:p@db/mlflow"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode != 0 and "MLFLOW_AUTH_DATABASE_URI" in done.stderr
    assert not list(tmp_path.iterdir())


def test_mlflow_kubernetes_manifests_reference_only_documented_secret_keys():
    text = (REPO / "infra/k8s/mlflow.yaml").read_text()
    docs = [d for d in yaml.safe_load_all(text) if d]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {
        ("StatefulSet", "postgres"),
        ("StatefulSet", "minio"),
        ("Deployment", "mlflow"),
        ("Service", "mlflow"),
    } <= kinds
    documented = set(re.findall(r"--from-literal=([\w-]+)=", text))
    used = set(re.findall(r"secretKeyRef: \{name: mlflow-secrets, key: ([\w-]+)\}", text))
    assert used == documented and len(used) == 5
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    env = {e["name"]: e for e in containers(deploy["spec"]["template"])[0]["env"]}
    assert env["MLFLOW_BACKEND_STORE_URI"]["value"].startswith("postgresql://mlflow:$(POSTGRES_PASSWORD)@postgres")
    assert env["MLFLOW_ARTIFACTS_DESTINATION"]["value"].startswith("s3://")
    service = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "mlflow")
    assert service["spec"]["type"] == "ClusterIP"


def test_docs_name_only_files_that_exist():
    text = (REPO / "docs/clusters.md").read_text() + (REPO / "infra/RUNBOOK.md").read_text()
    paths = set(
        re.findall(
            r"\b((?:clusters|infra|xlray|docs)/[\w./-]+\.(?:yaml|py|md|sh|sql|example)|infra/\w+/Dockerfile)\b", text
        )
    )
    assert len(paths) >= 8
    assert [p for p in sorted(paths) if not (REPO / p).exists()] == []
