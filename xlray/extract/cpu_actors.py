"""Extraction without GPUs, on plain Ray actors: each tokenizes, runs and writes whole chunks (``ExtractChunks``),
and is handed the next chunk as soon as it is free.

With one kind of worker doing every step, Ray Data's streaming executor would add only start-up: its executor and
helper actors cost seconds before the first chunk, a large share of a 10k-sentence run on a small machine. The GPU
pipeline, whose stages need different resources, runs on Ray Data (``run.pipeline``).
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import asdict
from typing import Any

from xlray.errors import XlrayError
from xlray.extract.config import ExtractConfig
from xlray.extract.corpus import Chunk


def run_on_cpu_actors(
    cfg: ExtractConfig, todo: list[Chunk], size: int, actor_args: tuple, start_problem: Any
) -> tuple[list[dict[str, int]], Exception | None]:
    """Run ``todo`` on ``size`` ``ExtractChunks`` actors (built from ``actor_args``): the counts of each chunk
    written, or the failure that stopped the run (returned, not raised, as ``run.run_chunks`` does).

    The actors are killed before this returns, whatever happened, so their CPUs are free for the next run in this
    process. If none has started within ``ray.gpu_wait_s`` the run fails with ``start_problem()``: why not.
    """
    import ray

    from xlray.console import progress
    from xlray.extract.stages import ExtractChunks
    from xlray.ray_failures import actors_could_not_start, chunk_error, ray_failure
    from xlray.runtime import outside_placement_groups

    actor = ray.remote(ExtractChunks).options(
        num_cpus=cfg.cpus_per_actor,
        # A dead actor is restarted (and its chunk retried) at most ray.actor_restarts times, then the run fails.
        max_restarts=cfg.ray.actor_restarts,
        max_task_retries=cfg.ray.actor_restarts,
        scheduling_strategy=outside_placement_groups(),  # as the cap pass: not held to a sweep trial's reservation
    )
    actors = [actor.remote(*actor_args) for _ in range(size)]
    waiting, running = deque(todo), {}
    done: list[dict[str, int]] = []
    failure = None

    def hand_out(worker: Any) -> None:
        if waiting:
            chunk = waiting.popleft()
            running[worker.one.remote(chunk.chunk_id, json.dumps(asdict(chunk)))] = worker

    try:
        for worker in actors:
            hand_out(worker)
        if not ray.wait([w.__ray_ready__.remote() for w in actors], timeout=cfg.ray.gpu_wait_s)[0]:
            raise actors_could_not_start("extract", start_problem())
        with progress(f"extract {len(todo)} chunks", len(todo)) as advance:
            while running:
                [ref], _ = ray.wait(list(running), num_returns=1)
                worker = running.pop(ref)
                stats, error = ray.get(ref)
                if error:
                    failure = chunk_error(error)
                    break
                done.append(json.loads(stats))
                advance()
                hand_out(worker)
    except XlrayError as exc:
        failure = exc
    except Exception as exc:  # noqa: BLE001 - becomes one line naming the stage and cause
        failure = ray_failure(exc, "extract")
    finally:
        for worker in actors:
            ray.kill(worker)
    return done, failure
