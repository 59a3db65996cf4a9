"""The three Ray Data stages of extraction: tokenize (CPU actors), forward (GPU actors), write (CPU tasks).

A chunk of input travels as one row from stage to stage, so each output shard is exactly one input chunk.
"""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from dataclasses import asdict
from typing import Any

import numpy as np
import pyarrow as pa

from xlray.configs import ModelConfig
from xlray.errors import XlrayError
from xlray.extract.cap import UNCAPPED, occurrence_hash, type_key
from xlray.extract.config import ExtractConfig
from xlray.extract.corpus import Chunk, Invalid, Item, read_chunk


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

    def __init__(self, cfg_json: str, max_length: int, thresholds_ref: Any):
        import ray
        from transformers import AutoTokenizer

        self.cfg = ExtractConfig.model_validate_json(cfg_json)
        m = self.cfg.model
        self.tokenizer = AutoTokenizer.from_pretrained(
            m.name, revision=m.revision, trust_remote_code=m.trust_remote_code
        )
        self.max_length = max_length
        self.thresholds: dict[str, int] = (
            thresholds_ref if isinstance(thresholds_ref, dict) else ray.get(thresholds_ref)
        )
        self.pairs = "decoder" in self.cfg.sites

    def keep_mask(self, item_id: str, language: str | None, words: list[str]) -> list[bool]:
        limits = self.thresholds
        return [
            occurrence_hash(item_id, i, w) <= limits.get(type_key(language, w), UNCAPPED) for i, w in enumerate(words)
        ]

    def tokenize(self, sentences: list[list[str]]) -> dict[str, Any]:
        from xlray.wordmap import tokenize_words

        ids, wids, cut = tokenize_words(self.tokenizer, sentences, self.max_length) if sentences else ([], [], [])
        return {"ids": ids, "word_ids": wids, "truncated": list(map(bool, cut))}

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = []
        for raw in batch["chunk"]:
            chunk = Chunk(**json.loads(raw))
            stats: Counter = Counter()
            items = chunk_items(self.cfg, chunk, self.pairs, stats)
            payload = {
                "chunk": asdict(chunk),
                "items": [asdict(it) for it in items],
                "source": self.tokenize([it.words for it in items]),
                "keep": [self.keep_mask(it.sentence_id, it.language, it.words) for it in items],
                "stats": dict(stats),
            }
            if self.pairs:
                payload["target"] = self.tokenize([it.target_words or [] for it in items])
                payload["target_keep"] = [
                    self.keep_mask(it.sentence_id, it.target_language, it.target_words or []) for it in items
                ]
            out.append(payload)
        return {"chunk_id": batch["chunk_id"], "payload": np.array(out, dtype=object)}


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
        self.lm = load_model(ModelConfig.model_validate(self.cfg.model.model_dump()), device())
        self.layers = layers
        self.np_dtype = np.float16 if self.cfg.dtype == "float16" else np.float32

    def forward(self, payload: dict[str, Any], order: np.ndarray) -> dict[tuple[str, int], list[np.ndarray]]:
        import torch

        from xlray.models import hidden_states
        from xlray.wordmap import collate, pool_words

        pad = self.lm.tokenizer.pad_token_id or 0
        pooled: dict[tuple[str, int], list[np.ndarray]] = {}
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
                )
            to_dev = {
                k: {"input_ids": e.input_ids.to(self.lm.device), "attention_mask": e.attention_mask.to(self.lm.device)}
                for k, e in batches.items()
            }
            with torch.inference_mode():
                states = hidden_states(self.lm, to_dev["source"], to_dev.get("target"))
            for site in self.cfg.sites:
                enc = batches["source" if site == "encoder" else "target"]
                for layer in self.layers:
                    vectors = pool_words(states[site][layer], enc, self.cfg.pooling)
                    pooled.setdefault((site, layer), []).append(vectors.float().cpu().numpy().astype(self.np_dtype))
        return pooled

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tables, stats_out = [], []
        for payload in batch["payload"]:
            lengths = np.asarray([len(x) for x in payload["source"]["ids"]])
            order = np.argsort(lengths, kind="stable")  # length buckets: little padding
            pooled = self.forward(payload, order) if len(order) else {}
            table, stats = build_table(payload, order, pooled, self.cfg, self.lm.hidden_size)
            sink = io.BytesIO()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            tables.append(sink.getvalue())
            stats_out.append(json.dumps(stats))
        return {
            "chunk_id": batch["chunk_id"],
            "table": np.array(tables, dtype=object),
            "stats": np.array(stats_out, dtype=object),
        }


def kept_rows(payload: dict[str, Any], order: np.ndarray, side: str) -> tuple[list[int], list[int], dict[str, int]]:
    """For words with a vector (in forward order): which item and word each is, which the cap keeps, and counts."""
    tok, keep = payload[side], payload["keep" if side == "source" else "target_keep"]
    word_of, item_of, kept_pos, counts = [], [], [], Counter()
    pos = 0
    for i in order:
        words_here = sorted({w for w in tok["word_ids"][i] if w >= 0})
        n_words = len(keep[i])
        counts["words"] += n_words
        counts["truncated_words"] += n_words - len(words_here) if tok["truncated"][i] else 0
        counts["truncated_sentences"] += int(tok["truncated"][i])
        for w in words_here:
            if keep[i][w]:
                kept_pos.append(pos)
                item_of.append(int(i))
                word_of.append(w)
            else:
                counts["capped"] += 1
            pos += 1
    counts["kept"] = len(kept_pos)
    return item_of, word_of, {"positions": kept_pos, **counts}


def build_table(payload: dict[str, Any], order: np.ndarray, pooled: dict, cfg: ExtractConfig, width: int):
    """One Arrow table of kept occurrences: sentence_id, language, word, word_index, site, layer, vector."""
    columns: dict[str, list] = {k: [] for k in ("sentence_id", "language", "word", "word_index", "site", "layer")}
    vectors = []
    stats: Counter = Counter(payload["stats"])
    stats["sentences"] += len(payload["items"])
    for site in cfg.sites:
        side = "source" if site == "encoder" else "target"
        item_of, word_of, counts = kept_rows(payload, order, side)
        positions = np.asarray(counts.pop("positions"), dtype=np.int64)
        for key, value in counts.items():
            stats[f"{site}_{key}"] += value
        items = payload["items"]
        lang_key, words_key = ("language", "words") if side == "source" else ("target_language", "target_words")
        for layer in sorted({layer for s, layer in pooled if s == site}):
            columns["sentence_id"] += [items[i]["sentence_id"] for i in item_of]
            columns["language"] += [items[i][lang_key] for i in item_of]
            columns["word"] += [items[i][words_key][w] for i, w in zip(item_of, word_of, strict=True)]
            columns["word_index"] += word_of
            columns["site"] += [site] * len(item_of)
            columns["layer"] += [layer] * len(item_of)
            vectors.append(np.concatenate(pooled[(site, layer)])[positions])
    flat = np.concatenate(vectors).reshape(-1) if vectors else np.zeros(0, np.float16)
    np_type = np.float16 if cfg.dtype == "float16" else np.float32
    vector = pa.FixedSizeListArray.from_arrays(pa.array(flat.astype(np_type)), width)
    table = pa.table(
        {
            "sentence_id": pa.array(columns["sentence_id"], pa.string()),
            "language": pa.array(columns["language"], pa.string()),
            "word": pa.array(columns["word"], pa.string()),
            "word_index": pa.array(columns["word_index"], pa.int32()),
            "site": pa.array(columns["site"], pa.string()),
            "layer": pa.array(columns["layer"], pa.int16()),
            "vector": vector.cast(vector_type(cfg.dtype, width)),
        }
    )
    return table, dict(stats)


def write_shards(batch: dict[str, np.ndarray], shard_dir: str) -> dict[str, np.ndarray]:
    """CPU task: write each chunk's table as ``<chunk_id>.parquet`` (temp name, then rename) with its stats."""
    import pyarrow.parquet as pq

    for chunk_id, blob, stats in zip(batch["chunk_id"], batch["table"], batch["stats"], strict=True):
        table = pa.ipc.open_stream(blob).read_all()
        table = table.replace_schema_metadata({b"xlray.stats": stats.encode()})
        final = os.path.join(shard_dir, f"{chunk_id}.parquet")
        tmp = os.path.join(shard_dir, f".{chunk_id}.parquet.tmp-{os.getpid()}")
        pq.write_table(table, tmp, compression="lz4", row_group_size=65536)
        os.replace(tmp, final)
    return {"chunk_id": batch["chunk_id"], "stats": batch["stats"]}
