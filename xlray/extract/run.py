"""`xlray extract CONFIG`: corpus -> word-level activations per layer, as Parquet shards plus a manifest.

Reads like a recipe: load config -> plan chunks -> cap thresholds -> Ray Data pipeline (tokenize on CPU actors,
forward on GPU actors, write shards; without GPUs a pool of plain CPU actors does all three) -> manifest last ->
log to MLflow. Finished shards are skipped on re-runs.

``output_dir`` is a local folder or an object-store URI (``s3://``, ``gs://``), kept as a string: the shard writers,
on whichever node, write straight to it, each object whole; the manifest, written last, says the run is complete.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from xlray.configs import load_config
from xlray.datasets import corpus_name
from xlray.errors import XlrayError
from xlray.extract.budget import check_budget
from xlray.extract.cap import merge_thresholds, occurrences, smallest_hashes
from xlray.extract.config import ExtractConfig
from xlray.extract.corpus import Chunk, Item, input_files, plan_chunks, read_chunk
from xlray.extract.shards import MANIFEST, finished_shards, shard_stats
from xlray.families import FAMILIES
from xlray.outputs import write_json
from xlray.runtime import outside_placement_groups, start_ray
from xlray.stage_rules import finished, run_name, run_tags
from xlray.storage import check_output, join, make_dirs, use_storage
from xlray.textio import is_file
from xlray.tracking import Sink, open_run

THRESHOLDS = "cap_thresholds.json"


def chunk_hashes(cfg_json: str, chunk: dict, pairs: bool) -> dict[str, list[int]]:
    """First pass of the cap over one chunk (a Ray task)."""
    cfg = ExtractConfig.model_validate_json(cfg_json)
    items = [it for it in read_chunk(cfg.inputs, Chunk(**chunk), pairs) if isinstance(it, Item)]
    return smallest_hashes(*occurrences(it.side(side) for side in ("source", "target") for it in items), cfg.cap)


# Up to this many chunks the cap pass hashes them itself: about a second of work (1,024-line chunks), less than
# starting worker processes for it costs while the actors start on a small machine.
CAP_PASS_IN_ONE_TASK = 16


def cap_pass(cfg_json: str, chunks: list[dict], pairs: bool, cap: int, window: int) -> dict[str, int]:
    """The cap's thresholds (itself a 0-CPU Ray task): each chunk's smallest hashes in 0-CPU tasks, at most
    ``window`` at a time, merged as they finish (the merge does not depend on order); a small input is hashed in
    this task (see CAP_PASS_IN_ONE_TASK)."""
    import ray

    if len(chunks) <= CAP_PASS_IN_ONE_TASK:
        return merge_thresholds((chunk_hashes(cfg_json, c, pairs) for c in chunks), cap)
    task = ray.remote(chunk_hashes).options(num_cpus=0, scheduling_strategy=outside_placement_groups())
    todo, pending = list(chunks), []

    def parts():
        while todo or pending:
            while todo and len(pending) < window:
                pending.append(task.remote(cfg_json, todo.pop(), pairs))
            ready, pending[:] = ray.wait(pending, num_returns=1)
            yield ray.get(ready[0])

    return merge_thresholds(parts(), cap)


def cap_thresholds(cfg: ExtractConfig, chunks: list[Chunk], out: str) -> str | list | None:
    """The cap's thresholds as the actors take them: the file a finished cap pass saved in ``out`` (resumed runs),
    else ``[ref]``, the reference to a cap pass started now as 0-CPU tasks beside the actors' start-up (nested in a
    list, so Ray does not wait for it before starting them; they wait only before their first chunk). None
    without a cap."""
    import ray

    if cfg.cap is None or cfg.granularity == "sentence":
        return None
    saved = join(out, THRESHOLDS)
    if is_file(saved):
        return saved
    window = max(1, int(ray.cluster_resources().get("CPU", 1)))
    run = ray.remote(cap_pass).options(num_cpus=0, scheduling_strategy=outside_placement_groups())
    chunk_dicts = [asdict(c) for c in chunks]
    return [run.remote(cfg.model_dump_json(), chunk_dicts, "decoder" in cfg.sites, cfg.cap, window)]


def save_thresholds(thresholds: str | list | None, out: str) -> None:
    """Keep a finished cap pass's thresholds for resumed runs (recomputing them would give the same)."""
    import ray

    if isinstance(thresholds, list) and ray.wait(thresholds, timeout=0)[0]:
        try:
            write_json(join(out, THRESHOLDS), ray.get(thresholds[0]))
        except Exception:  # noqa: BLE001 - the pass failed; the run's own error says why
            pass


def resolve_layers(cfg: ExtractConfig, num_layers: int) -> list[int]:
    if cfg.layers == "all":
        return list(range(num_layers + 1))
    bad = [layer for layer in cfg.layers if not 0 <= layer <= num_layers]
    if bad:
        raise XlrayError(f"layers: {bad} out of range; the model has hidden states 0..{num_layers}")
    return sorted(set(cfg.layers))


def gpus_per_actor(cfg: ExtractConfig) -> float:
    """GPUs each forward actor asks for; fails fast where none can ever come."""
    import ray

    have = ray.cluster_resources().get("GPU", 0)
    if cfg.gpus_per_actor == "auto":
        return 1.0 if have else 0.0
    most = max((n["Resources"].get("GPU", 0) for n in ray.nodes() if n["Alive"]), default=0)
    if cfg.gpus_per_actor > most and not (cfg.ray.address or os.environ.get("RAY_ADDRESS")):
        raise XlrayError(
            f"gpus_per_actor: {cfg.gpus_per_actor:g} GPUs per actor requested, but no node of this local Ray has "
            f"more than {most:g}; set gpus_per_actor: 0, auto or at most {most:g}"
        )
    return float(cfg.gpus_per_actor)


def pool_size(cfg: ExtractConfig, gpus: float, chunks: int) -> int:
    """Forward actors: as configured, or ``auto``: as many as the cluster's GPUs (or CPUs, without GPUs) hold."""
    import ray

    if cfg.actors != "auto":
        return cfg.actors
    have = ray.cluster_resources()
    fits = have.get("GPU", 0) // gpus if gpus else have.get("CPU", 1) // cfg.cpus_per_actor
    return int(max(1, min(fits, chunks)))


def torch_threads(cfg: ExtractConfig) -> int:
    """Threads of each forward actor's torch: ``torch_threads``, else its reserved CPUs."""
    return cfg.torch_threads or max(1, int(cfg.cpus_per_actor))


def pipeline(cfg: ExtractConfig, todo: list[Chunk], layers: list[int], facts: dict[str, Any],
             thresholds: str | list | None, gpus: float):  # fmt: skip
    """The Ray Data plan with GPUs: tokenize (CPU actors) -> forward (GPU actors) -> write (CPU tasks)."""
    import ray
    from ray.data import ActorPoolStrategy, DataContext

    from xlray.console import quiet_ray_data
    from xlray.extract.stages import ForwardChunks, TokenizeChunks, write_shards

    quiet_ray_data()
    DataContext.get_current().wait_for_min_actors_s = int(cfg.ray.gpu_wait_s)
    rows = [{"chunk_id": c.chunk_id, "chunk": json.dumps(asdict(c))} for c in todo]
    cfg_json = cfg.model_dump_json()
    shard_dir = join(cfg.output_dir, "shards")
    # A dead actor is restarted (and its chunk retried) at most ray.actor_restarts times, then the run fails.
    restarts = {"max_restarts": cfg.ray.actor_restarts, "max_task_retries": cfg.ray.actor_restarts}
    ds = ray.data.from_items(rows, override_num_blocks=max(1, len(rows)))
    ds = ds.map_batches(
        TokenizeChunks,
        batch_size=1,
        compute=ActorPoolStrategy(size=cfg.tokenizer_actors),
        fn_constructor_args=(cfg_json, facts["max_length"], thresholds, FAMILIES[facts["family"]].causal),
        num_cpus=cfg.cpus_per_actor,
        **restarts,
    )
    ds = ds.map_batches(
        ForwardChunks,
        batch_size=1,
        compute=ActorPoolStrategy(size=pool_size(cfg, gpus, len(todo))),
        fn_constructor_args=(cfg_json, layers, torch_threads(cfg)),
        num_gpus=gpus,
        num_cpus=cfg.cpus_per_actor,
        **restarts,
    )
    return ds.map_batches(write_shards, batch_size=1, fn_kwargs={"shard_dir": shard_dir}, num_cpus=0.25)


def run_chunks(cfg: ExtractConfig, ds: Any, todo: list[Chunk]) -> tuple[list[dict[str, int]], Exception | None]:
    """Stream the pipeline's rows: the counts of each chunk written, or the failure that stopped it.

    The failure is returned, not raised: this frame (and with it the iterator) is gone before the caller raises,
    and the iterator is closed on the way out, which shuts the pipeline down and kills its actors at once (a
    failed Ray Data pipeline otherwise keeps an actor, and its CPU or GPU, until garbage collection).
    """
    from xlray.console import progress
    from xlray.ray_failures import chunk_error, ray_failure

    done: list[dict[str, int]] = []
    rows = iter(ds.iter_rows())
    failure = None
    try:
        with progress(f"extract {len(todo)} chunks", len(todo)) as advance:
            for row in rows:
                if row.get("error"):
                    failure = chunk_error(row["error"])
                    break
                done.append(json.loads(row["stats"]))
                advance()
    except Exception as exc:  # noqa: BLE001 - becomes one line naming the stage and cause
        starting = "Timed out while starting actors" in str(exc)
        failure = ray_failure(exc, "extract", actor_start=start_problem(cfg) if starting else None)
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()
    return done, failure


def run_pool(cfg: ExtractConfig, todo: list[Chunk], layers: list[int], facts: dict[str, Any],
             thresholds: str | list | None, gpus: float) -> tuple[list[dict[str, int]], Exception | None]:  # fmt: skip
    """Run ``todo``: on GPUs through the Ray Data pipeline, without them on plain CPU actors. The counts of each
    chunk written, or the failure that stopped the run; either way the run's actors are gone."""
    if gpus:
        return run_chunks(cfg, pipeline(cfg, todo, layers, facts, thresholds, gpus), todo)
    from xlray.extract.cpu_actors import run_on_cpu_actors

    shard_dir = join(cfg.output_dir, "shards")
    args = (cfg.model_dump_json(), facts["max_length"], thresholds, layers, torch_threads(cfg), shard_dir)
    return run_on_cpu_actors(cfg, todo, pool_size(cfg, gpus, len(todo)), args, lambda: start_problem(cfg))


def free_resources(cfg: ExtractConfig) -> dict[str, float]:
    """The CPUs and GPUs a failed pipeline must give back: on this process's own local Ray all of them (a task
    lease can linger a moment after any earlier work), on a shared cluster those free before it started."""
    import ray

    joined = cfg.ray.address or os.environ.get("RAY_ADDRESS")
    free = ray.available_resources() if joined else ray.cluster_resources()
    return {k: free.get(k, 0.0) for k in ("CPU", "GPU")}


def wait_for_release(before: dict[str, float], timeout_s: float = 15.0) -> None:
    """Wait (briefly) until the CPUs and GPUs in ``before`` are free again: ``ray.kill`` is asynchronous, and the
    next extraction in this process should find them."""
    import ray

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        free = ray.available_resources()
        if all(free.get(k, 0.0) >= v for k, v in before.items()):
            return
        time.sleep(0.05)


def start_problem(cfg: ExtractConfig) -> str:
    """Why actors did not start in time: no node has such resources, or they are held by earlier work."""
    import ray

    total, free = ray.cluster_resources(), ray.available_resources()
    want = {"CPU": cfg.cpus_per_actor} | ({"GPU": float(cfg.gpus_per_actor)} if cfg.gpus_per_actor != "auto" else {})
    missing = [k for k, v in want.items() if total.get(k, 0) < v]
    if missing:
        return (
            f"no node of the cluster has {', '.join(f'{want[k]:g} {k}' for k in missing)} for an actor "
            f"within ray.gpu_wait_s={cfg.ray.gpu_wait_s:g}s (cluster: {total.get('CPU', 0):g} CPU, "
            f"{total.get('GPU', 0):g} GPU); lower gpus_per_actor/cpus_per_actor or add such nodes"
        )
    return (
        f"the cluster has the resources, but they are held ({free.get('CPU', 0):g} of {total.get('CPU', 0):g} CPU "
        f"and {free.get('GPU', 0):g} of {total.get('GPU', 0):g} GPU free): by earlier work in this process or by "
        "other jobs; wait for them or raise ray.gpu_wait_s"
    )


def words_of(counts: dict[str, int]) -> int:
    """Words read (both sites), truncated ones included: what throughput is measured in."""
    return sum(v for k, v in counts.items() if k.endswith("_words") and not k.endswith("truncated_words"))


def run_extract(cfg: ExtractConfig, into: Sink | None = None) -> dict[str, Any]:
    """Run (or resume) an extraction; returns the manifest. ``into``: log into that open sink (a sweep trial's
    run) instead of a run of its own."""
    from xlray.console import log_to, say
    from xlray.models import model_facts

    use_storage(cfg.storage)
    check_output(cfg.output_dir, "output_dir")  # a bucket that cannot be written to: refused before any write
    out = cfg.output_dir
    log_to(out)  # for a URI: its local scratch folder
    manifest_path = join(out, MANIFEST)
    done = finished(manifest_path, cfg, "extraction")
    if done is not None:
        return done
    chunks = plan_chunks(cfg.inputs, cfg.chunk_lines)
    # Start-up overlaps: the model's facts (config and tokenizer only; the actors load the weights) are read in a
    # thread and the MLflow run opens in another, while Ray starts here.
    reading = ThreadPoolExecutor(1, thread_name_prefix="xlray-model-facts")
    facts_soon = reading.submit(model_facts, cfg.model)
    reading.shutdown(wait=False)
    name = run_name("extract", Path(cfg.model.name).name)
    with open_run(cfg.tracking, name, out, tags=run_tags("extract"), into=into, background=True) as sink:
        connected = start_ray(cfg.ray)
        if connected:
            say(f"[extract] {connected}")
        facts = facts_soon.result()
        layers = resolve_layers(cfg, facts["layers"])
        stored = check_budget(cfg, chunks, layers, facts["hidden_size"])
        gpus = gpus_per_actor(cfg)  # refused here if no node can hold an actor: before anything is written
        make_dirs(join(out, "shards"))
        started, free_before = time.perf_counter(), free_resources(cfg)
        sink.log_params({"config": cfg.model_dump(mode="json"), "model": facts})
        sink.log_datasets({corpus_name(input_files(c)[0]): input_files(c) for c in cfg.inputs}, "extract")
        thresholds = cap_thresholds(cfg, chunks, out)
        written = finished_shards(join(out, "shards"))
        todo = [c for c in chunks if c.chunk_id not in written]
        say(f"[extract] {len(chunks)} chunks, {len(chunks) - len(todo)} already done, {len(todo)} to run")
        ran: list[dict[str, int]] = []
        if todo:
            ran, failure = run_pool(cfg, todo, layers, facts, thresholds, gpus)
            save_thresholds(thresholds, out)
            if failure is not None:
                wait_for_release(free_before)
                raise failure
        seconds = time.perf_counter() - started
        totals = Counter()
        for stats in shard_stats(join(out, "shards"), [c.chunk_id for c in chunks]).values():
            totals.update(stats)
        words_run = sum(words_of(stats) for stats in ran)
        manifest = {
            "config": cfg.model_dump(mode="json"),
            "model": facts,
            "layers": layers,
            "estimated_bytes": stored,
            "shards": [f"shards/{c.chunk_id}.parquet" for c in chunks],
            "counts": dict(totals),  # over every shard, those of earlier (interrupted) runs included
            "this_run": {"shards": len(ran), "words": words_run, "seconds": seconds},
            "seconds": seconds,
            "words_per_second": words_run / seconds if words_run and seconds else None,  # this invocation's
        }
        write_json(manifest_path, manifest)
        sink.log_metrics(
            {f"count.{k}": v for k, v in totals.items()} | {"words_per_second": manifest["words_per_second"]}
        )
        sink.log_artifact(manifest_path)
        report(manifest)
    return manifest


def report(manifest: dict[str, Any]) -> None:
    from xlray.console import say

    counts, run = manifest["counts"], manifest["this_run"]
    rate = f"{manifest['words_per_second']:,.0f} words/s" if manifest["words_per_second"] else "no words run"
    if manifest["config"]["granularity"] == "sentence":
        kept = f"{counts.get('encoder_pooled', 0):,} sentence vectors per layer"
    else:
        kept = f"{counts.get('encoder_kept', 0):,} word occurrences kept ({counts.get('encoder_capped', 0):,} capped)"
    say(
        f"[extract] done: {counts.get('sentences', 0):,} sentences, {kept}; this run: {run['shards']} shards, "
        f"{run['words']:,} words in {run['seconds']:.1f} s, {rate}"
    )
    if counts.get("encoder_truncated_sentences"):
        say(
            f"[extract] warning: {counts['encoder_truncated_sentences']} sentences were truncated at the model's "
            f"limit of {manifest['model']['max_length']} tokens ({counts.get('encoder_truncated_words', 0)} words lost)"
        )


def main(config_path: str) -> int:
    run_extract(load_config(config_path, ExtractConfig))
    return 0
