"""Sentence-level extraction throughput with a decoder-only LLM, side by side in one run (a script, not a test).

Model: a random-init llama-family model (byte-level BPE trained on the synthetic world, 4 layers x 256 by default)
built by ``xlray.world.tiny_models.build_tiny_model``. Corpus: the world's xl-en parallel sentences, repeated and
shuffled as pairs to ``--sentences`` sentences (half a pair each side), written as a parallel corpus.

(a) `xlray extract` with ``granularity: sentence`` (``sentence_pooling: mexa`` by default), all layers, fp16,
    tracking off, in this process through ``run_extract`` on a Ray this script started once, a fresh output folder
    each repeat (bench_extract.py's default protocol): the actors' start-up and model loading are counted,
    ``ray.init`` is not. Without GPUs: one plain Ray actor a core tokenizes, runs, pools and writes its chunks;
(b) a bare batched forward pass in one process using every core: torch + transformers (``AutoTokenizer``,
    ``AutoModel``), the same text and model, tokenizing included, sentences sorted by token length, batches of the
    same size, ``output_hidden_states=True``, nothing pooled or written;
(b2) the same bare forward split over one single-threaded process per core (the layout (a) uses without GPUs);
(c) MEXA's extractor (cisnlp/MEXA ``embed_extractor.py``): one sentence at a time (batch of 1), every layer's
    position-weighted mean by per-sentence torch ops, each vector appended to a per-layer list of dicts and the
    whole pickled at the end; measured on a prefix (``--classic-sentences``) of the same shuffled sentences.
Targets: (a) >= 0.85 x (b) and >= 3 x (c) in sentences/s.

Peak memory of (a) at two sizes (``--memory-sizes``, default N/10 and N): each in a fresh subprocess that starts
its own local Ray and runs ``run_extract`` with the same number of actors (``--memory-actors``, default one a core:
with ``actors: auto`` a corpus of one chunk would start one actor, and the tree would differ by a process, not by
data). This script samples (every 50 ms, psutil) the resident memory of that subprocess and every process under it
(Ray's GCS, raylet, agents and the actors), and reports the peak of the sum and the peak of the largest
``ExtractChunks`` actor. Target: flat within 20%. ``--memory-only`` runs just these.

--profile: where the time of (a) goes: an actor's start in a fresh process (imports, model load); on a local Ray,
the seconds until one actor a core is ready, and one ``run_extract`` split into its actor pool and the driver's
rest; then one actor's chunks in this process without Ray on one thread, split into reading and tokenizing,
collating, the forward pass, pooling, the host copy, building the table and writing the shard.

    python tests/benchmarks/bench_sentence_extract.py                       # 20k sentences, medians of 3
    python tests/benchmarks/bench_sentence_extract.py --repeats 1 --sentences 2000 --classic-sentences 500
    python tests/benchmarks/bench_sentence_extract.py --profile
    python tests/benchmarks/bench_sentence_extract.py --memory-only --memory-sizes 20000,200000
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_extract import load, wait_for_load  # noqa: E402 - the sibling script's helpers


def build(work: Path, n: int, world_sentences: int, hidden: int, layers: int, vocab: int) -> tuple[Path, Path, Path]:
    """The world, the llama model trained on its text, and ``n`` sentences as a parallel corpus (src, tgt)."""
    from xlray.world.build import WorldConfig, write_world
    from xlray.world.tiny_models import build_tiny_model, world_texts

    world = write_world(WorldConfig(parallel_sentences=world_sentences), work / "world")
    model = build_tiny_model("llama", world_texts(world), work / "model", hidden=hidden, layers=layers, vocab=vocab)
    source, target = corpus(world, work / f"corpus-{n}", n)
    return source, target, model


def corpus(world: Path, stem: Path, n: int, seed: int = 0) -> tuple[Path, Path]:
    """``n`` sentences (``n // 2`` pairs) of the world's xl-en pairs, repeated and shuffled as pairs."""
    src = (world / "parallel" / "xl-en.xl").read_text(encoding="utf-8").splitlines()
    tgt = (world / "parallel" / "xl-en.en").read_text(encoding="utf-8").splitlines()
    rng = random.Random(seed)
    pairs = []
    while len(pairs) < n // 2:
        block = list(zip(src, tgt, strict=True))
        rng.shuffle(block)
        pairs += block[: n // 2 - len(pairs)]
    source, target = stem.with_suffix(".xl"), stem.with_suffix(".en")
    source.write_text("".join(s + "\n" for s, _ in pairs), encoding="utf-8")
    target.write_text("".join(t + "\n" for _, t in pairs), encoding="utf-8")
    return source, target


def sentences_of(source: Path, target: Path) -> list[str]:
    """The corpus's sentences in the order extraction reads them: each pair's source, then its target."""
    src = source.read_text(encoding="utf-8").splitlines()
    tgt = target.read_text(encoding="utf-8").splitlines()
    return [" ".join(line.split()) for pair in zip(src, tgt, strict=True) for line in pair]


def extract_config(source: Path, target: Path, model: Path, out: Path, args: argparse.Namespace, actors="auto"):
    from xlray.extract.config import ExtractConfig

    return ExtractConfig(
        model={"name": str(model)},
        inputs=[{"format": "parallel", "source": str(source), "target": str(target),
                 "source_language": "xl", "target_language": "en"}],
        languages=["xl", "en"], output_dir=str(out), granularity="sentence", sentence_pooling=args.pooling,
        batch_size=args.batch_size, actors=actors, tracking={"enabled": False},
    )  # fmt: skip


def run_xlray(source: Path, target: Path, model: Path, out: Path, args: argparse.Namespace) -> tuple[float, dict]:
    """(a): seconds of ``run_extract`` on the running Ray, and its manifest."""
    from xlray.extract.run import run_extract

    cfg = extract_config(source, target, model, out, args)
    start = time.perf_counter()
    manifest = run_extract(cfg)
    seconds = time.perf_counter() - start
    shutil.rmtree(out / "shards")  # 51 MB a run at 20k; the manifest stays
    return seconds, manifest


def load_bare(model: Path):
    """Tokenizer and model through plain transformers, as a user's script would load them."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, AutoModel.from_pretrained(model, dtype=torch.float32).eval()


def bare_forward(texts: list[str], model: Path, threads: int, batch_size: int, ready=None) -> float:
    """(b): seconds of tokenizing and length-sorted batched forward passes with all hidden states, nothing kept."""
    torch.set_num_threads(threads)
    tokenizer, lm = load_bare(model)
    if ready is not None:
        ready.wait()
    start = time.perf_counter()
    ids = tokenizer(texts)["input_ids"]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    with torch.inference_mode():
        for k in range(0, len(order), batch_size):
            batch = tokenizer.pad({"input_ids": [ids[i] for i in order[k : k + batch_size]]}, return_tensors="pt")
            lm(**batch, output_hidden_states=True)
    return time.perf_counter() - start


def bare_forward_part(part) -> float:
    texts, model, batch_size, ready = part
    return bare_forward(texts, model, 1, batch_size, ready)


def bare_forward_per_core(texts: list[str], model: Path, batch_size: int, cores: int) -> float:
    """(b2): wall seconds of ``cores`` single-threaded processes each running its share (timed once all loaded)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(cores) as pool:
        ready = manager.Barrier(cores)
        return max(pool.map(bare_forward_part, [(texts[k::cores], model, batch_size, ready) for k in range(cores)]))


def weighted_embedding(layer: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """MEXA's ``embd_weighted`` of one sentence: the t-th real token weighs t; float16 on the host."""
    weights = mask * torch.arange(1, layer.shape[1] + 1).unsqueeze(0)
    total = torch.sum(layer * weights.unsqueeze(-1), dim=1)
    return (total / torch.sum(weights, dim=-1).unsqueeze(-1)).squeeze().to(torch.float16).numpy()


def one_at_a_time(texts: list[str], model: Path, out: Path) -> float:
    """(c): seconds of MEXA's extractor loop over ``texts`` (batch of 1), the pickle at the end included."""
    tokenizer, lm = load_bare(model)
    start = time.perf_counter()
    embeddings: dict[int, list[dict]] = {}
    for number, text in enumerate(texts, 1):
        tokens = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            states = lm(**tokens, output_hidden_states=True).hidden_states
            for layer, h in enumerate(states):
                vector = weighted_embedding(h, tokens.attention_mask)
                embeddings.setdefault(layer, []).append({"id": number, "embd_weighted": vector})
    with (out / "c-embeddings.pkl").open("wb") as sink:
        pickle.dump(embeddings, sink)
    return time.perf_counter() - start


class TreePeak:
    """Peak resident memory of a process and everything under it, sampled every 50 ms: of the sum, and of each
    extraction actor (a Ray worker whose process title names ``ExtractChunks``)."""

    def __init__(self, pid: int):
        self.root, self.sum_peak, self.by_pid, self.actors = psutil.Process(pid), 0, {}, set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self) -> None:
        while not self.stop.is_set():
            total = 0
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:  # the root is gone
                procs = []
            for p in procs:
                try:
                    rss = p.memory_info().rss
                    # Ray retitles a worker (ray::ExtractChunks.one) once it holds the actor
                    if "ExtractChunks" in p.name() or "ExtractChunks" in " ".join(p.cmdline()[:1]):
                        self.actors.add(p.pid)
                except psutil.Error:
                    continue
                total += rss
                self.by_pid[p.pid] = max(self.by_pid.get(p.pid, 0), rss)
            self.sum_peak = max(self.sum_peak, total)
            time.sleep(0.05)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()

    def largest_actor(self) -> int:
        return max((self.by_pid[pid] for pid in self.actors), default=0)


def memory_run(source: Path, target: Path, model: Path, out: Path, args: argparse.Namespace) -> dict:
    """(a) at one size in a fresh subprocess with its own local Ray; its tree's peak RSS and the seconds."""
    command = [sys.executable, str(Path(__file__).resolve()), "--memory-worker", str(source), str(target),
               str(model), str(out), "--pooling", args.pooling, "--batch-size", str(args.batch_size)]  # fmt: skip
    command += ["--memory-actors", str(args.memory_actors)]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    with (out.parent / f"{out.name}.log").open("w") as log:
        child = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        peak = TreePeak(child.pid)
        child.wait()
        peak.close()
    if child.returncode:
        raise SystemExit(f"memory run failed ({child.returncode}); see {out.parent / f'{out.name}.log'}")
    manifest = json.loads((out / "manifest.json").read_text())
    shutil.rmtree(out / "shards")
    counts = manifest["counts"]
    return {"sum": peak.sum_peak, "actor": peak.largest_actor(), "actors": len(peak.actors),
            "sentences": counts["sentences"], "seconds": manifest["seconds"]}  # fmt: skip


def memory_worker(args: argparse.Namespace) -> None:
    """--memory-worker: a local Ray and one `run_extract`, as a fresh process (measured from outside)."""
    import ray

    from xlray.extract.run import run_extract

    source, target, model, out = map(Path, args.memory_worker)
    ray.init(num_cpus=psutil.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
    run_extract(extract_config(source, target, model, out, args, actors=args.memory_actors))
    ray.shutdown()


class Clock:
    """Seconds and calls per name, summed over the functions ``wrap`` times."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def total(self, name: str) -> float:
        return self.seconds.get(name, 0.0)

    def wrap(self, owner, attr: str, name: str) -> None:
        inner = getattr(owner, attr)

        def timed(*a, **kw):
            start = time.perf_counter()
            try:
                return inner(*a, **kw)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
                self.calls[name] = self.calls.get(name, 0) + 1

        setattr(owner, attr, timed)


def actor_start_seconds(source: Path, target: Path, model: Path, args: argparse.Namespace) -> dict[str, float]:
    """An actor's start in a fresh single-threaded process: the imports, then ``ExtractChunks`` (loads the model)."""
    code = f"""
import json, sys, time
t0 = time.perf_counter()
import torch, transformers
t1 = time.perf_counter()
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
from bench_sentence_extract import new_actor
t2 = time.perf_counter()
new_actor({str(source)!r}, {str(target)!r}, {str(model)!r}, {tempfile.gettempdir()!r}, {args.pooling!r},
          {args.batch_size})
t3 = time.perf_counter()
print(json.dumps({{"import torch + transformers": t1 - t0, "import xlray's stages": t2 - t1, "load model": t3 - t2}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def new_actor(source: str, target: str, model: str, out: str, pooling: str, batch_size: int):
    """An ``ExtractChunks`` actor's object built in this process on one thread, as a Ray actor builds it."""
    from xlray.extract.stages import ExtractChunks
    from xlray.models import model_facts

    args = argparse.Namespace(pooling=pooling, batch_size=batch_size)
    cfg = extract_config(Path(source), Path(target), Path(model), Path(out), args)
    facts = model_facts(cfg.model)
    layers = list(range(facts["layers"] + 1))
    shards = Path(out) / "shards"
    shards.mkdir(parents=True, exist_ok=True)
    return cfg, ExtractChunks(cfg.model_dump_json(), facts["max_length"], None, layers, 1, str(shards))


PARTS = [  # (module, attribute, label): what --profile times, nested parts indented
    ("xlray.extract.stages:TokenizeChunks", "payload", "read + tokenize a chunk (payload)"),
    ("xlray.wordmap", "tokenize_words", "  tokenize_words"),
    ("xlray.wordmap", "text_word_ids", "    text_word_ids (token -> word, Python)"),
    ("xlray.extract.stages:ForwardChunks", "forward", "forward() of a chunk's batches"),
    ("xlray.wordmap", "collate", "  collate (pad, word maps)"),
    ("xlray.models", "layer_states", "  model forward (layer_states)"),
    ("xlray.sentence_pool", "pool_sentences", "  pool_sentences (per layer)"),
    ("xlray.extract.stages", "build_sentence_table", "build_sentence_table"),
    ("xlray.extract.stages", "write_shard", "write_shard (Parquet)"),
]


def ray_phases(source: Path, target: Path, model: Path, work: Path, args: argparse.Namespace) -> dict[str, float]:
    """On a local Ray, as (a) runs: seconds until one ``ExtractChunks`` actor a core is ready (all started at once:
    imports and model load); then one ``run_extract`` split into its actor pool (start-up and chunks) and the rest
    (the driver's planning, model facts, counts and manifest)."""
    import ray

    from xlray.extract import run as extract_run
    from xlray.extract.stages import ExtractChunks
    from xlray.models import model_facts

    cores = psutil.cpu_count() or 1
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    try:
        cfg = extract_config(source, target, model, work / "ray-a", args)
        facts = model_facts(cfg.model)
        shards = work / "ray-ready"
        shards.mkdir()
        actor = ray.remote(ExtractChunks).options(num_cpus=1)
        start = time.perf_counter()
        actors = [actor.remote(cfg.model_dump_json(), facts["max_length"], None, list(range(facts["layers"] + 1)),
                               1, str(shards)) for _ in range(cores)]  # fmt: skip
        ray.get([a.__ray_ready__.remote() for a in actors])
        ready = time.perf_counter() - start
        for a in actors:
            ray.kill(a)
        while ray.available_resources().get("CPU", 0) < cores:  # kill is asynchronous
            time.sleep(0.05)
        clock = Clock()
        clock.wrap(extract_run, "run_pool", "pool")
        start = time.perf_counter()
        extract_run.run_extract(cfg)
        total = time.perf_counter() - start
    finally:
        ray.shutdown()
    return {"actors ready": ready, "run_extract": total, "  its actor pool": clock.total("pool"),
            "  the rest (driver)": total - clock.total("pool")}  # fmt: skip


def profile(args: argparse.Namespace) -> None:
    """--profile: one actor's work (tokenize, collate, forward, pool, copy, table, write) on one thread, no Ray."""
    import importlib
    from dataclasses import asdict

    from xlray.extract.corpus import plan_chunks

    work = Path(tempfile.mkdtemp(prefix="bench-sentence-profile-"))
    source, target, model = build(work, args.sentences, args.world_sentences, args.hidden, args.layers, args.vocab)
    started = actor_start_seconds(source, target, model, args)
    print("an actor's start in a fresh process: " + ", ".join(f"{k} {v:.2f} s" for k, v in started.items()))
    phases = ray_phases(source, target, model, work, args)
    ready = phases.pop("actors ready")
    print(f"on a local Ray, {psutil.cpu_count()} actors started at once: all ready after {ready:.2f} s")
    for name, seconds in phases.items():
        print(f"  {name:44s} {seconds:7.2f} s")
    torch.set_num_threads(1)
    clock = Clock()
    for where, attr, label in PARTS:
        module, _, cls = where.partition(":")
        owner = importlib.import_module(module)
        clock.wrap(getattr(owner, cls) if cls else owner, attr, label)
    cfg, actor = new_actor(str(source), str(target), str(model), str(work / "a"), args.pooling, args.batch_size)
    chunks = plan_chunks(cfg.inputs, cfg.chunk_lines)
    start = time.perf_counter()
    for c in chunks:
        _, error = actor.one(c.chunk_id, json.dumps(asdict(c)))
        assert not error, error
    total = time.perf_counter() - start
    n = 2 * sum(c.n_lines for c in chunks)
    print(f"{len(chunks)} chunks, {n} sentences on one thread, no Ray: {total:.2f} s, {n / total:,.0f} sentences/s")
    for _, _, label in PARTS:
        print(f"  {label:44s} {clock.total(label):7.2f} s {100 * clock.total(label) / total:5.1f}%")
    inside = ["  collate (pad, word maps)", "  model forward (layer_states)", "  pool_sentences (per layer)"]
    rest = clock.total("forward() of a chunk's batches") - sum(clock.total(label) for label in inside)
    print(f"  {'  rest of forward() (stack, fp16 cast, copy)':44s} {rest:7.2f} s {100 * rest / total:5.1f}%")
    top = ["read + tokenize a chunk (payload)", "forward() of a chunk's batches", "build_sentence_table",
           "write_shard (Parquet)"]  # fmt: skip
    rest = total - sum(clock.total(label) for label in top)
    print(f"  {'rest (sorting, stats, each_chunk)':44s} {rest:7.2f} s {100 * rest / total:5.1f}%")


def median(xs: list[float]) -> float:
    return float(np.median(xs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=20000, help="sentences (both sides of the pairs)")
    parser.add_argument("--world-sentences", type=int, default=5000, help="distinct xl-en pairs of the world")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=1000, help="BPE merges beyond the 256 bytes")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--pooling", default="mexa", choices=["mean", "weighted-mean", "last", "mexa"])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs of (a), (b), (b2), (c); medians")
    parser.add_argument("--classic-sentences", type=int, default=2000, help="(c) is slow: measured on a prefix")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--memory-only", action="store_true", help="only the peak-memory runs")
    parser.add_argument("--memory-sizes", help="the two corpus sizes of the memory runs (default: N/10,N)")
    parser.add_argument("--memory-actors", type=int, default=psutil.cpu_count() or 1,
                        help="actors of the memory runs (fixed, so that a small corpus runs on as many)")  # fmt: skip
    parser.add_argument("--wait-load", type=float, default=0, help="before each run wait (<= 15 min) for load < this")
    parser.add_argument("--profile", action="store_true", help="where one actor's time goes (no Ray)")
    parser.add_argument("--memory-worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_worker:
        memory_worker(args)
        return
    if args.profile:
        profile(args)
        return

    import ray

    cores = psutil.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="bench-sentence-extract-"))
    source, target, model = build(work, args.sentences, args.world_sentences, args.hidden, args.layers, args.vocab)
    if args.memory_only:
        memory(work, source, target, model, args)
        return
    texts = sentences_of(source, target)
    classic = texts[: args.classic_sentences]
    n_words, c_words = (sum(len(t.split()) for t in part) for part in (texts, classic))
    print(f"corpus: {len(texts)} sentences ({len(texts) // 2} xl-en pairs from {args.world_sentences} distinct), "
          f"{n_words} words; model: llama {args.layers} layers x {args.hidden}, vocab {args.vocab} + 256 bytes; "
          f"batch {args.batch_size}; pooling {args.pooling}; {cores} cores; work dir {work}", flush=True)  # fmt: skip

    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    seconds: dict[str, list[float]] = {"a": [], "b": [], "b2": [], "c": []}
    manifest: dict = {}
    for k in range(args.repeats):
        for name in ("b", "b2", "a", "c"):
            wait_for_load(args.wait_load)
            at_start = load()
            if name == "a":
                t, manifest = run_xlray(source, target, model, work / f"a-{k}", args)
            elif name == "b":
                t = bare_forward(texts, model, cores, args.batch_size)
            elif name == "b2":
                t = bare_forward_per_core(texts, model, args.batch_size, cores)
            else:
                t = one_at_a_time(classic, model, work)
            seconds[name].append(t)
            print(f"run {k + 1}: ({name}) {t:6.1f} s (load {at_start} -> {load()})", flush=True)
    ray.shutdown()

    counts = manifest["counts"]
    assert counts["sentences"] == len(texts) == counts["encoder_pooled"], counts
    rate = {name: len(texts) / median(ts) for name, ts in seconds.items()}
    rate["c"] = len(classic) / median(seconds["c"])
    print(f"\nmedians of {args.repeats} runs ({len(texts)} sentences; (c) on the first {len(classic)}):")
    print(f"  {'':44s} {'seconds':>8s} {'sentences/s':>12s} {'words/s':>9s}")
    rows = [("a", "(a) xlray extract, granularity sentence"), ("b", "(b) bare forward, one process"),
            ("b2", "(b2) bare forward, one process a core"), ("c", "(c) one at a time (MEXA's loop)")]  # fmt: skip
    for name, label in rows:
        n, words = (len(classic), c_words) if name == "c" else (len(texts), n_words)
        print(f"  {label:44s} {median(seconds[name]):8.1f} {rate[name]:12,.0f} {rate[name] * words / n:9,.0f}")
    print(f"  (a)/(b) = {rate['a'] / rate['b']:.2f} (target >= 0.85), (a)/(b2) = {rate['a'] / rate['b2']:.2f}, "
          f"(a)/(c) = {rate['a'] / rate['c']:.1f} (target >= 3)")  # fmt: skip
    print(f"  (a) all runs: {', '.join(f'{t:.1f}' for t in seconds['a'])} s; its own timer (manifest): "
          f"{manifest['seconds']:.1f} s in the last")  # fmt: skip

    if not args.no_memory:
        memory(work, source, target, model, args)


def memory(work: Path, source: Path, target: Path, model: Path, args: argparse.Namespace) -> None:
    """Peak RSS of (a) at the two ``--memory-sizes`` (each its own process and Ray), with the same actor count."""
    sizes = [args.sentences // 10, args.sentences]
    if args.memory_sizes:
        sizes = [int(x) for x in args.memory_sizes.split(",")]
    peaks = []
    for n in sizes:
        src, tgt = (source, target) if n == args.sentences else corpus(work / "world", work / f"corpus-{n}", n)
        peaks.append(memory_run(src, tgt, model, work / f"mem-{n}", args))
    print(f"\npeak RSS of (a), each in a fresh process with its own local Ray and {args.memory_actors} actors "
          "(psutil, sampled every 50 ms):")  # fmt: skip
    for p in peaks:
        print(f"  {p['sentences']:7d} sentences: process tree {p['sum'] / 2**30:.2f} GiB (driver, Ray's processes, "
              f"actors); largest of {p['actors']} actors {p['actor'] / 2**30:.2f} GiB; run_extract's own timer "
              f"{p['seconds']:.1f} s")  # fmt: skip
    for key, what in (("sum", "tree"), ("actor", "largest actor")):
        ratio = peaks[1][key] / peaks[0][key]
        print(f"  ratio {sizes[1]} / {sizes[0]} sentences, {what}: {ratio:.2f} (target <= 1.20)")


if __name__ == "__main__":
    main()
