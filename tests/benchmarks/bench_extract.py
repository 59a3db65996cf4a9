"""Extraction throughput, side by side in one run (a script, not a test).

(a) `xlray extract` (Ray Data: tokenize actor -> forward actor -> shard writer), all layers, cap 15, fp16;
(b) a bare batched forward pass with all hidden states, nothing written (the limit on this hardware);
(c) a one-sentence-at-a-time extractor that writes every layer of every word (the classic toolkit approach).
Also: peak resident memory of (a) at N and 10x smaller N, and bytes per stored value.

    python tests/benchmarks/bench_extract.py --sentences 20000 --hidden 256 --layers 4
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

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


def build(workdir: Path, n: int, hidden: int, layers: int) -> tuple[Path, Path]:
    from xlray.world.build import WorldConfig, write_world
    from xlray.world.tiny_models import build_tiny_model, world_texts

    world = write_world(
        WorldConfig(parallel_sentences=n, languages=["xd"], task_train=10, task_test=10), workdir / "world"
    )
    model = build_tiny_model("bert", world_texts(world)[:20000], workdir / "model", hidden=hidden, layers=layers,
                             vocab=2000)  # fmt: skip
    return world / "parallel" / "xd-en.en", model


def run_xlray(corpus: Path, model: Path, out: Path, lines: int | None = None) -> tuple[float, int, dict]:
    from xlray.extract.config import ExtractConfig
    from xlray.extract.run import run_extract

    if lines is not None:
        small = out.parent / f"{out.name}.txt"
        with corpus.open(encoding="utf-8") as src, small.open("w", encoding="utf-8") as dst:
            for _, line in zip(range(lines), src, strict=False):
                dst.write(line)
        corpus = small
    cfg = ExtractConfig(model={"name": str(model)}, inputs=[{"format": "text", "path": str(corpus), "language": "en"}],
                        languages=["en"], output_dir=str(out), chunk_lines=2048, batch_size=64,
                        tracking={"enabled": False})  # fmt: skip
    with PeakRss() as rss:
        start = time.perf_counter()
        manifest = run_extract(cfg)
        seconds = time.perf_counter() - start
    return seconds, rss.peak, manifest


def bare_forward(sentences: list[list[str]], model: Path) -> float:
    from xlray.configs import ModelConfig
    from xlray.models import load_model
    from xlray.wordmap import encode_words

    lm = load_model(ModelConfig(name=str(model)))
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    start = time.perf_counter()
    with torch.inference_mode():
        for k in range(0, len(order), 64):
            enc = encode_words(lm.tokenizer, [sentences[i] for i in order[k : k + 64]], lm.max_length)
            lm.model(input_ids=enc.input_ids, attention_mask=enc.attention_mask, output_hidden_states=True)
    return time.perf_counter() - start


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=20000)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--classic-sentences", type=int, default=2000, help="(c) is slow: measured on a prefix")
    args = parser.parse_args()

    import ray

    ray.init(include_dashboard=False, log_to_driver=False)
    work = Path(tempfile.mkdtemp(prefix="bench-extract-"))
    corpus, model = build(work, args.sentences, args.hidden, args.layers)
    sentences = [line.split() for line in corpus.read_text(encoding="utf-8").splitlines()]
    n_words = sum(map(len, sentences))
    classic = sentences[: args.classic_sentences]

    torch.set_num_threads(psutil.cpu_count() or 1)
    t_b = bare_forward(sentences, model)
    t_a, peak_a, manifest = run_xlray(corpus, model, work / "a")
    t_small, peak_small, _ = run_xlray(corpus, model, work / "a-small", lines=args.sentences // 10)
    t_c = one_at_a_time(classic, model, work)
    w_a, w_b, w_c = n_words / t_a, n_words / t_b, sum(map(len, classic)) / t_c
    shard_bytes = sum(p.stat().st_size for p in (work / "a" / "shards").glob("*.parquet"))
    values = manifest["counts"]["encoder_kept"] * (args.layers + 1) * args.hidden
    print(f"corpus: {args.sentences} sentences, {n_words} words; model: bert {args.layers} layers x {args.hidden}")
    print(f"(a) xlray extract        {w_a:10.0f} words/s  ({t_a:.1f} s, peak RSS {peak_a / 2**30:.2f} GiB)")
    print(f"(b) bare batched forward {w_b:10.0f} words/s  ({t_b:.1f} s)")
    print(f"(c) one at a time        {w_c:10.0f} words/s  ({t_c:.1f} s on {len(classic)} sentences)")
    print(f"(a)/(b) = {w_a / w_b:.2f}   (a)/(c) = {w_a / w_c:.2f}")
    ratio = peak_a / peak_small
    print(f"peak RSS at N/10: {peak_small / 2**30:.2f} GiB, at N: {peak_a / 2**30:.2f} GiB, ratio {ratio:.2f}")
    print(f"bytes per stored value: {shard_bytes / values:.2f} (fp16 = 2 + per-row metadata)")


if __name__ == "__main__":
    main()
