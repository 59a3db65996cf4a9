"""Aligned pairs for adjustment: corpus readers, bad input with file and line, counted drops, saved pool."""

import numpy as np
import polars as pl
import pytest

from xlray.adjust.config import AdjustConfig, LinesCorpus, PairsConfig, ParquetCorpus, TsvCorpus
from xlray.adjust.pairs import build_pairs, load_pool, read_corpus, read_pairs, sample_pairs, write_pairs
from xlray.errors import XlrayError


def world_lines(assets, lang="xl", n=None):
    folder = assets / "world" / "parallel"
    src = (folder / f"{lang}-en.{lang}").read_text(encoding="utf-8").splitlines()[:n]
    eng = (folder / f"{lang}-en.en").read_text(encoding="utf-8").splitlines()[:n]
    gold = (folder / f"{lang}-en.gold.align").read_text(encoding="utf-8").splitlines()[:n]
    return src, eng, [{tuple(map(int, x.split("-"))) for x in line.split()} for line in gold]


def write_lines(folder, src, eng, lang="xl"):
    (folder / f"{lang}.src").write_text("".join(s + "\n" for s in src), encoding="utf-8")
    (folder / f"{lang}.en").write_text("".join(e + "\n" for e in eng), encoding="utf-8")
    return LinesCorpus(format="lines", source=str(folder / "{lang}.src"), english=str(folder / "{lang}.en"))


def adjust_config(corpus, **pairs):
    return AdjustConfig(
        stage="adjust", model={"name": "unused"}, corpus=corpus, languages=["xl"], pairs=pairs, output_dir="unused"
    )


def test_files_of_different_lengths_name_both_files_and_counts(tmp_path):
    corpus = write_lines(tmp_path, ["a b", "c", "d"], ["a b", "c"])
    with pytest.raises(XlrayError) as err:
        list(read_corpus(corpus, "xl"))
    msg = str(err.value)
    assert str(tmp_path / "xl.src") in msg and str(tmp_path / "xl.en") in msg and "3 lines" in msg and "has 2" in msg
    corpus = write_lines(tmp_path, ["a"], ["a", "b", "c", "d"])
    with pytest.raises(XlrayError, match=r"has 1 lines but .* has 4"):
        list(read_corpus(corpus, "xl"))


def test_invalid_utf8_and_bad_tsv_rows_name_file_and_line(tmp_path):
    corpus = write_lines(tmp_path, ["a", "b", "c"], ["a", "b", "c"])
    (tmp_path / "xl.en").write_bytes(b"a\nb\n\xff\xfe c\n")
    with pytest.raises(XlrayError, match=rf"{tmp_path / 'xl.en'}:3: invalid UTF-8"):
        list(read_corpus(corpus, "xl"))
    (tmp_path / "xl.tsv").write_text("a b\tc d\nno tab here\n", encoding="utf-8")
    with pytest.raises(XlrayError, match=rf"{tmp_path / 'xl.tsv'}:2: expected 2 tab-separated fields"):
        list(read_corpus(TsvCorpus(format="tsv", path=str(tmp_path / "{lang}.tsv")), "xl"))


def test_lines_tsv_and_parquet_give_the_same_pairs(tmp_path):
    src, eng = ["Dira  depá .", "tẹvu mạmo", ""], ["Dira hucovote .", "hutu sa", "x"]
    lines = list(read_corpus(write_lines(tmp_path, src, eng), "xl"))
    assert lines[0] == (1, ["Dira", "depá", "."], ["Dira", "hucovote", "."]) and lines[2] == (3, [], ["x"])
    (tmp_path / "xl.tsv").write_text(
        "src\ten\n" + "".join(f"{s}\t{e}\n" for s, e in zip(src, eng, strict=True)), encoding="utf-8"
    )
    tsv = list(read_corpus(TsvCorpus(format="tsv", path=str(tmp_path / "{lang}.tsv"), header=True), "xl"))
    assert [p[1:] for p in tsv] == [p[1:] for p in lines]
    pl.DataFrame({"f": src, "e": [e.split() for e in eng]}).write_parquet(tmp_path / "xl.parquet")
    corpus = ParquetCorpus(
        format="parquet", path=str(tmp_path / "{lang}.parquet"), source_column="f", english_column="e"
    )
    assert list(read_corpus(corpus, "xl")) == lines
    with pytest.raises(XlrayError, match=r"no column\(s\) \['source'\]"):
        list(read_corpus(ParquetCorpus(format="parquet", path=str(tmp_path / "xl.parquet"), english_column="e"), "xl"))


def test_sampling_is_seeded_and_counts_long_pairs(tmp_path):
    src = [" ".join(["w"] * (k % 7 + 1)) + f" s{k}" for k in range(300)]
    corpus = write_lines(tmp_path, src, src)
    cfg = PairsConfig(max_sent=50, heldout_sent=10, max_words=6)
    a, counts = sample_pairs(corpus, "xl", cfg, seed=1)
    b, _ = sample_pairs(corpus, "xl", cfg, seed=1)
    c, _ = sample_pairs(corpus, "xl", cfg, seed=2)
    too_long = sum(1 for s in src if len(s.split()) > 6)
    assert counts == {"lines": 300, "too_long": too_long, "sampled": 50}
    assert a == b and a != c and len(a) == 50 and all(len(p[1]) <= 6 for p in a)
    assert [p[0] for p in a] == sorted(p[0] for p in a)


def test_build_pairs_aligns_counts_drops_and_saves_a_pool(tmp_path, assets):
    src, eng, gold = world_lines(assets, n=300)
    # Appended: an empty English side, a pair of identical strings only, and a pair over max_words.
    bad_src, bad_eng = ["Dira depá .", "42 .", " ".join(["bé"] * 65)], ["", "42 .", "hutu"]
    corpus = write_lines(tmp_path, src + bad_src, eng + bad_eng)
    pairs = build_pairs(adjust_config(corpus, max_sent=1000, heldout_sent=50))
    counts = pairs.counts["xl"]
    assert counts["lines"] == 303 and counts["too_long"] == 1 and counts["sampled"] == 302
    assert counts["no_alignable_word"] >= 2 and {301, 302}.isdisjoint(pairs.line)  # both are counted, not kept
    assert counts["heldout"] == 50 and counts["train"] == len(pairs) - 50 == 302 - counts["no_alignable_word"] - 50
    assert counts["links"] == sum(len(x) for x in pairs.batch.links) and counts["identical_links_dropped"] > 0
    b = pairs.batch
    assert all(b.source[k][i] != b.english[k][j] for k in range(len(pairs)) for i, j in b.links[k])
    assert all(len({i for i, _ in x}) == len(x) == len({j for _, j in x}) for x in b.links)  # one-to-one
    # eflomal finds the gold links of the synthetic world (gold files are foreign-english, as our links).
    found = [(i, j) in gold[line - 1] for line, x in zip(pairs.line, b.links, strict=True) for i, j in x]
    assert np.mean(found) > 0.8

    path = write_pairs(pairs, tmp_path / "pairs.parquet")
    back = read_pairs(path)
    assert back.line == pairs.line and back.batch.links == b.links and back.batch.source == b.source
    heldout = read_pairs(path, split="heldout")
    assert len(heldout) == 50 and set(heldout.split) == {"heldout"}
    pool = load_pool(path, size=100, seed=0)
    assert len(pool) == 100 and set(pool.split) == {"train"} and len(set(pool.line)) == 100
    batch = pool.sample(16, np.random.default_rng(0))
    assert len(batch) == 16 and all(x for x in batch.links)


def gold_aligner(gold_by_text, seen):
    """A stand-in for xlray.wordalign.eflomal.run_eflomal (text lines in, links out): records how many pairs it
    learns from and returns each wanted pair's gold links (looked up by its text) as both directions, so the links
    kept show which row went to which pair."""

    def run_eflomal(src_input, trg_input, n_sents, rows=None, **_):
        pairs = list(zip([s.rstrip("\n") for s in src_input], [t.rstrip("\n") for t in trg_input], strict=True))
        assert len(pairs) == n_sents
        seen.append(len(pairs))
        links = [sorted(gold_by_text.get(p, ())) for k, p in enumerate(pairs) if rows is None or k in rows]
        return links, links

    return run_eflomal


def test_the_aligner_learns_from_the_whole_file_and_the_sampled_pairs_keep_their_links(tmp_path, assets, monkeypatch):
    """Efimov et al. align the whole file, then sample; `align_on: sample` is the faster, smaller variant."""
    import xlray.wordalign.eflomal
    from xlray.wordalign.eflomal import one_to_one

    src, eng, gold = world_lines(assets, n=400)
    # In the middle: a pair with an empty English side (not given to the aligner) and one over max_words (given).
    src[200:200], eng[200:200], gold[200:200] = ["Dira depá .", " ".join(["bé"] * 70)], ["", "hutu"], [set(), set()]
    gold_by_text = {(s, e): g for s, e, g in zip(src, eng, gold, strict=True)}
    seen = []
    monkeypatch.setattr(xlray.wordalign.eflomal, "run_eflomal", gold_aligner(gold_by_text, seen))
    corpus = write_lines(tmp_path, src, eng)
    pairs = build_pairs(adjust_config(corpus, max_sent=60, heldout_sent=10))
    assert seen == [401] and pairs.counts["xl"]["aligner_pairs"] == 401  # 402 lines, one with an empty side
    assert pairs.counts["xl"]["sampled"] == 60 and len(pairs) == 60 - pairs.counts["xl"]["no_alignable_word"]
    for line, s, e, links in zip(pairs.line, pairs.batch.source, pairs.batch.english, pairs.batch.links, strict=True):
        assert links == [(i, j) for i, j in one_to_one(gold[line - 1]) if s[i] != e[j]]
    assert any(line > 202 for line in pairs.line)  # rows after the skipped pair map to their own lines

    seen.clear()
    sampled = build_pairs(adjust_config(corpus, max_sent=60, heldout_sent=10, align_on="sample"))
    assert seen == [60] and sampled.counts["xl"]["aligner_pairs"] == 60
    assert sampled.line == pairs.line and sampled.batch.links == pairs.batch.links  # same links from the same gold
