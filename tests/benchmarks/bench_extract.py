"""Extraction throughput, side by side in one run (a script, not a test).

The corpus is synthetic but shaped like a real one: a Zipfian vocabulary (exponent 1) of pseudo-words, 5-25
words a sentence, and a WordPiece tokenizer trained on it, so that frequent words are capped and rare ones kept.

(a) `xlray extract` (Ray Data actor pool), all layers, fp16, with the default cap of 15 and with the cap off
    (every occurrence at every layer written);
(b) a bare batched forward pass with all hidden states, nothing written, in one process using every core;
(b2) the same bare forward split over one single-threaded process per core (the layout (a) uses without GPUs);
(c) a one-sentence-at-a-time extractor that writes every layer of every word (the classic toolkit approach).
Also: peak resident memory of (a) at N and 10x smaller N, and bytes per stored value.

    python tests/benchmarks/bench_extract.py --sentences 20000 --hidden 256 --layers 4
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=20000)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=30000, help="pseudo-word types of the Zipfian corpus")
    parser.add_argument("--repeats", type=int, default=1, help="runs of (a), (b) and (b2); medians are printed")
    parser.add_argument("--classic-sentences", type=int, default=2000, help="(c) is slow: measured on a prefix")
    args = parser.parse_args()

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
