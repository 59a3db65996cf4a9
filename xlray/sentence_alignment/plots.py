"""Sentence-alignment plots as PNGs (matplotlib, Agg backend): the curves per pair, and word-level concepts beside
them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from xlray.plotting import pyplot

CURVES = (("mexa", "MEXA"), ("retrieval_pivot_to_lang", "retrieval pivot→lang"),
          ("retrieval_lang_to_pivot", "retrieval lang→pivot"))  # fmt: skip


def plot_curves(results: pl.DataFrame, path: Path, title: str) -> Path:
    """One panel per measure (MEXA, retrieval both ways), one line per pair, against the layer index."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(CURVES), figsize=(4 * len(CURVES), 3.5), sharey=True, squeeze=False)
    for ax, (column, label) in zip(axes[0], CURVES, strict=True):
        draw_pairs(ax, results, column, label)
    axes[0, 0].set_ylabel("share of sentences")
    fig.suptitle(title, fontsize="small")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
    return path


def draw_pairs(ax: Any, results: pl.DataFrame, column: str, label: str, prefix: str = "") -> None:
    """One line per (source, target) pair of ``results`` (columns layer, source, target, ``column``)."""
    for (source, target), rows in results.sort("layer").group_by("source", "target", maintain_order=True):
        ax.plot(rows["layer"].to_list(), rows[column].to_list(), marker="o", label=f"{prefix}{source}-{target}")
    ax.set_title(label, fontsize="small")
    ax.set_xlabel("layer")
    layer_axes(ax)
    legend(ax)


def layer_axes(ax: Any) -> None:
    """Whole layers on x, shares in [0, 1] on y."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(-0.02, 1.02)


def legend(ax: Any) -> None:
    """A legend unless there are too many lines to read one (a 100-language pivot run)."""
    if 0 < len(ax.get_lines()) <= 12:
        ax.legend(fontsize="x-small")


def concept_curves(manifest: Mapping[str, Any]) -> dict[str, dict[int, float | None]]:
    """A finished `xlray concepts` run's CALIGN both ways and COLAP per layer, from its manifest
    (``results``: {layer: {"calign.<src>_<tgt>", "calign.<tgt>_<src>", "colap", ...}})."""
    cfg = manifest["config"]
    src, tgt, checkpoint = cfg["source"], cfg["target"], cfg.get("checkpoint_label", "base")
    names = {f"calign.{src}_{tgt}": f"CALIGN {src}→{tgt}", f"calign.{tgt}_{src}": f"CALIGN {tgt}→{src}",
             "colap": f"COLAP {src}-{tgt}"}  # fmt: skip
    names = {key: f"{label} ({checkpoint})" for key, label in names.items()}
    results = manifest["results"]
    return {label: {int(layer): results[layer].get(key) for layer in results} for key, label in names.items()}


def plot_word_and_sentence(
    concepts: Sequence[Mapping[str, Any]], results: pl.DataFrame, path: Path, title: str
) -> Path:
    """Two panels over the layer index: word-level CALIGN/COLAP of each concepts manifest (missing values leave
    gaps), and sentence-level MEXA and pivot→lang retrieval of each pair."""
    plt = pyplot()
    fig, (words, sentences) = plt.subplots(2, 1, figsize=(7, 7), sharex=True)
    for manifest in concepts:
        for label, curve in concept_curves(manifest).items():
            layers = sorted(curve)
            ys = [float("nan") if curve[layer] is None else curve[layer] for layer in layers]
            words.plot(layers, ys, marker="o", label=label)
    words.set_title("word level: concepts (CALIGN, COLAP)", fontsize="small")
    layer_axes(words)
    legend(words)
    for column, label in CURVES[:2]:
        draw_pairs(sentences, results, column, "sentence level: MEXA and retrieval", prefix=f"{label} ")
    sentences.set_xlabel("layer")
    fig.suptitle(title, fontsize="small")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
    return path
