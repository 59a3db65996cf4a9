"""`xlray sentence-alignment CONFIG`: how well a model aligns parallel sentences across languages, per layer.

load config -> sentence-level activations (languages, pivot, layers, site checked; every pair's parallel sentence
ids) -> concepts manifests (optional) -> per layer, a Ray task: each language's matrix (read by the task; one layer
in memory at a time), each pair's rows joined on sentence_id, MEXA / retrieval / cosine gap / CKA (``scores``),
written as a part when it finishes -> results.parquet, curves.png, word_and_sentence.png, manifest (last) -> one
MLflow run, metrics with step = layer.

Each layer's task asks for the memory it needs (its languages' matrices and the cosine blocks), so the cluster
places it where it fits, and computes on ``scheduling.cpus`` threads wherever it runs (``xlray.fanout``); the
driver reads no vectors. A run killed halfway resumes from its finished layers (``parts/<key>/``, keyed by the
result-deciding config and the extraction). ``output_dir`` is a local folder or an object-store URI, kept as a
string.

Output folder:
    results.parquet        layer, source (the pivot), target, n, mexa, retrieval_pivot_to_lang,
                           retrieval_lang_to_pivot, cosine_parallel, cosine_other, cosine_gap, cka (null: undefined)
    curves.png             MEXA and retrieval both ways against the layer, one line per pair
    word_and_sentence.png  CALIGN/COLAP of the `concepts` folders beside MEXA and retrieval (only with concepts)
    parts/<key>/layer<NNN>.parquet   each layer's rows, written as its task finished
    manifest.json          written last: the run is complete iff it exists; "tasks": per layer the Ray node it ran
                           on, its seconds, and whether a killed run had finished it (reused)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, fields
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from xlray import result_names as names
from xlray.configs import load_config
from xlray.console import log_to, progress, say
from xlray.errors import XlrayError
from xlray.extract.reader import Activations, open_activations
from xlray.fanout import Job, fan_out
from xlray.outputs import atomic, read_json, write_json, write_parquet
from xlray.parts import Parts, part_key
from xlray.runtime import start_ray
from xlray.sentence_alignment.config import SentenceAlignmentConfig
from xlray.sentence_alignment.plots import plot_curves, plot_word_and_sentence
from xlray.sentence_alignment.scores import PairScores, pair_scores
from xlray.stage_rules import finished, result_config, run_name, run_tags
from xlray.storage import check_output, join, make_dirs, scratch_dir, use_storage
from xlray.storage import name as path_name
from xlray.tracking import Sink, open_run

STAGE = "sentence-alignment"
MANIFEST = "manifest.json"
RESULT_SCHEMA = {"layer": pl.Int64, "source": pl.String, "target": pl.String, "n": pl.Int64} | {
    f.name: pl.Float64 for f in fields(PairScores) if f.name != "n"
}
Pair = tuple[str, str]
WORKER_BYTES = 400 * 2**20  # a worker's interpreter and libraries, before any data


def main(config_path: str | Path) -> int:
    """CLI entry: run the sentence alignment described by a YAML config; print MEXA per pair."""
    from xlray.console import table

    cfg = load_config(config_path, SentenceAlignmentConfig)
    manifest = run_sentence_alignment(cfg)
    rows = [[pair, a["mexa_mean"], a["mexa_max"], a["best_layer"]] for pair, a in manifest["aggregates"].items()]
    title = f"MEXA of {manifest['model']} over {len(manifest['layers'])} layers"
    table(title, ["pair", "mean", "max", "best layer"], rows)
    return 0


def run_sentence_alignment(cfg: SentenceAlignmentConfig, into: Sink | None = None) -> dict[str, Any]:
    """Run (or resume, or skip if finished with this config) the scoring; returns the manifest.

    ``into``: log into that open sink (a sweep trial's run) instead of a run of its own.
    """
    use_storage(cfg.storage)
    check_output(cfg.output_dir, "output_dir")  # a bucket that cannot be written to: refused before any work
    out = cfg.output_dir
    log_to(scratch_dir(out))
    done = finished(join(out, MANIFEST), cfg, "sentence alignment")
    if done is not None:
        return done
    acts = open_sentence_activations(cfg.activations)
    pairs = choose_pairs(acts, cfg)
    layers = check_layers(acts, cfg)
    counts = check_parallel(acts, layers[0], pairs, cfg.site)
    concepts = read_concepts(cfg.concepts)
    make_dirs(out)

    model = cfg.model_label or Path(acts.manifest["config"]["model"]["name"]).name
    name = run_name(STAGE, model)
    tags = run_tags(STAGE, model=model, pivot=cfg.pivot or "all pairs")
    pair_names = [names.language_pair(*pair) for pair in pairs]
    frames: list[pl.DataFrame] = []
    tasks: dict[str, dict[str, Any]] = {}
    with open_run(cfg.tracking, name, scratch_dir(out), tags=tags, into=into) as sink:
        sink.log_params({"config": cfg.model_dump(mode="json"), "pairs": ",".join(pair_names)})
        sink.log_datasets(inputs(cfg, acts, model), STAGE)
        parts, reused = run_tasks(acts, cfg, layers, pairs, counts)
        for layer in layers:
            frame, record = parts.read(part_name(layer))
            frames.append(frame)
            log_layer(sink, layer, frame_scores(frame))
            tasks[str(layer)] = {"node_id": record["node_id"], "seconds": record["seconds"],
                                 "reused": part_name(layer) in reused}  # fmt: skip
        results = pl.concat(frames)
        aggregates = pooled(results)
        for pair, agg in aggregates.items():
            sink.log_metrics({names.mexa_pooled(pair, how): agg[f"mexa_{how}"] for how in ("mean", "max")})

        # Outputs: data first, manifest last, each written under a temporary name and renamed.
        write_parquet(results, join(out, "results.parquet"))
        title = f"Sentence alignment of {model} ({cfg.site}), {len(pairs)} pair(s)"
        atomic(join(out, "curves.png"), lambda p: plot_curves(results, p, title))
        artifacts = ["results.parquet", "curves.png"]
        if concepts:
            atomic(join(out, "word_and_sentence.png"), lambda p: plot_word_and_sentence(concepts, results, p, title))
            artifacts.append("word_and_sentence.png")
        for artifact in artifacts:
            sink.log_artifact(join(out, artifact))
        manifest = {
            "stage": STAGE,
            "config": result_config(cfg),
            "model": model,
            "layers": layers,
            "pairs": pair_names,
            "run_name": name,
            "mlflow_run_id": sink.run_id,
            "results": nested(results),
            "aggregates": aggregates,
            "pivot_to_all": pivot_table(aggregates, pairs, symmetric=cfg.pivot is None),
            "tasks": tasks,
        }
        write_json(join(out, MANIFEST), manifest)
        sink.log_artifact(join(out, MANIFEST))
    say(f"[{STAGE}] {len(pairs)} pair(s) x {len(layers)} layers scored; {out}")
    return manifest


def run_tasks(
    acts: Activations, cfg: SentenceAlignmentConfig, layers: list[int], pairs: list[Pair], counts: dict[str, int]
) -> tuple[Parts, set[str]]:
    """Every layer's scores as a part: those a killed run of this config finished are taken up, the others run as
    Ray tasks, each part written as its task finishes. Returns the parts and the names of those taken up."""
    connected = start_ray(cfg.ray)
    if connected:
        say(f"[{STAGE}] {connected}")
    parts = Parts(cfg.output_dir, part_key(cfg, acts.manifest))
    reused = parts.finished()
    memory = layer_memory(acts, cfg, pairs, counts)
    jobs = [Job(part_name(layer), score_layer, (acts.folder, layer, pairs, cfg), memory, {"layer": layer})
            for layer in layers if part_name(layer) not in reused]  # fmt: skip
    say(f"[{STAGE}] {len(layers)} layers, {len(layers) - len(jobs)} finished by an earlier run, {len(jobs)} to run")
    with progress(f"{STAGE}: layers", len(jobs)) as advance:
        for done in fan_out(jobs, cfg.scheduling, cfg.ray, STAGE):
            record = {"layer": done.job.tags["layer"], "node_id": done.node_id, "seconds": round(done.seconds, 3)}
            parts.write(done.job.name, done.value, record)
            advance()
    return parts, reused


def part_name(layer: int) -> str:
    """A layer's part: ``layer<NNN>``."""
    return f"layer{layer:03d}"


def score_layer(folder: str, layer: int, pairs: list[Pair], cfg: SentenceAlignmentConfig) -> pl.DataFrame:
    """One layer's rows of results.parquet (RESULT_SCHEMA), the pairs in order: the body of a layer's task."""
    scores = layer_scores(open_activations(folder), layer, pairs, cfg)
    rows = [{"layer": layer, "source": s, "target": t, **asdict(v)} for (s, t), v in scores.items()]
    return pl.DataFrame(rows, schema=RESULT_SCHEMA, orient="row")


def frame_scores(frame: pl.DataFrame) -> dict[Pair, PairScores]:
    """A layer's rows back as scores per pair."""
    keys = [f.name for f in fields(PairScores)]
    return {(r["source"], r["target"]): PairScores(**{k: r[k] for k in keys}) for r in frame.iter_rows(named=True)}


def layer_memory(acts: Activations, cfg: SentenceAlignmentConfig, pairs: list[Pair], counts: dict[str, int]) -> int:
    """A layer task's peak bytes: the matrices it holds at once (float32; while reading, the column as stored
    too) and a pair's cosine blocks (block_size x n float64, and their masks), as ``layer_scores`` goes."""
    hidden = int(acts.manifest["model"]["hidden_size"])
    stored = 4 if acts.manifest["config"].get("dtype") == "float32" else 2
    held = max(sum(counts[lang] for lang in held_at(pairs, i)) for i in range(len(pairs)))
    largest = max(counts.values())
    blocks = 3 * min(cfg.block_size, largest) * largest * 8
    return WORKER_BYTES + held * hidden * 4 + largest * hidden * (stored + 4) + 2 * largest * hidden * 8 + blocks


def held_at(pairs: list[Pair], i: int) -> set[str]:
    """The languages ``layer_scores`` holds while it scores pair ``i``: read by then and needed again later."""
    seen = {lang for pair in pairs[: i + 1] for lang in pair}
    return {lang for lang in seen if lang in pairs[i] or any(lang in pair for pair in pairs[i + 1 :])}


def open_sentence_activations(folder: str) -> Activations:
    """The extraction, which must be finished and sentence-level."""
    try:
        acts = open_activations(folder)
    except XlrayError as exc:
        raise XlrayError(f"activations: {exc}") from None
    if acts.granularity != "sentence":
        raise XlrayError(
            f"activations: {acts.folder} holds {acts.granularity}-level activations; sentence alignment needs an"
            " extraction with granularity: sentence"
        )
    return acts


def choose_pairs(acts: Activations, cfg: SentenceAlignmentConfig) -> list[Pair]:
    """The pivot with every other language, or every unordered pair in the listed order; unknown languages are
    errors naming the field."""
    for field, wanted in (("pivot", [cfg.pivot] if cfg.pivot else []), ("languages", cfg.languages or [])):
        missing = [lang for lang in wanted if lang not in acts.languages]
        if missing:
            raise XlrayError(f"{field}: language(s) {missing} not extracted in {acts.folder} (have {acts.languages})")
    languages = list(cfg.languages or acts.languages)
    twice = sorted({lang for lang in languages if languages.count(lang) > 1})
    if twice:
        raise XlrayError(f"languages: {twice} listed more than once")
    if cfg.pivot is None:
        pairs = list(combinations(languages, 2))
    else:
        pairs = [(cfg.pivot, lang) for lang in languages if lang != cfg.pivot]
    if not pairs:
        raise XlrayError(f"languages: no pair to score in {languages} (pivot {cfg.pivot}); name at least two languages")
    return pairs


def check_layers(acts: Activations, cfg: SentenceAlignmentConfig) -> list[int]:
    """The layers to score; a layer or site the extraction lacks is an error naming the field."""
    layers = acts.layers if cfg.layers == "all" else list(cfg.layers)
    absent = [layer for layer in layers if layer not in acts.layers]
    if absent:
        raise XlrayError(f"layers: {absent} not extracted in {acts.folder} (have {acts.layers})")
    if not layers:
        raise XlrayError("layers: empty; name extracted layers or use all")
    sites = acts.manifest["config"]["sites"]
    if cfg.site not in sites:
        raise XlrayError(f"site: {cfg.site!r} not extracted in {acts.folder} (have {sites})")
    return layers


def check_parallel(acts: Activations, layer: int, pairs: list[Pair], site: str) -> dict[str, int]:
    """Before any work: every pair shares at least 2 sentence ids at ``layer`` (ids only, no vectors read). Returns
    each language's number of sentences (the same at every layer of a sentence-level extraction)."""
    languages = sorted({lang for pair in pairs for lang in pair})
    frame = acts.lazy(layer, languages, site=site).select("sentence_id", "language").collect()
    ids = {lang: unique_ids(frame.filter(pl.col("language") == lang)["sentence_id"], acts, layer, lang)
           for lang in languages}  # fmt: skip
    for a, b in pairs:
        parallel_rows(acts, layer, (a, ids[a]), (b, ids[b]))
    return {lang: len(ids[lang]) for lang in languages}


def unique_ids(ids: pl.Series, acts: Activations, layer: int, language: str) -> pl.Series:
    repeated = ids.filter(ids.is_duplicated()).unique()
    if len(repeated):
        raise XlrayError(
            f"activations: {acts.folder}: language {language} has {len(repeated)} sentence id(s) on more than one row"
            f" at layer {layer} (e.g. {repeated[0]!r}); a sentence-level extraction has one row per sentence"
        )
    return ids


def parallel_rows(
    acts: Activations, layer: int, a: tuple[str, pl.Series], b: tuple[str, pl.Series]
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices into two languages' matrices that line their sentences up: the ids both have, in id order."""
    (lang_a, ids_a), (lang_b, ids_b) = a, b
    left = pl.DataFrame({"sentence_id": ids_a}).with_row_index("i")
    right = pl.DataFrame({"sentence_id": ids_b}).with_row_index("j")
    both = left.join(right, on="sentence_id", how="inner").sort("sentence_id")
    if both.height == 0:
        raise XlrayError(
            f"activations: {acts.folder}: no parallel sentence ids between {lang_a} and {lang_b} at layer {layer};"
            " were they extracted from parallel inputs?"
        )
    if both.height < 2:
        raise XlrayError(
            f"activations: {acts.folder}: {lang_a} and {lang_b} share only {both.height} sentence id at layer"
            f" {layer}; the scores need at least 2 parallel sentences"
        )
    return both["i"].to_numpy(), both["j"].to_numpy()


def layer_scores(
    acts: Activations, layer: int, pairs: list[Pair], cfg: SentenceAlignmentConfig
) -> dict[Pair, PairScores]:
    """Every pair's scores at one layer. A language's matrix is read when a pair first needs it and dropped after
    its last pair (a pivot run holds two at a time)."""
    left = Counter(lang for pair in pairs for lang in pair)
    held: dict[str, tuple[np.ndarray, pl.Series]] = {}
    scores = {}
    for pair in pairs:
        for lang in pair:
            if lang not in held:
                held[lang] = read_language(acts, layer, lang, cfg.site)
        (x, ids_x), (y, ids_y) = held[pair[0]], held[pair[1]]
        rows_x, rows_y = parallel_rows(acts, layer, (pair[0], ids_x), (pair[1], ids_y))
        scores[pair] = pair_scores(x[rows_x], y[rows_y], cfg.block_size)
        for lang in pair:
            left[lang] -= 1
            if not left[lang]:
                del held[lang]
    return scores


def read_language(acts: Activations, layer: int, language: str, site: str) -> tuple[np.ndarray, pl.Series]:
    """One language's vectors [n, hidden] at ``layer`` and their sentence ids; inf or NaN is an error."""
    x, meta = acts.matrix(layer, language, site)
    bad = int(np.count_nonzero(~np.isfinite(x).all(axis=1)))
    if bad:
        raise XlrayError(
            f"activations: {acts.folder}: {bad} vector(s) of {language} at layer {layer} hold inf or NaN"
            " (float16 overflow?); re-extract with dtype: float32"
        )
    return x, unique_ids(meta["sentence_id"], acts, layer, language)


def log_layer(sink: Sink, layer: int, scores: dict[Pair, PairScores]) -> None:
    """A layer's metrics per pair (step = layer); an undefined CKA is a missing.* tag with the reason."""
    metrics: dict[str, float | None] = {}
    for (source, target), s in scores.items():
        pair = names.language_pair(source, target)
        metrics |= {
            names.sentence_score("mexa", pair): s.mexa,
            names.retrieval(pair, "forward"): s.retrieval_pivot_to_lang,
            names.retrieval(pair, "backward"): s.retrieval_lang_to_pivot,
            names.sentence_score("cosine_gap", pair): s.cosine_gap,
            names.sentence_score("cka", pair): s.cka,
            names.sentence_score("n", pair): s.n,
        }
        if s.cka is None:
            reason = "a language's vectors are the same for every sentence (zero variance: CKA is 0/0)"
            sink.log_missing(f"{names.sentence_score('cka', pair)}.layer_{layer}", reason)
    sink.log_metrics(metrics, step=layer)


def pooled(results: pl.DataFrame) -> dict[str, dict[str, float | int]]:
    """Per pair: MEXA's mean and max over the scored layers, and the layer of the max (the lowest on a tie)."""
    out = {}
    for (source, target), rows in results.sort("layer").group_by("source", "target", maintain_order=True):
        mexa = rows["mexa"].to_numpy()
        best = int(np.argmax(mexa))
        out[names.language_pair(source, target)] = {
            "mexa_mean": float(mexa.mean()),
            "mexa_max": float(mexa[best]),
            "best_layer": int(rows["layer"][best]),
        }
    return out


def nested(results: pl.DataFrame) -> dict[str, dict[str, dict[str, Any]]]:
    """results.parquet as {layer: {pair: {n, mexa, ...}}}."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for row in results.iter_rows(named=True):
        layer, pair = str(row.pop("layer")), names.language_pair(row.pop("source"), row.pop("target"))
        out.setdefault(layer, {})[pair] = row
    return out


def pivot_table(aggregates: dict[str, dict[str, Any]], pairs: list[Pair], symmetric: bool) -> dict[str, dict]:
    """Mean MEXA as {source: {target: value}}: one row, the pivot's; for all pairs (``symmetric``) both orders,
    since swapping the languages transposes S and so swaps the row and column conditions, leaving MEXA as it is."""
    table: dict[str, dict[str, float]] = {}
    for source, target in pairs:
        value = aggregates[names.language_pair(source, target)]["mexa_mean"]
        table.setdefault(source, {})[target] = value
        if symmetric:
            table.setdefault(target, {})[source] = value
    return table


def read_concepts(folders: list[str]) -> list[dict[str, Any]]:
    """The manifests of finished `xlray concepts` runs, for the combined plot."""
    manifests = []
    for folder in folders:
        manifest = read_json(join(folder, MANIFEST))
        if manifest is None:
            raise XlrayError(f"concepts: {folder}: no {MANIFEST}; the concepts run is missing or unfinished")
        if manifest.get("stage") != "concepts":
            raise XlrayError(f"concepts: {folder} is not an `xlray concepts` output (stage {manifest.get('stage')!r})")
        manifests.append(manifest)
    return manifests


def inputs(cfg: SentenceAlignmentConfig, acts: Activations, model: str) -> dict[str, str]:
    """What the run read, for MLflow: the extraction and the concepts runs, each by its manifest."""
    files = {f"activations {model} sentences": join(acts.folder, MANIFEST)}
    for folder in cfg.concepts:
        files[f"concepts {path_name(folder)}"] = join(folder, MANIFEST)
    return files
