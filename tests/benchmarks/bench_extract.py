"""Extraction throughput, side by side in one run (a script, not a test).

The corpus is synthetic but shaped like a real one: a Zipfian vocabulary (exponent 1) of pseudo-words, 5-25
words a sentence, and a WordPiece tokenizer trained on it, so that frequent words are capped and rare ones kept.

(a) `xlray extract` (without GPUs: a pool of plain Ray actors, one a core), all layers, fp16, with the default
    cap of 15 and with the cap off (every occurrence at every layer written);
(b) a bare batched forward pass with all hidden states, nothing written, in one process using every core;
(b2) the same bare forward split over one single-threaded process per core (the layout (a) uses without GPUs);
(c) a one-sentence-at-a-time extractor that writes every layer of every word (the classic toolkit approach).
Also: peak resident memory of (a) at N and 10x smaller N, and bytes per stored value.

--whole-process times whole processes instead, by wall clock from start to exit, as a user would:
(A) `xlray extract CONFIG` in a fresh process that starts its own local Ray (`ray.address: null`), with MLflow
    tracking on (the default sqlite store in the output folder) and off;
(B) a bare script in its own process: torch + transformers, `from_pretrained` of the same saved model and tokenizer,
    read the corpus, tokenize, batched forward passes (same batch size, sorted by length), every hidden state pooled
    to the last subword of each word and cast to fp16, nothing written.
It prints B/A (xlray's speed relative to the bare script; the target is >= 0.75 at 10k sentences) and, for A, the
fixed cost outside extraction's own timer (whole process - manifest seconds).

    python tests/benchmarks/bench_extract.py --sentences 20000 --hidden 256 --layers 4
    python tests/benchmarks/bench_extract.py --whole-process --sentences 10000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
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


def tree_rss() -> int:
    """Resident memory of this process and all its children (Ray workers included)."""
    me = psutil.Process()
    total = me.memory_info().rss
    for child in me.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total


class PeakRss:
    def __enter__(self):
        self.peak, self.stop = 0, threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()
        return self

    def sample(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, tree_rss())
            time.sleep(0.05)

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def zipf_corpus(path: Path, sentences: int, vocab: int, seed: int = 0) -> Path:
    """``sentences`` lines of 5-25 words drawn from a Zipfian (exponent 1) vocabulary of pseudo-words."""
    rng = np.random.default_rng(seed)
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    words = []
    seen = set()
    while len(words) < vocab:
        word = "".join(rng.choice(syllables, size=rng.integers(1, 5)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    weights = 1.0 / np.arange(1, vocab + 1)
    draws = rng.choice(vocab, size=sentences * 25, p=weights / weights.sum())
    lengths = rng.integers(5, 26, size=sentences)
    with path.open("w", encoding="utf-8") as out:
        start = 0
        for n in lengths:
            out.write(" ".join(words[k] for k in draws[start : start + n]) + " .\n")
            start += n
    return path


def build(workdir: Path, n: int, hidden: int, layers: int, vocab: int) -> tuple[Path, Path]:
    from xlray.world.tiny_models import build_tiny_model

    corpus = zipf_corpus(workdir / "corpus.txt", n, vocab)
    with corpus.open(encoding="utf-8") as lines:
        texts = [line.rstrip("\n") for _, line in zip(range(20000), lines, strict=False)]
    model = build_tiny_model("bert", texts, workdir / "model", hidden=hidden, layers=layers, vocab=8000)
    return corpus, model


def run_xlray(corpus: Path, model: Path, out: Path, cap: int | None, lines: int | None = None):
    from xlray.extract.config import ExtractConfig
    from xlray.extract.run import run_extract

    if lines is not None:
        small = out.parent / f"{out.name}.txt"
        with corpus.open(encoding="utf-8") as src, small.open("w", encoding="utf-8") as dst:
            for _, line in zip(range(lines), src, strict=False):
                dst.write(line)
        corpus = small
    cfg = ExtractConfig(model={"name": str(model)}, inputs=[{"format": "text", "path": str(corpus), "language": "en"}],
                        languages=["en"], output_dir=str(out), cap=cap, tracking={"enabled": False})  # fmt: skip
    with PeakRss() as rss:
        start = time.perf_counter()
        manifest = run_extract(cfg)
        seconds = time.perf_counter() - start
    return seconds, rss.peak, manifest


def bare_forward(sentences: list[list[str]], model: Path, threads: int, ready=None) -> float:
    """Seconds of batched forward passes (tokenizing included) over length-sorted sentences, nothing kept."""
    from xlray.configs import ModelConfig
    from xlray.models import load_model
    from xlray.wordmap import encode_words

    torch.set_num_threads(threads)
    lm = load_model(ModelConfig(name=str(model)))
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    if ready is not None:
        ready.wait()
    start = time.perf_counter()
    with torch.inference_mode():
        for k in range(0, len(order), 64):
            enc = encode_words(lm.tokenizer, [sentences[i] for i in order[k : k + 64]], lm.max_length)
            lm.model(input_ids=enc.input_ids, attention_mask=enc.attention_mask, output_hidden_states=True)
    return time.perf_counter() - start


def bare_forward_part(args) -> float:
    sentences, model, ready = args
    return bare_forward(sentences, model, 1, ready)


def bare_forward_per_core(sentences: list[list[str]], model: Path, cores: int) -> float:
    """Wall seconds of ``cores`` single-threaded processes each running its share (timed once all have loaded)."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(cores) as pool:
        ready = manager.Barrier(cores)
        parts = [(sentences[k::cores], model, ready) for k in range(cores)]
        return max(pool.map(bare_forward_part, parts))


def one_at_a_time(sentences: list[list[str]], model: Path, out: Path) -> float:
    from xlray.configs import ModelConfig
    from xlray.models import load_model
    from xlray.wordmap import encode_words, pool_words

    lm = load_model(ModelConfig(name=str(model)))
    start = time.perf_counter()
    with torch.inference_mode(), (out / "acts.jsonl").open("w") as sink:
        for words in sentences:
            enc = encode_words(lm.tokenizer, [words], lm.max_length)
            states = lm.model(input_ids=enc.input_ids, attention_mask=enc.attention_mask, output_hidden_states=True)
            layers = [pool_words(h, enc, "last").numpy().round(5).tolist() for h in states.hidden_states]
            sink.write(json.dumps({"words": words, "layers": layers}) + "\n")
    return time.perf_counter() - start


def stored_bytes_per_value(out: Path, manifest: dict, layers: int, hidden: int) -> float:
    shard_bytes = sum(p.stat().st_size for p in (out / "shards").glob("*.parquet"))
    return shard_bytes / (manifest["counts"]["encoder_kept"] * (layers + 1) * hidden)


def last_subwords(enc) -> torch.Tensor:
    """Flat position (in ``[batch * tokens]``) of each word's last subword, sentence after sentence."""
    width, last = enc.input_ids.shape[1], []
    for b in range(enc.input_ids.shape[0]):
        wids = enc.word_ids(b)
        last += [b * width + t for t, w in enumerate(wids) if w is not None and (t + 1 == width or wids[t + 1] != w)]
    return torch.tensor(last, dtype=torch.long)


def bare_process(model: str, corpus: str, batch_size: int) -> None:
    """(B) of --whole-process, run as its own process: what a user's bare batched-forward script does."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    lm = AutoModel.from_pretrained(model).eval()
    limit = min(tokenizer.model_max_length, 512)
    started = time.perf_counter()
    with open(corpus, encoding="utf-8") as lines:
        sentences = sorted((line.split() for line in lines), key=len)
    words = 0
    with torch.inference_mode():
        for k in range(0, len(sentences), batch_size):
            enc = tokenizer(sentences[k : k + batch_size], is_split_into_words=True, truncation=True,
                            max_length=limit, padding=True, return_tensors="pt")  # fmt: skip
            out = lm(input_ids=enc.input_ids, attention_mask=enc.attention_mask, output_hidden_states=True)
            index = last_subwords(enc)
            vectors = torch.stack([h.reshape(-1, h.shape[-1]).index_select(0, index) for h in out.hidden_states])
            words += vectors.half().numpy().shape[1]
    print(json.dumps({"words": words, "seconds": time.perf_counter() - started}))


def xlray_command() -> list[str]:
    """The `xlray` console script of this Python (what a user types), else ``python -m xlray``."""
    script = Path(sys.executable).parent / "xlray"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "xlray"]


def clean_env() -> dict[str, str]:
    """This environment without a Ray address or MLflow URI, so (A) starts its own Ray and sqlite store."""
    return {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}


def wait_for_load(below: float, limit_s: float = 900) -> None:
    """On a shared machine: wait (at most ``limit_s``) until the 1-minute load average is under ``below``."""
    deadline = time.monotonic() + limit_s
    while below and os.getloadavg()[0] >= below and time.monotonic() < deadline:
        time.sleep(5)


def tree_cpu(proc: psutil.Process, seen: dict[int, float]) -> None:
    """Note the CPU seconds so far of ``proc`` and of every process under it, by pid."""
    for p in [proc, *proc.children(recursive=True)]:
        try:
            times = p.cpu_times()
            seen[p.pid] = times.user + times.system
        except psutil.Error:
            pass


def timed_process(command: list[str], cwd: Path, log: Path) -> tuple[float, float]:
    """Wall seconds of a whole process from start to exit, and CPU seconds of it and every process under it (Ray's
    included; sampled every 0.25 s, so what each did after its last sample is missed); output goes to ``log``."""
    seen: dict[int, float] = {}
    with log.open("w") as sink:
        start = time.perf_counter()
        child = subprocess.Popen(command, cwd=cwd, env=clean_env(), stdout=sink, stderr=subprocess.STDOUT)
        watched = psutil.Process(child.pid)
        while child.poll() is None:
            tree_cpu(watched, seen)
            try:
                child.wait(timeout=0.25)
            except subprocess.TimeoutExpired:
                pass
        seconds = time.perf_counter() - start
    if child.returncode:
        raise SystemExit(f"{' '.join(command)} failed ({child.returncode}); see {log}")
    return seconds, sum(seen.values())


def whole_xlray(corpus: Path, model: Path, out: Path, cap: int | None, batch_size: int, tracking: bool):
    """(A): `xlray extract CONFIG` as a fresh process: wall and CPU seconds, and seconds inside its own timer."""
    import yaml

    out.mkdir(parents=True)
    cfg = {"stage": "extract", "model": {"name": str(model)},
           "inputs": [{"format": "text", "path": str(corpus), "language": "en"}], "languages": ["en"],
           "output_dir": str(out / "extract"), "cap": cap, "batch_size": batch_size,
           "ray": {"address": None}, "tracking": {"enabled": tracking}}  # fmt: skip
    (out / "extract.yaml").write_text(yaml.safe_dump(cfg))
    seconds, cpu = timed_process([*xlray_command(), "extract", "extract.yaml"], out, out / "log.txt")
    manifest = json.loads((out / "extract" / "manifest.json").read_text())
    shutil.rmtree(out / "extract" / "shards")  # 130 MB a run at 10k; the logs and manifest stay
    counts = manifest["counts"]
    note = f"{counts['sentences_run']} of {counts['sentences']} sentences run"
    return seconds, cpu, manifest["seconds"], note


def whole_bare(corpus: Path, model: Path, out: Path, batch_size: int):
    """(B): the bare script as a fresh process: wall and CPU seconds, and seconds of its forward loop."""
    out.mkdir(parents=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--bare-process", str(model), str(corpus),
               "--batch-size", str(batch_size)]  # fmt: skip
    seconds, cpu = timed_process(command, out, out / "log.txt")
    result = json.loads((out / "log.txt").read_text().splitlines()[-1])
    return seconds, cpu, result["seconds"], f"{result['words']} words pooled"


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def whole_process(args: argparse.Namespace) -> None:
    """--whole-process: (A) with tracking on and off against (B), whole processes, medians of --repeats."""
    work = Path(tempfile.mkdtemp(prefix="bench-extract-whole-"))
    corpus, model = build(work, args.sentences, args.hidden, args.layers, args.vocab)
    n_words = sum(len(line.split()) for line in corpus.open(encoding="utf-8"))
    cap = None if args.cap == "off" else int(args.cap)
    runs = {
        "B bare script": lambda k: whole_bare(corpus, model, work / f"B-{k}", args.batch_size),
        "A tracking on": lambda k: whole_xlray(corpus, model, work / f"A-on-{k}", cap, args.batch_size, True),
        "A tracking off": lambda k: whole_xlray(corpus, model, work / f"A-off-{k}", cap, args.batch_size, False),
    }
    rows: dict[str, list[tuple[float, float, float]]] = {name: [] for name in runs}
    print(f"corpus: {args.sentences} sentences, {n_words} words, Zipf over {args.vocab} types; model: bert "
          f"{args.layers} layers x {args.hidden}; cap {args.cap}; batch {args.batch_size}; {psutil.cpu_count()} "
          f"cores; work dir {work}")  # fmt: skip
    for k in range(args.repeats):
        for name, run in runs.items():
            wait_for_load(args.wait_load)
            at_start = load()
            wall, cpu, inner, note = run(k)
            rows[name].append((wall, cpu, inner))
            print(f"run {k + 1}: {name:14s} {wall:6.1f} s wall, {cpu:6.1f} s CPU, {inner:5.1f} s inside its own timer; "
                  f"{note} (load {at_start} -> {load()})", flush=True)  # fmt: skip
    b = [wall for wall, _, _ in rows["B bare script"]]
    print(
        f"over {args.repeats} runs, whole processes from start to exit: median (best) wall; fixed = wall - own timer "
        "(B: its forward loop; A: extraction's timer). On a busy machine trust the best: B's two-thread forward "
        "slows far more than xlray's one-thread actors when other work takes a core."
    )
    for name, values in rows.items():
        wall, cpu, inner = (float(np.median(col)) for col in zip(*values, strict=True))
        best = min(w for w, _, _ in values)
        ratio = "" if name.startswith("B") else f"  B/A = {np.median(b) / wall:.2f} ({min(b) / best:.2f})"
        print(f"  {name:14s} {wall:6.1f} s ({best:5.1f} s), {n_words / wall:6.0f} words/s, {cpu:6.1f} s CPU, "
              f"fixed {wall - inner:5.1f} s{ratio}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=20000)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=30000, help="pseudo-word types of the Zipfian corpus")
    parser.add_argument("--repeats", type=int, default=1, help="runs of (a), (b) and (b2); medians are printed")
    parser.add_argument("--classic-sentences", type=int, default=2000, help="(c) is slow: measured on a prefix")
    parser.add_argument("--whole-process", action="store_true", help="(A) xlray vs (B) bare script, as processes")
    parser.add_argument("--cap", default="15", help="--whole-process: xlray's cap, or off")
    parser.add_argument("--batch-size", type=int, default=64, help="--whole-process: sentences per forward pass")
    parser.add_argument(
        "--wait-load",
        type=float,
        default=0,
        help="--whole-process: before each run, wait "
        "(up to 15 min) for the 1-minute load average to drop under this (shared machines)",
    )
    parser.add_argument("--bare-process", nargs=2, metavar=("MODEL", "CORPUS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_process:
        bare_process(*args.bare_process, args.batch_size)
        return
    if args.whole_process:
        whole_process(args)
        return

    import ray

    cores = psutil.cpu_count() or 1
    ray.init(include_dashboard=False, log_to_driver=False)
    work = Path(tempfile.mkdtemp(prefix="bench-extract-"))
    corpus, model = build(work, args.sentences, args.hidden, args.layers, args.vocab)
    sentences = [line.split() for line in corpus.read_text(encoding="utf-8").splitlines()]
    n_words = sum(map(len, sentences))
    classic = sentences[: args.classic_sentences]

    seconds: dict[str, list[float]] = {"b": [], "b2": [], "cap 15": [], "cap off": []}
    for k in range(args.repeats):
        seconds["b"].append(bare_forward(sentences, model, cores))
        seconds["b2"].append(bare_forward_per_core(sentences, model, cores))
        t, peak_cap, m_cap = run_xlray(corpus, model, work / f"a-cap-{k}", 15)
        seconds["cap 15"].append(t)
        t, peak_all, m_all = run_xlray(corpus, model, work / f"a-all-{k}", None)
        seconds["cap off"].append(t)
    _, peak_small, _ = run_xlray(corpus, model, work / "a-small", None, lines=args.sentences // 10)
    t_c = one_at_a_time(classic, model, work)
    rate = {name: n_words / float(np.median(runs)) for name, runs in seconds.items()}
    rate["c"] = sum(map(len, classic)) / t_c

    print(f"corpus: {args.sentences} sentences, {n_words} words, Zipf over {args.vocab} types; "
          f"model: bert {args.layers} layers x {args.hidden}; {cores} cores; medians of {args.repeats}")  # fmt: skip
    for label, peak, manifest in (("cap 15", peak_cap, m_cap), ("cap off", peak_all, m_all)):
        counts = manifest["counts"]
        print(f"(a) xlray extract, {label:8s} {rate[label]:9.0f} words/s  ({np.median(seconds[label]):.1f} s; "
              f"peak RSS {peak / 2**30:.2f} GiB; {counts['encoder_kept']} occurrences kept; "
              f"{counts['sentences_run']} of {counts['sentences']} sentences run)")  # fmt: skip
        print(f"    (a)/(b) = {rate[label] / rate['b']:.2f}  (a)/(b2) = {rate[label] / rate['b2']:.2f}  "
              f"(a)/(c) = {rate[label] / rate['c']:.1f}")  # fmt: skip
    print(f"(b) bare forward, one process     {rate['b']:9.0f} words/s  ({np.median(seconds['b']):.1f} s)")
    print(f"(b2) bare forward, process a core {rate['b2']:9.0f} words/s  ({np.median(seconds['b2']):.1f} s)")
    print(f"(c) one at a time                 {rate['c']:9.0f} words/s  ({t_c:.1f} s on {len(classic)} sentences)")
    print(f"peak RSS of (a) cap off: {peak_small / 2**30:.2f} GiB at N/10, {peak_all / 2**30:.2f} GiB at N, "
          f"ratio {peak_all / peak_small:.2f}")  # fmt: skip
    per_value = [stored_bytes_per_value(work / f"a-{name}-0", m, args.layers, args.hidden)
                 for name, m in (("all", m_all), ("cap", m_cap))]  # fmt: skip
    print(f"bytes per stored value: cap off {per_value[0]:.2f}, cap 15 {per_value[1]:.2f} (fp16 = 2, labels included)")


if __name__ == "__main__":
    main()
