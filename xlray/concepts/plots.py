"""Per-layer curves of the concept metrics as one PNG (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def plot_curves(results: Mapping[int, Mapping[str, float | None]], names: list[str], path: Path, title: str) -> Path:
    """One line per metric against the layer index; missing values leave gaps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
