"""What an extraction would store, estimated before it runs, and the refusal of one over ``store_budget_gb``.

Rows are sentences (sentence granularity: known from the plan) or word occurrences (word granularity: sentences
times the mean words per sentence of the first chunk, an upper bound when a cap is set). Each row stores one vector
per layer: ``layers x hidden_size x bytes per value``. For scale: all 33 hidden states of an 8B model (4,096 wide)
in float16 are about 270 KB per word.
"""

from __future__ import annotations

from xlray.errors import XlrayError
from xlray.extract.config import ExtractConfig, ParallelCorpus
from xlray.extract.corpus import Chunk, Item, read_chunk

GB = 1e9


def rows_per_line(cfg: ExtractConfig, input_index: int) -> int:
    """Sentences a line (or table row) of an input gives: a pair of sentences for line-aligned files read apart."""
    pairs = "decoder" in cfg.sites
    return 2 if isinstance(cfg.inputs[input_index], ParallelCorpus) and not pairs else 1


def mean_words(cfg: ExtractConfig, chunk: Chunk) -> float:
    """Mean words per sentence of one chunk (its valid lines)."""
    items = [it for it in read_chunk(cfg.inputs, chunk, "decoder" in cfg.sites) if isinstance(it, Item)]
    return sum(len(it.words) for it in items) / len(items) if items else 0.0


def estimate(cfg: ExtractConfig, chunks: list[Chunk], layers: list[int], width: int) -> tuple[float, str]:
    """Bytes the run would store, and how that was counted (for the error message)."""
    sentences = sum(c.n_lines * rows_per_line(cfg, c.input_index) for c in chunks)
    per_value = 2 if cfg.dtype == "float16" else 4
    if cfg.granularity == "sentence":
        rows, unit = sentences, "sentences"
    else:
        rows = round(sentences * mean_words(cfg, chunks[0])) if chunks else 0
        unit = "words" + (" before the cap" if cfg.cap is not None else "")
    total = rows * len(cfg.sites) * len(layers) * width * per_value
    sites = f" x {len(cfg.sites)} sites" if len(cfg.sites) > 1 else ""
    how = f"{rows:,} {unit}{sites} x {len(layers)} layers x {width} values x {per_value} bytes"
    return float(total), how


def check_budget(cfg: ExtractConfig, chunks: list[Chunk], layers: list[int], width: int) -> float:
    """The estimate in bytes; refuses (before anything is written) a run over ``store_budget_gb``."""
    total, how = estimate(cfg, chunks, layers, width)
    if total > cfg.store_budget_gb * GB:
        raise XlrayError(
            f"layers: this extraction would store about {total / GB:,.1f} GB ({how}), over store_budget_gb="
            f"{cfg.store_budget_gb:g}; choose fewer layers, granularity: sentence, or raise store_budget_gb"
        )
    return total
