"""findings.json and findings.md from the same document, and the plot of the translation advantage per layer.

The document is ``{"title", "measure", "findings": [Finding.as_dict()], "curves": {model: [per layer]},
"concepts": {model: {metric: [per layer]}}, "transfer": {"zero_shot": {condition: {language: [per seed]}},
"related_gap": {model: [per layer]}, ...} or null, ...}``;
``findings.md`` is rendered from it alone, so the two cannot disagree (a number that could not be computed is
NaN in memory and null in the JSON; both show as "n/a").
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from xlray.plotting import pyplot

COLUMNS = ("finding", "claim", "source", "effect", "95% CI", "p", "smallest effect", "verdict", "n")


def number(value: float | None, spec: str) -> str:
    return "n/a" if value is None or math.isnan(value) else format(value, spec)


def cell(value: float | None) -> str:
    return number(value, "+.4f")


def table_row(finding: dict[str, Any]) -> list[str]:
    """One finding as the cells of its findings.md row, in ``COLUMNS`` order."""
    return [
        finding["name"],
        finding["claim"],
        finding["source"],
        cell(finding["effect"]),
        f"[{cell(finding['ci_low'])}, {cell(finding['ci_high'])}]",
        number(finding["p_value"], ".4f"),
        number(finding["smallest"], ".4f"),
        finding["verdict"],
        str(finding["n"]),
    ]


def markdown(doc: dict[str, Any]) -> str:
    """findings.md: the title, what was measured, the findings table, the curves per layer."""
    lines = [f"# {doc['title']}", "", doc["measure"], "", "| " + " | ".join(COLUMNS) + " |"]
    lines.append("|" + "---|" * len(COLUMNS))
    lines += ["| " + " | ".join(table_row(f)) + " |" for f in doc["findings"]]
    layers = len(next(iter(doc["curves"].values())))
    lines += ["", "Translation advantage per layer (0 = embeddings):", ""]
    lines.append("| model | " + " | ".join(f"layer {i}" for i in range(layers)) + " |")
    lines.append("|" + "---|" * (layers + 1))
    lines += [f"| {model} | " + " | ".join(cell(v) for v in curve) + " |" for model, curve in doc["curves"].items()]
    lines += [
        "",
        "Concept clusters per layer (ARI and class ARI against the gold; CALIGN and COLAP with the gold dictionary):",
        "",
        "| model | metric | " + " | ".join(f"layer {i}" for i in range(layers)) + " |",
    ]
    lines.append("|" + "---|" * (layers + 2))
    lines += [f"| {model} | {metric} | " + " | ".join(f"{v:.4f}" for v in curve) + " |"
              for model, metrics in doc["concepts"].items() for metric, curve in metrics.items()]  # fmt: skip
    if doc.get("transfer"):
        lines += transfer_lines(doc["transfer"])
    return "\n".join(lines) + "\n"


def transfer_lines(transfer: dict[str, Any]) -> list[str]:
    """The transfer part: zero-shot accuracy (mean ± std over seeds) per condition and language, and the related
    gap per layer of the models it probed."""
    languages = list(next(iter(transfer["zero_shot"].values())))
    lines = ["", f"Zero-shot NLI accuracy of {transfer['model']}, mean ± std over seeds:", ""]
    lines += ["| condition | " + " | ".join(languages) + " |", "|" + "---|" * (len(languages) + 1)]
    for condition, scores in transfer["zero_shot"].items():
        cells = [f"{np.mean(scores[lang]):.3f} ± {np.std(scores[lang], ddof=1):.3f}" for lang in languages]
        lines.append(f"| {condition} | " + " | ".join(cells) + " |")
    layers = len(next(iter(transfer["related_gap"].values())))
    lines += ["", "Related - unrelated cosine gap per layer (fine-tuned models: mean over seeds):", ""]
    lines += ["| model | " + " | ".join(f"layer {i}" for i in range(layers)) + " |", "|" + "---|" * (layers + 1)]
    lines += [f"| {model} | " + " | ".join(cell(v) for v in curve) + " |"
              for model, curve in transfer["related_gap"].items()]  # fmt: skip
    return lines


def plot_curves(doc: dict[str, Any], path: Path) -> None:
    """The translation advantage against the layer, one line per model, 0 (no alignment) marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for model, curve in doc["curves"].items():
        ax.plot(range(len(curve)), curve, marker="o", label=model)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel("translation advantage")
    ax.set_title(doc["title"], fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)


def plot_concepts(doc: dict[str, Any], path: Path) -> None:
    """One panel per concept metric against the layer, one line per model."""
    plt = pyplot()
    metrics = list(next(iter(doc["concepts"].values())))
    fig, axes = plt.subplots(1, len(metrics), figsize=(3 * len(metrics), 3.2), sharex=True)
    for ax, metric in zip(axes, metrics, strict=True):
        for model, curves in doc["concepts"].items():
            ax.plot(range(len(curves[metric])), curves[metric], marker="o", label=model)
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("layer")
    axes[0].legend(fontsize=7)
    fig.suptitle(doc["title"], fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)


def plot_transfer(doc: dict[str, Any], path: Path) -> None:
    """Zero-shot accuracy per language and condition (mean ± std over seeds), and the related gap per layer."""
    plt = pyplot()
    transfer = doc["transfer"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    conditions = list(transfer["zero_shot"])
    languages = list(transfer["zero_shot"][conditions[0]])
    width = 0.8 / len(conditions)
    for k, condition in enumerate(conditions):
        scores = [transfer["zero_shot"][condition][lang] for lang in languages]
        left.bar(np.arange(len(languages)) + k * width, [np.mean(s) for s in scores], width,
                 yerr=[np.std(s, ddof=1) for s in scores], label=condition)  # fmt: skip
    left.set_xticks(np.arange(len(languages)) + width * (len(conditions) - 1) / 2, languages)
    left.set_ylabel("NLI accuracy (zero-shot but English)")
    left.legend(fontsize=8)
    for model, curve in transfer["related_gap"].items():
        right.plot(range(len(curve)), curve, marker="o", label=model)
    right.set_xlabel("layer (0 = embeddings)")
    right.set_ylabel("cos(translation) - cos(unrelated)")
    right.legend(fontsize=7)
    fig.suptitle(doc["title"], fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)
