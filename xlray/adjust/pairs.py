"""Aligned sentence pairs: read a parallel corpus as a stream, sample, word-align with eflomal, save as Parquet.

eflomal learns from the whole corpus by default (Efimov et al. align the whole file; ``pairs.align_on``), and
the sampled pairs keep their links from that run.

The saved pairs are the training data of `xlray adjust` and the pool that continual learning draws from. Every
pair or link left out is counted (too long, no alignable word, identical strings), never dropped silently.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from xlray.adjust.config import AdjustConfig, LinesCorpus, PairCorpus, PairsConfig, TsvCorpus
from xlray.corpora import Words, parallel_words
from xlray.errors import XlrayError, where
from xlray.outputs import write_parquet
from xlray.textio import open_binary, read_lines
from xlray.wordalign.eflomal import Link  # in adjust: (foreign word index, English word index)

RawPair = Words  # (line or row number from 1, foreign words, English words)
SPLITS = ("train", "heldout")


@dataclass
class PairBatch:
    """Word-aligned sentence pairs, the input of the alignment loss."""

    source: list[list[str]]
    english: list[list[str]]
    links: list[list[Link]]

    def __len__(self) -> int:
        return len(self.source)


@dataclass
class AlignedPairs:
    """A table of aligned pairs (one row per sentence pair) with the language, line and split of each."""

    language: list[str]
    line: list[int]
    split: list[str]
    batch: PairBatch
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # per language, what was kept and dropped

    def __len__(self) -> int:
        return len(self.line)

    def select(self, rows: Sequence[int]) -> AlignedPairs:
        """The rows at ``rows`` (repeats allowed), in that order."""
        b = self.batch
        return AlignedPairs(
            [self.language[i] for i in rows],
            [self.line[i] for i in rows],
            [self.split[i] for i in rows],
            PairBatch([b.source[i] for i in rows], [b.english[i] for i in rows], [b.links[i] for i in rows]),
            self.counts,
        )

    def subset(self, split: str | None = None, language: str | None = None) -> AlignedPairs:
        rows = [
            i
            for i in range(len(self))
            if (split is None or self.split[i] == split) and (language is None or self.language[i] == language)
        ]
        return self.select(rows)

    def sample(self, n: int, rng: np.random.Generator) -> PairBatch:
        """``n`` pairs drawn with replacement (continual learning's alignment batch)."""
        if not len(self):
            raise XlrayError("aligned pairs: cannot sample from an empty pool")
        return self.select(rng.integers(0, len(self), size=n).tolist()).batch


# --- reading the corpus -------------------------------------------------------------------------------------


def corpus_paths(corpus: PairCorpus, lang: str) -> list[str]:
    return [p.replace("{lang}", lang) for p in corpus.paths()]


def read_corpus(corpus: PairCorpus, lang: str) -> Iterator[RawPair]:
    """Stream the pairs of one language as whitespace-split words (local files or URIs); errors name file and
    line."""
    if isinstance(corpus, LinesCorpus):
        yield from parallel_words(corpus.files(lang))  # different lengths: an error naming both files' counts
        return
    path = corpus_paths(corpus, lang)[0]
    if isinstance(corpus, TsvCorpus):
        yield from read_tsv(path, corpus.header)
    else:
        yield from read_parquet(path, corpus.source_column, corpus.english_column)


def read_tsv(path: str | Path, header: bool) -> Iterator[RawPair]:
    for number, text in read_lines(path):
        if header and number == 1:
            continue
        parts = text.split("\t")
        if len(parts) != 2:
            raise XlrayError(
                f"{where(path, number)}: expected 2 tab-separated fields (foreign, English), found {len(parts)}"
            )
        yield number, parts[0].split(), parts[1].split()


def read_parquet(path: str | Path, source_column: str, english_column: str) -> Iterator[RawPair]:
    """Row groups one at a time; a column holds sentences as strings or as lists of words."""
    import pyarrow.parquet as pq

    with open_binary(path) as handle:
        try:
            reader = pq.ParquetFile(handle)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
            raise XlrayError(f"{path}: not a readable Parquet file: {str(exc).splitlines()[0]}") from None
        names = reader.schema_arrow.names
        missing = [c for c in (source_column, english_column) if c not in names]
        if missing:
            raise XlrayError(f"{path}: no column(s) {missing}; found {names} (set corpus.*_column)")
        row = 0
        for table in reader.iter_batches(columns=[source_column, english_column]):
            for src, eng in zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True):
                row += 1
                yield row, as_words(src, path, row), as_words(eng, path, row)


def as_words(value: object, path: str | Path, row: int) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(w, str) and w and not any(c.isspace() for c in w) for w in value):
        return list(value)
    raise XlrayError(f"{path}: row {row}: expected a sentence string or a list of words without spaces")


# --- sampling and aligning ----------------------------------------------------------------------------------


def sample_pairs(corpus: PairCorpus, lang: str, cfg: PairsConfig, seed: int) -> tuple[list[RawPair], dict[str, int]]:
    """Reservoir-sample ``max_sent`` pairs of at most ``max_words`` words per side (seeded, one pass)."""
    rng = random.Random(f"{seed}:{lang}")
    kept: list[RawPair] = []
    counts = {"lines": 0, "too_long": 0}
    eligible = 0
    for pair in read_corpus(corpus, lang):
        counts["lines"] += 1
        if len(pair[1]) > cfg.max_words or len(pair[2]) > cfg.max_words:
            counts["too_long"] += 1
            continue
        eligible += 1
        if len(kept) < cfg.max_sent:
            kept.append(pair)
        else:
            slot = rng.randrange(eligible)
            if slot < cfg.max_sent:
                kept[slot] = pair
    kept.sort(key=lambda p: p[0])
    counts["sampled"] = len(kept)
    return kept, counts


def filter_links(
    source: Sequence[Sequence[str]],
    english: Sequence[Sequence[str]],
    links: Sequence[Sequence[Link]],
    drop_identical: bool,
) -> tuple[list[list[Link]], int]:
    """Drop links between identical strings if asked; returns the links and how many were dropped."""
    if not drop_identical:
        return [list(x) for x in links], 0
    out, dropped = [], 0
    for src, eng, pair_links in zip(source, english, links, strict=True):
        keep = [(i, j) for i, j in pair_links if src[i] != eng[j]]
        dropped += len(pair_links) - len(keep)
        out.append(keep)
    return out, dropped


def align_language(
    raw: list[RawPair], drop_identical: bool, corpus: PairCorpus | None = None, lang: str = ""
) -> tuple[list[RawPair], list[list[Link]], dict[str, int]]:
    """Word-align sampled pairs (eflomal, intersected, one-to-one); pairs with no link left are dropped, counted.

    With ``corpus``, eflomal learns from every pair of the corpus (:func:`corpus_links`); else from ``raw`` only.
    """
    source, english = [p[1] for p in raw], [p[2] for p in raw]
    if corpus is None:
        from xlray.wordalign.eflomal import word_align

        found, trained_on = word_align(source, english), sum(1 for p in raw if p[1] and p[2])
    else:
        by_line, trained_on = corpus_links(corpus, lang, [p[0] for p in raw])
        found = [by_line.get(p[0], []) for p in raw]  # absent: an empty side, no links
    links, identical = filter_links(source, english, found, drop_identical)
    keep = [k for k, pair_links in enumerate(links) if pair_links]
    counts = {
        "aligner_pairs": trained_on,
        "identical_links_dropped": identical,
        "no_alignable_word": len(raw) - len(keep),
        "links": sum(len(links[k]) for k in keep),
    }
    return [raw[k] for k in keep], [links[k] for k in keep], counts


def corpus_links(corpus: PairCorpus, lang: str, lines: Sequence[int]) -> tuple[dict[int, list[Link]], int]:
    """eflomal trained on every pair of the corpus with words on both sides (Efimov et al. align the whole file),
    streamed through two temporary files; returns the links of the pairs at ``lines`` (line or row numbers) and
    how many pairs eflomal learnt from. Only the wanted pairs' links are held in memory."""
    from xlray.wordalign.eflomal import word_align_files

    wanted, rows, n = set(lines), [], 0
    with tempfile.TemporaryDirectory(prefix="xlray-pairs-") as tmp:
        src_path, eng_path = Path(tmp) / "source", Path(tmp) / "english"
        with open(src_path, "w", encoding="utf-8") as fs, open(eng_path, "w", encoding="utf-8") as fe:
            for line, src, eng in read_corpus(corpus, lang):
                if not (src and eng):
                    continue
                if line in wanted:
                    rows.append((n, line))
                fs.write(" ".join(src) + "\n")
                fe.write(" ".join(eng) + "\n")
                n += 1
        found = word_align_files(src_path, eng_path, n, [row for row, _ in rows]) if rows else []
    return {line: links for (_, line), links in zip(rows, found, strict=True)}, n


def build_pairs(cfg: AdjustConfig) -> AlignedPairs:
    """Sample, align and split the pairs of every language (the first ``heldout_sent`` of a seeded shuffle)."""
    columns: dict[str, list] = {"language": [], "line": [], "split": [], "source": [], "english": [], "links": []}
    all_counts = {}
    for lang in cfg.languages:
        raw, counts = sample_pairs(cfg.corpus, lang, cfg.pairs, cfg.seed)
        whole = cfg.corpus if cfg.pairs.align_on == "corpus" else None
        raw, links, align_counts = align_language(raw, cfg.pairs.drop_identical, whole, lang)
        counts.update(align_counts)
        if len(raw) <= cfg.pairs.heldout_sent:
            where_from = ", ".join(corpus_paths(cfg.corpus, lang))
            raise XlrayError(
                f"{where_from}: only {len(raw)} alignable pairs for {lang} ({counts}); "
                f"pairs.heldout_sent ({cfg.pairs.heldout_sent}) leaves none for training"
            )
        order = list(range(len(raw)))
        random.Random(f"{cfg.seed}:{lang}:heldout").shuffle(order)
        heldout = set(order[: cfg.pairs.heldout_sent])
        counts["heldout"], counts["train"] = len(heldout), len(raw) - len(heldout)
        all_counts[lang] = counts
        for k, (line, src, eng) in enumerate(raw):
            for key, value in zip(
                columns, (lang, line, "heldout" if k in heldout else "train", src, eng, links[k]), strict=True
            ):
                columns[key].append(value)
    batch = PairBatch(columns["source"], columns["english"], columns["links"])
    return AlignedPairs(columns["language"], columns["line"], columns["split"], batch, all_counts)


# --- saving and loading -------------------------------------------------------------------------------------


def write_pairs(pairs: AlignedPairs, path: str | Path) -> Path | str:
    """Write the pairs as Parquet (a local path or a URI), whole or not at all (``xlray.outputs``)."""
    b = pairs.batch
    frame = pl.DataFrame(
        {
            "language": pairs.language,
            "line": pairs.line,
            "split": pairs.split,
            "source": b.source,
            "english": b.english,
            "source_index": [[i for i, _ in x] for x in b.links],
            "english_index": [[j for _, j in x] for x in b.links],
        },
        schema={
            "language": pl.String,
            "line": pl.Int64,
            "split": pl.String,
            "source": pl.List(pl.String),
            "english": pl.List(pl.String),
            "source_index": pl.List(pl.Int32),
            "english_index": pl.List(pl.Int32),
        },
    )
    return write_parquet(frame, path)


def read_pairs(path: str | Path, split: str | None = None, languages: Sequence[str] | None = None) -> AlignedPairs:
    """Load pairs written by :func:`write_pairs` (a local path or a URI), optionally one split and some languages."""
    with open_binary(path) as f:  # a missing file is a one-line error naming it
        frame = pl.read_parquet(f)
    if split is not None:
        if split not in SPLITS:
            raise XlrayError(f"{path}: unknown split {split!r}; expected one of {SPLITS}")
        frame = frame.filter(pl.col("split") == split)
    if languages is not None:
        frame = frame.filter(pl.col("language").is_in(list(languages)))
    links = [
        list(zip(s, e, strict=True))
        for s, e in zip(frame["source_index"].to_list(), frame["english_index"].to_list(), strict=True)
    ]
    batch = PairBatch(frame["source"].to_list(), frame["english"].to_list(), links)
    return AlignedPairs(frame["language"].to_list(), frame["line"].to_list(), frame["split"].to_list(), batch)


def load_pool(
    path: str | Path, size: int = 30_000, seed: int = 0, languages: Sequence[str] | None = None
) -> AlignedPairs:
    """The continual-learning pool: up to ``size`` training pairs, chosen with a seed (Efimov et al.: 30k)."""
    pairs = read_pairs(path, split="train", languages=languages)
    if len(pairs) <= size:
        return pairs
    rows = np.sort(np.random.default_rng(seed).choice(len(pairs), size=size, replace=False))
    return pairs.select(rows.tolist())
