"""A concept browser a researcher can open: each cluster's size and top words per language, as JSON and HTML."""

from __future__ import annotations

import html
from typing import Any

import polars as pl


def browser_data(assignments: pl.DataFrame, top: int) -> list[dict[str, Any]]:
    """Clusters per (layer, view): size in occurrences, word types, and the ``top`` most frequent words per language.

    ``assignments`` has columns layer, view, language, word, cluster (noise = -1, left out).
    """
    kept = assignments.filter(pl.col("cluster") >= 0)
    counts = kept.group_by("layer", "view", "cluster", "language", "word").len("n")
    out: list[dict[str, Any]] = []
    for (layer, view, label), group in sorted(counts.group_by("layer", "view", "cluster"), key=lambda item: item[0]):
        words = {
            lang: sub.sort(["n", "word"], descending=[True, False]).head(top).select("word", "n").rows()
            for (lang,), sub in sorted(group.group_by("language"), key=lambda item: item[0])
        }
        out.append(
            {
                "layer": int(layer),
                "view": view,
                "cluster": int(label),
                "size": int(group["n"].sum()),
                "word_types": group.height,
                "top_words": {lang: [{"word": w, "count": int(n)} for w, n in rows] for lang, rows in words.items()},
            }
        )
    return out


def browser_html(clusters: list[dict[str, Any]], title: str) -> str:
    """A static page: one table per (layer, view), one row per cluster."""
    parts = [
        "<!doctype html><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:2px 6px;vertical-align:top}"
        "table{border-collapse:collapse;margin-bottom:1em}</style>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    section = None
    for c in clusters:
        if (c["layer"], c["view"]) != section:
            if section is not None:
                parts.append("</table>")
            section = (c["layer"], c["view"])
            parts.append(f"<h2>layer {c['layer']} · {html.escape(c['view'])}</h2>")
            parts.append("<table><tr><th>cluster</th><th>size</th><th>types</th><th>top words</th></tr>")
        words = "<br>".join(
            f"<b>{html.escape(lang)}</b>: " + ", ".join(f"{html.escape(w['word'])} ({w['count']})" for w in ws)
            for lang, ws in c["top_words"].items()
        )
        parts.append(f"<tr><td>{c['cluster']}</td><td>{c['size']}</td><td>{c['word_types']}</td><td>{words}</td></tr>")
    if section is not None:
        parts.append("</table>")
    else:
        parts.append("<p>No clusters (every point was noise).</p>")
    return "\n".join(parts) + "\n"
