"""Write the synthetic world to disk in real corpus formats: parallel text, gold alignments, gold dictionary."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import polars as pl
from pydantic import Field, field_validator

from xlray.configs import Strict
from xlray.outputs import atomic_dir
from xlray.world.grammar import Meaning, Word, alignment, random_meaning, render
from xlray.world.languages import (
    TYPOLOGY,
    Language,
    anchor_concepts,
    in_source_order,
    make_language,
    shared_name_forms,
)

MANIFEST = "world.json"


class WorldConfig(Strict):
    """Size and shape of the synthetic world; everything is a pure function of these fields."""

    seed: int = 0
    source: str = "en"
    languages: list[str] = Field(default_factory=lambda: ["xl", "xc", "xd"], min_length=1)
    parallel_sentences: int = Field(2000, ge=10)
    negation_rate: float = Field(0.15, ge=0, le=1)
    task_train: int = Field(600, ge=10, description="English training examples per task")
    task_test: int = Field(150, ge=10, description="Test examples per task and language")
    task_dev: int = Field(100, ge=10, description="Dev examples per task and language (the split to tune on)")
    # Dose knobs of planted alignment in the world itself; 0 (the default) plants nothing beyond shared names and
    # digits. xlray findings can sweep either (dose: anchors | word_order), with one world per dose.
    anchors: float = Field(
        0.0, ge=0, le=1, description="share of colours, animals, verbs, places and organisations every language"
        " writes as the source language does (shared anchor words)"
    )  # fmt: skip
    word_order: float = Field(
        0.0, ge=0, le=1, description="share of each target language's sentences said in the source's word order"
    )

    @field_validator("languages")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [code for code in value if code not in TYPOLOGY]
        if unknown:
            raise ValueError(f"unknown synthetic language(s) {unknown}; known: {sorted(TYPOLOGY)}")
        return value


class World:
    """The languages of a world and deterministic streams of meanings (one RNG stream per purpose)."""

    def __init__(self, cfg: WorldConfig):
        self.cfg = cfg
        names = shared_name_forms(cfg.seed)
        source = make_language(cfg.source, cfg.seed, names)
        self.anchors = anchor_concepts(cfg.seed, cfg.anchors)
        borrowed = {c: source.form(c) for c in self.anchors}
        self.languages: dict[str, Language] = {cfg.source: source}
        for code in (c for c in cfg.languages if c != cfg.source):
            self.languages[code] = make_language(code, cfg.seed, names, borrowed)
            in_source_order(self.languages[code], source.typology, cfg.word_order, cfg.seed)

    @property
    def targets(self) -> list[str]:
        return [c for c in self.languages if c != self.cfg.source]

    def meanings(self, purpose: str, n: int, negation: float | None = None) -> Iterator[Meaning]:
        rng = random.Random(f"{self.cfg.seed}:{purpose}")
        rate = self.cfg.negation_rate if negation is None else negation
        for _ in range(n):
            yield random_meaning(rng, rate)

    def render(self, meaning: Meaning, code: str) -> list[Word]:
        return render(meaning, self.languages[code])


def words_line(words: list[Word]) -> str:
    return " ".join(w.form for w in words)


def write_parallel(world: World, out: Path) -> None:
    """Line-aligned ``{xx}-{en}.{xx}`` / ``.{en}`` files, Pharaoh gold alignments and gold word concepts."""
    src = world.cfg.source
    (out / "parallel").mkdir(parents=True)
    gold_rows: dict[str, list] = {"language": [], "sentence": [], "index": [], "word": [], "concept": []}
    files = {}
    for tgt in world.targets:
        stem = out / "parallel" / f"{tgt}-{src}"
        files[tgt] = [
            open(f"{stem}.{tgt}", "w", encoding="utf-8"),
            open(f"{stem}.{src}", "w", encoding="utf-8"),
            open(f"{stem}.gold.align", "w", encoding="utf-8"),
        ]
    for k, meaning in enumerate(world.meanings("parallel", world.cfg.parallel_sentences)):
        rendered = {code: world.render(meaning, code) for code in world.languages}
        for code, words in rendered.items():
            for i, w in enumerate(words):
                for key, value in zip(gold_rows, (code, k, i, w.form, w.concept), strict=True):
                    gold_rows[key].append(value)
        for tgt, (f_tgt, f_src, f_align) in files.items():
            f_tgt.write(words_line(rendered[tgt]) + "\n")
            f_src.write(words_line(rendered[src]) + "\n")
            f_align.write(" ".join(f"{i}-{j}" for i, j in alignment(rendered[tgt], rendered[src])) + "\n")
    for handles in files.values():
        for handle in handles:
            handle.close()
    (out / "gold").mkdir()
    pl.DataFrame(gold_rows).write_parquet(out / "gold" / "words.parquet")


def gold_dictionary(world: World) -> pl.DataFrame:
    """Gold bilingual dictionary: one row per (target language, target word, source word) sharing a concept."""
    src = world.languages[world.cfg.source]
    rows = [
        (code, lang.lexicon[c], src.lexicon[c], c)
        for code, lang in world.languages.items()
        if code != world.cfg.source
        for c in lang.lexicon
    ]
    return pl.DataFrame(rows, schema=["language", "word", "translation", "concept"], orient="row")


def read_world_config(folder: str | Path) -> WorldConfig | None:
    """The config a world folder was written with (its ``world.json``), or None if there is none."""
    manifest = Path(folder) / MANIFEST
    if not manifest.is_file():
        return None
    return WorldConfig.model_validate(json.loads(manifest.read_text(encoding="utf-8"))["config"])


def gold_files(cfg: WorldConfig) -> list[str]:
    """The files of a world that hold its ground truth (and the parallel text it is about), relative to its folder."""
    src = cfg.source
    parallel = [f"parallel/{t}-{src}.{end}" for t in cfg.languages if t != src for end in (t, src, "gold.align")]
    return [*parallel, "gold/words.parquet", "gold/dictionary.parquet"]


def write_world(cfg: WorldConfig, out: str | Path) -> Path:
    """Write the world under ``out`` (skipped if its manifest says the same config); returns ``out``."""
    out = Path(out)
    manifest = out / MANIFEST
    if manifest.is_file() and json.loads(manifest.read_text())["config"] == cfg.model_dump():
        return out
    from xlray.world.tasks import write_tasks

    world = World(cfg)

    def write(tmp: Path) -> None:
        write_parallel(world, tmp)
        gold_dictionary(world).write_parquet(tmp / "gold" / "dictionary.parquet")
        write_tasks(world, tmp / "tasks")
        (tmp / MANIFEST).write_text(json.dumps({"config": cfg.model_dump(), "languages": list(world.languages)}))

    return atomic_dir(out, write)
