"""Benchmark concept discovery as Ray tasks against the serial loop, side by side in one run (a script, not a test).

    python tests/benchmarks/bench_concept_tasks.py                          # 13 layers x 3 views, 100k per language
    python tests/benchmarks/bench_concept_tasks.py --points 5000 --layers 3 # a quick try
    python tests/benchmarks/bench_concept_tasks.py --no-cluster --repeats 3

Builds a word-level extraction on disk in the real format (``xlray.extract.shards.write_shard`` and a manifest):
``--layers`` layers x 2 languages x ``--points`` occurrences per language, ``--dim``-d float16 vectors around
``--concepts`` planted centres. Clusters every (layer, view) as `xlray concepts` does by default (L2-normalised,
no PCA at 64-d, fast-hdbscan with its approximate k-NN graph; min_cluster_size 20), the joint view holding both
languages (2 x ``--points``). In one process, on one local Ray with this machine's CPUs:
- ``serial``: the same per-view function called inline in the driver, one view after another, on all the machine's
  cores (numba's and BLAS's threads), as the loop before the tasks ran it;
- ``fan-out``: the tasks (``xlray.concepts.run.run_tasks``: each reads its own points, 1 CPU and 1 thread each,
  each part written as it finishes), as many at once as the CPUs and memory allow.
Each is warmed up first (numba compiles pynndescent in every fresh process: tens of seconds, reported apart), then
timed ``--repeats`` times (medians). The driver's resident memory is sampled every 20 ms (psutil) and its peak
above the level before each run is set against one layer's points (the joint view, float32). Then ``--check``:
layer 0's three views as tasks and inline on the same thread count, labels compared. Then (unless
``--no-cluster``) the fan-out on a local 3-node ``ray.cluster_utils.Cluster`` (three raylets of 1 CPU each, on
this same machine), with the tasks counted per node. The load average (``os.getloadavg``) is printed before and
after: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shard-format builder


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--points", type=int, default=100_000, help="Occurrences per language and layer")
    p.add_argument("--layers", type=int, default=13)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--concepts", type=int, default=100)
    p.add_argument("--spread", type=float, default=0.4, help="Std of a concept's points (centres have std 1)")
    p.add_argument("--min-cluster-size", type=int, default=20)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--no-cluster", action="store_true", help="Skip the 3-node cluster run")
    p.add_argument("--no-check", action="store_true", help="Skip the task vs inline label check")
    p.add_argument("--folder", type=Path, help="Where to build (kept); default: a temporary folder, removed")
    p.add_argument("--json", type=Path, help="Also write the figures here")
    return p.parse_args(argv)


class PeakRss:
    """This process's resident set size, sampled in a thread; ``peak`` is the highest above the start."""

    def __init__(self, every_s: float = 0.02):
        import psutil

        self.process, self.every_s = psutil.Process(), every_s
        self.start = self.peak = self.process.memory_info().rss
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)

    def sample(self) -> None:
        while not self.stop.wait(self.every_s):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def above_start_mb(self) -> float:
        return (self.peak - self.start) / 1e6


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def config(acts: Path, out: Path, args: argparse.Namespace, cpus: int = 1):
    from xlray.concepts.config import ConceptsConfig

    return ConceptsConfig(
        activations=str(acts), source="xc", target="en", dictionary={"kind": "file", "path": "unused.parquet"},
        points={"pca_dim": None}, clustering={"method": "fast-hdbscan", "min_cluster_size": args.min_cluster_size},
        model_label="bench", output_dir=str(out), tracking={"enabled": False}, scheduling={"cpus": cpus},
    )  # fmt: skip


def compile_numba() -> None:
    """Cluster a small 64-d point set the way the views are clustered: numba compiles what it will need."""
    import numpy as np

    from xlray.concepts.cluster import FastHdbscanConfig, cluster

    cluster(np.random.default_rng(0).normal(size=(2000, 64)).astype(np.float32), FastHdbscanConfig())


def warm_up(workers: int, cpus: int) -> float:
    """Compile numba's code here (on ``cpus`` threads) and in ``workers`` Ray workers; returns the wall seconds."""
    import ray

    from xlray.fanout import timed

    start = time.perf_counter()
    refs = [ray.remote(timed).options(num_cpus=1).remote(compile_numba, 1) for _ in range(workers)]
    timed(compile_numba, cpus)
    ray.get(refs)
    return time.perf_counter() - start


def serial(acts: Path, out: Path, args: argparse.Namespace, cpus: int) -> tuple[float, float]:
    """Every view inline in this process on ``cpus`` threads: (seconds, driver peak MB above the start)."""
    from xlray.concepts.tasks import concept_jobs
    from xlray.extract.reader import open_activations
    from xlray.fanout import run_inline

    cfg = config(acts, out, args, cpus)
    acts_ = open_activations(acts)
    jobs = concept_jobs(acts_, cfg, acts_.layers, None)
    with PeakRss() as rss:
        start = time.perf_counter()
        for _ in run_inline(jobs, cfg.scheduling):
            pass
        seconds = time.perf_counter() - start
    return seconds, rss.above_start_mb


def fan_out(acts: Path, out: Path, args: argparse.Namespace) -> tuple[float, float, Counter]:
    """The stage's own task fan-out, parts written: (seconds, driver peak MB above the start, tasks per node)."""
    from xlray.concepts.run import run_tasks
    from xlray.extract.reader import open_activations

    shutil.rmtree(out, ignore_errors=True)
    cfg = config(acts, out, args)
    acts_ = open_activations(acts)
    with PeakRss() as rss:
        start = time.perf_counter()
        parts, _ = run_tasks(acts_, cfg, acts_.layers, None)
        seconds = time.perf_counter() - start
    nodes = Counter(json.loads(pq_record(parts, name))["node_id"] for name in parts.finished())
    return seconds, rss.above_start_mb, nodes


def pq_record(parts, name: str) -> str:
    import pyarrow.parquet as pq

    return pq.read_schema(parts.path(name)).metadata[b"xlray.part"].decode()


def check_identity(acts: Path, args: argparse.Namespace) -> bool:
    """Layer 0's three views as Ray tasks and inline, both on 1 thread: the same labels?"""
    import numpy as np

    from xlray.concepts.tasks import concept_jobs
    from xlray.extract.reader import open_activations
    from xlray.fanout import fan_out as tasks
    from xlray.fanout import run_inline

    cfg = config(acts, Path("unused"), args)
    acts_ = open_activations(acts)
    jobs = concept_jobs(acts_, cfg, [0], None)
    inline = {d.job.name: d.value.labels for d in run_inline(jobs, cfg.scheduling)}
    remote = {d.job.name: d.value.labels for d in tasks(jobs, cfg.scheduling, cfg.ray, "bench")}
    return all(np.array_equal(inline[k], remote[k]) for k in inline)


def worker_peak(acts: Path, args: argparse.Namespace) -> tuple[float, float]:
    """The biggest task (layer 0, joint) alone in a fresh process: its peak RSS and the task's estimate, in MB."""
    from xlray.concepts.tasks import JOINT, concept_jobs, part_name
    from xlray.extract.reader import open_activations

    cfg = config(acts, Path("unused"), args)
    acts_ = open_activations(acts)
    job = next(j for j in concept_jobs(acts_, cfg, [0], None) if j.name == part_name(0, JOINT))
    code = (
        "import resource, sys; from xlray.concepts.tasks import cluster_view; from xlray.concepts.cluster import "
        "FastHdbscanConfig; from xlray.concepts.points import PointsConfig; from xlray.fanout import timed; "
        f"timed(cluster_view, 1, {str(acts)!r}, 0, ['xc', 'en'], 'encoder', PointsConfig(pca_dim=None), "
        f"FastHdbscanConfig(min_cluster_size={args.min_cluster_size}), 0); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1]) / 1e3, job.memory / 1e6


def three_nodes(acts: Path, out: Path, args: argparse.Namespace) -> tuple[float, float, Counter]:
    """The fan-out on a local 3-node cluster (three raylets, 1 CPU each)."""
    import ray
    from ray.cluster_utils import Cluster

    ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        compile_s = warm_up(3, 1)
        print(f"  3-node warm-up (numba compiles in each new worker): {compile_s:.1f} s")
        return fan_out(acts, out, args)
    finally:
        ray.shutdown()
        cluster.shutdown()


def main(argv: list[str] | None = None) -> int:
    import ray
    from test_concepts_tasks import build_word_activations

    args = parse_args(argv)
    root = args.folder or Path(tempfile.mkdtemp(prefix="bench-concept-tasks-"))
    figures: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "load_before": load()}
    print(f"load average before: {figures['load_before']}")
    try:
        acts = root / "acts"
        if not (acts / "manifest.json").exists():
            start = time.perf_counter()
            shards = max(2, args.points // 12_500)
            build_word_activations(acts, layers=tuple(range(args.layers)), n=args.points, d=args.dim,
                                   concepts=args.concepts, spread=args.spread, shards=shards)  # fmt: skip
            print(f"built {acts}: {args.layers} layers x 2 x {args.points} x {args.dim}-d in "
                  f"{time.perf_counter() - start:.1f} s")  # fmt: skip
        layer_mb = 2 * args.points * args.dim * 4 / 1e6
        figures["one_layer_points_mb"] = layer_mb
        cores = os.cpu_count() or 1
        ray.init(address="local", num_cpus=cores, include_dashboard=False, log_to_driver=False)
        figures["warm_up_s"] = warm_up(cores, cores)
        print(f"warm-up (numba compiles here and in {cores} workers): {figures['warm_up_s']:.1f} s")
        runs: dict[str, list] = {"serial": [], "fan_out": []}
        for repeat in range(args.repeats):
            runs["serial"].append(serial(acts, root / "serial", args, cores))
            runs["fan_out"].append(fan_out(acts, root / "out", args)[:2])
            print(f"  repeat {repeat + 1}: serial {runs['serial'][-1][0]:.1f} s, fan-out {runs['fan_out'][-1][0]:.1f} s"
                  f" (load {load()})")  # fmt: skip
        for mode, values in runs.items():
            figures[mode] = {"seconds": [round(v[0], 2) for v in values],
                             "median_s": statistics.median(v[0] for v in values),
                             "driver_peak_mb": max(v[1] for v in values)}  # fmt: skip
        figures["fan_out_over_serial"] = figures["fan_out"]["median_s"] / figures["serial"]["median_s"]
        if not args.no_check:
            figures["tasks_equal_inline"] = check_identity(acts, args)
        figures["joint_task_peak_mb"], figures["joint_task_estimate_mb"] = worker_peak(acts, args)
        if not args.no_cluster:
            seconds, peak, nodes = three_nodes(acts, root / "cluster-out", args)
            figures["three_nodes"] = {"seconds": round(seconds, 2), "driver_peak_mb": peak,
                                      "tasks_per_node": sorted(nodes.values(), reverse=True)}  # fmt: skip
    finally:
        if ray.is_initialized():
            ray.shutdown()
        if args.folder is None:
            shutil.rmtree(root, ignore_errors=True)
    figures["load_after"] = load()
    print(json.dumps(figures, indent=1))
    s, f = figures["serial"], figures["fan_out"]
    print(f"serial {s['median_s']:.1f} s vs fan-out {f['median_s']:.1f} s (ratio {figures['fan_out_over_serial']:.2f});"
          f" driver peak above start: serial {s['driver_peak_mb']:.0f} MB, fan-out {f['driver_peak_mb']:.0f} MB;"
          f" one layer's points {figures['one_layer_points_mb']:.0f} MB; load {figures['load_before']} -> "
          f"{figures['load_after']}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
