"""Extraction on one GPU: `xlray extract` against a bare batched forward pass, at base and ~1B sizes (a script, not a
test; `tests/benchmarks/gpu_suite.sh` runs it).

Models, random init and built here (no network), with tokenizers trained on the corpus:
- ``bert-base``: BERT 12 layers x 768, 12 heads, vocab 119,547 (mBERT's); a WordPiece tokenizer of 8,000 entries,
  so every id it emits is below the model's vocab size;
- ``llama-1b``: llama 16 layers x 2048, 16 heads, 8 kv heads, intermediate 8192, vocab 128,256 (Llama 3's), a
  byte-level BPE tokenizer of 8,256 entries; initialised on the GPU and saved in bf16.
Corpus: bench_extract.py's Zipfian one (5-25 words a sentence over 30,000 pseudo-word types), one text file.

For each model, in this order, ``--repeats`` times (medians reported):
- ``bare``: torch + transformers in this process (``AutoTokenizer``, ``AutoModel``, the dtype xlray picks: bf16 on
  a GPU), over the same batches xlray runs: chunks of ``chunk_lines`` sentences, each sorted by token length
  (stable), ``batch_size`` a batch, ``output_hidden_states=True``, nothing pooled, copied or written; tokenizing on
  the CPU inside the timer, the model's load outside it;
- ``xlray_word`` (and for the decoder ``xlray_sentence``, ``sentence_pooling: mexa``): ``run_extract`` in this
  process on a Ray started once (on a GPU: the Ray Data pipeline of tokenizer actors, one GPU actor and writer
  tasks), tracking off, a fresh output folder each time; the time is ``run_extract``'s wall clock, the actors'
  start and the model's load included, ``ray.init`` not (bench_extract.py's protocol). Words/s counts the words
  read (what xlray's manifest calls words); shards are deleted after each run (disk).
Peak GPU memory:
- ``gpu_max_allocated_gib`` (bare only): ``torch.cuda.max_memory_allocated`` over the timed loop, weights included;
- ``gpu_device_peak_gib`` (both): device-wide used memory (``torch.cuda.mem_get_info``, polled every 50 ms in a
  thread of this process) above what was used just before the run; it holds the CUDA context and PyTorch's cached
  blocks of the process that ran, so it is comparable between bare and xlray, and larger than max_allocated;
- ``gpu_process_peak_gib`` (both): the peak of nvidia-smi's per-process used memory (processes other than this one
  for xlray: the GPU actor), polled every ~0.25 s; null where nvidia-smi lists no processes (some containers).

Figures go to ``--json`` (rewritten after every run, so a run cut short keeps what it measured; ``complete`` is
true at the end) and to stdout. Without a CUDA GPU it refuses to start (exit 2) unless ``--cpu-smoke``: the same
code paths at toy sizes on the CPU, with a fake Ray GPU resource so the GPU pipeline (Ray Data) is the one run.

    bash tests/benchmarks/gpu_suite.sh                # on a GPU machine; figures in $OUT/gpu_suite.json
    bash tests/benchmarks/gpu_suite.sh --cpu-smoke    # anywhere, in a minute or two
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_extract import zipf_corpus  # noqa: E402 - the sibling script's corpus

GIB = 2**30


@dataclass(frozen=True)
class Shape:
    """A model to build: family, depth and width, attention heads, MLP width, the model's and the tokenizer's vocab."""

    family: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    tokenizer_vocab: int


SHAPES = {
    "bert-base": Shape("bert", 12, 768, 12, 12, 3072, 119_547, 8000),
    "llama-1b": Shape("llama", 16, 2048, 16, 8, 8192, 128_256, 8000),
}
SMOKE_SHAPES = {
    "bert-base": Shape("bert", 2, 64, 2, 2, 128, 119_547, 2000),
    "llama-1b": Shape("llama", 2, 64, 4, 2, 128, 128_256, 2000),
}
RUNS = {"bert": ("bare", "xlray_word"), "llama": ("bare", "xlray_word", "xlray_sentence")}


def save_bert(texts: list[str], out: Path, shape: Shape, device: str, dtype) -> None:
    import torch
    from transformers import AutoModel, BertConfig, BertTokenizer

    from xlray.world.tiny_models import bert_tokenizer

    tok = BertTokenizer(tokenizer_object=bert_tokenizer(texts, shape.tokenizer_vocab), do_lower_case=False)
    tok.model_max_length = 512
    assert len(tok) <= shape.vocab, (len(tok), shape.vocab)
    cfg = BertConfig(vocab_size=shape.vocab, hidden_size=shape.hidden, num_hidden_layers=shape.layers,
                     num_attention_heads=shape.heads, intermediate_size=shape.intermediate,
                     max_position_embeddings=512, pad_token_id=tok.pad_token_id)  # fmt: skip
    with torch.device(device):
        AutoModel.from_config(cfg, dtype=dtype).save_pretrained(out)
    tok.save_pretrained(out)


def save_llama(texts: list[str], out: Path, shape: Shape, device: str, dtype) -> None:
    """As ``xlray.world.tiny_models.save_llm`` does for the llama family, at ``shape``."""
    import torch
    from transformers import AutoModel, LlamaConfig, PreTrainedTokenizerFast

    from xlray.world.tiny_models import LLMS, byte_level_tokenizer

    kind = LLMS["llama"]
    raw = byte_level_tokenizer(texts, shape.tokenizer_vocab + 256, kind.specials(), kind.bos)
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, padding_side=kind.padding_side, bos_token=kind.bos,
                                  eos_token=kind.eos)  # fmt: skip
    tok.model_max_length = 512
    assert len(tok) <= shape.vocab, (len(tok), shape.vocab)
    cfg = LlamaConfig(vocab_size=shape.vocab, hidden_size=shape.hidden, num_hidden_layers=shape.layers,
                      num_attention_heads=shape.heads, num_key_value_heads=shape.kv_heads,
                      intermediate_size=shape.intermediate, max_position_embeddings=2048,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)  # fmt: skip
    with torch.device(device):
        AutoModel.from_config(cfg, dtype=dtype).save_pretrained(out)
    tok.save_pretrained(out)


def build_model(name: str, shape: Shape, texts: list[str], work: Path, device: str, dtype) -> tuple[Path, int]:
    """Save the model ``name`` under ``work``; its folder and parameter count."""
    out = work / name
    (save_bert if shape.family == "bert" else save_llama)(texts, out, shape, device, dtype)
    conf = json.loads((out / "config.json").read_text())
    from safetensors import safe_open

    params = 0
    for path in out.glob("*.safetensors"):
        with safe_open(path, "pt") as f:
            params += sum(int(np.prod(f.get_slice(k).get_shape())) for k in f.keys())
    assert conf["vocab_size"] == shape.vocab
    return out, params


class GpuMemory:
    """Peak GPU memory while a block runs: device-wide used above the start (``torch.cuda.mem_get_info``, every
    50 ms) and per process (nvidia-smi, every ~0.25 s; ``others``: processes other than this one)."""

    def __init__(self, cuda: bool, others: bool):
        self.cuda, self.others = cuda, others
        self.device_peak = 0
        self.process_peak: int | None = None

    def __enter__(self) -> GpuMemory:
        if self.cuda:
            self.base = self.used()
            self.stop = threading.Event()
            self.thread = threading.Thread(target=self.sample, daemon=True)
            self.thread.start()
        return self

    @staticmethod
    def used() -> int:
        import torch

        free, total = torch.cuda.mem_get_info()
        return total - free

    def per_process(self) -> int | None:
        """Largest used memory of one process (this one, or the others), as nvidia-smi lists them; None if none."""
        try:
            query = ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"]
            out = subprocess.run(query, capture_output=True, text=True, timeout=5).stdout
        except (OSError, subprocess.TimeoutExpired):
            return None
        mine, sizes = os.getpid(), []
        for line in out.strip().splitlines():
            pid, _, mib = line.partition(",")
            if pid.strip().isdigit() and mib.strip().isdigit() and (int(pid) != mine) == self.others:
                sizes.append(int(mib) * 2**20)
        return max(sizes) if sizes else None

    def sample(self) -> None:
        k = 0
        while not self.stop.is_set():
            self.device_peak = max(self.device_peak, self.used() - self.base)
            if k % 5 == 0:
                found = self.per_process()
                if found is not None:
                    self.process_peak = max(self.process_peak or 0, found)
            k += 1
            time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        if self.cuda:
            self.stop.set()
            self.thread.join()

    def figures(self) -> dict:
        if not self.cuda:
            return {"gpu_device_peak_gib": None, "gpu_process_peak_gib": None}
        process = None if self.process_peak is None else self.process_peak / GIB
        return {"gpu_device_peak_gib": self.device_peak / GIB, "gpu_process_peak_gib": process}


def bare_run(corpus: Path, model: Path, causal: bool, args: argparse.Namespace, cuda: bool) -> dict:
    """Tokenize and run xlray's batches through plain transformers: seconds, words, GPU memory."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    device = "cuda" if cuda else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32  # xlray's dtype: auto
    with GpuMemory(cuda, others=False) as memory:
        lm = AutoModel.from_pretrained(model, dtype=dtype).to(device).eval()
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        lines = corpus.read_text(encoding="utf-8").splitlines()
        words = 0
        with torch.inference_mode():
            for c in range(0, len(lines), args.chunk_lines):
                chunk = [line.split() for line in lines[c : c + args.chunk_lines]]
                words += sum(map(len, chunk))
                if causal:  # as xlray's decoder-only path: the words joined by one space, read as text
                    ids = tokenizer([" ".join(ws) for ws in chunk])["input_ids"]
                else:
                    ids = tokenizer(chunk, is_split_into_words=True)["input_ids"]
                order = np.argsort([len(x) for x in ids], kind="stable")
                for b in range(0, len(order), args.batch_size):
                    rows = {"input_ids": [ids[i] for i in order[b : b + args.batch_size]]}
                    batch = tokenizer.pad(rows, return_tensors="pt").to(device)
                    lm(**batch, output_hidden_states=True)
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    allocated = torch.cuda.max_memory_allocated() / GIB if cuda else None
    del lm
    if cuda:
        torch.cuda.empty_cache()
    return {"seconds": seconds, "words": words, "gpu_max_allocated_gib": allocated, **memory.figures()}


def xlray_run(corpus: Path, model: Path, out: Path, granularity: str, args: argparse.Namespace, cuda: bool) -> dict:
    """``run_extract`` on the running Ray: seconds, words read, counts, GPU memory of its actor."""
    from xlray.extract.config import ExtractConfig
    from xlray.extract.run import run_extract

    cfg = ExtractConfig(
        model={"name": str(model)}, inputs=[{"format": "text", "path": str(corpus), "language": "en"}],
        languages=["en"], output_dir=str(out), granularity=granularity, sentence_pooling="mexa",
        batch_size=args.batch_size, chunk_lines=args.chunk_lines, tokenizer_actors=args.tokenizer_actors,
        tracking={"enabled": False},
    )  # fmt: skip
    with GpuMemory(cuda, others=True) as memory:
        start = time.perf_counter()
        manifest = run_extract(cfg)
        seconds = time.perf_counter() - start
    shard_bytes = sum(p.stat().st_size for p in (out / "shards").glob("*.parquet"))
    shutil.rmtree(out / "shards")
    counts = manifest["counts"]
    rows = counts.get("encoder_kept", counts.get("encoder_pooled"))  # word occurrences kept, or sentences pooled
    return {"seconds": seconds, "words": manifest["this_run"]["words"], "own_timer_seconds": manifest["seconds"],
            "sentences": counts.get("sentences"), "rows_per_layer": rows, "shard_gib": shard_bytes / GIB,
            **memory.figures()}  # fmt: skip


def summary(runs: list[dict]) -> dict:
    """Medians over repeats of every number (a count the same in every repeat stays as it is), and the words/s."""

    def median(values: list) -> float | int | None:
        if len(set(values)) == 1:
            return values[0]
        return None if None in values else float(np.median(values))

    out = {k: median([r[k] for r in runs]) for k in runs[0]}
    out["words_per_s"] = out["words"] / out["seconds"]
    out["repeats"] = len(runs)
    return out


def environment(cuda: bool, smoke: bool) -> dict:
    import ray
    import torch
    import transformers

    gpu = torch.cuda.get_device_name(0) if cuda else None
    memory = torch.cuda.get_device_properties(0).total_memory / GIB if cuda else None
    return {"cpu_smoke": smoke, "gpu": gpu, "gpu_memory_gib": memory, "cpus": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "transformers": transformers.__version__, "ray": ray.__version__}  # fmt: skip


def write(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


MEMORY = ("gpu_max_allocated_gib", "gpu_device_peak_gib", "gpu_process_peak_gib")


def report(data: dict) -> None:
    print(f"\n{'model':10s} {'run':15s} {'seconds':>8s} {'words/s':>10s} {'vs bare':>7s} {'max alloc':>9s} "
          f"{'device':>7s} {'process':>7s}  (GPU GiB)")  # fmt: skip
    for name, model in data["models"].items():
        bare = model["runs"].get("bare")
        for run, s in model["runs"].items():
            ratio = f"{s['words_per_s'] / bare['words_per_s']:.2f}" if bare and run != "bare" else ""
            memory = ["-" if s.get(key) is None else f"{s[key]:.2f}" for key in MEMORY]
            print(f"{name:10s} {run:15s} {s['seconds']:8.1f} {s['words_per_s']:10,.0f} {ratio:>7s} "
                  f"{memory[0]:>9s} {memory[1]:>7s} {memory[2]:>7s}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="toy sizes on the CPU (a fake Ray GPU resource)")
    parser.add_argument("--json", type=Path, default=Path("gpu_suite.json"))
    parser.add_argument("--sentences", type=int, help="corpus lines (default 20,000; --cpu-smoke 300)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--batch-size", type=int, help="sentences per forward pass (default 64; --cpu-smoke 16)")
    parser.add_argument("--chunk-lines", type=int, help="sentences per chunk (default 1,024; --cpu-smoke 100)")
    parser.add_argument("--tokenizer-actors", type=int, help="xlray's tokenizer actors (default 4; --cpu-smoke 1)")
    parser.add_argument("--models", default="bert-base,llama-1b")
    parser.add_argument("--work", type=Path, help="where models, corpus and outputs go (default: a new temp dir)")
    args = parser.parse_args()

    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    cuda = torch.cuda.is_available()
    if not cuda and not args.cpu_smoke:
        print("bench_gpu: no CUDA GPU here (torch.cuda.is_available() is false); run it on a GPU machine, or pass "
              "--cpu-smoke for the toy-size check on the CPU", file=sys.stderr)  # fmt: skip
        return 2
    smoke = args.cpu_smoke
    cuda = cuda and not smoke
    defaults = {"sentences": 300, "batch_size": 16, "chunk_lines": 100, "tokenizer_actors": 1} if smoke else {
        "sentences": 20_000, "batch_size": 64, "chunk_lines": 1024, "tokenizer_actors": 4}  # fmt: skip
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    shapes = SMOKE_SHAPES if smoke else SHAPES
    names = args.models.split(",")
    began = time.perf_counter()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    work.mkdir(parents=True, exist_ok=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)

    import ray

    data = {"complete": False, "environment": environment(cuda, smoke),
            "settings": {k: getattr(args, k) for k in ("sentences", "repeats", "batch_size", "chunk_lines",
                                                       "tokenizer_actors")}, "models": {}}  # fmt: skip
    corpus = zipf_corpus(work / "corpus.txt", args.sentences, 30000)
    texts = corpus.read_text(encoding="utf-8").splitlines()
    data["settings"]["words"] = sum(len(t.split()) for t in texts)
    device = "cuda" if cuda else "cpu"
    dtype = torch.bfloat16 if cuda else torch.float32
    models = {}
    for name in names:
        t = time.perf_counter()
        models[name], params = build_model(name, shapes[name], texts[:20000], work, device, dtype)
        data["models"][name] = {"shape": asdict(shapes[name]), "parameters": params, "runs": {}}
        print(f"built {name}: {params / 1e6:,.0f}M parameters in {time.perf_counter() - t:.1f} s", flush=True)
    if cuda:
        torch.cuda.empty_cache()

    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    ray.init(num_cpus=2 if smoke else os.cpu_count(), num_gpus=1, include_dashboard=False, log_to_driver=False)
    raw: dict[tuple[str, str], list[dict]] = {}
    try:
        for k in range(args.repeats):
            for name in names:
                shape = shapes[name]
                for run in RUNS[shape.family]:
                    t = time.perf_counter()
                    if run == "bare":
                        result = bare_run(corpus, models[name], shape.family == "llama", args, cuda)
                    else:
                        out = work / f"{name}-{run}-{k}"
                        result = xlray_run(corpus, models[name], out, run.removeprefix("xlray_"), args, cuda)
                    raw.setdefault((name, run), []).append(result)
                    data["models"][name]["runs"][run] = summary(raw[(name, run)])
                    data["elapsed_s"] = time.perf_counter() - began
                    write(args.json, data)
                    print(f"run {k + 1}: {name} {run}: {result['seconds']:.1f} s ({time.perf_counter() - t:.1f} s "
                          f"with loading; {data['elapsed_s']:.0f} s so far)", flush=True)  # fmt: skip
    finally:
        ray.shutdown()
    for name in names:
        runs = data["models"][name]["runs"]
        for run in runs:
            if run != "bare":
                runs[run]["vs_bare_words_per_s"] = runs[run]["words_per_s"] / runs["bare"]["words_per_s"]
    data["complete"] = True
    data["elapsed_s"] = time.perf_counter() - began
    write(args.json, data)
    report(data)
    print(f"\n{json.dumps(data, indent=2)}\nwritten to {args.json} ({data['elapsed_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
