"""Concept plots as PNGs (matplotlib, Agg backend: no display needed): metric curves, distance histograms."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import polars as pl

from xlray.plotting import pyplot


def plot_curves(results: Mapping[int, Mapping[str, float | None]], names: list[str], path: Path, title: str) -> Path:
    """One line per metric against the layer index; missing values leave gaps."""
    plt = pyplot()

    layers = sorted(results)
    fig, ax = plt.subplots(figsize=(7, 4))
    for name in names:
        ys = [results[layer].get(name) for layer in layers]
        ax.plot(layers, [float("nan") if y is None else y for y in ys], marker="o", label=name)
    ax.set_xlabel("layer")
    ax.set_ylabel("value")
    ax.set_title(title)
    ax.set_xticks(layers)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
    return path


def plot_histograms(hist: pl.DataFrame, path: Path, title: str, xlabel: str) -> Path:
    """One panel per layer: the paired-difference histogram (columns layer, bin_left, bin_right, count), line at 0."""
    plt = pyplot()

    layers = sorted(hist["layer"].unique().to_list())
    cols = min(max(len(layers), 1), 4)
    rows = max(-(-len(layers) // cols), 1)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.5 * rows), squeeze=False)
    for ax in axes.flat[len(layers) :]:
        ax.axis("off")
    if not layers:
        axes[0, 0].text(0.5, 0.5, "no layer has distances", ha="center", va="center")
    for ax, layer in zip(axes.flat[: len(layers)], layers, strict=True):
        bins = hist.filter(pl.col("layer") == layer).sort("bin_left")
        left, right = bins["bin_left"].to_numpy(), bins["bin_right"].to_numpy()
        ax.bar(left, bins["count"].to_numpy(), width=right - left, align="edge")
        ax.axvline(0.0, color="black", linewidth=1)
        ax.set_title(f"layer {layer}", fontsize="small")
        ax.set_xlabel(xlabel, fontsize="small")
    fig.suptitle(title, fontsize="small")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
    return path
