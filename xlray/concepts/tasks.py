"""The pieces of `xlray concepts` that run as Ray tasks: each (layer, view) clustering, each layer's distances.

A view is a language's occurrences at a layer, or both languages' (``joint``: source rows first, then target, as
the serial loop stacked them). Each task reads its own points through the lazy reader, so the driver holds no
vectors at all; it declares the memory it will need, estimated from its point count (counted over the shards'
layer and language columns, no vectors read), the hidden size, the stored dtype and the method
(``xlray.concepts.cluster.memory_bytes``). A task's value becomes a part (``xlray.parts``): labels and counts, or a
layer's distance histograms and metrics.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from xlray.concepts.cluster import ClusterConfig, Clustering, cluster, memory_bytes
from xlray.concepts.config import ConceptsConfig
from xlray.concepts.distances import Pairs, histogram_frame, related_distances
from xlray.concepts.points import PointsConfig, prepare_points
from xlray.extract.reader import Activations, open_activations
from xlray.fanout import Done, Job

JOINT = "joint"
DISTANCES = "distances"
# A worker before any data: interpreter, libraries, Ray, and numba compiling pynndescent (0.54 GB alone; a fresh
# process reading a small layer and clustering it peaked at 1.17 GB, tests/benchmarks/bench_concept_tasks.py)
WORKER_BYTES = 900 * 2**20
META_BYTES = 120  # per occurrence: its sentence id, language, word and indices, read beside the vector
READ_BYTES = 256 * 2**20  # the Parquet scan's buffers over the shards a layer's rows span (measured, 8 shards)


def part_name(layer: int, view: str) -> str:
    """A part's name: ``layer<NNN>.<view>`` (view: a language code, joint or distances)."""
    return f"layer{layer:03d}.{view}"


def view_languages(view: str, cfg: ConceptsConfig) -> list[str]:
    """The languages a view stacks: itself, or for ``joint`` source then target."""
    return [cfg.source, cfg.target] if view == JOINT else [view]


def cluster_view(
    folder: str,
    layer: int,
    languages: list[str],
    site: str,
    points: PointsConfig,
    clustering: ClusterConfig,
    seed: int,
) -> Clustering:
    """Read one view's vectors (n, hidden), normalise and reduce them (``points``) and cluster them."""
    acts = open_activations(folder)
    x = read_points(acts, layer, languages, site)
    prepared = prepare_points(x, points, seed=seed, name=f"layer {layer}, {'+'.join(languages)}")
    del x
    return cluster(prepared.x, clustering, seed=seed)


def read_points(acts: Activations, layer: int, languages: list[str], site: str) -> np.ndarray:
    """The languages' vectors at ``layer`` as float32, stacked in the order given (each in ``matrix`` order)."""
    parts = [acts.matrix(layer, lang, site)[0] for lang in languages]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def layer_distances(
    folder: str, layer: int, languages: list[str], site: str, pairs: Pairs, bins: int
) -> tuple[pl.DataFrame, dict[str, float]]:
    """One layer's related vs unrelated distances on ``pairs``: its histogram rows and metrics."""
    acts = open_activations(folder)
    (x_src, meta_src), (x_tgt, meta_tgt) = (acts.matrix(layer, lang, site) for lang in languages)
    dist = related_distances(x_src, meta_src, x_tgt, meta_tgt, pairs, bins)
    return histogram_frame(layer, dist), dist.metrics()


def point_counts(acts: Activations, layers: list[int], languages: list[str], site: str) -> dict[tuple[int, str], int]:
    """Occurrences per (layer, language), counted over the shards' layer and language columns (no vector read)."""
    frame = (
        acts.lazy(language=languages, site=site)
        .filter(pl.col("layer").is_in(layers))
        .group_by("layer", "language")
        .len()
        .collect()
    )
    return {(int(layer), lang): int(n) for layer, lang, n in frame.iter_rows()}


def stored_bytes(acts: Activations) -> int:
    """Bytes per stored vector value: 2 for float16 (the default), 4 for float32."""
    return 4 if acts.manifest["config"].get("dtype") == "float32" else 2


def view_memory(n: int, hidden: int, stored: int, cfg: ConceptsConfig) -> int:
    """A view task's peak bytes: the column as stored, its float32 copy, the stacked or normalised copy, the PCA's
    sample and output, and the clustering (``memory_bytes``)."""
    dim = min(cfg.points.pca_dim or hidden, hidden)
    read = n * hidden * stored + 2 * n * hidden * 4 + n * META_BYTES
    pca = min(n, cfg.points.fit_max_points) * hidden * 4 + n * dim * 4 if dim < hidden else 0
    return WORKER_BYTES + READ_BYTES + read + pca + memory_bytes(n, dim, cfg.clustering)


def distances_memory(n: int, hidden: int, stored: int) -> int:
    """A distance task's peak bytes: both languages' vectors as stored and as float32 (and their means)."""
    return WORKER_BYTES + READ_BYTES + n * hidden * (stored + 8) + n * META_BYTES


def concept_jobs(acts: Activations, cfg: ConceptsConfig, layers: list[int], pairs: Any | None) -> list[Job]:
    """Every (layer, view) clustering and, with ``pairs`` (the pairs or a Ray reference to them), every layer's
    distances, each with its memory estimate."""
    src, tgt = cfg.source, cfg.target
    counts = point_counts(acts, layers, [src, tgt], cfg.site)
    hidden, stored = int(acts.manifest["model"]["hidden_size"]), stored_bytes(acts)
    jobs = []
    for layer in layers:
        for view in (src, tgt, JOINT):
            languages = view_languages(view, cfg)
            n = sum(counts.get((layer, lang), 0) for lang in languages)
            args = (acts.folder, layer, languages, cfg.site, cfg.points, cfg.clustering, cfg.seed)
            memory = view_memory(n, hidden, stored, cfg)
            jobs.append(Job(part_name(layer, view), cluster_view, args, memory, {"layer": layer, "view": view}))
        if pairs is not None:
            n = counts.get((layer, src), 0) + counts.get((layer, tgt), 0)
            args = (acts.folder, layer, [src, tgt], cfg.site, pairs, cfg.distances.bins)
            memory = distances_memory(n, hidden, stored)
            tags = {"layer": layer, "view": DISTANCES}
            jobs.append(Job(part_name(layer, DISTANCES), layer_distances, args, memory, tags))
    return jobs


def part_of(done: Done) -> tuple[pl.DataFrame, dict[str, Any]]:
    """A finished job as a part: its table (labels, or histogram rows) and record (counts or metrics, where and
    how long it ran)."""
    record = {**done.job.tags, "node_id": done.node_id, "seconds": round(done.seconds, 3)}
    if done.job.tags["view"] == DISTANCES:
        hist, metrics = done.value
        return hist, record | {"metrics": metrics}
    c: Clustering = done.value
    labels = pl.DataFrame({"cluster": pl.Series(c.labels, dtype=pl.Int64)})
    return labels, record | {"points": len(c.labels), "n_clusters": c.n_clusters, "noise_fraction": c.noise_fraction}
