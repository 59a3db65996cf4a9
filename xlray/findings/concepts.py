"""Concept clusters per layer against the world's gold concepts: ARI, purity, CALIGN and COLAP.

The points are word types: each probed word type of each language, its vector at a layer the mean over its
occurrences in the held-out probes (L2-normalised). A type's gold concept does not depend on the language
(``animal:05`` in every language), so every pair of points that share a gold concept is a cross-lingual pair. A
clustering then scores an ARI above 0 against the gold concepts only as far as translations share clusters.

The gold classes (``animal`` vs ``colour``) are the other truth: the world's grammar puts each class in its own
slots, so monolingual text can teach them, while which animal translates which cannot be learned without
parallel data (concepts of a class are exchangeable). The class ARI of the same clustering measures that.

The clustering is Ward agglomerative (ConceptX's method) into as many clusters as there are gold concepts, unless
the config says otherwise. CALIGN (English -> each target, mean over targets) reads each language's words off
the joint clusters, with the gold dictionary as D; COLAP is over the joint clusters, per pair and averaged. At
this grain (about one cluster per concept) CALIGN has a high chance level: a one-word source cluster aligns
whenever its translation is in any cluster, so clusters that never mix languages still score about 0.5. That
is why the findings test ARI, and CALIGN and COLAP are reported per layer beside it.

ARI and purity come from the concept x cluster contingency table, so a bootstrap over gold concepts resamples its
rows: :func:`ari` takes a batch of tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from xlray.concepts.cluster import AgglomerativeConfig, cluster
from xlray.concepts.metrics import CalignConfig, ColapConfig, calign, colap, word_clusters
from xlray.concepts.points import l2_normalize
from xlray.findings.planted import Probe, word_vectors
from xlray.world.build import World

CONCEPT_METRICS = ("ari", "class_ari", "purity", "calign", "colap")


@dataclass(frozen=True)
class ConceptPoints:
    """One point per (language, concept) seen in the probes; ``layers[l]`` is ``[n_points, hidden]``."""

    languages: list[str]
    concepts: list[str]
    layers: list[np.ndarray]

    @property
    def gold(self) -> list[str]:
        """The gold concepts, sorted: the rows of the contingency tables."""
        return sorted(set(self.concepts))


def concept_points(lm: Any, world: World, items: list[Probe], batch_size: int = 64) -> ConceptPoints:
    """Mean word vectors per (language, gold concept) over every linked word of the probes, both sides."""
    source = world.cfg.source
    concept_of = {form: c for c, form in world.languages[source].lexicon.items()}
    keys: dict[tuple[str, str], int] = {}
    sums: list[np.ndarray] = []
    counts: list[int] = []

    def add(vectors: list[np.ndarray], rows: list[int], owners: list[tuple[str, str]]) -> None:
        for owner in owners:
            if owner not in keys:
                keys[owner] = len(keys)
                counts.append(0)
                sums.append(np.zeros((len(vectors), vectors[0].shape[1])))
        for row, owner in zip(rows, owners, strict=True):
            k = keys[owner]
            counts[k] += 1
            sums[k] += np.stack([v[row] for v in vectors])

    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        for side in ("target", "english"):
            sentences = [p.target if side == "target" else p.english for p in batch]
            vectors = word_vectors(lm, sentences)
            offsets = np.cumsum([0] + [len(s) for s in sentences])
            rows, owners = [], []
            for k, p in enumerate(batch):
                for i, j, _ in p.links:
                    rows.append(int(offsets[k]) + (i if side == "target" else j))
                    owners.append((p.language if side == "target" else source, concept_of[p.english[j]]))
            add(vectors, rows, owners)
    means = np.stack(sums) / np.array(counts)[:, None, None]  # [points, layers, hidden]
    order = sorted(keys, key=lambda key: keys[key])
    return ConceptPoints(
        [lang for lang, _ in order],
        [c for _, c in order],
        [l2_normalize(means[:, layer]) for layer in range(means.shape[1])],
    )


def contingency(concepts: list[str], gold: list[str], labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """``[len(gold), n_clusters]``: how many points of each gold concept fall in each cluster."""
    table = np.zeros((len(gold), n_clusters))
    np.add.at(table, ([gold.index(c) for c in concepts], np.asarray(labels)), 1)
    return table


def pairs(x: np.ndarray) -> np.ndarray:
    return x * (x - 1) / 2


def ari(tables: np.ndarray) -> np.ndarray:
    """The adjusted Rand index (Hubert & Arabie 1985) of contingency tables ``[..., rows, clusters]``."""
    index = pairs(tables).sum(axis=(-2, -1))
    rows = pairs(tables.sum(axis=-1)).sum(axis=-1)
    columns = pairs(tables.sum(axis=-2)).sum(axis=-1)
    expected = rows * columns / np.maximum(pairs(tables.sum(axis=(-2, -1))), 1)
    top = (rows + columns) / 2
    return np.where(top > expected, (index - expected) / np.where(top > expected, top - expected, 1), 0.0)


def purity(table: np.ndarray) -> float:
    """The share of points in their cluster's most common gold concept."""
    return float(table.max(axis=0).sum() / table.sum())


def class_member(gold: list[str]) -> np.ndarray:
    """``[classes, concepts]``: 1 where the concept belongs to the class (classes sorted)."""
    classes = sorted({c.split(":")[0] for c in gold})
    return np.array([[c.split(":")[0] == k for c in gold] for k in classes], dtype=float)


def layer_scores(
    points: ConceptPoints, layer: int, source: str, n_clusters: int, calign_cfg: CalignConfig, colap_cfg: ColapConfig
) -> tuple[np.ndarray, dict[str, float]]:
    """Cluster one layer's points; its contingency table and the scores of ``CONCEPT_METRICS``."""
    labels = cluster(points.layers[layer], AgglomerativeConfig(n_clusters=n_clusters)).labels
    table = contingency(points.concepts, points.gold, labels, n_clusters)
    names = [f"{lang}:{c}" for lang, c in zip(points.languages, points.concepts, strict=True)]
    targets = sorted(set(points.languages) - {source})
    language_of = np.asarray(points.languages)

    def clusters_of(lang: str) -> dict[int, frozenset[str]]:
        kept = language_of == lang
        return word_clusters([n for n, k in zip(names, kept, strict=True) if k], labels[kept])

    calign_values = []
    for t in targets:
        gold_dictionary = {f"{source}:{c}": [f"{t}:{c}"] for c in points.gold}  # a concept's word in each language
        calign_values.append(calign(clusters_of(source), clusters_of(t), gold_dictionary, calign_cfg).value or 0.0)
    colap_values = [colap(labels, points.languages, (source, t), colap_cfg).value or 0.0 for t in targets]
    scores = {
        "ari": float(ari(table)),
        "class_ari": float(ari(class_member(points.gold) @ table)),
        "purity": purity(table),
        "calign": float(np.mean(calign_values)),
        "colap": float(np.mean(colap_values)),
    }
    return table, scores


def by_concept(tables: list[np.ndarray]) -> np.ndarray:
    """One model's tables per layer ``[concepts, clusters]`` as bootstrap units: ``[concepts, layers, clusters]``."""
    return np.stack(tables, axis=1)


def by_class(units: np.ndarray, gold: list[str]) -> np.ndarray:
    """Units ``[concepts, layers, clusters]`` with each concept's rows moved to its class's row:
    ``[concepts, layers, classes, clusters]``, so that summing resampled units gives the class tables."""
    return np.einsum("kc,clj->clkj", class_member(gold), units)


def mean_concept_ari(batch: np.ndarray) -> np.ndarray:
    """Bootstrap statistic: ARI against the gold concepts, mean over layers, of resampled concept units
    ``[batch, concepts, layers, clusters]`` (a concept drawn twice counts as two gold concepts)."""
    return ari(np.moveaxis(batch, 2, 1)).mean(axis=-1)


def mean_class_ari(batch: np.ndarray) -> np.ndarray:
    """Bootstrap statistic: ARI against the gold classes, mean over layers, of resampled class units
    ``[batch, concepts, layers, classes, clusters]``."""
    return ari(batch.sum(axis=1)).mean(axis=-1)
