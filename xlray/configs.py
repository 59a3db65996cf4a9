"""Typed experiment configs: strict pydantic models, loaded from YAML with errors naming file and field."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from xlray.errors import XlrayError
from xlray.families import FamilyName

T = TypeVar("T", bound=BaseModel)


class Strict(BaseModel):
    """Base for every config: unknown keys are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class ModelConfig(Strict):
    """Which checkpoint to load and how (any Hugging Face name or a local path)."""

    name: str = Field(description="Hugging Face checkpoint name or local directory")
    revision: str | None = None
    family: Literal["auto", FamilyName] = "auto"
    trust_remote_code: bool = False
    allow_pickle_weights: bool = Field(
        False, description="Also load .bin (pickle) weights; off by default, only safetensors load"
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto: bf16 on a GPU that supports it, else fp32"
    )
    max_length: int | None = Field(None, gt=1, description="Token limit; default: the model's own")


class RayConfig(Strict):
    """Where to run: address None starts a local Ray on this machine (the debug mode)."""

    address: str | None = Field(None, description="None: local Ray; 'auto' or ray://host:10001: a cluster")
    num_cpus: int | None = Field(None, ge=1, description="Local mode only")
    num_gpus: int | None = Field(None, ge=0, description="Local mode only (a fake GPU resource in tests)")
    gpu_wait_s: float = Field(60.0, ge=0, description="Fail if requested GPU actors cannot start in this time")
    actor_restarts: int = Field(
        0,
        ge=0,
        description="Restarts of a dead worker actor (and retries of its task) before the run fails; "
        "0: fail at once with the cause, and a re-run resumes (more on preemptible nodes)",
    )


class StorageConfig(Strict):
    """How to reach object storage for ``s3://`` / ``gs://`` paths; credentials always come from the environment
    (``AWS_ACCESS_KEY_ID``..., ``GOOGLE_APPLICATION_CREDENTIALS``, an instance role), never from a config."""

    endpoint_url: str | None = Field(
        None, description="An S3-compatible endpoint (MinIO, Ceph, GCS interop); default: $AWS_ENDPOINT_URL, else AWS"
    )


class TrackingConfig(Strict):
    """MLflow tracking; uri None means $MLFLOW_TRACKING_URI, else a sqlite file in the output folder."""

    enabled: bool = True
    uri: str | None = None
    experiment: str = "xlray"


STAGES: dict[str, str] = {
    "demo": "xlray.demo:DemoConfig",
    "extract": "xlray.extract.config:ExtractConfig",
    "concepts": "xlray.concepts.config:ConceptsConfig",
    "sentence-alignment": "xlray.sentence_alignment.config:SentenceAlignmentConfig",
    "adjust": "xlray.adjust.config:AdjustConfig",
    "evaluate": "xlray.tasks.config:EvaluateConfig",
    "sweep": "xlray.sweep.config:SweepConfig",
    "findings": "xlray.findings.config:FindingsConfig",
}


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise XlrayError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f"{path}:{mark.line + 1}" if mark else str(path)
        raise XlrayError(f"{loc}: malformed YAML: {getattr(exc, 'problem', exc)}") from None
    except UnicodeDecodeError:
        raise XlrayError(f"{path}: config is not valid UTF-8") from None
    if not isinstance(data, dict):
        raise XlrayError(f"{path}: expected a mapping of config fields at the top level")
    return data


def field_path(loc: tuple[Any, ...]) -> str:
    """Render a pydantic error location as a dotted path: ``model.name`` or ``languages[2]``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def validate(cls: type[T], data: dict[str, Any], source: str | Path) -> T:
    """Validate ``data`` as ``cls``; the first error becomes a one-line XlrayError naming file and field."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise XlrayError(f"{source}: {first_error(exc)}") from None


def first_error(exc: ValidationError, prefix: str = "") -> str:
    """A validation failure as one line: the first error's field path (under ``prefix``) and message."""
    err = exc.errors()[0]
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    msg = err["msg"].removeprefix("Value error, ") if err["type"] != "extra_forbidden" else "unknown field"
    loc = (prefix, *err["loc"]) if prefix else err["loc"]
    where = f"{field_path(loc)}: " if loc else ""  # a whole-config check names its fields itself
    return f"{where}{msg}{more}"


def load_config(path: str | Path, cls: type[T]) -> T:
    """Load one YAML file as the given config class."""
    return validate(cls, read_yaml(path), path)


def stage_class(stage: str, source: str | Path = "config") -> type[BaseModel]:
    """The config class for a stage name (lazy import, so `import xlray` stays cheap)."""
    if stage not in STAGES:
        raise XlrayError(f"{source}: stage: unknown stage {stage!r}; expected one of {sorted(STAGES)}")
    module, name = STAGES[stage].split(":")
    return getattr(importlib.import_module(module), name)


def load_stage_config(path: str | Path) -> BaseModel:
    """Load a YAML file whose top-level ``stage`` key says which config class it is."""
    data = read_yaml(path)
    if "stage" not in data:
        raise XlrayError(f"{path}: stage: missing; expected one of {sorted(STAGES)}")
    return validate(stage_class(str(data["stage"]), path), data, path)
