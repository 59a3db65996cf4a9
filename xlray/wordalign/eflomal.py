"""Symmetrised eflomal word alignment: forward and reverse links, intersected, one-to-one links only.

eflomal 2.0 seeds its Gibbs samplers from /dev/urandom and exposes no seed, so two runs on the same corpus can
differ in a few links; raising ``n_samplers`` (independent samplers whose marginals are averaged) lowers that
variance. The intersection keeps the links both directions agree on, which is the stable part.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path

from xlray.errors import XlrayError

Link = tuple[int, int]  # (source word index, target word index) of a sentence pair

# eflomal's writer replaces sentences of this many tokens or more by an empty one (no links).
MAX_EFLOMAL_TOKENS = 0x400


def word_align(
    src: Sequence[Sequence[str]],
    tgt: Sequence[Sequence[str]],
    *,
    model: int = 3,
    n_samplers: int = 3,
    rel_iterations: float = 1.0,
    null_prior: float = 0.2,
) -> list[list[Link]]:
    """Align pre-tokenized sentence pairs; returns per pair the sorted (src index, tgt index) links.

    Args:
        src: source sentences, each a list of words (no whitespace inside a word); may be empty.
        tgt: target sentences, line-parallel to ``src``.
        model: eflomal model (1 = IBM1, 2 = + HMM, 3 = + fertility).
        n_samplers: independent samplers; more is slower but less variable.
        rel_iterations: iteration count relative to eflomal's default (5000 / sqrt(n_sentences)).
        null_prior: prior probability of a NULL alignment.
    """
    if len(src) != len(tgt):
        raise XlrayError(f"word_align: {len(src)} source sentences but {len(tgt)} target sentences")
    if model not in (1, 2, 3):
        raise XlrayError(f"word_align: model: expected 1, 2 or 3, got {model}")
    check_tokens(src, "source")
    check_tokens(tgt, "target")
    # Pairs with an empty side have no links; leaving them out keeps eflomal's vocabulary and counts clean.
    keep = [i for i in range(len(src)) if len(src[i]) and len(tgt[i])]
    links: list[list[Link]] = [[] for _ in src]
    if not keep:
        return links
    fwd, rev = run_eflomal(
        [" ".join(src[i]) for i in keep],
        [" ".join(tgt[i]) for i in keep],
        len(keep),
        model=model,
        n_samplers=n_samplers,
        rel_iterations=rel_iterations,
        null_prior=null_prior,
    )
    for k, i in enumerate(keep):
        links[i] = one_to_one(set(fwd[k]) & set(rev[k]))
    return links


def check_tokens(sents: Sequence[Sequence[str]], side: str) -> None:
    """Reject words that eflomal would split or drop, since links are word positions."""
    for i, sent in enumerate(sents):
        for j, word in enumerate(sent):
            if not word or any(ch.isspace() for ch in word):
                raise XlrayError(
                    f"word_align: {side} sentence {i}, word {j}: {word!r} is empty or contains whitespace;"
                    " tokenize into words first"
                )
        if len(sent) >= MAX_EFLOMAL_TOKENS:
            logging.getLogger(__name__).warning(
                "%s sentence %d has %d words; eflomal aligns nothing in it", side, i, len(sent)
            )


def word_align_files(
    src: Path,
    tgt: Path,
    n_sents: int,
    rows: Collection[int],
    *,
    model: int = 3,
    n_samplers: int = 3,
    rel_iterations: float = 1.0,
    null_prior: float = 0.2,
) -> list[list[Link]]:
    """Align every pair of two line-parallel files and return the links of the pairs at ``rows`` only.

    The files hold ``n_sents`` sentences of space-separated words, none empty (the caller writes them). eflomal
    learns from all of them, while only the wanted rows' links are read back into Python. Links are as
    :func:`word_align`'s: forward and reverse intersected, one-to-one, sorted; returned in row order.
    """
    if model not in (1, 2, 3):
        raise XlrayError(f"word_align: model: expected 1, 2 or 3, got {model}")
    wanted = set(rows)
    with open(src, encoding="utf-8", newline="\n") as fs, open(tgt, encoding="utf-8", newline="\n") as ft:
        opts = {"model": model, "n_samplers": n_samplers, "rel_iterations": rel_iterations, "null_prior": null_prior}
        fwd, rev = run_eflomal(fs, ft, n_sents, wanted, **opts)
    return [one_to_one(set(f) & set(r)) for f, r in zip(fwd, rev, strict=True)]


def run_eflomal(
    src: Iterable[str],
    tgt: Iterable[str],
    n_sents: int,
    rows: Collection[int] | None = None,
    *,
    model: int,
    n_samplers: int,
    rel_iterations: float,
    null_prior: float,
) -> tuple[list[list[Link]], list[list[Link]]]:
    """Run the eflomal binary once on ``n_sents`` pairs of space-joined sentences (lists or open files); returns
    the forward and reverse links per pair, of every pair or of the pairs at ``rows`` (in row order).

    The binary's input files are written by :func:`write_eflomal_text`, not by eflomal's Cython reader, which
    crashed a test process with a segmentation fault; eflomal's ``align`` only runs the binary."""
    from eflomal import align

    with tempfile.TemporaryDirectory(prefix="xlray-eflomal-") as tmp:
        src_path, tgt_path = Path(tmp) / "source", Path(tmp) / "target"
        n_src, n_tgt = write_eflomal_text(src, src_path), write_eflomal_text(tgt, tgt_path)
        if n_src != n_tgt:
            raise XlrayError(f"word_align: {n_src} source sentences but {n_tgt} target sentences")
        fwd_path, rev_path = Path(tmp) / "fwd", Path(tmp) / "rev"
        align(str(src_path), str(tgt_path), links_filename_fwd=str(fwd_path), links_filename_rev=str(rev_path),
              model=model, n_samplers=n_samplers, quiet=True, rel_iterations=rel_iterations,
              null_prior=null_prior)  # fmt: skip
        return read_links(fwd_path, n_sents, rows), read_links(rev_path, n_sents, rows)


def write_eflomal_text(lines: Iterable[str], path: Path) -> int:
    """Write sentences in the eflomal binary's input format, as eflomal's own ``read_text`` + ``write_text`` do: a
    header ``<sentences> <vocabulary size>``, then per sentence its length and word ids (words lowercased, ids by
    first appearance); a sentence of ``MAX_EFLOMAL_TOKENS`` words or more is written as empty. Streamed: the body
    goes to a scratch file while the vocabulary grows, then after the header. Returns the number of sentences."""
    index: dict[str, int] = {}
    body = path.with_name(path.name + ".body")
    n = 0
    with open(body, "w", encoding="ascii") as out:
        for line in lines:
            ids = [index.setdefault(word, len(index)) for word in line.lower().split()]
            out.write(f"{len(ids)} {' '.join(map(str, ids))}\n" if 0 < len(ids) < MAX_EFLOMAL_TOKENS else "0\n")
            n += 1
    with open(path, "w", encoding="ascii") as out, open(body, encoding="ascii") as fh:
        out.write(f"{n} {len(index)}\n")
        shutil.copyfileobj(fh, out)
    body.unlink()
    return n


def read_links(path: Path, n_sents: int, rows: Collection[int] | None = None) -> list[list[Link]]:
    """Parse eflomal's Pharaoh-format output (``i-j`` per link, one line per sentence pair), streamed: every
    line's links, or those of the lines at ``rows`` only."""
    # eflomal's Python wrapper ignores the binary's exit status, so a crash shows up as missing output.
    if not path.is_file():
        raise XlrayError("word_align: eflomal wrote no links file; run `eflomal-align --help` to check it")
    out, count = [], 0
    with open(path, encoding="utf-8") as fh:
        for count, line in enumerate(fh, 1):
            if rows is None or count - 1 in rows:
                out.append([(int(i), int(j)) for i, j in (item.split("-") for item in line.split())])
    if count != n_sents:
        raise XlrayError(f"word_align: eflomal wrote {count} link lines for {n_sents} sentence pairs")
    return out


def one_to_one(links: set[Link] | Sequence[Link]) -> list[Link]:
    """Keep only links whose source word and target word each take part in exactly one link."""
    src_n = Counter(i for i, _ in links)
    tgt_n = Counter(j for _, j in links)
    return sorted((i, j) for i, j in links if src_n[i] == 1 and tgt_n[j] == 1)
