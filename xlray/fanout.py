"""A stage's independent pieces of work as Ray tasks: each asks for the CPUs and memory it needs, runs outside any
placement group (inside a sweep trial, the trial's reservation holds the trial alone) and is handed back as it
finishes, biggest first, at most ``scheduling.max_concurrent`` in flight.

A piece runs on exactly ``scheduling.cpus`` threads, numba's and BLAS/OpenMP's (threadpoolctl), wherever it lands,
and so does the same call made in this process (`run_inline`). Some results depend on the thread count
(pynndescent's parallel k-NN graph, the last bits of a threaded BLAS reduction), so pinning it makes a result the
same on every node, alone or beside other tasks, in a task or inline; the thread count itself is part of what a
stage keys its finished parts by (``xlray.parts.part_key``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from xlray.configs import RayConfig, Strict
from xlray.errors import XlrayError

GB = 1e9


class SchedulingConfig(Strict):
    """How a stage's tasks are packed onto the cluster."""

    cpus: int = Field(
        1,
        ge=1,
        description="CPUs each task reserves, and the threads it computes with (numba, BLAS). The approximate"
        " HDBSCAN's k-NN graph depends on the thread count, so finished parts are kept per value",
    )
    memory_factor: float = Field(
        1.0,
        ge=0,
        description="Each task asks Ray for this times its estimated peak memory (so tasks are placed where they"
        " fit); 0: no memory request, CPUs only",
    )
    max_concurrent: int | None = Field(
        None, ge=1, description="Most tasks in flight at once; None: as many as the cluster's CPUs and memory fit"
    )


@dataclass(frozen=True)
class Job:
    """One piece of work: ``fn(*args)`` under the part name ``name``; ``memory``: its estimated peak bytes."""

    name: str
    fn: Callable[..., Any]
    args: tuple
    memory: int
    tags: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Done:
    """A finished job: its value, the Ray node it ran on (None outside Ray) and its wall time in seconds."""

    job: Job
    value: Any
    node_id: str | None
    seconds: float


@contextmanager
def pinned_threads(threads: int) -> Iterator[None]:
    """numba and BLAS/OpenMP on ``threads`` threads inside the block (numba's count restored after it)."""
    import numba
    from threadpoolctl import threadpool_limits

    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        numba.set_num_threads(before)


def node_id() -> str | None:
    """The Ray node this process runs on; None when it is not connected to Ray."""
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


def timed(fn: Callable[..., Any], threads: int, *args: Any) -> tuple[Any, str | None, float]:
    """``fn(*args)`` on ``threads`` threads: its value, this node's id and the seconds it took (the task body;
    Ray hands it the values of the object references among ``args``)."""
    start = time.perf_counter()
    with pinned_threads(threads):
        value = fn(*args)
    return value, node_id(), time.perf_counter() - start


def run_inline(jobs: Iterable[Job], scheduling: SchedulingConfig) -> Iterator[Done]:
    """The jobs one after another in this process, each as a task would run it (the serial reference)."""
    for job in jobs:
        yield Done(job, *timed(job.fn, scheduling.cpus, *job.args))


def fan_out(jobs: list[Job], scheduling: SchedulingConfig, ray_cfg: RayConfig, stage: str) -> Iterator[Done]:
    """Run ``jobs`` as Ray tasks and yield each as it finishes; a failure is one line naming its cause (the tasks
    still running are cancelled, also when the caller stops early). A task that cannot fit any node is refused
    before any starts on a private local Ray, and waits (for an autoscaler) on a cluster."""
    import ray

    from xlray.ray_failures import ray_failure
    from xlray.runtime import outside_placement_groups

    if not jobs:
        return
    check_fits(jobs, scheduling, local=not (ray_cfg.address or os.environ.get("RAY_ADDRESS")), stage=stage)
    remote = ray.remote(timed)
    queue = iter(sorted(jobs, key=lambda job: -job.memory))  # the biggest start first: the run ends sooner
    pending: dict[Any, Job] = {}

    def submit(job: Job) -> None:
        options: dict[str, Any] = {"num_cpus": scheduling.cpus, "name": f"{stage}:{job.name}"}
        memory = int(job.memory * scheduling.memory_factor)
        if memory > 0:
            options["memory"] = memory
        # A worker that dies is retried ray.actor_restarts times (0: the run fails at once and a re-run resumes).
        task = remote.options(**options, max_retries=ray_cfg.actor_restarts,
                              scheduling_strategy=outside_placement_groups())  # fmt: skip
        pending[task.remote(job.fn, scheduling.cpus, *job.args)] = job

    try:
        for _ in range(scheduling.max_concurrent or len(jobs)):
            if (job := next(queue, None)) is not None:
                submit(job)
        while pending:
            (ready,), _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ready)
            try:
                value, node, seconds = ray.get(ready)
            except Exception as exc:  # noqa: BLE001 - becomes one line naming the stage, the job and the cause
                raise ray_failure(exc, f"{stage}: {job.name}") from exc
            if (following := next(queue, None)) is not None:
                submit(following)
            yield Done(job, value, node, seconds)
    finally:
        for ref in pending:
            ray.cancel(ref)


def check_fits(jobs: list[Job], scheduling: SchedulingConfig, local: bool, stage: str) -> None:
    """Refuse (``local``) or warn about the biggest job when no live node has its CPUs and memory."""
    import ray

    from xlray.console import say

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    biggest = max(jobs, key=lambda job: job.memory)
    memory = int(biggest.memory * scheduling.memory_factor)
    if any(n.get("CPU", 0) >= scheduling.cpus and n.get("memory", 0) >= memory for n in nodes):
        return
    most_cpu = max((n.get("CPU", 0) for n in nodes), default=0)
    most_memory = max((n.get("memory", 0) for n in nodes), default=0)
    problem = (
        f"{stage}: task {biggest.name} needs {scheduling.cpus} CPU and {memory / GB:.2f} GB of memory"
        f" ({scheduling.memory_factor:g} x its estimate), the largest node has {most_cpu:g} CPU and"
        f" {most_memory / GB:.2f} GB: lower scheduling.cpus or scheduling.memory_factor, or add a bigger node"
    )
    if local:
        raise XlrayError(problem)
    say(f"[{stage}] {problem}; waiting for one")
