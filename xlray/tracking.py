"""Logging behind a tiny interface: an MLflow sink for real runs, a no-op sink otherwise.

Stage code receives a sink and never asks whether tracking is on.
"""

from __future__ import annotations

import functools
import math
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from xlray.configs import TrackingConfig
from xlray.errors import XlrayError, one_line
from xlray.outputs import atomic_path
from xlray.storage import download, redact, scratch_dir
from xlray.textio import is_uri

SECRET_KEY = re.compile(r"(token|password|passwd|secret|api[_-]?key|credential)", re.IGNORECASE)
# The experiment's kind: model development (runs), not GenAI (traces). MLflow 3.17's own UI ignores it (its
# Model training / GenAI switch decides; see runs_url), MLflow UIs that choose the view per experiment read it.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten nested params to ``a.b.c`` keys, dropping anything that looks like a secret and the credentials of
    any URI (``s3://KEY:SECRET@bucket``)."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if SECRET_KEY.search(str(key)):
            continue
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = redact(str(value))[:6000]
    return out


class NullSink:
    """Accepts everything, records nothing."""

    run_id: str | None = None

    def log_params(self, params: Mapping[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: Mapping[str, float | None], step: int | None = None) -> None:
        pass

    def log_missing(self, name: str, reason: str) -> None:
        pass

    def log_artifact(self, path: str | Path, folder: str | None = None) -> None:
        pass

    def set_tags(self, tags: Mapping[str, str]) -> None:
        pass

    def log_datasets(self, files: Mapping[str, str | Sequence[str]], context: str) -> None:
        pass


class MlflowSink:
    """Logs to one MLflow run through the tracking client (safe from any thread or Ray worker)."""

    def __init__(self, client: Any, run_id: str):
        self.client = client
        self.run_id = run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        flat = flatten(params)
        items = [Param(k, v) for k, v in flat.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def log_metrics(self, metrics: Mapping[str, float | None], step: int | None = None) -> None:
        """Log finite metrics; a None or NaN value is a missing metric and is not logged as a number."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [
            Metric(k, float(v), now, step or 0) for k, v in metrics.items() if v is not None and math.isfinite(float(v))
        ]
        for start in range(0, len(items), 500):
            self.client.log_batch(self.run_id, metrics=items[start : start + 500])

    def log_missing(self, name: str, reason: str) -> None:
        """Record that a metric could not be computed, and why (never as a zero)."""
        self.client.set_tag(self.run_id, f"missing.{name}", redact(reason)[:5000])

    def log_artifact(self, path: str | Path, folder: str | None = None) -> None:
        """Log a local file, or one in object storage (fetched to a temporary folder first)."""
        if not is_uri(path):
            self.client.log_artifact(self.run_id, str(path), folder)
            return
        with tempfile.TemporaryDirectory(prefix="xlray-artifact-") as tmp:
            self.client.log_artifact(self.run_id, str(download(str(path), Path(tmp))), folder)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, redact(str(value)))  # a URI's credentials never logged

    def log_datasets(self, files: Mapping[str, str | Sequence[str]], context: str) -> None:
        """Log what the stage read as the run's dataset inputs: ``{name: file or files}``, each tagged with
        ``mlflow.data.context`` = ``context`` (``train``, ``test``, ...). Files are fingerprinted, never read whole
        (see ``xlray.datasets``). A dataset the run already has (same name and digest) is not logged again."""
        from mlflow.entities import DatasetInput, InputTag
        from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

        from xlray.datasets import dataset

        tags = [InputTag(MLFLOW_DATASET_CONTEXT, context)]
        inputs = [DatasetInput(dataset(name, paths), tags) for name, paths in files.items() if paths]
        for attempt in range(3):
            try:
                if inputs:
                    self.client.log_inputs(self.run_id, datasets=inputs)
                return
            except Exception as exc:
                # Two runs (sweep trials) logging the same new dataset at once: one insert wins, and the retry
                # finds its row and only links it.
                if "unique constraint" not in str(exc).lower() or attempt == 2:
                    raise
                time.sleep(0.2 * (attempt + 1))


class PrefixedSink:
    """Logs into another sink's run under a name prefix: how a stage inside a sweep trial logs into the trial's run."""

    def __init__(self, sink: MlflowSink | NullSink | PrefixedSink, prefix: str):
        self.sink = sink
        self.prefix = prefix
        self.run_id = sink.run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.sink.log_params({f"{self.prefix}{k}": v for k, v in params.items()})

    def log_metrics(self, metrics: Mapping[str, float | None], step: int | None = None) -> None:
        self.sink.log_metrics({f"{self.prefix}{k}": v for k, v in metrics.items()}, step=step)

    def log_missing(self, name: str, reason: str) -> None:
        self.sink.log_missing(f"{self.prefix}{name}", reason)

    def log_artifact(self, path: str | Path, folder: str | None = None) -> None:
        self.sink.log_artifact(path, "/".join(p for p in (self.prefix.strip("."), folder) if p))

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self.sink.set_tags({f"{self.prefix}{k}": v for k, v in tags.items()})

    def log_datasets(self, files: Mapping[str, str | Sequence[str]], context: str) -> None:
        """Names stay as they are: a file two steps of a trial read is one input of the trial's run."""
        self.sink.log_datasets(files, context)


Sink = MlflowSink | NullSink | PrefixedSink  # and DeferredSink, while a run opens in the background


def tracking_uri(cfg: TrackingConfig, output_dir: str | Path | None = None) -> str:
    """Resolve the tracking URI: config, then $MLFLOW_TRACKING_URI, then a sqlite file in the output folder (for an
    output in object storage: in its local scratch folder)."""
    if cfg.uri:
        return cfg.uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    folder = scratch_dir(output_dir or ".").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def is_server(uri: str) -> bool:
    """An MLflow tracking server (reached over the network), not a local store such as a sqlite file."""
    return uri.startswith(("http://", "https://"))


def server_uri(cfg: TrackingConfig) -> str | None:
    """The tracking server this config logs to (``uri``, else $MLFLOW_TRACKING_URI); None if tracking is off or
    the store is local (by default a sqlite file in the output folder, which needs no check)."""
    uri = (cfg.uri or os.environ.get("MLFLOW_TRACKING_URI")) if cfg.enabled else None
    return uri if uri and is_server(uri) else None


def client_for(uri: str) -> Any:
    """An MlflowClient for a URI, checked up front so a dead server fails before any work starts."""
    from mlflow.tracking import MlflowClient

    if is_server(uri):
        probe_server(uri)
    seed_sqlite_store(uri)
    client = MlflowClient(tracking_uri=uri)
    try:
        client.search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - any failure here means the store is unusable
        raise XlrayError(f"tracking: cannot reach MLflow at {uri}: {one_line(exc)}") from None
    # No mlflow.set_tracking_uri: it writes $MLFLOW_TRACKING_URI, so a later stage in this process would log there.
    return client


def probe_server(uri: str, timeout_s: float = 10.0) -> None:
    """Fail in seconds on a server that does not answer (MLflow's own client retries for minutes first)."""
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s).close()
    except urllib.error.HTTPError:
        return  # it answered (perhaps asking for credentials): reachable
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise XlrayError(
            f"tracking: cannot reach MLflow at {uri}: {reason}; is the server running, and is the URI "
            "(tracking.uri or $MLFLOW_TRACKING_URI) right?"
        ) from None


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` store (None for any other kind)."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def seed_sqlite_store(uri: str) -> None:
    """Start a new sqlite store as a copy of an empty one that MLflow itself created and migrated, once per MLflow
    version, under ``~/.cache/xlray`` (or $XDG_CACHE_HOME/xlray): creating the tables and running MLflow's
    migrations takes seconds of every new output folder otherwise. MLflow checks the copy's schema version when it
    opens it, as for any store. Where the cache cannot be written, MLflow creates the store as usual."""
    import shutil

    import mlflow
    from mlflow.tracking import MlflowClient

    db = sqlite_path(uri)
    if db is None or db.exists():
        return
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xlray"
    template = cache / f"mlflow-{mlflow.__version__}-empty.db"
    try:
        if not template.is_file():
            with atomic_path(template) as building:
                MlflowClient(tracking_uri=f"sqlite:///{building}").search_experiments(max_results=1)
        with atomic_path(db) as copy:
            shutil.copyfile(template, copy)
    except Exception:  # noqa: BLE001 - only a cache: without it MLflow creates the store as usual
        return


def artifact_location(uri: str, name: str) -> str | None:
    """Where a new experiment keeps its runs' artifacts: beside a sqlite store's file (``mlruns/<name>``), not in
    the working directory, which is MLflow's default for a local store; a server decides for itself (None)."""
    db = sqlite_path(uri)
    return str(db.parent / "mlruns" / re.sub(r"[^\w.-]+", "_", name)) if db else None


def experiment_id(client: Any, name: str) -> str:
    """The experiment's id, creating it if missing (a local store's artifacts beside it, see artifact_location);
    either way tagged as model development (EXPERIMENT_KIND) unless it already has a kind."""
    exp = client.get_experiment_by_name(name)
    if exp is None:
        artifacts = artifact_location(client.tracking_uri, name)
        return client.create_experiment(name, artifact_location=artifacts, tags=EXPERIMENT_KIND)
    for key, value in EXPERIMENT_KIND.items():
        if key not in exp.tags:
            client.set_experiment_tag(exp.experiment_id, key, value)
    return exp.experiment_id


def runs_url(uri: str, experiment_name: str, ui_port: int = 5000) -> str:
    """The link to an experiment's runs table: on the server for an http(s) URI, else on
    ``mlflow ui --backend-store-uri URI --port ui_port`` (which serves 127.0.0.1). MLflow 3.17's UI opens an
    experiment on the GenAI overview unless the browser last chose "Machine learning" (it ignores the
    experiment's kind tag); ``workflowType=machine_learning`` in the link makes that choice."""
    exp = client_for(uri).get_experiment_by_name(experiment_name)
    if exp is None:
        raise XlrayError(f"tracking: no experiment {experiment_name!r} at {uri}; has a run logged there yet?")
    base = uri.rstrip("/") if is_server(uri) else f"http://127.0.0.1:{ui_port}"
    return f"{base}/#/experiments/{exp.experiment_id}/runs?workflowType=machine_learning"


@contextmanager
def open_run(
    cfg: TrackingConfig,
    run_name: str,
    output_dir: str | Path | None = None,
    tags: Mapping[str, str] | None = None,
    parent_run_id: str | None = None,
    run_id: str | None = None,
    into: Sink | None = None,
    background: bool = False,
) -> Iterator[Sink]:
    """Open (or reopen by ``run_id``) one MLflow run; ends FINISHED, or FAILED if the body raises.

    ``into``: log into that (already open) sink instead, e.g. a sweep trial's run; nothing is opened or ended.
    ``background``: open the run in a thread while the body works (importing MLflow and creating a new sqlite
    store take seconds); the sink queues calls until the run is open and the run is complete when the block
    ends. A tracking server is still probed before the body starts, so a dead one fails first.
    """
    if into is not None:
        yield into
        return
    if not cfg.enabled:
        yield NullSink()
        return
    uri = tracking_uri(cfg, output_dir)
    all_tags = dict(tags or {}) | ({"mlflow.parentRunId": parent_run_id} if parent_run_id else {})
    start = functools.partial(start_run, uri, cfg.experiment, run_name, all_tags, run_id)
    if background and is_server(uri):
        probe_server(uri)
    opening = None
    if background:
        pool = ThreadPoolExecutor(1, thread_name_prefix="xlray-mlflow")
        opening = pool.submit(start)
        pool.shutdown(wait=False)  # the thread ends once the run is open
    sink = DeferredSink() if opening else MlflowSink(*start())
    try:
        yield sink
    except BaseException as exc:
        stopped = isinstance(exc, SystemExit) and exc.code in (0, None)  # a clean exit, e.g. Tune stopping a trial
        end_run(sink, opening, "FINISHED" if stopped else "FAILED")
        raise
    end_run(sink, opening, "FINISHED")


def start_run(uri: str, experiment: str, name: str, tags: dict[str, str], run_id: str | None) -> tuple[Any, str]:
    """A new run (or ``run_id`` reopened): the client and the run's id."""
    client = client_for(uri)
    if run_id is None:
        return client, client.create_run(experiment_id(client, experiment), run_name=name, tags=tags).info.run_id
    client.update_run(run_id, status="RUNNING")
    return client, run_id


def end_run(sink: Sink, opening: Future | None, status: str) -> None:
    """Mark the run ended; a run opened in the background first gets the calls its sink queued."""
    if opening is not None:
        sink = sink.replay(MlflowSink(*opening.result()))
    sink.client.set_terminated(sink.run_id, status=status)


class DeferredSink:
    """A sink for a run still being opened: it records calls, and ``replay`` makes them on the real sink."""

    run_id: str | None = None

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []

    def replay(self, sink: MlflowSink) -> MlflowSink:
        for name, args, kwargs in self.calls:
            getattr(sink, name)(*args, **kwargs)
        return sink

    def log_params(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("log_params", args, kwargs))

    def log_metrics(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("log_metrics", args, kwargs))

    def log_missing(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("log_missing", args, kwargs))

    def log_artifact(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("log_artifact", args, kwargs))

    def set_tags(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("set_tags", args, kwargs))

    def log_datasets(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("log_datasets", args, kwargs))
