"""Benchmark concept discovery: time, peak memory and agreement of each clustering method against N points.

    python tests/benchmarks/bench_concepts.py                       # 10k .. 1M planted points, 64-d, 10 min cap
    python tests/benchmarks/bench_concepts.py --sizes 10000 30000 --time-cap 60
    python tests/benchmarks/bench_concepts.py --activations layer6.npy   # real vectors (n, d); PCA to --dim
    python tests/benchmarks/bench_concepts.py --methods fast-hdbscan --neighbors exact --sizes 10000  # exact MST

Each (method, N) runs in its own subprocess, so its peak RSS (its own VmHWM: the interpreter and the libraries,
about 0.3 GB, the points and the method) is measured alone and a run over the time or memory cap is killed; a method
is not tried at larger N once it failed. Time is the clustering call only (points are prepared once, beforehand, and
memory-mapped); its CPU time is printed too, a check on a machine shared with other work. Prints a table, each
method's growth exponent (slope of log time against log N) and the adjusted Rand index (ARI) against the planted
concepts and of fast-hdbscan against classic hdbscan at every N where both ran.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

METHODS = ("fast-hdbscan", "hdbscan", "kmeans", "agglomerative")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000, 300_000, 1_000_000])
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--dim", type=int, default=64, help="Point dimension (PCA target for --activations)")
    p.add_argument("--concepts", type=int, default=100, help="Planted concepts; also K for k-means and Ward")
    p.add_argument("--spread", type=float, default=0.4, help="Std of a planted concept (centres have std 1)")
    p.add_argument("--noise", type=float, default=0.05, help="Fraction of uniform background points")
    p.add_argument("--min-cluster-size", type=int, default=20)
    p.add_argument("--min-samples", type=int, default=None)
    p.add_argument("--neighbors", choices=("approximate", "exact"), default="approximate", help="fast-hdbscan MST")
    p.add_argument("--knn-k", type=int, default=None, help="fast-hdbscan k-NN graph size; default 2 x min_samples")
    p.add_argument("--time-cap", type=float, default=600.0, help="Seconds per (method, N) run")
    p.add_argument("--mem-cap-gb", type=float, default=8.0, help="Peak RSS per run; larger runs are killed")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--activations", type=Path, help=".npy file (n, d), or a folder of them stacked by rows")
    p.add_argument("--json", type=Path, help="Also write the results here")
    p.add_argument("--worker", nargs=3, metavar=("METHOD", "N", "DIR"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def planted_points(n: int, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """n points (float32) in shuffled order: equal-sized gaussian concepts plus uniform background (label -1)."""
    rng = np.random.default_rng(args.seed)
    n_noise = int(n * args.noise)
    labels = np.concatenate([np.arange(n - n_noise) % args.concepts, np.full(n_noise, -1)])
    rng.shuffle(labels)
    centres = rng.standard_normal((args.concepts, args.dim), dtype=np.float32)
    x = rng.standard_normal((n, args.dim), dtype=np.float32)
    x *= args.spread
    inside = labels >= 0
    x[inside] += centres[labels[inside]]
    lo, hi = centres.min() - 3 * args.spread, centres.max() + 3 * args.spread
    x[~inside] = rng.uniform(lo, hi, size=(n_noise, args.dim)).astype(np.float32)
    return x, labels


def activation_points(path: Path, n: int, args: argparse.Namespace) -> np.ndarray:
    """Up to n rows of real vectors (seeded sample, shuffled), L2-normalised and reduced by PCA to --dim."""
    from xlray.concepts.points import PointsConfig, prepare_points

    files = sorted(path.glob("*.npy")) if path.is_dir() else [path]
    if not files:
        sys.exit(f"{path}: no .npy files")
    x = np.concatenate([np.load(f, mmap_mode="r") for f in files])
    rows = np.random.default_rng(args.seed).permutation(len(x))[:n]
    return prepare_points(x[rows], PointsConfig(pca_dim=args.dim), seed=args.seed, name=str(path)).x


def method_config(method: str, args: argparse.Namespace):
    from xlray.concepts import cluster as c

    if method in ("fast-hdbscan", "hdbscan"):
        if method == "hdbscan":
            return c.HdbscanConfig(min_cluster_size=args.min_cluster_size, min_samples=args.min_samples)
        return c.FastHdbscanConfig(
            min_cluster_size=args.min_cluster_size,
            min_samples=args.min_samples,
            neighbors=args.neighbors,
            knn_k=args.knn_k,
        )
    if method == "kmeans":
        return c.KMeansConfig(n_clusters=args.concepts)
    return c.AgglomerativeConfig(n_clusters=args.concepts)


def worker(method: str, n: int, folder: Path, args: argparse.Namespace) -> None:
    """Cluster the first n prepared points; save labels, print timing as JSON."""
    from xlray.concepts.cluster import cluster

    x = np.load(folder / "points.npy", mmap_mode="r")[:n]
    x = np.ascontiguousarray(x)
    cfg = method_config(method, args)
    if method == "fast-hdbscan":  # numba compiles (or loads its cache) on the first call: keep that out of the time
        cluster(x[:2000], cfg)
    start, cpu_start = time.perf_counter(), time.process_time()
    res = cluster(x, cfg, seed=args.seed)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    np.save(folder / f"labels-{method}-{n}.npy", res.labels)
    # The worker's own high-water mark: wait4's ru_maxrss would report the parent's RSS at (v)fork-and-exec.
    peak_gb = proc_status_gb("self", "VmHWM")
    out = {"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_gb": peak_gb}
    print(json.dumps({**out, "clusters": res.n_clusters, "noise": res.noise_fraction}))


def run_one(method: str, n: int, folder: Path, argv: list[str], args: argparse.Namespace) -> dict:
    """Run one worker subprocess under the time and memory caps; returns its measurements or why it failed."""
    cmd = [sys.executable, __file__, *argv, "--worker", method, str(n), str(folder)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    start, status, why = time.time(), None, None
    while status is None:
        pid, code, _ = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            status = code
            break
        if time.time() - start > args.time_cap:
            why = f"over {args.time_cap:.0f} s"
        elif proc_status_gb(proc.pid, "VmRSS") > args.mem_cap_gb:
            why = f"over {args.mem_cap_gb:g} GB"
        if why:
            proc.kill()
            proc.wait()
            return {"method": method, "n": n, "failed": why}
        time.sleep(0.1)
    out, err = proc.stdout.read(), proc.stderr.read()
    if status != 0:
        return {"method": method, "n": n, "failed": (err.strip().splitlines() or ["crashed"])[-1][:80]}
    return {"method": method, "n": n, **json.loads(out.strip().splitlines()[-1])}


def proc_status_gb(pid: int | str, field: str) -> float:
    """A memory field of /proc/PID/status (VmRSS: now, VmHWM: peak) in GiB; 0 once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def ari(a: np.ndarray, b: np.ndarray) -> float:
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(a, b))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.worker:
        return worker(args.worker[0], int(args.worker[1]), Path(args.worker[2]), args)
    sizes = sorted(args.sizes)
    with tempfile.TemporaryDirectory(prefix="xlray-bench-") as tmp:
        folder = Path(tmp)
        if args.activations:
            x, truth = activation_points(args.activations, sizes[-1], args), None
            sizes = [n for n in sizes if n <= len(x)] or [len(x)]
        else:
            x, truth = planted_points(sizes[-1], args)
        np.save(folder / "points.npy", x)
        print(f"points: {len(x)} x {x.shape[1]} ({'planted' if truth is not None else args.activations})")
        del x
        results, failed = [], set()
        for n in sizes:
            for method in args.methods:
                if method in failed:
                    continue
                need_gb = n * n * 4 / 2**30  # Ward's condensed float64 distance matrix: n^2 / 2 doubles
                if method == "agglomerative" and need_gb > args.mem_cap_gb:
                    r = {"method": method, "n": n, "failed": f"needs ~{need_gb:.0f} GB"}
                else:
                    r = run_one(method, n, folder, argv, args)
                if "failed" in r:
                    failed.add(method)
                elif truth is not None:
                    r["ari_planted"] = ari(truth[:n], np.load(folder / f"labels-{method}-{n}.npy"))
                results.append(r)
                print(row(r), flush=True)
            pair = [folder / f"labels-{m}-{n}.npy" for m in ("fast-hdbscan", "hdbscan")]
            if all(p.is_file() for p in pair):
                agree = ari(*(np.load(p) for p in pair))
                results.append({"n": n, "ari_fast_vs_classic": agree})
                print(f"  N={n}: ARI fast-hdbscan vs classic hdbscan = {agree:.4f}", flush=True)
    summary(results, args)


def row(r: dict) -> str:
    head = f"{r['method']:>14} N={r['n']:>8}"
    if "failed" in r:
        return f"{head}  not run: {r['failed']}"
    ari_txt = f"  ARI(planted) {r['ari_planted']:.4f}" if "ari_planted" in r else ""
    return (
        f"{head}  {r['seconds']:8.2f} s (cpu {r['cpu_seconds']:7.1f} s)  peak {r['peak_gb']:5.2f} GB"
        f"  clusters {r['clusters']:5d}"
        f"  noise {r['noise']:.3f}{ari_txt}"
    )


def summary(results: list[dict], args: argparse.Namespace) -> None:
    print("\ngrowth exponent (log-log slope of time vs N):")
    for method in args.methods:
        done = [r for r in results if r.get("method") == method and "seconds" in r]
        if len(done) >= 2:
            slope = np.polyfit(np.log([r["n"] for r in done]), np.log([r["seconds"] for r in done]), 1)[0]
            print(f"  {method:>14}: {slope:.2f}  (N {done[0]['n']}..{done[-1]['n']})")
        else:
            print(f"  {method:>14}: n/a (fewer than two sizes ran)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
