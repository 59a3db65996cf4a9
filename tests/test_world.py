"""The synthetic world is deterministic, and its gold alignments and dictionary agree with its corpora."""

import hashlib
import unicodedata

import polars as pl

from xlray.world.build import WorldConfig, write_world


def digest(folder):
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(path.relative_to(folder).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    cfg = WorldConfig(parallel_sentences=50, task_train=30, task_test=30)
    a = digest(write_world(cfg, tmp_path / "a"))
    assert a == digest(write_world(cfg, tmp_path / "b"))
    assert a != digest(write_world(cfg.model_copy(update={"seed": 1}), tmp_path / "c"))


def test_gold_alignment_links_words_of_the_same_concept(assets):
    world = assets / "world"
    gold = pl.read_parquet(world / "gold" / "words.parquet")
    concept = {(r["language"], r["sentence"], r["index"]): r["concept"] for r in gold.iter_rows(named=True)}
    dictionary = pl.read_parquet(world / "gold" / "dictionary.parquet")
    pairs = set(zip(dictionary["language"], dictionary["word"], dictionary["translation"], strict=True))
    for lang in ("xl", "xc", "xd"):
        tgt = (world / "parallel" / f"{lang}-en.{lang}").read_text(encoding="utf-8").splitlines()
        src = (world / "parallel" / f"{lang}-en.en").read_text(encoding="utf-8").splitlines()
        links = (world / "parallel" / f"{lang}-en.gold.align").read_text().splitlines()
        assert len(tgt) == len(src) == len(links) == 2000
        n_links = 0
        for k, (t_line, s_line, a_line) in enumerate(zip(tgt, src, links, strict=True)):
            t_words, s_words = t_line.split(), s_line.split()
            for link in a_line.split():
                i, j = map(int, link.split("-"))
                assert concept[(lang, k, i)] == concept[("en", k, j)]
                if not concept[(lang, k, i)].startswith("punct"):
                    assert (lang, t_words[i], s_words[j]) in pairs
                n_links += 1
        assert n_links > 5 * len(tgt)


def test_scripts_and_shared_tokens(assets):
    world = assets / "world"
    xc = (world / "parallel" / "xc-en.xc").read_text(encoding="utf-8")
    xd = (world / "parallel" / "xd-en.xd").read_text(encoding="utf-8")
    xl = (world / "parallel" / "xl-en.xl").read_text(encoding="utf-8")
    assert any("\u0400" <= ch <= "\u04ff" for ch in xc)
    assert any("\u0900" <= ch <= "\u097f" for ch in xd)
    assert any(unicodedata.combining(ch) for ch in xl)
    en_words = set((world / "parallel" / "xl-en.en").read_text(encoding="utf-8").split())
    shared = en_words & set(xc.split())
    assert "." in shared and any(w.isdigit() for w in shared)


def test_dev_splits_are_written_in_the_real_layouts_apart_from_the_test_splits(assets):
    """XTREME's xnli.dev.tsv and panx/dev-<lang>.tsv, MLQA's dev/dev-context-<l>-question-<l>.json: the split a
    sweep tunes on, read by the same readers as the test files, with other examples than theirs."""
    from xlray.tasks.formats import read_iob, read_squad, read_xnli

    tasks, langs, n = assets / "world" / "tasks", ["en", "xl", "xc", "xd"], WorldConfig().task_dev
    dev = list(read_xnli(tasks / "xnli" / "xnli.dev.tsv", languages=langs))
    assert [sum(ex.language == lang for ex in dev) for lang in langs] == [n] * 4
    test = {(ex.premise, ex.hypothesis) for ex in read_xnli(tasks / "xnli" / "xnli.test.tsv", languages=langs)}
    assert len({(ex.premise, ex.hypothesis) for ex in dev} - test) > n  # mostly new pairs, not the test's
    for lang in langs:
        assert len(list(read_iob(tasks / "panx" / f"dev-{lang}.tsv"))) == n
        questions = list(read_squad(tasks / "mlqa" / "dev" / f"dev-context-{lang}-question-{lang}.json"))
        assert len(questions) == n // 3 * 3 and all(q.context[a.start :].startswith(a.text) for q in questions
                                                    for a in q.answers)  # fmt: skip
