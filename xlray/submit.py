"""`xlray submit`: run a command on a Ray cluster as a job, stream its logs and exit with its status.

A thin layer over Ray's JobSubmissionClient that turns the usual failures (no address, unreachable dashboard,
missing or wrong token, a working dir over Ray's upload limit) into one-line errors, and a failed job into
exit status 1. The working dir is packed by Ray itself, honouring .gitignore and .rayignore.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from xlray.errors import XlrayError, one_line

ADDRESS_VARS = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")
MIB = 1024**2


def resolve_address(address: str | None) -> str:
    """The dashboard URL to submit to: ``address``, else $RAY_API_SERVER_ADDRESS, else $RAY_ADDRESS."""
    source = "--address"
    for var in ADDRESS_VARS:
        if not address and os.environ.get(var):
            address, source = os.environ[var], f"${var}"
    if not address:
        raise XlrayError(
            "no cluster address: pass --address http://HOST:8265 or set RAY_ADDRESS "
            "(for a `ray up` cluster run `ray dashboard CLUSTER.yaml` and use http://127.0.0.1:8265)"
        )
    if address == "auto" or address.startswith("ray://"):
        raise XlrayError(f"{source}={address}: jobs go to the Ray dashboard; give its URL, e.g. http://HOST:8265")
    return (address if "://" in address else f"http://{address}").rstrip("/")


def read_token_file(path: str | Path) -> str:
    """The token stored in ``path`` (what `ray get-auth-token --generate` writes)."""
    path = Path(path).expanduser()
    try:
        token = path.read_text(encoding="utf-8-sig").strip()  # a hand-written token file may start with a BOM
    except OSError as exc:
        raise XlrayError(f"{path}: cannot read the Ray token file: {exc.strerror}") from None
    if not token:
        raise XlrayError(f"{path}: the Ray token file is empty")
    return token


def resolve_token(token: str | None) -> str | None:
    """The cluster token, in Ray's order: ``token``, $RAY_AUTH_TOKEN, $RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token."""
    if token:
        return token.strip()
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return os.environ["RAY_AUTH_TOKEN"].strip()
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return read_token_file(os.environ["RAY_AUTH_TOKEN_PATH"])
    default = Path.home() / ".ray" / "auth_token"
    return read_token_file(default) if default.is_file() else None


def upload_files(working_dir: str | Path, excludes: Sequence[str] = ()) -> list[tuple[str, int]]:
    """(relative path, bytes) of each file Ray would upload; Ray's own walk, so the ignore rules match."""
    from ray._private import ray_constants
    from ray._private.runtime_env import packaging

    root = Path(working_dir).resolve()
    include_gitignore = os.environ.get(ray_constants.RAY_RUNTIME_ENV_IGNORE_GITIGNORE, "0") != "1"
    patterns = ray_constants.get_runtime_env_default_excludes() + list(excludes)
    files: list[tuple[str, int]] = []

    def visit(path: Path) -> None:
        if path.is_file():
            files.append((path.relative_to(root).as_posix(), path.stat().st_size))

    packaging._dir_travel(root, [packaging._get_excludes(root, patterns)], visit, include_gitignore)
    return files


def upload_limit() -> int:
    """Bytes a job's working dir may take: the dashboard's request limit or the GCS package limit, if lower."""
    from ray._private import ray_constants
    from ray._private.runtime_env.packaging import GCS_STORAGE_MAX_SIZE

    return min(ray_constants.DASHBOARD_CLIENT_MAX_SIZE, GCS_STORAGE_MAX_SIZE)


def biggest(files: list[tuple[str, int]], n: int = 3) -> str:
    """The ``n`` largest top-level entries, e.g. ``data/ (400.0 MiB), model.bin (80.0 MiB)``."""
    sizes: dict[str, int] = {}
    for rel, size in files:
        top, sep, _ = rel.partition("/")
        sizes[top + ("/" if sep else "")] = sizes.get(top + ("/" if sep else ""), 0) + size
    ranked = sorted(sizes.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{name} ({size / MIB:.1f} MiB)" for name, size in ranked)


def check_upload_size(working_dir: str | Path, excludes: Sequence[str] = (), limit: int | None = None) -> int:
    """Bytes Ray would upload from ``working_dir``; a one-line error naming the limit and the biggest entries."""
    files = upload_files(working_dir, excludes)
    # Ray zips without compression: the package is the files plus ~100 bytes of headers each.
    total = sum(size + 100 + 2 * len(rel) for rel, size in files)
    limit = upload_limit() if limit is None else limit
    if total > limit:
        raise XlrayError(
            f"{working_dir}: {total / MIB:.1f} MiB to upload, over Ray's limit of {limit / MIB:.1f} MiB for a job's "
            f"working dir; biggest: {biggest(files)}; list them in {Path(working_dir) / '.rayignore'}"
        )
    return total


def build_runtime_env(working_dir: str | Path | None, runtime_env: dict[str, Any] | None) -> dict[str, Any]:
    """The job's runtime_env: ``runtime_env`` plus the local ``working_dir``, checked against the upload limit."""
    env = dict(runtime_env or {})
    local = working_dir if working_dir is not None else env.get("working_dir")
    if local is None or "://" in str(local):
        return env
    path = Path(local).expanduser()
    if not path.is_dir():
        raise XlrayError(f"{path}: working dir not found or not a folder")
    check_upload_size(path, env.get("excludes") or ())
    env["working_dir"] = str(path.resolve())
    return env


@contextlib.contextmanager
def pinned_address(address: str) -> Iterator[None]:
    """Ray lets $RAY_API_SERVER_ADDRESS override the client's address argument; pin it to ours meanwhile."""
    saved = os.environ.get("RAY_API_SERVER_ADDRESS")
    os.environ["RAY_API_SERVER_ADDRESS"] = address
    try:
        yield
    finally:
        if saved is None:
            del os.environ["RAY_API_SERVER_ADDRESS"]
        else:
            os.environ["RAY_API_SERVER_ADDRESS"] = saved


def auth_error(address: str, detail: str) -> XlrayError:
    """A one-line error for a 401 (no token sent) or 403 (wrong token) from the dashboard."""
    if "Authentication required" in detail:
        return XlrayError(
            f"{address} needs the cluster's token (Ray token auth is on): set RAY_AUTH_TOKEN or "
            "RAY_AUTH_TOKEN_PATH, or pass --token-file (`ray get-auth-token` prints it where the cluster was made)"
        )
    return XlrayError(
        f"{address} rejected the token: it is not this cluster's token (check RAY_AUTH_TOKEN, "
        "RAY_AUTH_TOKEN_PATH, --token-file and ~/.ray/auth_token)"
    )


def connect(address: str, token: str | None) -> Any:
    """A JobSubmissionClient for ``address`` that sends ``token``; checks the dashboard answers."""
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        with pinned_address(address):
            return JobSubmissionClient(address, headers=headers)
    except AuthenticationError as exc:
        raise auth_error(address, str(exc)) from None
    except ConnectionError:
        raise XlrayError(
            f"cannot reach the Ray dashboard at {address}: is the cluster up (and, for `ray up` clusters, "
            "is `ray dashboard CLUSTER.yaml` running)?"
        ) from None
    except (RuntimeError, ValueError) as exc:
        raise XlrayError(f"{address}: not a working Ray dashboard: {one_line(exc)}") from None


def start_job(client: Any, command: str, runtime_env: dict[str, Any], cpus: float | None, gpus: float | None) -> str:
    """Submit the job (Ray uploads the working dir first) and return its submission id."""
    from ray.exceptions import AuthenticationError, RayError

    try:
        return client.submit_job(
            entrypoint=command,
            runtime_env=runtime_env or None,
            entrypoint_num_cpus=cpus,
            entrypoint_num_gpus=gpus,
        )
    except AuthenticationError as exc:
        raise auth_error(client.get_address(), str(exc)) from None
    except (RuntimeError, ValueError, RayError) as exc:
        raise XlrayError(f"{client.get_address()} refused the job: {one_line(exc)}") from None


async def stream_logs(client: Any, job_id: str) -> None:
    """Copy the job's stdout/stderr to ours as it runs, until the job ends."""
    try:
        async for chunk in client.tail_job_logs(job_id):
            sys.stdout.write(chunk)
            sys.stdout.flush()
    except RuntimeError as exc:  # the log socket dropped; the status poll below still finds the outcome
        print(f"xlray: lost the log stream of {job_id}: {exc}", file=sys.stderr)


def final_info(client: Any, job_id: str, poll_s: float = 0.5) -> Any:
    """The job's info once it reached a terminal status (SUCCEEDED, FAILED or STOPPED)."""
    while True:
        info = client.get_job_info(job_id)
        if info.status.is_terminal():
            return info
        time.sleep(poll_s)


def follow_job(client: Any, job_id: str) -> int:
    """Stream the job's logs, then return 0 if it succeeded and 1 if it failed or was stopped."""
    try:
        asyncio.run(stream_logs(client, job_id))
        info = final_info(client, job_id)
    except KeyboardInterrupt:
        print(f"xlray: stopped following; the job keeps running (stop it: ray job stop {job_id})", file=sys.stderr)
        return 130
    status = str(info.status.value)
    if status == "SUCCEEDED":
        print(f"xlray: job {job_id} succeeded", file=sys.stderr)
        return 0
    reason = (info.message or "").strip().splitlines()[:1]
    print(f"xlray: job {job_id} {status.lower()}: {reason[0] if reason else 'no reason given'}", file=sys.stderr)
    return 1


def submit(
    entrypoint: Sequence[str],
    *,
    address: str | None = None,
    working_dir: str | Path | None = ".",
    runtime_env: dict[str, Any] | None = None,
    entrypoint_num_cpus: float | None = None,
    entrypoint_num_gpus: float | None = None,
    token: str | None = None,
    follow: bool = True,
) -> int:
    """Run ``entrypoint`` on the cluster as a Ray job; with ``follow``, stream logs and return 0/1 for its outcome."""
    if not entrypoint:
        raise XlrayError("nothing to run: put the command after --, e.g. xlray submit -- python -m xlray sweep S.yaml")
    for name, value in (("entrypoint_num_cpus", entrypoint_num_cpus), ("entrypoint_num_gpus", entrypoint_num_gpus)):
        if value is not None and value < 0:
            raise XlrayError(f"{name}: must be >= 0, got {value}")
    env = build_runtime_env(working_dir, runtime_env)
    client = connect(resolve_address(address), resolve_token(token))
    job_id = start_job(client, shlex.join(entrypoint), env, entrypoint_num_cpus, entrypoint_num_gpus)
    print(f"xlray: submitted job {job_id} to {client.get_address()}", file=sys.stderr)
    return follow_job(client, job_id) if follow else 0


def load_runtime_env(path: str | None, text: str | None) -> dict[str, Any]:
    """The runtime_env from a YAML file (--runtime-env) or a JSON string (--runtime-env-json)."""
    from xlray.configs import read_yaml

    if path and text:
        raise XlrayError("--runtime-env and --runtime-env-json: give one, not both")
    if path:
        return read_yaml(path)
    if not text:
        return {}
    try:
        env = json.loads(text)
    except json.JSONDecodeError as exc:
        raise XlrayError(f"--runtime-env-json: not valid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(env, dict):
        raise XlrayError('--runtime-env-json: expected a JSON object, e.g. \'{"env_vars": {"A": "1"}}\'')
    return env


def forward_env(env: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """Copy the named variables of this shell into the job's env_vars (e.g. MLFLOW_TRACKING_URI)."""
    missing = [name for name in names if name not in os.environ]
    if missing:
        raise XlrayError(f"--env {missing[0]}: not set in this shell")
    if names:
        env = {**env, "env_vars": {**env.get("env_vars", {}), **{n: os.environ[n] for n in names}}}
    return env


def add_submit_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `xlray submit [options] -- COMMAND...` to an argparse subparsers object."""
    parser = subparsers.add_parser(
        "submit",
        help="run a command on a Ray cluster as a job",
        description=__doc__.splitlines()[0],
        epilog="example: xlray submit --address http://127.0.0.1:8265 --env MLFLOW_TRACKING_URI "
        "-- python -m xlray sweep sweeps/concepts_mousi2024.yaml",
    )
    parser.add_argument("--address", help="the dashboard URL (default: $RAY_API_SERVER_ADDRESS, $RAY_ADDRESS)")
    parser.add_argument("--working-dir", default=".", help="folder to upload, minus .gitignore/.rayignore (.)")
    parser.add_argument("--no-working-dir", action="store_true", help="upload nothing; use the cluster's code")
    parser.add_argument("--runtime-env", metavar="YAML", help="runtime_env file (env_vars, pip, excludes, ...)")
    parser.add_argument("--runtime-env-json", metavar="JSON", help="runtime_env as a JSON object")
    parser.add_argument("--env", action="append", default=[], metavar="NAME", help="pass $NAME to the job")
    parser.add_argument("--entrypoint-num-cpus", type=float, metavar="N", help="CPUs reserved for the command")
    parser.add_argument("--entrypoint-num-gpus", type=float, metavar="N", help="GPUs reserved for the command")
    parser.add_argument(
        "--token-file", help="the cluster's token (default: $RAY_AUTH_TOKEN, $RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token)"
    )
    parser.add_argument("--no-wait", action="store_true", help="return after submitting; don't stream logs")
    parser.add_argument("entrypoint", nargs=argparse.REMAINDER, help="the command to run, after --")
    parser.set_defaults(func=run_submit)
    return parser


def run_submit(args: argparse.Namespace) -> int:
    """Run `xlray submit` from parsed arguments; returns the exit status."""
    entrypoint = args.entrypoint[1:] if args.entrypoint[:1] == ["--"] else args.entrypoint
    env = forward_env(load_runtime_env(args.runtime_env, args.runtime_env_json), args.env)
    return submit(
        entrypoint,
        address=args.address,
        working_dir=None if args.no_working_dir else args.working_dir,
        runtime_env=env,
        entrypoint_num_cpus=args.entrypoint_num_cpus,
        entrypoint_num_gpus=args.entrypoint_num_gpus,
        token=read_token_file(args.token_file) if args.token_file else None,
        follow=not args.no_wait,
    )
