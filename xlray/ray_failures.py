"""Ray failures as one line: which stage, which chunk or trial, the cause as far as Ray reports it, and the log.

A worker that dies (killed, out of memory, a failed import) surfaces as one of Ray's exception types, wrapped by
Ray Data or Tune. These functions dig the cause out of the wrappers and name the worker's log file; the full
traceback stays available to ``xlray --debug``.
"""

from __future__ import annotations

import glob
import json
import os
import re
import traceback

from xlray.errors import RunFailure, XlrayError

USER_ERROR_MARK = "xlray.errors.XlrayError: "
CHUNK_MARK = "xlray: extracting chunk "  # what extraction workers print when they start a chunk


def causes(exc: BaseException | None, limit: int = 16):
    """``exc`` and the exceptions behind it: Ray's ``cause`` attribute, then ``__cause__`` / ``__context__``."""
    seen = 0
    while exc is not None and seen < limit:
        yield exc
        cause = getattr(exc, "cause", None)
        exc = cause if isinstance(cause, BaseException) else (exc.__cause__ or exc.__context__)
        seen += 1


def user_error(exc: BaseException) -> XlrayError | None:
    """The XlrayError a Ray task raised, dug out of Ray's wrappers (as an object, or from the remote traceback)."""
    for inner in causes(exc):
        text = str(inner)
        if USER_ERROR_MARK in text:  # Ray's wrapper (itself an XlrayError subclass) carries the remote traceback
            return XlrayError(text.split(USER_ERROR_MARK, 1)[1].splitlines()[0].strip())
        if isinstance(inner, XlrayError):
            return XlrayError(text)
    return None


def chunk_error(payload: str) -> XlrayError | RunFailure:
    """The error an extraction worker handed back as data for one chunk (see ``stages.chunk_failure``)."""
    info = json.loads(payload)
    if "user_error" in info:
        return XlrayError(info["user_error"])
    return RunFailure(f"extract: chunk {info['chunk']} failed: {info['error'][:300]}", info.get("traceback"))


def ray_failure(exc: BaseException, stage: str, actor_start: str | None = None) -> XlrayError | RunFailure:
    """One line for a failure inside Ray: the user's own error if that is what it is, else what died and why."""
    user = user_error(exc)
    if user is not None:
        return user
    if actor_start is not None:
        return actors_could_not_start(stage, actor_start)
    detail = "".join(traceback.format_exception(exc))
    died = next((e for e in causes(exc) if type(e).__name__ in DEATHS), None)
    if died is None:
        return RunFailure(f"{stage}: failed: {last_line(exc)}", detail)
    text = str(died)
    pid, ip = field(text, "pid"), field(text, "ip")
    chunk = last_chunk(pid) if pid else None
    where = f"chunk {chunk}" if chunk else (f"a worker (pid {pid})" if pid else "a worker")
    return RunFailure(f"{stage}: {where} failed: {death_cause(died)}{log_hint(pid, ip)}", detail)


def actors_could_not_start(stage: str, why: str) -> XlrayError:
    """The error for a stage whose actors did not start in time, with ``why`` (no such resource, or held)."""
    return XlrayError(f"{stage}: actors could not start: {why}")


DEATHS = {"ActorDiedError", "ActorUnavailableError", "RayActorError", "WorkerCrashedError", "OutOfMemoryError",
          "NodeDiedError", "LocalRayletDiedError", "ObjectLostError", "OwnerDiedError"}  # fmt: skip


def death_cause(died: BaseException) -> str:
    """Ray's reason in a few words: the worker's exit detail, the error in an actor's constructor, or the type."""
    text = str(died)
    init = re.search(r"raised in its creation task, .*?(\w+(?:Error|Exception)[^\n]*)\s*$", text, re.S)
    if init:
        return f"its actor could not start: {init.group(1).strip()[:300]}"
    exit_detail = re.search(r"Worker exit detail: ([^\n]+)", text)
    if exit_detail:
        detail = exit_detail.group(1).split(" Some common causes")[0].strip()  # Ray's advice runs on for lines
        return f"the worker process died: {detail[:200]}"
    if type(died).__name__ == "OutOfMemoryError":
        return f"out of memory: {last_line(died)}"
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("\t")]
    return f"{type(died).__name__}: {' '.join(lines[:2])[:300]}"


def field(text: str, name: str) -> str | None:
    found = re.search(rf"^\s*{name}: (\S+)", text, re.M) or re.search(rf"\b{name}=([\w.:-]+)", text)
    return found.group(1).rstrip(",)") if found else None


def logs_dir() -> str | None:
    """This Ray session's log folder on this machine (None when not connected)."""
    try:
        import ray

        return ray._private.worker._global_node.get_logs_dir_path()  # no public API names it
    except Exception:  # noqa: BLE001 - not connected, or a remote (Ray Client) session
        return None


def worker_logs(pid: str) -> list[str]:
    folder = logs_dir()
    return sorted(glob.glob(os.path.join(folder, f"worker-*-{pid}.*"))) if folder and pid.isdigit() else []


def last_chunk(pid: str) -> str | None:
    """The chunk a dead extraction worker last started, from its own log on this machine."""
    for path in worker_logs(pid):
        if path.endswith(".out"):
            with open(path, encoding="utf-8", errors="replace") as f:
                marks = [line.split(CHUNK_MARK, 1)[1].strip() for line in f if CHUNK_MARK in line]
            if marks:
                return marks[-1]
    return None


def log_hint(pid: str | None, ip: str | None) -> str:
    logs = [p for p in worker_logs(pid) if p.endswith(".err")] if pid else []
    if logs:
        return f"; worker log: {logs[0]}"
    if pid:
        node = f" on node {ip}" if ip else ""
        return f"; worker log{node}: <ray temp dir>/session_latest/logs/worker-*-{pid}.err"
    return f"; Ray logs: {logs_dir() or '<ray temp dir>/session_latest/logs'}"


def last_line(exc: BaseException) -> str:
    """Type and last non-empty line of a Ray exception's message: Ray puts the cause after its own context."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[-1][:300]}" if lines else type(exc).__name__
