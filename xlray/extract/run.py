"""`xlray extract CONFIG`: corpus -> word-level activations per layer, as Parquet shards plus a manifest.

Reads like a recipe: load config -> plan chunks -> cap thresholds -> Ray Data pipeline (tokenize on CPU actors,
forward on GPU actors, write shards; without GPUs one CPU actor pool does all three) -> manifest last -> log to
MLflow. Finished shards are skipped on re-runs.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from xlray.configs import load_config
from xlray.errors import XlrayError
from xlray.extract.cap import merge_thresholds, occurrences, smallest_hashes
from xlray.extract.config import ExtractConfig
from xlray.extract.corpus import Chunk, Item, plan_chunks, read_chunk
from xlray.extract.shards import MANIFEST, finished_shards, shard_stats
from xlray.outputs import finished_manifest, write_json
from xlray.runtime import start_ray
from xlray.tracking import open_run


def chunk_hashes(cfg_json: str, chunk: dict, pairs: bool) -> dict[str, list[int]]:
    """First pass of the cap over one chunk (a Ray task)."""
    cfg = ExtractConfig.model_validate_json(cfg_json)
    items = [it for it in read_chunk(cfg.inputs, Chunk(**chunk), pairs) if isinstance(it, Item)]
    return smallest_hashes(*occurrences(it.side(side) for side in ("source", "target") for it in items), cfg.cap)


def cap_thresholds(cfg: ExtractConfig, chunks: list[Chunk], out: Path) -> dict[str, int]:
    """Per-type hash thresholds for the cap, computed once with Ray tasks and saved for resumed runs."""
    import ray

    if cfg.cap is None:
        return {}
    saved = out / "cap_thresholds.json"
    if saved.is_file():
        return json.loads(saved.read_text())
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    # Outside any placement group: inside a sweep trial, tasks would otherwise be held to the trial's reservation.
    task = ray.remote(chunk_hashes).options(
        num_cpus=cfg.cpus_per_actor, scheduling_strategy=PlacementGroupSchedulingStrategy(placement_group=None)
    )
    refs = [task.remote(cfg.model_dump_json(), asdict(c), "decoder" in cfg.sites) for c in chunks]
    thresholds = merge_thresholds((ray.get(ref) for ref in refs), cfg.cap)
    write_json(saved, thresholds)
    return thresholds


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
    from ray.data import DataContext

    have = ray.cluster_resources().get("GPU", 0)
    if cfg.gpus_per_actor == "auto":
        return 1.0 if have else 0.0
    if cfg.gpus_per_actor > have and not (cfg.ray.address or os.environ.get("RAY_ADDRESS")):
        raise XlrayError(
            f"gpus_per_actor: {cfg.gpus_per_actor} GPU per actor requested, but this local Ray has "
            f"{have:g}; set gpus_per_actor: 0 or auto"
        )
    DataContext.get_current().wait_for_min_actors_s = int(cfg.ray.gpu_wait_s)
    return float(cfg.gpus_per_actor)


def user_error(exc: BaseException) -> XlrayError | None:
    """The XlrayError a Ray task raised, dug out of Ray's wrappers (as an object, or from the remote traceback)."""
    seen = 0
    while exc is not None and seen < 12:
        if isinstance(exc, XlrayError):
            return exc
        marker = "xlray.errors.XlrayError: "
        text = str(exc)
        if marker in text:
            return XlrayError(text.split(marker, 1)[1].splitlines()[0].strip())
        cause = getattr(exc, "cause", None)
        exc = cause if isinstance(cause, BaseException) else (exc.__cause__ or exc.__context__)
        seen += 1
    return None


def pool_size(cfg: ExtractConfig, gpus: float, chunks: int) -> int:
    """Forward actors: as configured, or ``auto``: as many as the cluster's GPUs (or CPUs, without GPUs) hold."""
    import ray

    if cfg.actors != "auto":
        return cfg.actors
    have = ray.cluster_resources()
    fits = have.get("GPU", 0) // gpus if gpus else have.get("CPU", 1) // cfg.cpus_per_actor
    return int(max(1, min(fits, chunks)))


def pipeline(
    cfg: ExtractConfig, todo: list[Chunk], layers: list[int], max_length: int, thresholds_ref: Any, gpus: float
):
    """The Ray Data plan: tokenize (CPU actors) -> forward (GPU actors) -> write (CPU tasks), or without GPUs one
    CPU actor pool doing all three (each actor uses ``torch_threads`` or its reserved CPUs)."""
    import ray
    from ray.data import ActorPoolStrategy

    from xlray.extract.stages import ExtractChunks, ForwardChunks, TokenizeChunks, write_shards

    rows = [{"chunk_id": c.chunk_id, "chunk": json.dumps(asdict(c))} for c in todo]
    cfg_json = cfg.model_dump_json()
    shard_dir = str(Path(cfg.output_dir) / "shards")
    threads = cfg.torch_threads or max(1, int(cfg.cpus_per_actor))
    pool = ActorPoolStrategy(size=pool_size(cfg, gpus, len(todo)))
    ds = ray.data.from_items(rows, override_num_blocks=max(1, len(rows)))
    if not gpus:
        return ds.map_batches(
            ExtractChunks,
            batch_size=1,
            compute=pool,
            fn_constructor_args=(cfg_json, max_length, thresholds_ref, layers, threads, shard_dir),
            num_cpus=cfg.cpus_per_actor,
        )
    ds = ds.map_batches(
        TokenizeChunks,
        batch_size=1,
        compute=ActorPoolStrategy(size=cfg.tokenizer_actors),
        fn_constructor_args=(cfg_json, max_length, thresholds_ref),
        num_cpus=cfg.cpus_per_actor,
    )
    ds = ds.map_batches(
        ForwardChunks,
        batch_size=1,
        compute=pool,
        fn_constructor_args=(cfg_json, layers, threads),
        num_gpus=gpus,
        num_cpus=cfg.cpus_per_actor,
    )
    return ds.map_batches(write_shards, batch_size=1, fn_kwargs={"shard_dir": shard_dir}, num_cpus=0.25)


def run_extract(cfg: ExtractConfig) -> dict[str, Any]:
    """Run (or resume) an extraction; returns the manifest."""
    import ray

    from xlray.models import model_facts

    out = Path(cfg.output_dir)
    manifest_path = out / MANIFEST
    done = finished_manifest(manifest_path, cfg.model_dump(mode="json"), "extraction")
    if done is not None:
        print(f"[extract] {out} is already complete; nothing to do")
        return done
    (out / "shards").mkdir(parents=True, exist_ok=True)
    chunks = plan_chunks(cfg.inputs, cfg.chunk_lines)
    facts = model_facts(cfg.model)  # config and tokenizer only; the actors load the weights
    layers = resolve_layers(cfg, facts["layers"])
    start_ray(cfg.ray)
    started = time.perf_counter()
    with open_run(cfg.tracking, f"extract {Path(cfg.model.name).name}", out, tags={"xlray.stage": "extract"}) as sink:
        sink.log_params({"config": cfg.model_dump(mode="json"), "model": facts})
        try:
            thresholds = cap_thresholds(cfg, chunks, out)
            done = finished_shards(out / "shards")
            todo = [c for c in chunks if c.chunk_id not in done]
            print(f"[extract] {len(chunks)} chunks, {len(chunks) - len(todo)} already done, {len(todo)} to run")
            if todo:
                ds = pipeline(cfg, todo, layers, facts["max_length"], ray.put(thresholds), gpus_per_actor(cfg))
                for k, row in enumerate(ds.iter_rows(), 1):
                    stats = json.loads(row["stats"])
                    kept = stats.get("encoder_kept", 0)
                    print(f"[extract] shard {row['chunk_id']} ({k}/{len(todo)}): {kept} words kept")
        except Exception as exc:  # noqa: BLE001 - re-raised as the user's error where one is inside
            err = user_error(exc)
            if err is not None:
                raise err from None
            if "Timed out while starting actors" in str(exc):
                raise XlrayError(
                    f"gpus_per_actor: no node could start an actor with {cfg.gpus_per_actor} GPU within "
                    f"ray.gpu_wait_s={cfg.ray.gpu_wait_s}s; does the cluster have GPU workers?"
                ) from None
            raise
        seconds = time.perf_counter() - started
        totals = Counter()
        for stats in shard_stats(out / "shards", [c.chunk_id for c in chunks]).values():
            totals.update(stats)
        words_run = sum(v for k, v in totals.items() if k.endswith("_words") and not k.endswith("truncated_words"))
        manifest = {
            "config": cfg.model_dump(mode="json"),
            "model": facts,
            "layers": layers,
            "shards": [f"shards/{c.chunk_id}.parquet" for c in chunks],
            "counts": dict(totals),
            "seconds": seconds,
            "words_per_second": words_run / seconds if seconds else None,
        }
        write_json(manifest_path, manifest)
        sink.log_metrics(
            {f"count.{k}": v for k, v in totals.items()} | {"words_per_second": manifest["words_per_second"]}
        )
        sink.log_artifact(manifest_path)
        report(manifest)
    return manifest


def report(manifest: dict[str, Any]) -> None:
    counts = manifest["counts"]
    print(
        f"[extract] done: {counts.get('sentences', 0)} sentences; "
        + ", ".join(f"{k}={v}" for k, v in sorted(counts.items()) if k != "sentences")
        + f"; {manifest['words_per_second'] or 0:.0f} words/s"
    )
    if counts.get("encoder_truncated_sentences"):
        print(
            f"[extract] warning: {counts['encoder_truncated_sentences']} sentences were truncated at the model's "
            f"limit of {manifest['model']['max_length']} tokens ({counts.get('encoder_truncated_words', 0)} words lost)"
        )


def main(config_path: str) -> int:
    run_extract(load_config(config_path, ExtractConfig))
    return 0
