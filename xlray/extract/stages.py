"""The stages of extraction: on GPUs a Ray Data pipeline of tokenize (CPU actors), forward (GPU actors) and write
(CPU tasks), in which a chunk of input travels as one row from stage to stage, so each output shard is exactly one
input chunk. Without GPUs one plain actor does all three for its chunks (`ExtractChunks`, run by
`cpu_actors.run_on_cpu_actors`): a separate tokenizer stage would only take cores from the forward pass.
Sentences in which the cap keeps no word are not run through the model at all.
"""

from __future__ import annotations

import functools
import io
import json
from collections import Counter
from dataclasses import asdict
from typing import Any

import numpy as np
import pyarrow as pa

from xlray.configs import ModelConfig
from xlray.errors import XlrayError
from xlray.extract.cap import keep_mask, occurrences
from xlray.extract.config import ExtractConfig
from xlray.extract.corpus import Chunk, Invalid, Item, read_chunk
from xlray.extract.shards import write_shard
from xlray.outputs import read_json
from xlray.ray_failures import CHUNK_MARK, user_error


def chunk_items(cfg: ExtractConfig, chunk: Chunk, pairs: bool, stats: Counter) -> list[Item]:
    """Valid items of a chunk; bad lines and undeclared languages raise or are skipped and counted."""
    items, declared = [], set(cfg.languages)
    for entry in read_chunk(cfg.inputs, chunk, pairs):
        if isinstance(entry, Item) and entry.language not in declared | {None}:
            entry = Invalid(f"{entry.where}: language {entry.language!r} is not declared in languages")
        if isinstance(entry, Invalid):
            if cfg.on_invalid == "error":
                raise XlrayError(f"{entry} (set on_invalid: skip to skip and count such lines)")
            stats["invalid_lines"] += 1
            continue
        items.append(entry)
    return items


class TokenizeChunks:
    """CPU stage: read a chunk, tokenize its sentences, and mark which word occurrences the cap keeps."""

    def __init__(
        self,
        cfg_json: str,
        max_length: int,
        thresholds: dict[str, int] | str | None,
        as_text: bool,
        tokenizer: Any = None,
    ):
        from xlray.models import load_tokenizer

        self.cfg = ExtractConfig.model_validate_json(cfg_json)
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(self.cfg.model)
        self.max_length = max_length
        self.as_text = as_text  # the family's: a decoder-only LLM reads its sentences as text (xlray.wordmap)
        self.cap_thresholds = thresholds  # loaded at the first chunk: the cap pass may still be running
        self.pairs = "decoder" in self.cfg.sites

    @functools.cached_property
    def thresholds(self) -> dict[str, int]:
        return load_thresholds(self.cap_thresholds)

    def keep(self, items: list[Item], side: str) -> list[np.ndarray]:
        """Per item, which of its words (of ``side``: source or target) the cap keeps (all: sentence granularity)."""
        sentences = [it.side(side) for it in items]
        if self.cfg.granularity == "sentence":
            return [np.ones(len(words), dtype=bool) for _, _, words in sentences]
        mask = keep_mask(*occurrences(sentences), self.thresholds)
        return np.split(mask, np.cumsum([len(words) for _, _, words in sentences])[:-1]) if items else []

    def tokenize(self, sentences: list[list[str]]) -> dict[str, Any]:
        from xlray.wordmap import tokenize_words

        ids, wids, cut = (
            tokenize_words(self.tokenizer, sentences, self.max_length, self.as_text) if sentences else ([], [], [])
        )
        return {"ids": ids, "word_ids": wids, "truncated": list(map(bool, cut))}

    def payload(self, chunk: Chunk) -> dict[str, Any]:
        """A chunk's items, their tokens and keep masks, and its counts."""
        stats: Counter = Counter()
        items = chunk_items(self.cfg, chunk, self.pairs, stats)
        payload = {
            "chunk": asdict(chunk),
            "items": [dict(vars(it)) for it in items],  # shallow: dataclasses.asdict deep-copies every word list
            "source": self.tokenize([it.words for it in items]),
            "keep": self.keep(items, "source"),
            "stats": dict(stats),
        }
        if self.pairs:
            payload["target"] = self.tokenize([it.target_words or [] for it in items])
            payload["target_keep"] = self.keep(items, "target")
        return payload

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        payloads, errors = each_chunk(batch, batch["chunk"], lambda raw: self.payload(Chunk(**json.loads(raw))), {})
        return {"chunk_id": batch["chunk_id"], "payload": np.array(payloads, dtype=object), "error": errors}


def each_chunk(batch: dict[str, np.ndarray], inputs: Any, work: Any, empty: Any) -> tuple[list, np.ndarray]:
    """``work`` on each chunk's input, in order, and each chunk's error (``""`` if none). A chunk that failed in an
    earlier stage, or fails here, gives ``empty`` and its failure as data (see ``chunk_failure``)."""
    results, errors = [], []
    earlier = batch.get("error", [""] * len(batch["chunk_id"]))
    for chunk_id, item, error in zip(batch["chunk_id"], inputs, earlier, strict=True):
        if not error:
            started(chunk_id)
            try:
                results.append(work(item))
                errors.append("")
                continue
            except Exception as exc:  # noqa: BLE001 - handed to the driver as data, see chunk_failure
                error = chunk_failure(chunk_id, exc)
        results.append(empty)
        errors.append(error)
    return results, np.array(errors, dtype=object)


def load_thresholds(thresholds: dict[str, int] | str | list | None) -> dict[str, int]:
    """The cap's thresholds: given, read from the file a finished cap pass saved (a local path or a URI), or
    ``[ref]``: waited for from the cap pass still running (None: no cap)."""
    if isinstance(thresholds, str):
        return read_json(thresholds)
    if isinstance(thresholds, list):
        import ray

        return ray.get(thresholds[0])
    return thresholds or {}


def started(chunk_id: str) -> None:
    """Mark in the worker's log which chunk it works on, so a worker that dies can be tied to its chunk."""
    print(f"{CHUNK_MARK}{chunk_id}", flush=True)


def chunk_failure(chunk_id: str, exc: BaseException) -> str:
    """A chunk's failure as data for the driver (JSON): a bad-input error as it is, anything else with its
    traceback. Raising instead would leave the failed actor referenced inside Ray Data until garbage collection,
    holding its CPU or GPU."""
    import traceback

    user = user_error(exc)  # also one raised in a Ray task this chunk waited for (the cap pass)
    if user is not None:
        return json.dumps({"chunk": chunk_id, "user_error": str(user)})
    return json.dumps({"chunk": chunk_id, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})


def vector_type(dtype: str, width: int) -> pa.DataType:
    return pa.list_(pa.float16() if dtype == "float16" else pa.float32(), width)


class ForwardChunks:
    """GPU (or CPU) actor: loads the model once, runs length-bucketed batches, pools subwords into words."""

    def __init__(self, cfg_json: str, layers: list[int], threads: int | None):
        import torch

        from xlray.models import load_model
        from xlray.runtime import device

        self.cfg = ExtractConfig.model_validate_json(cfg_json)
        if device() == "cpu" and threads:
            torch.set_num_threads(threads)
        spread = self.cfg.gpus_per_actor
        gpus = int(spread) if spread != "auto" and spread > 1 else 1  # > 1: the model spans this actor's GPUs
        model_cfg = ModelConfig.model_validate(self.cfg.model.model_dump())
        self.lm = load_model(model_cfg, device(), gpus=gpus, gpu_memory_gb=self.cfg.gpu_memory_gb)
        self.layers = layers

    def forward(self, payload: dict[str, Any], order: np.ndarray) -> dict[str, list[np.ndarray]]:
        """Vectors of the sentences ``order`` (in that order): per site, per batch an array [layers, rows, hidden]
        whose rows are the kept words (word granularity) or the sentences (sentence granularity). Only the asked
        layers are pooled, each on the device that holds it, then stacked on the first and copied to the host once
        per batch and site in the stored dtype."""
        import torch

        from xlray.models import layer_states
        from xlray.wordmap import collate, pad_id

        pad = pad_id(self.lm.tokenizer)
        left = self.lm.family.causal and self.lm.tokenizer.padding_side == "left"  # encoders: always on the right
        dtype = torch.float16 if self.cfg.dtype == "float16" else torch.float32
        pooled: dict[str, list[np.ndarray]] = {}
        for start in range(0, len(order), self.cfg.batch_size):
            idx = order[start : start + self.cfg.batch_size]
            batches = {}
            for side in ("source", "target") if "target" in payload else ("source",):
                tok = payload[side]
                batches[side] = collate(
                    [tok["ids"][i] for i in idx],
                    [tok["word_ids"][i] for i in idx],
                    np.asarray([tok["truncated"][i] for i in idx]),
                    pad,
                    left,
                )
            to_dev = {
                k: {"input_ids": e.input_ids.to(self.lm.device), "attention_mask": e.attention_mask.to(self.lm.device)}
                for k, e in batches.items()
            }
            with torch.inference_mode():
                states = layer_states(self.lm, to_dev["source"], to_dev.get("target"))
                for site in self.cfg.sites:
                    enc = batches[SIDE[site]]
                    pool = self.pooler(payload, idx, enc, site)
                    vectors = torch.stack([pool(states[site][layer]).to(self.lm.device) for layer in self.layers])
                    pooled.setdefault(site, []).append(vectors.to(dtype).cpu().numpy())
        return pooled

    def pooler(self, payload: dict[str, Any], idx: np.ndarray, enc: Any, site: str) -> Any:
        """The function from one layer's token states [batch, tokens, hidden] to the rows stored for it: the
        sentences' vectors, or the kept words' (``site``'s keep masks)."""
        from xlray.sentence_pool import pool_sentences
        from xlray.wordmap import pool_words

        if self.cfg.granularity == "sentence":
            return lambda states: pool_sentences(states, enc, self.cfg.sentence_pooling)
        wanted = kept_among(payload[KEEP[SIDE[site]]], idx, enc.kept_words)
        return lambda states: pool_words(states, enc, self.cfg.pooling).index_select(0, wanted.to(states.device))

    def table(self, payload: dict[str, Any]) -> tuple[pa.Table, dict[str, int]]:
        """The chunk's table of kept occurrences (or of sentences) and its counts."""
        lengths = np.asarray([len(x) for x in payload["source"]["ids"]])
        order = np.argsort(lengths, kind="stable")  # length buckets: little padding
        needed = needs_forward(payload, self.cfg.sites)
        run = order[needed[order]]
        pooled = self.forward(payload, run) if len(run) else {}
        if self.cfg.granularity == "sentence":
            table, stats = build_sentence_table(payload, run, pooled, self.layers, self.cfg, self.lm.hidden_size)
        else:
            table, stats = build_table(payload, order, pooled, self.layers, self.cfg, self.lm.hidden_size)
        return table, stats | {"sentences_run": len(run)}

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        done, errors = each_chunk(batch, batch["payload"], self.table_bytes, (b"", "{}"))
        return {
            "chunk_id": batch["chunk_id"],
            "table": np.array([table for table, _ in done], dtype=object),
            "stats": np.array([stats for _, stats in done], dtype=object),
            "error": errors,
        }

    def table_bytes(self, payload: dict[str, Any]) -> tuple[bytes, str]:
        """The chunk's table as Arrow IPC bytes (for the writer tasks) and its counts as JSON."""
        table, stats = self.table(payload)
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.getvalue(), json.dumps(stats)


class ExtractChunks:
    """CPU-only actor (plain Ray actor): tokenizes, runs and writes its chunks, one after another on its own cores."""

    def __init__(
        self,
        cfg_json: str,
        max_length: int,
        thresholds: str | list | None,
        layers: list[int],
        threads: int,
        shard_dir: str,
    ):
        self.forward = ForwardChunks(cfg_json, layers, threads)
        lm = self.forward.lm
        self.tokenize = TokenizeChunks(cfg_json, max_length, thresholds, lm.family.causal, lm.tokenizer)
        self.shard_dir = shard_dir

    def one(self, chunk_id: str, chunk: str) -> tuple[str, str]:
        """Extract one chunk (given as JSON): its counts as JSON and its error (``""`` if none; see ``each_chunk``)."""
        stats, errors = each_chunk({"chunk_id": [chunk_id]}, [(chunk_id, chunk)], self.extract, "{}")
        return stats[0], errors[0]

    def extract(self, chunk: tuple[str, str]) -> str:
        """Tokenize, run and write one chunk; its counts as JSON."""
        chunk_id, raw = chunk
        table, counts = self.forward.table(self.tokenize.payload(Chunk(**json.loads(raw))))
        stats = json.dumps(counts)
        write_shard(self.shard_dir, chunk_id, table, stats)
        return stats


SIDE = {"encoder": "source", "decoder": "target"}  # which side of an item each activation site reads
KEEP = {"source": "keep", "target": "target_keep"}  # payload key of each side's keep masks


def needs_forward(payload: dict[str, Any], sites: list[str]) -> np.ndarray:
    """Per item: whether the cap keeps any of its words at some site (the others need no forward pass)."""
    masks = [payload[KEEP[SIDE[site]]] for site in sites]
    return np.asarray([any(mask[i].any() for mask in masks) for i in range(len(payload["items"]))], dtype=bool)


def kept_among(keep: list[np.ndarray], idx: np.ndarray, words: list[np.ndarray]) -> Any:
    """Positions, among a batch's word vectors (``words[b]`` of item ``idx[b]``, in order), of the kept words."""
    import torch

    masks = [keep[i][w] for i, w in zip(idx, words, strict=True)]
    return torch.from_numpy(np.flatnonzero(np.concatenate(masks)) if masks else np.zeros(0, np.int64))


def kept_rows(payload: dict[str, Any], order: np.ndarray, side: str) -> tuple[list[int], list[int], dict[str, int]]:
    """Kept words in forward order (which item and word each is), and counts of words, truncations and capping."""
    tok, keep = payload[side], payload[KEEP[side]]
    word_of, item_of, counts = [], [], Counter()
    for i in order:
        words_here = sorted({w for w in tok["word_ids"][i] if w >= 0})
        n_words = len(keep[i])
        counts["words"] += n_words
        counts["truncated_words"] += n_words - len(words_here) if tok["truncated"][i] else 0
        counts["truncated_sentences"] += int(tok["truncated"][i])
        for w in words_here:
            if keep[i][w]:
                item_of.append(int(i))
                word_of.append(w)
            else:
                counts["capped"] += 1
    counts["kept"] = len(item_of)
    return item_of, word_of, counts


def build_table(
    payload: dict[str, Any], order: np.ndarray, pooled: dict, layers: list[int], cfg: ExtractConfig, width: int
) -> tuple[pa.Table, dict[str, int]]:
    """One Arrow table of kept occurrences: sentence_id, language, word, word_index, site, layer, vector."""
    columns: dict[str, list] = {k: [] for k in ("sentence_id", "language", "word", "word_index", "site", "layer")}
    vectors = []
    stats: Counter = Counter(payload["stats"])
    stats["sentences"] += len(payload["items"])
    items = payload["items"]
    for site in cfg.sites:
        side = SIDE[site]
        item_of, word_of, counts = kept_rows(payload, order, side)
        for key, value in counts.items():
            stats[f"{site}_{key}"] += value
        if not item_of:
            continue
        lang_key, words_key = ("language", "words") if side == "source" else ("target_language", "target_words")
        columns["sentence_id"] += [items[i]["sentence_id"] for i in item_of] * len(layers)
        columns["language"] += [items[i][lang_key] for i in item_of] * len(layers)
        columns["word"] += [items[i][words_key][w] for i, w in zip(item_of, word_of, strict=True)] * len(layers)
        columns["word_index"] += word_of * len(layers)
        columns["site"] += [site] * (len(item_of) * len(layers))
        columns["layer"] += [layer for layer in layers for _ in item_of]
        vectors.append(np.concatenate(pooled[site], axis=1).reshape(-1))  # layer after layer, as the columns
    return shard_table(columns, vectors, cfg.dtype, width), dict(stats)


def build_sentence_table(
    payload: dict[str, Any], run: np.ndarray, pooled: dict, layers: list[int], cfg: ExtractConfig, width: int
) -> tuple[pa.Table, dict[str, int]]:
    """One Arrow table of sentence vectors: sentence_id, language, site, layer, tokens (pooled), vector; ``run``:
    the items in the order ``pooled`` holds them."""
    items, stats = payload["items"], Counter(payload["stats"])
    stats["sentences"] += len(items)
    columns: dict[str, list] = {k: [] for k in ("sentence_id", "language", "site", "layer", "tokens")}
    vectors = []
    for site in cfg.sites:
        side = SIDE[site]
        tok = payload[side]
        lang_key, words_key = ("language", "words") if side == "source" else ("target_language", "target_words")
        tokens = [len(tok["ids"][i]) if cfg.sentence_pooling == "mexa" else sum(w >= 0 for w in tok["word_ids"][i])
                  for i in run]  # fmt: skip
        stats[f"{site}_words"] += sum(len(items[i][words_key]) for i in run)
        stats[f"{site}_truncated_sentences"] += sum(bool(tok["truncated"][i]) for i in run)
        stats[f"{site}_pooled"] += len(run)
        if not len(run):
            continue
        columns["sentence_id"] += [items[i]["sentence_id"] for i in run] * len(layers)
        columns["language"] += [items[i][lang_key] for i in run] * len(layers)
        columns["site"] += [site] * (len(run) * len(layers))
        columns["layer"] += [layer for layer in layers for _ in run]
        columns["tokens"] += tokens * len(layers)
        vectors.append(np.concatenate(pooled[site], axis=1).reshape(-1))  # layer after layer, as the columns
    return shard_table(columns, vectors, cfg.dtype, width), dict(stats)


COLUMN_TYPES = {"sentence_id": pa.string(), "language": pa.string(), "word": pa.string(), "word_index": pa.int32(),
                "site": pa.string(), "layer": pa.int16(), "tokens": pa.int32()}  # fmt: skip


def shard_table(columns: dict[str, list], vectors: list[np.ndarray], dtype: str, width: int) -> pa.Table:
    """A shard's Arrow table: the label ``columns`` (types from COLUMN_TYPES), then the rows' vectors, given as flat
    arrays in row order."""
    flat = np.concatenate(vectors) if vectors else np.zeros(0, np.float16 if dtype == "float16" else np.float32)
    labels = {name: pa.array(values, COLUMN_TYPES[name]) for name, values in columns.items()}
    return pa.table(
        {**labels, "vector": pa.FixedSizeListArray.from_arrays(pa.array(flat), type=vector_type(dtype, width))}
    )


def write_shards(batch: dict[str, np.ndarray], shard_dir: str) -> dict[str, np.ndarray]:
    """CPU task after the GPU stage: write each chunk's table (sent as Arrow IPC bytes) as a shard."""
    for chunk_id, blob, stats, error in zip(
        batch["chunk_id"], batch["table"], batch["stats"], batch["error"], strict=True
    ):
        if not error:
            write_shard(shard_dir, chunk_id, pa.ipc.open_stream(blob).read_all(), stats)
    return {"chunk_id": batch["chunk_id"], "stats": batch["stats"], "error": batch["error"]}
