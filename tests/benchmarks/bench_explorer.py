"""Benchmark the concept explorer page: its size and its load time in headless Chromium, at a real run's scale.

    python tests/benchmarks/bench_explorer.py                          # 13 layers, 10k concepts a layer, 5 loads
    python tests/benchmarks/bench_explorer.py --concepts 30000         # 10k a view (source, target, joint)
    python tests/benchmarks/bench_explorer.py --layers 3 --concepts 1000 --loads 3   # a quick look

Builds synthetic inputs of `write_explorer` in a temporary folder: an extraction folder (one shard a layer, 16-d
vectors, read back through the lazy reader as in a run), the assignments of ``--occurrences`` occurrences per
language over ``--types`` word types at each layer, ``--concepts`` concepts a layer split over the three views
(noise 20 %; a word's occurrences mostly in one concept, its translation's mostly in the matching one, so CALIGN
finds matches), D_1 (word i <-> word i), results, and the gold words (each type's concept). Then writes the page,
and loads it ``--loads`` times in a fresh headless Chromium tab each. Prints the page and explorer.json sizes, the
build time, and the median (min-max) of: load (navigation start to the end of the page's first render, from
``window.explorerReady``), the embedded JSON's parse, the first render, and a layer switch and a word search
(synchronous re-render, timed in the page). Needs chromium, chromium-driver and selenium (see README).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared browser launcher
from headless_chromium import start_chromium  # noqa: E402

from xlray.concepts.config import ConceptsConfig
from xlray.concepts.explorer import write_explorer

HIDDEN = 16
CAP = 15  # occurrences kept per word type (xlray.extract.cap's default)
SRC, TGT = "xs", "xt"


def occurrences(n: int, types: int, zipf: float, rng: np.random.Generator) -> tuple[pl.DataFrame, np.ndarray]:
    """``n`` occurrences of each language: word types drawn by a Zipf law of exponent ``zipf`` over ``types`` ranks,
    at most CAP occurrences a type as the extraction keeps them (word k of xs is 's<k>', its translation 't<k>');
    their rows and their word numbers (language after language)."""
    p = 1.0 / np.arange(1, types + 1) ** zipf
    draws = rng.choice(types, size=4 * n, p=p / p.sum())
    order = np.argsort(draws, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(draws)) - np.searchsorted(draws[order], draws[order])  # occurrence number per type
    k = draws[rank < CAP][:n]
    sentence = np.arange(len(k)) // 8 + 1
    frames = [
        pl.DataFrame({
            "sentence_id": [f"bench:{s}" for s in sentence], "language": lang,
            "word": [f"{prefix}{i}" for i in k], "word_index": (np.arange(len(k)) % 8).astype(np.int32),
        })
        for lang, prefix in ((SRC, "s"), (TGT, "t"))
    ]  # fmt: skip
    return pl.concat(frames), np.concatenate([k, k])


def write_activations(folder: Path, rows: pl.DataFrame, layers: int, rng: np.random.Generator) -> None:
    """A finished word-level extraction of ``rows``: one shard per layer, random HIDDEN-d vectors."""
    (folder / "shards").mkdir(parents=True)
    shards = []
    for layer in range(layers):
        table = rows.with_columns(site=pl.lit("encoder"), layer=pl.lit(layer, pl.Int16)).to_arrow()
        flat = rng.normal(size=rows.height * HIDDEN).astype(np.float32)
        table = table.append_column("vector", pa.FixedSizeListArray.from_arrays(pa.array(flat), HIDDEN))
        pq.write_table(table, folder / "shards" / f"layer{layer}.parquet", compression="zstd")
        shards.append(f"shards/layer{layer}.parquet")
    config = {"languages": [SRC, TGT], "sites": ["encoder"], "granularity": "word", "model": {"name": "bench"}}
    (folder / "manifest.json").write_text(
        json.dumps({"layers": list(range(layers)), "config": config, "shards": shards})
    )


def assignments(rows: pl.DataFrame, k: np.ndarray, layers: int, concepts: int, types: int, rng) -> pl.DataFrame:
    """Per layer: concepts split over source, target and joint; a word type's home concept per view, where 75 % of
    its occurrences fall (5 % elsewhere, 20 % noise); a translation pair shares its home up to a permutation."""
    n = rows.height // 2
    per_view = {SRC: concepts // 3, TGT: concepts // 3, "joint": concepts - 2 * (concepts // 3)}
    frames = []
    for layer in range(layers):
        home_src = rng.integers(0, per_view[SRC], types)
        remap = rng.permutation(per_view[SRC]) % per_view[TGT]
        homes = {
            SRC: home_src,
            TGT: np.where(rng.random(types) < 0.8, remap[home_src], rng.integers(0, per_view[TGT], types)),
        }
        homes["joint"] = rng.integers(0, per_view["joint"], types)
        for view, size in per_view.items():
            part = rows if view == "joint" else rows.filter(pl.col("language") == view)
            kk = k if view == "joint" else (k[:n] if view == SRC else k[n:])
            draw = rng.random(len(kk))
            labels = np.where(draw < 0.75, homes[view][kk], np.where(draw < 0.8, rng.integers(0, size, len(kk)), -1))
            frames.append(part.with_columns(layer=pl.lit(layer, pl.Int64), view=pl.lit(view), cluster=labels))
    return pl.concat(frames).select("layer", "view", "language", "sentence_id", "word", "word_index", "cluster")


def build(args: argparse.Namespace, folder: Path) -> tuple[Path, float]:
    """Write the synthetic inputs and the page into ``folder``; the page's path and write_explorer's seconds."""
    rng = np.random.default_rng(0)
    rows, k = occurrences(args.occurrences, args.types, args.zipf, rng)
    write_activations(folder / "activations", rows, args.layers, rng)
    frame = assignments(rows, k, args.layers, args.concepts, args.types, rng)
    gold = rows.select(
        "language", (pl.col("sentence_id").str.extract(r":(\d+)$").cast(pl.Int64) - 1).alias("sentence"),
        pl.col("word_index").alias("index"), "word", pl.Series("concept", [f"c{i % 500}" for i in k]),
    )  # fmt: skip
    gold.write_parquet(folder / "words.parquet")
    results = {
        layer: {
            f"calign.{SRC}_{TGT}": float(v),
            f"calign.{TGT}_{SRC}": float(w),
            "colap": 0.3,
            "noise_fraction.joint": 0.2,
        }
        for layer, (v, w) in enumerate(rng.random((args.layers, 2)))
    }
    forward = {f"s{i}": [f"t{i}"] for i in range(args.types)}
    reverse = {f"t{i}": [f"s{i}"] for i in range(args.types)}
    cfg = ConceptsConfig(
        activations=str(folder / "activations"), source=SRC, target=TGT,
        dictionary={"kind": "file", "path": str(folder / "unused.parquet")}, output_dir=str(folder / "concepts"),
        explorer={"map_points": args.map_points, "gold_words": str(folder / "words.parquet")},
    )  # fmt: skip
    start = time.perf_counter()
    write_explorer(cfg, str(folder / "page"), frame, results, forward, reverse, "bench")
    return folder / "page" / "explorer.html", time.perf_counter() - start


def load_times(page: Path, loads: int) -> dict[str, list[float]]:
    """Per load, in a fresh tab: the page's own timings (ms), and a layer switch and a search after it."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver = start_chromium()
    times: dict[str, list[float]] = {"load": [], "unpack+parse": [], "render": [], "layer switch": [], "search": []}
    try:
        for _ in range(loads):
            driver.switch_to.new_window("tab")
            driver.get(page.as_uri())
            WebDriverWait(driver, 60).until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")
            ready = driver.execute_script("return [window.explorerReady, window.explorerTimings]")
            times["load"].append(ready[0])
            times["unpack+parse"].append(ready[1]["data_ms"])
            times["render"].append(ready[1]["render_ms"])
            times["layer switch"].append(driver.execute_script(
                "const s = document.getElementById('layer'); const t = performance.now();"
                "s.value = '0'; s.dispatchEvent(new Event('change')); return performance.now() - t;"
            ))  # fmt: skip
            times["search"].append(driver.execute_script(
                "const s = document.getElementById('search'); const t = performance.now(); s.value = 's1';"
                "s.dispatchEvent(new Event('input'));"
                "s.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter'})); return performance.now() - t;"
            ))  # fmt: skip
    finally:
        driver.quit()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=13)
    parser.add_argument("--concepts", type=int, default=10_000, help="a layer, over the three views")
    parser.add_argument("--types", type=int, default=20_000, help="word types per language")
    parser.add_argument("--occurrences", type=int, default=60_000, help="per language and layer")
    parser.add_argument("--zipf", type=float, default=1.0, help="exponent of the word types' Zipf law; 0: uniform")
    parser.add_argument("--map-points", type=int, default=3000)
    parser.add_argument("--loads", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-explorer-") as tmp:
        page, seconds = build(args, Path(tmp))
        html_mb, json_mb = page.stat().st_size / 1e6, page.with_suffix(".json").stat().st_size / 1e6
        used = len(json.loads(page.with_suffix(".json").read_text(encoding="utf-8"))["vocab"][SRC])
        print(f"{args.layers} layers, {args.concepts:,} concepts a layer; per language {args.occurrences:,} "
              f"occurrences of {used:,} word types (Zipf {args.zipf} over {args.types:,}, at most {CAP} each); "
              f"map {args.map_points:,} points a layer")  # fmt: skip
        print(f"explorer.html {html_mb:.1f} MB, explorer.json {json_mb:.1f} MB; write_explorer {seconds:.1f} s")
        for name, values in load_times(page, args.loads).items():
            print(f"{name:>13}: median {statistics.median(values):7.0f} ms  ({min(values):.0f}-{max(values):.0f})")


if __name__ == "__main__":
    main()
