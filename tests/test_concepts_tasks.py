"""`xlray concepts` as Ray tasks: each (layer, view) clustering and each layer's distances in a task of its own,
equal to the same calls made inline; a killed run resumes from its finished parts; node ids recorded; a file://
output. The activations are built here in the real shard format (clustered synthetic vectors, a few hundred
occurrences per language and layer), with a dictionary file of the planted translations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from xlray.concepts.cluster import AgglomerativeConfig, FastHdbscanConfig, memory_bytes
from xlray.concepts.config import ConceptsConfig
from xlray.errors import XlrayError

LANGUAGES = ("xc", "en")
WORDS_PER_CONCEPT = 3


def concept_word(language: str, concept: int, k: int) -> str:
    return f"{language}{concept}_{k}"


def build_word_activations(
    folder: Path,
    *,
    layers: tuple[int, ...] = (0, 1),
    n: int = 240,
    d: int = 24,
    concepts: int = 6,
    spread: float = 0.9,
    shards: int = 2,
    seed: int = 0,
) -> Path:
    """A finished word-level extraction of ``n`` occurrences per language and layer: occurrence i of a language
    is word ``<lang><c>_<k>`` of concept c, its vector the layer's centre of c plus noise of scale ``spread``
    (float16, ``d`` wide). Sentences of 8 words; ``shards`` shards of whole sentences, layer-major within each as
    the extraction writes them."""
    import pyarrow as pa

    from xlray.extract.shards import write_shard
    from xlray.outputs import write_json

    rng = np.random.default_rng(seed)
    concept = rng.integers(0, concepts, size=(len(LANGUAGES), n))
    which = rng.integers(0, WORDS_PER_CONCEPT, size=(len(LANGUAGES), n))
    sentence = np.arange(n) // 8
    vectors = {}
    for layer in layers:
        centres = rng.normal(size=(concepts, d))
        for i, lang in enumerate(LANGUAGES):
            vectors[layer, lang] = (centres[concept[i]] + rng.normal(scale=spread, size=(n, d))).astype(np.float16)
    names = []
    for s, ids in enumerate(np.array_split(np.arange(sentence.max() + 1), shards)):
        rows = np.flatnonzero(np.isin(sentence, ids))
        cols: dict[str, list] = {k: [] for k in ("sentence_id", "language", "word", "word_index", "layer", "vector")}
        for layer in layers:
            for i, lang in enumerate(LANGUAGES):
                cols["sentence_id"] += [f"syn:{sentence[r]:07d}" for r in rows]
                cols["language"] += [lang] * len(rows)
                cols["word"] += [concept_word(lang, concept[i, r], which[i, r]) for r in rows]
                cols["word_index"].append((rows % 8).astype(np.int32))
                cols["layer"].append(np.full(len(rows), layer, np.int16))
                cols["vector"].append(vectors[layer, lang][rows])
        table = pa.table({
            "sentence_id": pa.array(cols["sentence_id"], pa.string()),
            "language": pa.array(cols["language"], pa.string()),
            "word": pa.array(cols["word"], pa.string()),
            "word_index": pa.array(np.concatenate(cols["word_index"])),
            "site": pa.array(["encoder"] * len(cols["language"]), pa.string()),
            "layer": pa.array(np.concatenate(cols["layer"])),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(np.concatenate(cols["vector"]).ravel()), d),
        })  # fmt: skip
        write_shard(str(folder / "shards"), f"000-{s:06d}", table, json.dumps({"sentences": len(ids)}))
        names.append(f"shards/000-{s:06d}.parquet")
    config = {"model": {"name": "/models/synthetic"}, "languages": list(LANGUAGES), "sites": ["encoder"],
              "granularity": "word", "inputs": [], "dtype": "float16"}  # fmt: skip
    model = {"name": "/models/synthetic", "layers": max(layers), "hidden_size": d}
    write_json(folder / "manifest.json", {"config": config, "model": model, "layers": list(layers), "shards": names})
    return folder


def write_concept_dictionary(path: Path, concepts: int) -> Path:
    """The planted translations: <xc><c>_<k> -> <en><c>_<k>."""
    from xlray.wordalign.dictionary import write_dictionary

    words = [(c, k) for c in range(concepts) for k in range(WORDS_PER_CONCEPT)]
    src, tgt = ([concept_word(lang, c, k) for c, k in words] for lang in LANGUAGES)
    write_dictionary(pl.DataFrame({"src": src, "tgt": tgt, "count": [5] * len(src), "prob": [1.0] * len(src)}), path)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("concept-tasks")
    return build_word_activations(root / "acts"), write_concept_dictionary(root / "dictionary.parquet", 6)


def config(inputs, out: str, **overrides) -> ConceptsConfig:
    acts, dictionary = inputs
    fields = {
        "activations": str(acts), "source": "xc", "target": "en",
        "dictionary": {"kind": "file", "path": str(dictionary)},
        "points": {"pca_dim": 16}, "clustering": {"method": "fast-hdbscan", "min_cluster_size": 5},
        "distances": {"pairs": "type_mean"}, "model_label": "syn", "output_dir": out, "tracking": {"enabled": False},
    }  # fmt: skip
    return ConceptsConfig(**(fields | overrides))


def read_outputs(out: str | Path) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """assignments.parquet, distances.parquet and results.json without its "tasks" (where and when they ran)."""
    results = json.loads(Path(out, "results.json").read_text())
    results.pop("tasks")
    return pl.read_parquet(Path(out, "assignments.parquet")), pl.read_parquet(Path(out, "distances.parquet")), results


@pytest.fixture(scope="module")
def uninterrupted(ray_session, inputs, tmp_path_factory):
    from xlray.concepts.run import run_concepts

    cfg = config(inputs, str(tmp_path_factory.mktemp("whole") / "out"))
    return cfg, run_concepts(cfg)


def jobs_and_pairs(cfg: ConceptsConfig):
    """The run's jobs, with the pairs themselves (inline) in the distance jobs."""
    from xlray.concepts.run import distance_pairs, load_dictionary
    from xlray.concepts.tasks import concept_jobs
    from xlray.extract.reader import open_activations
    from xlray.wordalign.dictionary import top_translations

    acts = open_activations(cfg.activations)
    dictionary, links = load_dictionary(cfg, cfg.output_dir)
    known = set(zip(dictionary["src"].to_list(), dictionary["tgt"].to_list(), strict=True))
    pairs, about = distance_pairs(acts, 0, cfg, dictionary, links, top_translations(dictionary, 1), known)
    assert about["reason"] is None and pairs.counts["pairs"] > 0
    return concept_jobs(acts, cfg, acts.layers, pairs)


@pytest.mark.integration
@pytest.mark.parametrize("cpus", [1, 2])
def test_tasks_equal_the_same_calls_made_inline(ray_session, inputs, tmp_path, cpus):
    from xlray.fanout import fan_out, run_inline

    cfg = config(inputs, str(tmp_path / "out"), scheduling={"cpus": cpus, "max_concurrent": 3})
    jobs = jobs_and_pairs(cfg)
    assert sorted(j.name for j in jobs) == sorted(f"layer{layer:03d}.{v}" for layer in (0, 1)
                                                  for v in ("xc", "en", "joint", "distances"))  # fmt: skip
    inline = {d.job.name: d for d in run_inline(jobs, cfg.scheduling)}
    tasks = {d.job.name: d for d in fan_out(jobs, cfg.scheduling, cfg.ray, "concepts")}
    assert set(tasks) == set(inline)
    here = ray_session.get_runtime_context().get_node_id()
    for name, done in tasks.items():
        assert done.node_id == here and done.seconds > 0
        if name.endswith("distances"):
            assert done.value[0].equals(inline[name].value[0]) and done.value[1] == inline[name].value[1]
        else:
            mine, theirs = done.value, inline[name].value
            assert np.array_equal(mine.labels, theirs.labels), name
            assert (mine.n_clusters, mine.noise_fraction) == (theirs.n_clusters, theirs.noise_fraction)
    joint = tasks["layer001.joint"].value
    assert joint.n_clusters >= 4 and 0 < joint.noise_fraction < 0.5 and len(joint.labels) == 480  # a real clustering


@pytest.mark.integration
def test_the_run_is_put_together_from_its_parts_and_records_node_ids(uninterrupted, ray_session):
    from xlray.concepts.tasks import cluster_view
    from xlray.fanout import pinned_threads

    cfg, manifest = uninterrupted
    assignments, hist, results = read_outputs(cfg.output_dir)
    assert assignments.columns == ["sentence_id", "language", "word", "word_index", "layer", "view", "cluster"]
    # The joint view's labels are those of the same clustering called here, rows in the serial loop's order.
    with pinned_threads(cfg.scheduling.cpus):
        here = cluster_view(cfg.activations, 1, ["xc", "en"], "encoder", cfg.points, cfg.clustering, cfg.seed)
    joint = assignments.filter((pl.col("layer") == 1) & (pl.col("view") == "joint"))
    assert joint["language"].to_list() == ["xc"] * 240 + ["en"] * 240
    assert np.array_equal(joint["cluster"].to_numpy(), here.labels)
    assert results["results"]["1"]["clusters.joint"] == here.n_clusters
    assert sorted(hist.select("layer", "distance").unique().rows()) == [(0, "cosine"), (0, "l2"), (1, "cosine"),
                                                                        (1, "l2")]  # fmt: skip
    node = ray_session.get_runtime_context().get_node_id()
    tasks = manifest["tasks"]
    assert tasks == json.loads(Path(cfg.output_dir, "results.json").read_text())["tasks"]
    assert set(tasks) == {"0", "1"} and all(set(t) == {"xc", "en", "joint", "distances"} for t in tasks.values())
    assert {r["node_id"] for t in tasks.values() for r in t.values()} == {node}
    assert not any(r["reused"] for t in tasks.values() for r in t.values())
    assert tasks["1"]["joint"]["points"] == 480 and tasks["1"]["xc"]["seconds"] > 0


class Killed(Exception):
    """The driver's death, injected."""


@pytest.mark.integration
def test_a_killed_run_resumes_from_its_finished_parts(uninterrupted, inputs, tmp_path, monkeypatch):
    from xlray.concepts.run import run_concepts
    from xlray.extract.reader import open_activations
    from xlray.parts import Parts, part_key

    cfg = config(inputs, str(tmp_path / "out"), scheduling={"max_concurrent": 2})
    write = Parts.write
    written: list[str] = []

    def dies_after_three(self, name, frame, record):
        if len(written) == 3:
            raise Killed  # the driver dies between two parts
        write(self, name, frame, record)
        written.append(name)

    monkeypatch.setattr(Parts, "write", dies_after_three)
    with pytest.raises(Killed):
        run_concepts(cfg)
    monkeypatch.undo()
    out = tmp_path / "out"
    assert not (out / "manifest.json").exists()
    (folder,) = (out / "parts").iterdir()
    files = {p.stem: p.stat().st_mtime_ns for p in folder.glob("*.parquet")}
    assert sorted(files) == sorted(written)

    manifest = run_concepts(cfg)
    reused = {f"layer{int(layer):03d}.{view}" for layer, t in manifest["tasks"].items() for view, r in t.items()
              if r["reused"]}  # fmt: skip
    assert reused == set(written)  # taken up, not recomputed: the same files, untouched
    assert {p.stem: p.stat().st_mtime_ns for p in folder.glob("*.parquet") if p.stem in files} == files
    assert len(list(folder.glob("*.parquet"))) == 8
    # Exactly the uninterrupted result; how many tasks ran at once decides neither it nor the parts' key.
    whole, _ = uninterrupted
    for mine, theirs in zip(read_outputs(out), read_outputs(whole.output_dir), strict=True):
        assert mine == theirs if isinstance(mine, dict) else mine.equals(theirs)
    assert folder.name == part_key(config(inputs, str(out)), open_activations(cfg.activations).manifest)


@pytest.mark.integration
def test_a_file_uri_output_holds_the_same_outputs(uninterrupted, inputs, tmp_path, capsys):
    from xlray.concepts.run import run_concepts

    uri = f"file://{tmp_path}/bucket/concepts"
    manifest = run_concepts(config(inputs, uri))
    whole, _ = uninterrupted
    out = tmp_path / "bucket" / "concepts"
    for mine, theirs in zip(read_outputs(out), read_outputs(whole.output_dir), strict=True):
        assert mine == theirs if isinstance(mine, dict) else mine.equals(theirs)
    (folder,) = (out / "parts").iterdir()
    assert len(list(folder.glob("*.parquet"))) == 8
    assert json.loads((out / "manifest.json").read_text()) == manifest
    capsys.readouterr()
    assert run_concepts(config(inputs, uri)) == manifest  # finished: found at the URI, nothing run
    assert "already complete" in capsys.readouterr().out


def test_the_part_key_follows_what_decides_the_result(inputs):
    from xlray.parts import part_key

    cfg = config(inputs, "out")
    key = part_key(cfg, {"shards": ["a"]})
    assert part_key(cfg.model_copy(update={"output_dir": "elsewhere"}), {"shards": ["a"]}) != key  # output_dir counts
    same = config(inputs, "out", scheduling={"memory_factor": 3, "max_concurrent": 1}, tracking={"enabled": True})
    assert part_key(same, {"shards": ["a"]}) == key
    assert part_key(config(inputs, "out", seed=1), {"shards": ["a"]}) != key
    assert part_key(config(inputs, "out", scheduling={"cpus": 2}), {"shards": ["a"]}) != key  # threads decide
    assert part_key(cfg, {"shards": ["b"]}) != key  # another extraction


def test_memory_estimates_grow_with_the_method():
    fast = memory_bytes(1_000_000, 64, FastHdbscanConfig(min_cluster_size=20))
    assert 2.0e9 < fast + 1_000_000 * 64 * 4 + 300e6 < 4e9  # README: 2.77 GB peak at 1M x 64-d
    assert memory_bytes(2_000_000, 64, FastHdbscanConfig(min_cluster_size=20)) == pytest.approx(2 * fast, rel=1e-9)
    ward = memory_bytes(100_000, 64, AgglomerativeConfig(n_clusters=10))
    assert ward > 4e10 and memory_bytes(200_000, 64, AgglomerativeConfig(n_clusters=10)) > 3.9 * ward


@pytest.mark.integration
def test_a_task_no_node_can_hold_is_refused_before_any_runs(ray_session, inputs, tmp_path):
    from xlray.concepts.run import run_concepts

    cfg = config(inputs, str(tmp_path / "out"), clustering={"method": "agglomerative", "n_clusters": 4},
                 scheduling={"memory_factor": 1e6})  # fmt: skip
    with pytest.raises(XlrayError, match=r"^concepts: task layer00\d\.joint needs 1 CPU and .* GB of memory .*"
                       r"lower scheduling\.cpus or scheduling\.memory_factor"):  # fmt: skip
        run_concepts(cfg)
    assert not (tmp_path / "out" / "parts").exists()
