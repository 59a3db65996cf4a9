"""`xlray sentence-alignment` end to end on sentence-level extraction folders built here in the real shard format
(planted parallel structure: no alignment at layer 0, all at layer 1, part at layer 2), MLflow read back from a
sqlite store. Each layer is scored in a Ray task: the shared session."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
import yaml
from test_sentence_alignment_scores import direct_scores

from xlray.cli import main
from xlray.configs import TrackingConfig
from xlray.errors import XlrayError
from xlray.extract.shards import write_shard
from xlray.outputs import write_json
from xlray.sentence_alignment.config import SentenceAlignmentConfig
from xlray.sentence_alignment.plots import concept_curves
from xlray.sentence_alignment.run import run_sentence_alignment
from xlray.tracking import PrefixedSink, open_run

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_session")]
LANGUAGES = ("en", "de", "fr")
NOISE = {0: 3.0, 1: 0.05, 2: 0.6}  # per layer: translations far apart, nearly equal, in between
Truth = dict[tuple[int, str], tuple[list[str], np.ndarray]]


def build_activations(
    folder: Path,
    n: int = 40,
    d: int = 16,
    ids: dict[str, list[str]] | None = None,
    granularity: str = "sentence",
    seed: int = 0,
) -> Truth:
    """A finished sentence-level extraction: every language's vectors are a per-layer base plus noise of scale
    NOISE[layer]; ``ids`` gives a language its own sentence ids (default: sentences 0..n-1, fr without the first 6).
    Rows are shuffled over two shards. Returns {(layer, language): (ids, vectors as stored, float32)}."""
    rng = np.random.default_rng(seed)
    every = [f"flores:{i:03d}" for i in range(n)]
    ids = {"en": every, "de": every, "fr": every[6:]} | (ids or {})
    truth: Truth = {}
    columns: dict[str, list] = {"sentence_id": [], "language": [], "layer": [], "tokens": [], "vector": []}
    for layer, scale in NOISE.items():
        base = {sid: rng.normal(size=d) for sid in sorted({s for lang in LANGUAGES for s in ids[lang]})}
        for lang in LANGUAGES:
            x = np.stack([base[s] + scale * rng.normal(size=d) for s in ids[lang]]).astype(np.float16)
            truth[layer, lang] = (list(ids[lang]), x.astype(np.float32))
            columns["sentence_id"] += ids[lang]
            columns["language"] += [lang] * len(x)
            columns["layer"] += [layer] * len(x)
            columns["tokens"] += rng.integers(3, 30, size=len(x)).tolist()
            columns["vector"] += list(x)
    order = rng.permutation(len(columns["sentence_id"]))
    shards = []
    for k, part in enumerate(np.array_split(order, 2)):
        vectors = np.stack([columns["vector"][i] for i in part])
        table = pa.table({
            "sentence_id": pa.array([columns["sentence_id"][i] for i in part], pa.string()),
            "language": pa.array([columns["language"][i] for i in part], pa.string()),
            "site": pa.array(["encoder"] * len(part), pa.string()),
            "layer": pa.array([columns["layer"][i] for i in part], pa.int16()),
            "tokens": pa.array([columns["tokens"][i] for i in part], pa.int32()),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel(), pa.float16()), d),
        })  # fmt: skip
        write_shard(str(folder / "shards"), f"000-{k:06d}", table, json.dumps({"sentences": len(part)}))
        shards.append(f"shards/000-{k:06d}.parquet")
    config = {"model": {"name": "/models/tiny-llm"}, "languages": list(LANGUAGES), "sites": ["encoder"],
              "granularity": granularity, "sentence_pooling": "mexa"}  # fmt: skip
    model = {"name": "/models/tiny-llm", "layers": 2, "hidden_size": d}
    write_json(folder / "manifest.json", {"config": config, "model": model, "layers": list(NOISE), "shards": shards})
    return truth


def config(activations: Path, out: Path, uri: str | None = None, **overrides) -> SentenceAlignmentConfig:
    tracking = {"uri": uri, "experiment": "sentence-alignment-test"} if uri else {"enabled": False}
    fields = {"activations": str(activations), "output_dir": str(out), "block_size": 7, "model_label": "tiny",
              "tracking": tracking}  # fmt: skip
    return SentenceAlignmentConfig(**(fields | overrides))


def expected(truth: Truth, layer: int, source: str, target: str):
    """The scores computed directly: the two languages' rows with the ids both have, lined up, whole matrix."""
    (ids_s, xs), (ids_t, xt) = truth[layer, source], truth[layer, target]
    common = sorted(set(ids_s) & set(ids_t))
    return direct_scores(xs[[ids_s.index(i) for i in common]], xt[[ids_t.index(i) for i in common]])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sentence-acts")
    return folder, build_activations(folder)


@pytest.fixture(scope="module")
def finished(built, tmp_path_factory):
    """One pivot run (en against de and fr), logged to a sqlite MLflow store; returns (config, manifest, truth)."""
    folder, truth = built
    root = tmp_path_factory.mktemp("sentence-run")
    cfg = config(folder, root / "out", f"sqlite:///{root / 'mlflow.db'}")
    return cfg, run_sentence_alignment(cfg), truth


def test_results_equal_the_scores_computed_directly(finished):
    cfg, manifest, truth = finished
    results = pl.read_parquet(Path(cfg.output_dir) / "results.parquet")
    assert results.columns == ["layer", "source", "target", "n", "mexa", "retrieval_pivot_to_lang",
                               "retrieval_lang_to_pivot", "cosine_parallel", "cosine_other", "cosine_gap",
                               "cka"]  # fmt: skip
    assert results.select("layer", "source", "target", "n").rows() == [
        (layer, "en", lang, 40 if lang == "de" else 34) for layer in (0, 1, 2) for lang in ("de", "fr")
    ]
    for row in results.iter_rows(named=True):
        want = expected(truth, row["layer"], row["source"], row["target"])
        for name in ("mexa", "retrieval_pivot_to_lang", "retrieval_lang_to_pivot"):
            assert row[name] == getattr(want, name), (row, name)
        for name in ("cosine_parallel", "cosine_other", "cosine_gap", "cka"):
            assert row[name] == pytest.approx(getattr(want, name), abs=1e-9), (row, name)
    # The planted structure: nothing aligned at layer 0, everything at layer 1.
    mexa = {(r["layer"], r["target"]): r["mexa"] for r in results.iter_rows(named=True)}
    assert mexa[1, "de"] == mexa[1, "fr"] == 1.0 and mexa[0, "de"] < 0.5 and mexa[0, "fr"] < 0.5
    assert 0 < mexa[2, "de"] < 1


def test_the_manifest_has_results_aggregates_and_the_pivot_table(finished):
    cfg, manifest, _ = finished
    assert json.loads((Path(cfg.output_dir) / "manifest.json").read_text()) == manifest
    assert manifest["layers"] == [0, 1, 2] and manifest["pairs"] == ["en-de", "en-fr"] and manifest["model"] == "tiny"
    results = pl.read_parquet(Path(cfg.output_dir) / "results.parquet")
    de = results.filter(pl.col("target") == "de").sort("layer")["mexa"].to_list()
    assert manifest["results"]["2"]["en-de"]["mexa"] == de[2] and manifest["results"]["2"]["en-de"]["n"] == 40
    assert manifest["aggregates"]["en-de"] == {"mexa_mean": pytest.approx(sum(de) / 3), "mexa_max": 1.0,
                                               "best_layer": 1}  # fmt: skip
    assert manifest["pivot_to_all"] == {"en": {"de": manifest["aggregates"]["en-de"]["mexa_mean"],
                                               "fr": manifest["aggregates"]["en-fr"]["mexa_mean"]}}  # fmt: skip
    assert (Path(cfg.output_dir) / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (Path(cfg.output_dir) / "word_and_sentence.png").exists()  # no concepts given


def test_metrics_are_logged_per_pair_with_step_layer(finished):
    from mlflow.tracking import MlflowClient

    cfg, manifest, _ = finished
    client = MlflowClient(tracking_uri=cfg.tracking.uri)
    run = client.get_run(manifest["mlflow_run_id"])
    assert run.info.run_name == "sentence-alignment-tiny" and run.info.status == "FINISHED"
    assert run.data.tags["xlray.stage"] == "sentence-alignment" and run.data.params["config.pivot"] == "en"
    results = manifest["results"]
    for name, key in [("mexa.en-fr", "mexa"), ("retrieval.en-fr.forward", "retrieval_pivot_to_lang"),
                      ("retrieval.en-fr.backward", "retrieval_lang_to_pivot"), ("cosine_gap.en-fr", "cosine_gap"),
                      ("cka.en-fr", "cka"), ("n.en-fr", "n")]:  # fmt: skip
        history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, name)}
        assert history == {layer: pytest.approx(results[str(layer)]["en-fr"][key]) for layer in (0, 1, 2)}, name
    assert run.data.metrics["mexa_mean.en-de"] == pytest.approx(manifest["aggregates"]["en-de"]["mexa_mean"])
    assert run.data.metrics["mexa_max.en-de"] == 1.0
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"results.parquet", "curves.png", "manifest.json"} <= artifacts
    (dataset,) = run.inputs.dataset_inputs
    assert dataset.dataset.name == "activations tiny sentences"


def test_a_rerun_reuses_the_finished_output_and_another_config_is_refused(finished, capsys):
    cfg, manifest, _ = finished
    results = Path(cfg.output_dir) / "results.parquet"
    written = results.stat().st_mtime_ns
    capsys.readouterr()
    again = run_sentence_alignment(cfg.model_copy(update={"tracking": TrackingConfig(enabled=False)}))
    assert again == manifest and results.stat().st_mtime_ns == written
    assert "is already complete" in capsys.readouterr().out
    with pytest.raises(XlrayError, match="holds a finished sentence alignment with a different config"):
        run_sentence_alignment(cfg.model_copy(update={"block_size": 3}))


def test_a_run_that_fails_leaves_no_manifest_and_a_rerun_finishes(built, tmp_path, monkeypatch):
    import xlray.sentence_alignment.run as stage

    folder, _ = built
    cfg = config(folder, tmp_path / "out")

    def broken(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(stage, "plot_curves", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        run_sentence_alignment(cfg)
    assert (tmp_path / "out" / "results.parquet").exists() and not (tmp_path / "out" / "manifest.json").exists()
    monkeypatch.undo()
    assert run_sentence_alignment(cfg)["pairs"] == ["en-de", "en-fr"]
    assert (tmp_path / "out" / "manifest.json").exists()


def test_without_a_pivot_every_pair_is_scored_and_the_table_is_symmetric(built, tmp_path):
    folder, truth = built
    manifest = run_sentence_alignment(config(folder, tmp_path / "out", pivot=None, layers=[2], block_size=4096))
    assert manifest["pairs"] == ["en-de", "en-fr", "de-fr"] and manifest["layers"] == [2]
    assert manifest["results"]["2"]["de-fr"]["mexa"] == expected(truth, 2, "de", "fr").mexa
    table = manifest["pivot_to_all"]
    assert table["fr"]["de"] == table["de"]["fr"] == manifest["aggregates"]["de-fr"]["mexa_mean"]
    assert set(table) == {"en", "de", "fr"}


def test_a_language_subset_with_the_pivot_added(built, tmp_path):
    folder, _ = built
    manifest = run_sentence_alignment(config(folder, tmp_path / "out", languages=["fr"], pivot="de"))
    assert manifest["pairs"] == ["de-fr"]


def concepts_folder(root: Path, checkpoint: str = "base") -> Path:
    """A finished `xlray concepts` output as far as this stage reads it: its manifest (the stage's own keys)."""
    results = {str(layer): {"calign.fr_en": 0.2 * layer, "calign.en_fr": 0.1 * layer, "colap": None if layer else 0.5}
               for layer in NOISE}  # fmt: skip
    config = {"source": "fr", "target": "en", "checkpoint_label": checkpoint}
    write_json(
        root / "manifest.json", {"stage": "concepts", "config": config, "layers": list(NOISE), "results": results}
    )
    return root


def test_concept_curves_read_calign_both_ways_and_colap(tmp_path):
    manifest = json.loads((concepts_folder(tmp_path, "ner") / "manifest.json").read_text())
    assert concept_curves(manifest) == {
        "CALIGN fr→en (ner)": {0: 0.0, 1: 0.2, 2: 0.4},
        "CALIGN en→fr (ner)": {0: 0.0, 1: 0.1, 2: 0.2},
        "COLAP fr-en (ner)": {0: 0.5, 1: None, 2: None},
    }


def test_concepts_folders_give_the_combined_plot_logged_into_an_open_run(built, tmp_path):
    from mlflow.tracking import MlflowClient

    folder, _ = built
    concepts = [str(concepts_folder(tmp_path / "c1")), str(concepts_folder(tmp_path / "c2", "ner"))]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = config(folder, tmp_path / "out", uri, concepts=concepts)
    with open_run(TrackingConfig(uri=uri, experiment="trial"), "trial-0") as trial:
        manifest = run_sentence_alignment(cfg, into=PrefixedSink(trial, "sentences."))
    assert (tmp_path / "out" / "word_and_sentence.png").read_bytes()[:4] == b"\x89PNG"
    client = MlflowClient(tracking_uri=uri)
    assert manifest["mlflow_run_id"] == trial.run_id
    assert client.get_experiment_by_name("sentence-alignment-test") is None  # no run of its own was opened
    history = client.get_metric_history(trial.run_id, "sentences.mexa.en-de")
    assert sorted(m.step for m in history) == [0, 1, 2]
    artifacts = {a.path for a in client.list_artifacts(trial.run_id, "sentences")}
    assert "sentences/word_and_sentence.png" in artifacts


def built_folder(tmp_path: Path, **kwargs) -> str:
    build_activations(tmp_path / "acts", **kwargs)
    return str(tmp_path / "acts")


SOME = [f"flores:{i:03d}" for i in range(10)]
BAD_INPUTS = {
    "no manifest": (lambda t: str(t / "nothing"), {}, r"^activations: .*nothing: no manifest\.json"),
    "word level": (lambda t: built_folder(t, granularity="word"), {}, r"^activations: .* holds word-level activ"),
    "language": (built_folder, {"languages": ["en", "xx"]}, r"^languages: language\(s\) \['xx'\] not extracted"),
    "pivot": (built_folder, {"pivot": "xx"}, r"^pivot: language\(s\) \['xx'\] not extracted in"),
    "layer": (built_folder, {"layers": [0, 7]}, r"^layers: \[7\] not extracted in .* \(have \[0, 1, 2\]\)"),
    "site": (built_folder, {"site": "decoder"}, r"^site: 'decoder' not extracted"),
    "disjoint ids": (
        lambda t: built_folder(t, ids={"de": [f"other:{i}" for i in range(10)]}),
        {},
        r"^activations: .*: no parallel sentence ids between en and de at layer 0",
    ),
    "one shared id": (
        lambda t: built_folder(t, ids={"fr": [SOME[3], "other:1", "other:2"]}),
        {},
        r"^activations: .*: en and fr share only 1 sentence id at layer 0; .* at least 2",
    ),
    "repeated id": (
        lambda t: built_folder(t, ids={"de": [*SOME, SOME[0]]}),
        {},
        r"^activations: .*: language de has 1 sentence id\(s\) on more than one row at layer 0",
    ),
    "one language": (built_folder, {"languages": ["en"]}, r"^languages: no pair to score in \['en'\]"),
    "concepts": (built_folder, {"concepts": ["/no/such/concepts"]}, r"^concepts: /no/such/concepts: no manifest"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_a_one_line_error_naming_the_field_or_folder(case, tmp_path):
    make, overrides, message = BAD_INPUTS[case]
    cfg = config(make(tmp_path), tmp_path / "out", **overrides)
    with pytest.raises(XlrayError, match=message) as caught:
        run_sentence_alignment(cfg)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_overflowed_vectors_are_refused(tmp_path):
    folder = tmp_path / "acts"
    build_activations(folder)
    path = folder / "shards" / "000-000000.parquet"
    table = pl.read_parquet(path)
    vectors = np.stack(table["vector"].to_numpy())
    vectors[table["language"].to_numpy() == "de"] *= np.float16(np.inf)  # float16 overflow of a whole language
    fixed = table.with_columns(pl.Series("vector", vectors, dtype=table.schema["vector"])).to_arrow()
    write_shard(str(folder / "shards"), "000-000000", fixed, "{}")
    with pytest.raises(XlrayError, match=r"vector\(s\) of de at layer \d hold inf or NaN .* dtype: float32"):
        run_sentence_alignment(config(folder, tmp_path / "out"))


def write_config(tmp_path: Path, **fields) -> Path:
    path = tmp_path / "sentence-alignment.yaml"
    path.write_text(yaml.safe_dump({"stage": "sentence-alignment", **fields}))
    return path


def test_the_cli_runs_the_stage_and_exits_2_on_bad_input(built, tmp_path, capsys):
    folder, _ = built
    fields = {"activations": str(folder), "output_dir": str(tmp_path / "out"), "tracking": {"enabled": False}}
    good = write_config(tmp_path, **fields)
    assert main(["validate", str(good)]) == 0
    assert main(["sentence-alignment", str(good)]) == 0
    out = capsys.readouterr().out
    assert "MEXA of tiny-llm over 3 layers" in out and "en-fr" in out and "best layer" in out
    bad = write_config(tmp_path, **(fields | {"pivot": "xx", "output_dir": str(tmp_path / "bad")}))
    assert main(["sentence-alignment", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xlray: error: pivot: language(s) ['xx'] not extracted") and err.count("\n") == 1
    typo = write_config(tmp_path, **(fields | {"block_size": 0}))
    assert main(["sentence-alignment", str(typo)]) == 2
    assert f"{typo}: block_size: " in capsys.readouterr().err
