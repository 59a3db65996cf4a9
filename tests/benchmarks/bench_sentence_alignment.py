"""Benchmark `xlray sentence-alignment`: time per layer and peak memory at 20k parallel sentences, 256-d.

    python tests/benchmarks/bench_sentence_alignment.py                    # 20k x 20k, 256-d, 3 layers, block 4096
    python tests/benchmarks/bench_sentence_alignment.py --sentences 5000 --block-size 1024 --layers 2

Writes a sentence-level extraction (two languages, planted translations: y = x + noise, fp16 shards in the real
format) to a temporary folder, then measures in a fresh subprocess, so its peak RSS (``ru_maxrss``: interpreter,
libraries, the shards read and the scoring) is its own and not the builder's:
- per layer: reading both languages' matrices (``Activations.matrix`` through the stage's reader) and scoring the
  pair (MEXA, retrieval both ways, cosine gap, CKA over the blocked cosine matrix); the median over layers;
- the whole stage (``run_sentence_alignment``, tracking off: results, plot, manifest).
Target: the whole run within 2 GB peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_GB = 2.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sentences", type=int, default=20_000)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--block-size", type=int, default=4096)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def build(folder: Path, args: argparse.Namespace) -> None:
    """One shard per layer and language; noise grows with the layer so MEXA falls from 1 toward 0."""
    import pyarrow as pa

    from xlray.extract.shards import write_shard
    from xlray.outputs import write_json

    rng = np.random.default_rng(args.seed)
    n, d = args.sentences, args.dim
    ids = pa.array([f"flores:{i:06d}" for i in range(n)])
    shards = []
    for layer in range(args.layers):
        base = rng.standard_normal((n, d), dtype=np.float32)
        for lang in ("en", "de"):
            x = (base + (0.5 + layer) * rng.standard_normal((n, d), dtype=np.float32)).astype(np.float16)
            table = pa.table({
                "sentence_id": ids,
                "language": pa.array([lang] * n),
                "site": pa.array(["encoder"] * n),
                "layer": pa.array(np.full(n, layer, np.int16)),
                "tokens": pa.array(np.full(n, 20, np.int32)),
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), d),
            })  # fmt: skip
            chunk = f"{layer:03d}-{lang}"
            write_shard(str(folder / "shards"), chunk, table, json.dumps({"sentences": n}))
            shards.append(f"shards/{chunk}.parquet")
    config = {"model": {"name": "bench-llm"}, "languages": ["en", "de"], "sites": ["encoder"],
              "granularity": "sentence", "sentence_pooling": "mexa"}  # fmt: skip
    manifest = {"config": config, "model": {"name": "bench-llm", "layers": args.layers - 1, "hidden_size": d},
                "layers": list(range(args.layers)), "shards": shards}  # fmt: skip
    write_json(folder / "manifest.json", manifest)


def worker(folder: Path, args: argparse.Namespace) -> None:
    """Measure in this process: each layer read and scored, then the whole stage; prints one JSON line."""
    from xlray.extract.reader import open_activations
    from xlray.sentence_alignment.config import SentenceAlignmentConfig
    from xlray.sentence_alignment.run import parallel_rows, read_language, run_sentence_alignment
    from xlray.sentence_alignment.scores import pair_scores

    acts = open_activations(folder)
    layers = []
    for layer in acts.layers:
        started = time.perf_counter()
        (x, ids_x), (y, ids_y) = (read_language(acts, layer, lang, "encoder") for lang in ("en", "de"))
        read = time.perf_counter()
        rows_x, rows_y = parallel_rows(acts, layer, ("en", ids_x), ("de", ids_y))
        scores = pair_scores(x[rows_x], y[rows_y], args.block_size)
        layers.append({"layer": layer, "read_s": read - started, "score_s": time.perf_counter() - read,
                       "mexa": scores.mexa, "n": scores.n})  # fmt: skip
        del x, y
    cfg = SentenceAlignmentConfig(
        activations=str(folder), output_dir=str(folder / "out"), block_size=args.block_size, tracking={"enabled": False}
    )
    started = time.perf_counter()
    run_sentence_alignment(cfg)
    stage_s = time.perf_counter() - started
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    print(json.dumps({"layers": layers, "stage_s": stage_s, "peak_gb": peak_gb}))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker(args.worker, args)
        return 0
    with tempfile.TemporaryDirectory(prefix="xlray-bench-sa-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        build(folder, args)
        print(f"built {args.layers} layers x 2 languages x {args.sentences} sentences, {args.dim}-d fp16 "
              f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
        cmd = [sys.executable, __file__, *(argv or sys.argv[1:]), "--worker", str(folder)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    for row in result["layers"]:
        print(f"layer {row['layer']}: read {row['read_s']:.2f} s, score {row['score_s']:.2f} s, "
              f"MEXA {row['mexa']:.4f} over n = {row['n']}")  # fmt: skip
    read = statistics.median(r["read_s"] for r in result["layers"])
    score = statistics.median(r["score_s"] for r in result["layers"])
    per_layer = statistics.median(r["read_s"] + r["score_s"] for r in result["layers"])
    print(f"median per layer: {per_layer:.2f} s (read {read:.2f} s, score {score:.2f} s), "
          f"block {args.block_size} rows")  # fmt: skip
    print(f"whole stage (tracking off): {result['stage_s']:.2f} s for {args.layers} layers")
    verdict = "within" if result["peak_gb"] <= TARGET_GB else "OVER"
    print(f"peak RSS of the measuring process: {result['peak_gb']:.2f} GB ({verdict} the {TARGET_GB:g} GB target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
