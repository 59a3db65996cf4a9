"""The concept explorer of a concepts run: ``explorer.html``, one self-contained page, and its data ``explorer.json``.

Per layer and view (source, target, joint): the layer's CALIGN both ways, COLAP and noise beside a curve over the
layers; search (a word's concept here and at every layer); each concept's members per language with counts, its
CALIGN matches (target concept, m, |S|, |T|, aligned?, the translation pairs behind m) or its COLAP language shares;
gold concepts and purity where ``explorer.gold_words`` names the world's file; a 2-D PCA map of a bounded sample of
the layer's occurrences. Page and data are built from what `xlray concepts` holds at the end of a run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from xlray.concepts.config import ConceptsConfig
from xlray.concepts.explorer_data import calign_view, colap_view, view_concepts, vocabularies, vocabulary_frame
from xlray.concepts.explorer_gold import gold_purity, gold_summary, read_gold, with_gold, word_gold
from xlray.concepts.explorer_map import layer_map
from xlray.concepts.explorer_page import page_json, render_page
from xlray.extract.reader import Activations, open_activations
from xlray.outputs import atomic, json_safe
from xlray.storage import join

FILES = ("explorer.html", "explorer.json")
FORMAT = "xlray-explorer/1"


def write_explorer(
    cfg: ConceptsConfig,
    out: str | Path,
    assignments: pl.DataFrame,
    results: Mapping[int, Mapping[str, float | None]],
    forward_top: Mapping[str, Sequence[str]],
    reverse_top: Mapping[str, Sequence[str]],
    title: str,
) -> list[str]:
    """Write explorer.json and explorer.html into ``out`` (a folder or a URI); returns the names written.

    ``assignments``: layer, view, language, sentence_id, word, word_index, cluster (noise -1); ``results``: the
    per-layer metrics (int or str layer keys); ``forward_top``/``reverse_top``: D_N both ways.
    """
    text = page_json(explorer_data(cfg, assignments, results, forward_top, reverse_top, title))
    atomic(join(str(out), FILES[1]), lambda p: p.write_text(text, encoding="utf-8"))
    atomic(join(str(out), FILES[0]), lambda p: p.write_text(render_page(text, title), encoding="utf-8"))
    return list(FILES)


def explorer_data(
    cfg: ConceptsConfig,
    assignments: pl.DataFrame,
    results: Mapping[int, Mapping[str, float | None]],
    forward_top: Mapping[str, Sequence[str]],
    reverse_top: Mapping[str, Sequence[str]],
    title: str,
) -> dict[str, Any]:
    """The page's data (FORMAT): settings, vocabularies, gold concepts, and per layer its metrics, views and map."""
    src, tgt = cfg.source, cfg.target
    views = {"source": src, "target": tgt, "joint": "joint"}
    vocab = vocabularies(assignments, [src, tgt])
    index = {lang: {w: i for i, w in enumerate(words)} for lang, words in vocab.items()}
    gold, names = None, None
    if cfg.explorer.gold_words:
        assignments = with_gold(assignments, read_gold(cfg.explorer.gold_words))
        gold = gold_index(cfg.explorer.gold_words, assignments, index)
        names = {concept: i for i, concept in enumerate(gold["concepts"])}
    acts = open_activations(cfg.activations)
    context = LayerContext(cfg, views, vocab, index, names, forward_top, reverse_top)
    layers = sorted(assignments["layer"].unique().to_list())
    return {
        "format": FORMAT,
        "title": title,
        "languages": [src, tgt],
        "curve": curve_metrics(src, tgt),
        "settings": {
            "calign": cfg.calign.model_dump(mode="json"),
            "colap": cfg.colap.model_dump(mode="json"),
            "explorer": cfg.explorer.model_dump(mode="json"),
            "clustering": cfg.clustering.model_dump(mode="json"),
            "site": cfg.site,
        },
        "vocab": vocab,
        "gold": gold,
        "layers": [
            layer_data(context, acts, layer, assignments.filter(pl.col("layer") == layer), metrics_of(results, layer))
            for layer in layers
        ],
    }


def curve_metrics(src: str, tgt: str) -> list[dict[str, str]]:
    """The per-layer metrics shown beside the layer selector and drawn as curves (all in [0, 1])."""
    return [
        {"name": f"calign.{src}_{tgt}", "label": f"CALIGN {src}\u2192{tgt}"},
        {"name": f"calign.{tgt}_{src}", "label": f"CALIGN {tgt}\u2192{src}"},
        {"name": "colap", "label": "COLAP"},
        {"name": "noise_fraction.joint", "label": "noise (joint)"},
    ]


def metrics_of(results: Mapping[Any, Mapping[str, Any]], layer: int) -> dict[str, Any]:
    """One layer's results, whether keyed by int (in a run) or str (read back from results.json); NaN as None."""
    return json_safe(dict(results.get(layer) or results.get(str(layer)) or {}))


@dataclass
class LayerContext:
    """What every layer's data needs: the config, view names (page -> assignments), vocabularies and word indices,
    the gold concepts' indices (None: no gold), D_N both ways."""

    cfg: ConceptsConfig
    views: dict[str, str]
    vocab: dict[str, list[str]]
    index: dict[str, dict[str, int]]
    gold_names: dict[str, int] | None
    forward_top: Mapping[str, Sequence[str]]
    reverse_top: Mapping[str, Sequence[str]]
    words: pl.DataFrame = field(init=False)  # `vocabulary_frame`
    sizes: dict[str, int] = field(init=False)  # vocabulary sizes

    def __post_init__(self) -> None:
        self.words = vocabulary_frame(self.vocab)
        self.sizes = {lang: len(words) for lang, words in self.vocab.items()}


def layer_data(
    ctx: LayerContext, acts: Activations, layer: int, frame: pl.DataFrame, metrics: dict[str, Any]
) -> dict[str, Any]:
    """One layer: its metrics, each view's concepts (with CALIGN matches or COLAP overlap, gold), and its map."""
    cfg = ctx.cfg
    src, tgt = cfg.source, cfg.target
    rows = {name: frame.filter(pl.col("view") == view) for name, view in ctx.views.items()}
    out: dict[str, Any] = {}
    for name, languages in (("source", [src]), ("target", [tgt]), ("joint", [src, tgt])):
        data = {"name": name} | view_concepts(rows[name], languages, ctx.words, ctx.sizes, cfg.explorer.top_words)
        if ctx.gold_names is not None:
            data["gold"] = concept_gold(rows[name], data["id"], ctx.gold_names)
        out[name] = data
    top = cfg.explorer.top_matches
    index = ctx.index
    out["source"]["matches"] = calign_view(
        rows["source"], rows["target"], ctx.forward_top, cfg.calign, (index[src], index[tgt]), top
    )
    out["target"]["matches"] = calign_view(
        rows["target"], rows["source"], ctx.reverse_top, cfg.calign, (index[tgt], index[src]), top
    )
    out["joint"]["overlap"] = colap_view(rows["joint"], [src, tgt], cfg.colap)
    limit = cfg.explorer.map_points
    drawn = layer_map(acts, layer, cfg.site, frame, index, ctx.views, limit, cfg.points, cfg.seed)
    return {"layer": layer, "metrics": metrics, "views": out, "map": drawn}


def gold_index(path: str, assignments: pl.DataFrame, index: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    """The gold concepts' names, each word's majority gold concept (an index into them, -1: none) and the join's
    counts; from the first layer's joint view, which holds every occurrence once."""
    first = assignments.filter((pl.col("layer") == assignments["layer"].min()) & (pl.col("view") == "joint"))
    concepts = sorted(first["gold"].drop_nulls().unique().to_list())
    names = {c: i for i, c in enumerate(concepts)}
    per_word = {lang: [-1] * len(words) for lang, words in index.items()}
    for lang, word, concept in word_gold(first).iter_rows():
        per_word[lang][index[lang][word]] = names[concept]
    return {"concepts": concepts, "word": per_word} | gold_summary(path, first)


def concept_gold(frame: pl.DataFrame, ids: list[int], names: Mapping[str, int]) -> list[list[float] | None]:
    """Per concept of ``ids``: [gold concept index, purity], or None when none of its occurrences has a label."""
    found = {label: [names[g], round(p, 3)] for label, g, p, _ in gold_purity(frame).iter_rows()}
    return [found.get(label) for label in ids]
