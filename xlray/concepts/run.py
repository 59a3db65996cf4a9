"""`xlray concepts CONFIG`: latent concepts and cross-lingual alignment per layer, written out as a recipe.

load config -> activations (layers, languages checked) -> dictionary (file, or eflomal on the parallel files,
keeping its word links) -> related pairs for the distances (once) -> Ray tasks, each written as a part when it
finishes: per (layer, view) a clustering (each language alone, for CALIGN both ways; both jointly, for COLAP), per
layer the related vs unrelated distances -> per layer, from its parts: CALIGN, COLAP, assignments -> assignments,
explorer, curves, distance histograms, results, manifest (last) -> one MLflow run, metrics with step = layer.

Every task reads its own layer's vectors (``xlray.concepts.tasks``) and asks for the memory it needs, so the
cluster places it where it fits; the driver holds no vectors, only labels and the occurrences' words. A run killed
halfway resumes from its finished parts (those of the same result-deciding config and extraction: ``parts/<key>/``).
The outputs are those of the serial loop that preceded the tasks: each task computes on ``scheduling.cpus`` threads
wherever it runs (``xlray.fanout``), and the parts are put together in layer order.

``output_dir`` is a local folder or an object-store URI (``s3://``, ``gs://``, ``file://``), kept as a string.

Output folder:
    dictionary.parquet           the dictionary built with eflomal (only when built here)
    links.parquet                its word links: line, src_index, tgt_index, src_word, tgt_word (one-to-one, per
                                 sentence pair; only when built here)
    assignments.parquet          layer, view (source / target / joint), language, sentence_id, word, cluster
    explorer.html, explorer.json the concept explorer: one self-contained page and its data
    curves.png                   metrics against the layer index
    distances.parquet            layer, distance (cosine / l2), bin_left, bin_right, count: histograms of the paired
                                 difference d(unrelated) - d(related), plus related_mean, unrelated_mean, pairs
    distances.png                the cosine-difference histogram, one panel per layer (layers without distances
                                 are left out)
    results.json                 per-layer metrics (None where missing) and the reasons; "distances": which pairs
                                 the distances compare (variant, identical-string rule, links read and kept);
                                 "tasks": per layer and view (and distances) the Ray node it ran on, its seconds,
                                 and whether a killed run had finished it (reused)
    parts/<key>/layer<NNN>.<view>.parquet   each task's result, written as it finished (labels, or histograms)
    manifest.json                written last: the run is complete iff it exists
"""

from __future__ import annotations

from dataclasses import replace
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from xlray.concepts.config import ConceptsConfig, DictionaryFile
from xlray.concepts.distances import (
    HISTOGRAM_SCHEMA,
    Pairs,
    in_context_pairs,
    type_mean_pairs,
)
from xlray.concepts.explorer import write_explorer
from xlray.concepts.metrics import calign, colap, word_clusters
from xlray.concepts.plots import plot_curves, plot_histograms
from xlray.concepts.tasks import DISTANCES, JOINT, concept_jobs, part_name, part_of
from xlray.configs import load_config
from xlray.console import log_to, progress, say
from xlray.corpora import ParallelFiles, UnequalLengths, parallel_words
from xlray.datasets import corpus_name
from xlray.errors import XlrayError
from xlray.extract.config import ParallelCorpus
from xlray.extract.corpus import input_name
from xlray.extract.reader import Activations, open_activations
from xlray.fanout import fan_out
from xlray.outputs import atomic, read_json, write_json, write_parquet
from xlray.parts import Parts, part_key
from xlray.runtime import start_ray
from xlray.stage_rules import finished, result_config, run_name, run_tags
from xlray.storage import absolute, check_output, join, make_dirs, scratch_dir, use_storage
from xlray.textio import is_file, open_binary
from xlray.tracking import Sink, open_run
from xlray.wordalign.dictionary import build_dictionary, read_dictionary, top_translations, write_dictionary

MANIFEST = "manifest.json"
ARTIFACTS = (
    "assignments.parquet",
    "explorer.html",
    "explorer.json",
    "curves.png",
    "distances.parquet",
    "distances.png",
    "results.json",
)


def main(config_path: str | Path) -> int:
    """CLI entry: run the concept analysis described by a YAML config."""
    from xlray.console import table

    cfg = load_config(config_path, ConceptsConfig)
    manifest = run_concepts(cfg)
    shown = headline_metrics(cfg)
    rows = [[layer, *(manifest["results"][str(layer)].get(k) for k in shown)] for layer in manifest["layers"]]
    table(f"concepts {cfg.source}-{cfg.target}, per layer", ["layer", *shown], rows)
    return 0


def headline_metrics(cfg: ConceptsConfig) -> list[str]:
    """The per-layer results a console table shows: CALIGN both ways, COLAP, the joint clustering's noise."""
    return [f"calign.{cfg.source}_{cfg.target}", f"calign.{cfg.target}_{cfg.source}", "colap", "noise_fraction.joint"]


def run_concepts(cfg: ConceptsConfig, into: Sink | None = None) -> dict[str, Any]:
    """Run (or resume, or skip if finished with this config) the analysis; returns the manifest with per-layer
    results.

    ``into``: log into that open sink (a sweep trial's run) instead of a run of its own.
    """
    use_storage(cfg.storage)
    check_output(cfg.output_dir, "output_dir")  # a bucket that cannot be written to: refused before any work
    out = cfg.output_dir
    log_to(scratch_dir(out))  # libraries' logs to out/xlray.log (unless an enclosing stage chose a file)
    done = finished(join(out, MANIFEST), cfg, "concept analysis")
    if done is not None:
        return done
    acts = open_activations(cfg.activations)
    layers = check_inputs(acts, cfg)
    make_dirs(out)

    # The dictionary D, both ways: D(source -> target) and its reverse from the same counts.
    dictionary, links = load_dictionary(cfg, out)
    reverse = dictionary.rename({"src": "tgt", "tgt": "src"}).select("src", "tgt", "count", "prob")
    forward_top = top_translations(dictionary, cfg.calign.top_n)
    reverse_top = top_translations(reverse, cfg.calign.top_n)
    known = set(zip(dictionary["src"].to_list(), dictionary["tgt"].to_list(), strict=True))
    pairs, about_pairs = distance_pairs(acts, layers[0], cfg, dictionary, links, forward_top, known)
    pairs_reason = about_pairs["reason"]

    src, tgt = cfg.source, cfg.target
    model = cfg.model_label or Path(acts.manifest["config"]["model"]["name"]).name
    name = run_name("concepts", model, cfg.checkpoint_label, src, tgt)
    tags = run_tags("concepts", model=model, checkpoint=cfg.checkpoint_label, pair=f"{src}-{tgt}")
    results: dict[int, dict[str, float | None]] = {}
    missing: dict[int, dict[str, str]] = {}
    frames: list[pl.DataFrame] = []
    histograms: list[pl.DataFrame] = []
    tasks: dict[str, dict[str, dict[str, Any]]] = {}
    with open_run(cfg.tracking, name, scratch_dir(out), tags=tags, into=into) as sink:
        sink.log_params({"config": cfg.model_dump(mode="json"), "dictionary_pairs": dictionary.height})
        sink.log_datasets(inputs(cfg, acts, f"{model}-{cfg.checkpoint_label}"), "concepts")
        sink.set_tags({"distances.pairs": cfg.distances.pairs})
        parts, reused = run_tasks(acts, cfg, layers, pairs if pairs_reason is None else None)
        with progress(f"concepts {src}-{tgt}: layers", len(layers)) as advance:
            for layer in layers:
                metrics, reasons, assignments, hist, records = analyse_layer(
                    acts, layer, cfg, forward_top, reverse_top, pairs, pairs_reason, parts
                )
                results[layer], missing[layer] = metrics, reasons
                frames.append(assignments)
                if hist is not None:
                    histograms.append(hist)
                tasks[str(layer)] = {
                    view: task_record(r, part_name(layer, view) in reused) for view, r in records.items()
                }
                sink.log_metrics(metrics, step=layer)
                for metric, reason in reasons.items():
                    sink.log_missing(f"{metric}.layer_{layer}", reason)
                advance()

        # Outputs: data first, manifest last, each written under a temporary name and renamed.
        assignments = pl.concat(frames)
        write_parquet(assignments, join(out, "assignments.parquet"))
        title = f"Concepts of {model} ({cfg.checkpoint_label}), {src}-{tgt}"
        write_explorer(cfg, out, assignments, results, forward_top, reverse_top, title)
        curves = [f"calign.{src}_{tgt}", f"calign.{tgt}_{src}", "colap", "noise_fraction.joint",
                  "dist_cosine_diff_mean"]  # fmt: skip
        atomic(join(out, "curves.png"), lambda p: plot_curves(results, curves, p, title))
        hist = pl.concat(histograms) if histograms else pl.DataFrame(schema=HISTOGRAM_SCHEMA)
        write_parquet(hist, join(out, "distances.parquet"))
        cosine = hist.filter(pl.col("distance") == "cosine")
        diff = "cosine d(unrelated) - d(related)"
        atomic(join(out, "distances.png"), lambda p: plot_histograms(cosine, p, title, diff))
        summary = {
            "results": {str(k): v for k, v in results.items()},
            "missing": {str(k): v for k, v in missing.items()},
            "distances": about_pairs,
            "tasks": tasks,
        }
        write_json(join(out, "results.json"), summary)
        for artifact in ARTIFACTS:
            sink.log_artifact(join(out, artifact))
        manifest = {
            "stage": "concepts",
            "config": result_config(cfg),
            "layers": layers,
            "run_name": name,
            "mlflow_run_id": sink.run_id,
            **summary,
        }
        write_json(join(out, MANIFEST), manifest)
    say(f"[concepts] {src}-{tgt}: {len(layers)} layers analysed; {out}")
    return manifest


def run_tasks(acts: Activations, cfg: ConceptsConfig, layers: list[int], pairs: Pairs | None) -> tuple[Parts, set[str]]:
    """Every (layer, view) clustering and, with ``pairs``, every layer's distances as a part: those a killed run of
    this config finished are taken up, the others run as Ray tasks, each part written as its task finishes.
    Returns the parts and the names of those taken up."""
    import ray

    connected = start_ray(cfg.ray)
    if connected:
        say(f"[concepts] {connected}")
    parts = Parts(cfg.output_dir, part_key(cfg, acts.manifest))
    reused = parts.finished()
    jobs = concept_jobs(acts, cfg, layers, None if pairs is None else ray.put(pairs))
    todo = [job for job in jobs if job.name not in reused]
    say(f"[concepts] {len(jobs)} tasks, {len(jobs) - len(todo)} finished by an earlier run, {len(todo)} to run")
    with progress(f"concepts {cfg.source}-{cfg.target}: tasks", len(todo)) as advance:
        for done in fan_out(todo, cfg.scheduling, cfg.ray, "concepts"):
            parts.write(done.job.name, *part_of(done))
            advance()
    return parts, reused


def task_record(record: dict[str, Any], reused: bool) -> dict[str, Any]:
    """Where and how long a part's task ran, for results.json and the manifest."""
    kept = {k: v for k, v in record.items() if k in ("node_id", "seconds", "points")}
    return kept | {"reused": reused}


def check_inputs(acts: Activations, cfg: ConceptsConfig) -> list[int]:
    """The layers to analyse; a layer, language or site the extraction lacks is an error naming the field."""
    if cfg.source == cfg.target:
        raise XlrayError(f"source/target: the pair needs two languages, got {cfg.source!r} twice")
    if acts.granularity != "word":
        raise XlrayError(
            f"activations: {acts.folder} holds sentence vectors (granularity: {acts.granularity}); concepts are "
            "clusters of word occurrences: extract with granularity: word (sentences: xlray sentence-alignment)"
        )
    layers = acts.layers if cfg.layers == "all" else list(cfg.layers)
    absent = [layer for layer in layers if layer not in acts.layers]
    if absent:
        raise XlrayError(f"layers: {absent} not extracted in {acts.folder} (have {acts.layers})")
    for field, lang in (("source", cfg.source), ("target", cfg.target)):
        if lang not in acts.languages:
            raise XlrayError(f"{field}: language {lang!r} not extracted in {acts.folder} (have {acts.languages})")
    for layer in layers:
        acts.check(layer, [cfg.source, cfg.target], cfg.site)
    return layers


def inputs(cfg: ConceptsConfig, acts: Activations, label: str) -> dict[str, str | list[str]]:
    """What the analysis read, for MLflow: the extraction (by its manifest, which changes with every re-run) and
    the dictionary file, or the parallel files eflomal aligned (named as `xlray extract` names its corpus)."""
    spec = cfg.dictionary
    files: dict[str, str | list[str]] = {
        f"activations {label} {cfg.source}-{cfg.target}": join(acts.folder, "manifest.json")
    }
    if isinstance(spec, DictionaryFile):
        files["dictionary"] = spec.path
    else:
        files[corpus_name(spec.source)] = list(spec.files())
    return files


def load_dictionary(cfg: ConceptsConfig, out: str) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """The dictionary and, when built here with eflomal, its word links (both cached in ``out``); a dictionary file
    has no links."""
    spec = cfg.dictionary
    if isinstance(spec, DictionaryFile):
        return read_dictionary(spec.path), None
    cached, links_path, key_path = (join(out, n) for n in ("dictionary.parquet", "links.parquet", "dictionary.json"))
    key = spec.model_dump(mode="json")
    if all(is_file(p) for p in (cached, links_path, key_path)) and read_json(key_path) == key:
        df, links = read_output(cached), read_output(links_path)
    else:
        df, links = eflomal_dictionary(spec.source, spec.target, spec.max_sentences, spec.n_samplers)
        write_dictionary(df, cached)
        write_parquet(links, links_path)
        write_json(key_path, key, indent=None)
    return df.filter(pl.col("count") >= spec.min_count), links


def read_output(path: str) -> pl.DataFrame:
    """A Parquet file this stage wrote (local or a URI)."""
    with open_binary(path) as f:
        return pl.read_parquet(f)


LINK_SCHEMA = {"line": pl.Int64, "src_index": pl.Int32, "tgt_index": pl.Int32, "src_word": pl.String,
               "tgt_word": pl.String}  # fmt: skip


def eflomal_dictionary(
    source: str, target: str, max_sentences: int | None, n_samplers: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Word-align two line-parallel files with eflomal; the translation counts, and the links (LINK_SCHEMA, line
    numbers from 1 as in the extraction's sentence ids) for in-context distances.

    The files are streamed pair by pair (only the words eflomal needs are held), stopping after ``max_sentences``.
    """
    from xlray.wordalign.eflomal import word_align

    files = ParallelFiles(source=source, target=target)
    for path in files.files():
        if not is_file(path):
            raise XlrayError(f"dictionary: {path}: parallel file not found")
    try:
        pairs = list(islice(parallel_words(files), max_sentences))
    except UnequalLengths as exc:
        raise XlrayError(f"dictionary: {exc.counts}") from None
    src, tgt = [p[1] for p in pairs], [p[2] for p in pairs]
    aligned = word_align(src, tgt, n_samplers=n_samplers)
    dictionary = build_dictionary(src, tgt, aligned)
    rows = [(line, i, j, s[i], t[j]) for (line, s, t), ij in zip(pairs, aligned, strict=True) for i, j in ij]
    return dictionary, pl.DataFrame(rows, schema=LINK_SCHEMA, orient="row")


def distance_pairs(
    acts: Activations,
    layer: int,
    cfg: ConceptsConfig,
    dictionary: pl.DataFrame,
    links: pl.DataFrame | None,
    translations: dict[str, list[str]],
    known: set[tuple[str, str]],
) -> tuple[Pairs | None, dict[str, Any]]:
    """The related pairs of ``cfg.distances.pairs``, built once on ``layer``'s occurrences and used at every layer;
    and what they are, for results.json and the manifest (variant, identical rule, links, counts, reason)."""
    d = cfg.distances
    about: dict[str, Any] = {"pairs": d.pairs, "keep_identical": d.keep_identical}
    meta = [occurrence_rows(acts, layer, lang, cfg.site) for lang in (cfg.source, cfg.target)]
    if d.pairs == "type_mean":
        pairs, reason = type_mean_pairs(*meta, translations, known, d)
    else:
        linked, reason = sentence_links(acts, cfg, links)
        pairs = None
        if linked is not None:
            # Links of pairs the dictionary drops (below dictionary.min_count) are alignment noise, left out too.
            words = dictionary.select(src_word="src", tgt_word="tgt")
            kept = linked.join(words, on=["src_word", "tgt_word"], how="semi")
            about |= {"links": linked.height, "links_below_min_count": linked.height - kept.height}
            pairs, reason = in_context_pairs(*meta, kept, known, d)
    return pairs, about | {"counts": pairs.counts if pairs else None, "reason": reason}


def occurrence_rows(acts: Activations, layer: int, language: str, site: str) -> pl.DataFrame:
    """One layer's occurrence rows without their vectors, in ``Activations.matrix`` order."""
    keys = ["sentence_id", "language", "word_index"]
    return acts.lazy(layer, language, site=site).select(*keys, "word").sort(keys).collect()


def sentence_links(
    acts: Activations, cfg: ConceptsConfig, links: pl.DataFrame | None
) -> tuple[pl.DataFrame | None, str | None]:
    """The eflomal links keyed by the extraction's sentence ids (``<input name>:<line>``), or the reason why not."""
    if links is None:
        return None, (
            "in-context distances need word links: use dictionary.kind: eflomal on the extracted parallel files,"
            " or set distances.pairs: type_mean"
        )
    corpus = extracted_input(acts, cfg)
    if corpus is None:
        spec = cfg.dictionary
        return None, (
            f"dictionary: {spec.source} ({cfg.source}) and {spec.target} ({cfg.target}) are not a parallel input of"
            f" {acts.folder}; in-context distances need the links of the extracted sentences"
            " (or set distances.pairs: type_mean)"
        )
    sentence_id = pl.format("{}:{}", pl.lit(input_name(corpus)), pl.col("line"))
    return links.select(sentence_id.alias("sentence_id"), pl.exclude("line")), None


def extracted_input(acts: Activations, cfg: ConceptsConfig) -> ParallelCorpus | None:
    """The extraction's parallel input made of the dictionary's two files, each in its configured language."""
    spec = cfg.dictionary
    wanted = {(absolute(spec.source), cfg.source), (absolute(spec.target), cfg.target)}
    for raw in acts.manifest["config"]["inputs"]:
        if raw.get("format") == "parallel":
            corpus = ParallelCorpus.model_validate(raw)
            sides = {(absolute(corpus.source), corpus.source_language),
                     (absolute(corpus.target), corpus.target_language)}  # fmt: skip
            if sides == wanted:
                return corpus
    return None


def analyse_layer(
    acts: Activations,
    layer: int,
    cfg: ConceptsConfig,
    forward: dict[str, list[str]],
    reverse: dict[str, list[str]],
    pairs: Pairs | None,
    pairs_reason: str | None,
    parts: Parts,
) -> tuple[dict[str, float | None], dict[str, str], pl.DataFrame, pl.DataFrame | None, dict[str, dict[str, Any]]]:
    """One layer's metrics (None where missing), the reasons for missing ones, the cluster assignments, the
    distance histograms (on ``pairs``, the same at every layer; ``pairs_reason`` says why there are none) and its
    parts' records, from its parts and its occurrences' words (no vectors)."""
    src, tgt = cfg.source, cfg.target
    meta_src, meta_tgt = (occurrence_rows(acts, layer, lang, cfg.site) for lang in (src, tgt))
    metrics: dict[str, float | None] = {}
    records: dict[str, dict[str, Any]] = {}
    frames = []

    # Each language clustered on its own: a cluster is the set of its word types (CALIGN).
    words: dict[str, dict[int, frozenset[str]]] = {}
    for lang, meta in ((src, meta_src), (tgt, meta_tgt)):
        labels, records[lang] = view_labels(parts, layer, lang, meta.height)
        words[lang] = word_clusters(meta["word"].to_list(), labels)
        metrics |= {f"clusters.{lang}": records[lang]["n_clusters"],
                    f"noise_fraction.{lang}": records[lang]["noise_fraction"]}  # fmt: skip
        frames.append(assignment_frame(meta, labels, layer, lang))
    results = [
        replace(calign(words[src], words[tgt], forward, cfg.calign), name=f"calign.{src}_{tgt}"),
        replace(calign(words[tgt], words[src], reverse, cfg.calign), name=f"calign.{tgt}_{src}"),
    ]

    # Both languages' occurrences clustered jointly (COLAP).
    meta_joint = pl.concat([meta_src, meta_tgt])
    joint, records[JOINT] = view_labels(parts, layer, JOINT, meta_joint.height)
    metrics |= {
        "clusters.joint": records[JOINT]["n_clusters"],
        "noise_fraction.joint": records[JOINT]["noise_fraction"],
    }
    frames.append(assignment_frame(meta_joint, joint, layer, "joint"))
    results.append(colap(joint, meta_joint["language"].to_list(), (src, tgt), cfg.colap))

    reasons: dict[str, str] = {}
    for result in results:
        metrics[result.name] = result.value
        metrics |= {f"{result.name}.{k}": v for k, v in result.counts.items()}
        if result.value is None:
            reasons[result.name] = result.reason or "not computable"
    hist = None
    if pairs is not None:
        metrics |= pairs.metrics()
    if pairs is not None and pairs_reason is None:
        hist, records[DISTANCES] = parts.read(part_name(layer, DISTANCES))
        metrics |= records[DISTANCES]["metrics"]
    else:
        reasons["distances"] = f"{cfg.distances.pairs}: {pairs_reason}"
    return metrics, reasons, pl.concat(frames), hist, records


def view_labels(parts: Parts, layer: int, view: str, n: int) -> tuple[np.ndarray, dict[str, Any]]:
    """A view's cluster labels (n,) and its part's record; labels for another number of occurrences are an error."""
    name = part_name(layer, view)
    frame, record = parts.read(name)
    if frame.height != n:
        raise XlrayError(
            f"{parts.path(name)}: {frame.height} labels for {n} occurrences at layer {layer}; the activations changed"
            f" under the run: delete {parts.folder} and re-run"
        )
    return frame["cluster"].to_numpy(), record


def assignment_frame(meta: pl.DataFrame, labels: np.ndarray, layer: int, view: str) -> pl.DataFrame:
    return meta.select("sentence_id", "language", "word", "word_index").with_columns(
        layer=pl.lit(layer, pl.Int64), view=pl.lit(view), cluster=pl.Series(labels, dtype=pl.Int64)
    )
