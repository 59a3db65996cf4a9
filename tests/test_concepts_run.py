"""`run_concepts` end to end on extracted activations of the synthetic world, read back from a sqlite MLflow store."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from xlray.concepts.config import ConceptsConfig
from xlray.concepts.run import run_concepts
from xlray.errors import XlrayError
from xlray.wordalign.dictionary import read_dictionary, top_translations, write_dictionary


@pytest.fixture(scope="module")
def activations(xc_en_activations):
    return xc_en_activations


def config(activations, tmp_path, dictionary, **overrides) -> ConceptsConfig:
    fields = {
        "activations": str(activations),
        "source": "xc",
        "target": "en",
        "dictionary": dictionary,
        "points": {"pca_dim": 16},
        "clustering": {"method": "fast-hdbscan", "min_cluster_size": 5},
        "calign": {"top_n": 1, "theta": 0.3},
        "model_label": "bert",
        "output_dir": str(tmp_path / "concepts"),
        "tracking": {"uri": f"sqlite:///{tmp_path}/mlflow.db", "experiment": "concepts-test"},
    }
    return ConceptsConfig(**(fields | overrides))


@pytest.fixture(scope="module")
def finished(activations, assets, tmp_path_factory):
    """One run with a dictionary built by eflomal from the xc-en files; returns (config, manifest)."""
    world = assets / "world" / "parallel"
    tmp_path = tmp_path_factory.mktemp("run")
    dictionary = {"kind": "eflomal", "source": str(world / "xc-en.xc"), "target": str(world / "xc-en.en")}
    cfg = config(activations, tmp_path, dictionary)
    return cfg, run_concepts(cfg)


def mlflow_run(cfg: ConceptsConfig, run_id: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=cfg.tracking.uri)
    return client, client.get_run(run_id)


@pytest.mark.integration
def test_metrics_per_layer_in_unit_interval_and_logged(finished):
    cfg, manifest = finished
    assert manifest["layers"] == [0, 2]
    for layer in ("0", "2"):
        res = manifest["results"][layer]
        for name in ("calign.xc_en", "calign.en_xc", "colap", "noise_fraction.joint"):
            assert res[name] is not None and 0.0 <= res[name] <= 1.0, (layer, name, res[name])
        assert res["clusters.xc"] >= 2 and res["clusters.en"] >= 2 and res["clusters.joint"] >= 2
        assert res["colap.clusters"] == res["clusters.joint"]
        # Translations sit closer than random pairs: the paired difference is positive on average.
        assert res["dist_pairs"] >= 20
        assert res["dist_cosine_related"] < res["dist_cosine_unrelated"]
    client, run = mlflow_run(cfg, manifest["mlflow_run_id"])
    assert run.data.tags["pair"] == "xc-en" and run.info.run_name == "concepts-bert-base-xc-en"
    assert run.data.params["config.calign.theta"] == "0.3"
    inputs = {d.dataset.name: (d.tags[0].value, json.loads(d.dataset.source)) for d in run.inputs.dataset_inputs}
    parallel = [cfg.dictionary.source, cfg.dictionary.target]
    assert inputs == {
        "activations bert-base xc-en": ("concepts", {"uri": f"{cfg.activations}/manifest.json"}),
        "corpus xc-en": ("concepts", {"uri": parallel[0], "uris": parallel}),
    }
    assert run.data.params["config.clustering.min_cluster_size"] == "5"
    history = client.get_metric_history(run.info.run_id, "calign.xc_en")
    assert sorted(m.step for m in history) == [0, 2]
    assert {m.step: m.value for m in history}[2] == pytest.approx(manifest["results"]["2"]["calign.xc_en"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"explorer.html", "explorer.json", "curves.png", "assignments.parquet", "results.json"} <= artifacts


@pytest.mark.integration
def test_outputs_explorer_and_assignments(finished):
    from xlray.concepts.explorer_page import unembedded

    cfg, manifest = finished
    out = cfg.output_dir
    assignments = pl.read_parquet(f"{out}/assignments.parquet")
    assert set(assignments["view"].unique()) == {"xc", "en", "joint"}
    counts = assignments.group_by("layer", "view").len().sort("layer", "view")
    per_lang = assignments.filter(pl.col("view") != "joint").group_by("layer").len().sort("layer")["len"]
    assert counts.filter(pl.col("view") == "joint")["len"].to_list() == per_lang.to_list()
    data = json.loads(open(f"{out}/explorer.json", encoding="utf-8").read())
    assert [layer["layer"] for layer in data["layers"]] == [0, 2]
    joint = data["layers"][1]["views"]["joint"]
    assert len(joint["id"]) == manifest["results"]["2"]["clusters.joint"]
    kept = assignments.filter((pl.col("layer") == 2) & (pl.col("view") == "joint") & (pl.col("cluster") >= 0))
    assert sum(joint["size"]) == kept.height
    assert data["layers"][1]["metrics"]["calign.xc_en"] == manifest["results"]["2"]["calign.xc_en"]
    page = open(f"{out}/explorer.html", encoding="utf-8").read()
    assert unembedded(page) == data and '<canvas id="map"' in page
    assert open(f"{out}/curves.png", "rb").read(4) == b"\x89PNG"


@pytest.mark.integration
def test_distance_histograms_written_and_logged(finished):
    cfg, manifest = finished
    hist = pl.read_parquet(f"{cfg.output_dir}/distances.parquet")
    assert hist.columns == [
        "layer", "distance", "bin_left", "bin_right", "count", "related_mean", "unrelated_mean", "pairs",
    ]  # fmt: skip
    # One cosine and one l2 histogram per analysed layer.
    kinds = sorted(hist.select("layer", "distance").unique().rows())
    assert kinds == [(layer, d) for layer in manifest["layers"] for d in ("cosine", "l2")]
    for (layer, distance), bins in hist.group_by("layer", "distance"):
        res = manifest["results"][str(layer)]
        assert bins.height == cfg.distances.bins
        # Every compared pair (one with an unrelated partner) falls in exactly one bin of contiguous edges.
        assert bins["count"].sum() == res["dist_pairs"] == bins["pairs"][0]
        bins = bins.sort("bin_left")
        assert bins["bin_right"][:-1].to_list() == bins["bin_left"][1:].to_list()
        assert bins["related_mean"][0] == pytest.approx(res[f"dist_{distance}_related"])
        assert bins["unrelated_mean"][0] == pytest.approx(res[f"dist_{distance}_unrelated"])
    assert open(f"{cfg.output_dir}/distances.png", "rb").read(4) == b"\x89PNG"
    client, run = mlflow_run(cfg, manifest["mlflow_run_id"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"distances.parquet", "distances.png"} <= artifacts


@pytest.mark.integration
def test_distances_compare_aligned_occurrences_in_context(finished, assets):
    cfg, manifest = finished
    links = pl.read_parquet(f"{cfg.output_dir}/links.parquet")
    assert links.columns == ["line", "src_index", "tgt_index", "src_word", "tgt_word"]
    about = manifest["distances"]
    assert about == json.loads(open(f"{cfg.output_dir}/results.json", encoding="utf-8").read())["distances"]
    assert (about["pairs"], about["keep_identical"], about["reason"]) == ("in_context", False, None)
    assert about["links"] == links.height > 0 and about["links_below_min_count"] == 0  # min_count 1
    counts = about["counts"]
    # Every link is an occurrence pair of the activations or not extracted (the cap keeps 15 per word type).
    assert counts["candidates"] + counts["not_extracted"] == links.height
    assert counts["candidates"] == counts["pairs"] + counts["identical_dropped"] + counts["no_partner"]
    # The world shares numbers and '.' between xc and en; eflomal links them, and the rule drops them.
    identical = links.filter(pl.col("src_word") == pl.col("tgt_word")).height
    assert 0 < counts["identical_dropped"] <= identical
    for layer in ("0", "2"):  # the same pairs at every layer
        assert {k: manifest["results"][layer][f"dist_{k}"] for k in counts} == counts
    # A link names the words at its positions of its line (from 1) in the parallel files.
    world = assets / "world" / "parallel"
    lines = [(world / f"xc-en.{ext}").read_text(encoding="utf-8").splitlines() for ext in ("xc", "en")]
    for row in links.head(200).iter_rows(named=True):
        assert lines[0][row["line"] - 1].split()[row["src_index"]] == row["src_word"]
        assert lines[1][row["line"] - 1].split()[row["tgt_index"]] == row["tgt_word"]
    _, run = mlflow_run(cfg, manifest["mlflow_run_id"])
    assert run.data.tags["distances.pairs"] == "in_context"
    assert run.data.metrics["dist_identical_dropped"] == counts["identical_dropped"]


@pytest.mark.integration
def test_type_mean_variant_and_why_in_context_needs_the_extracted_links(finished, activations, tmp_path):
    from xlray.concepts.run import distance_pairs
    from xlray.extract.reader import open_activations

    cfg, _ = finished
    path = f"{cfg.output_dir}/dictionary.parquet"
    typed = config(activations, tmp_path, {"kind": "file", "path": path}, layers=[2], distances={"pairs": "type_mean"})
    manifest = run_concepts(typed)
    about, res = manifest["distances"], manifest["results"]["2"]
    assert (about["pairs"], about["reason"]) == ("type_mean", None) and "links" not in about
    assert res["dist_pairs"] == about["counts"]["pairs"] > 0 and about["counts"]["identical_dropped"] > 0
    assert "dist_not_extracted" not in res and "distances" not in manifest["missing"]["2"]
    # In context, a dictionary file has no links, and eflomal on copies of the files has no extracted sentences.
    acts, dictionary = open_activations(activations), read_dictionary(path)
    links = pl.read_parquet(f"{cfg.output_dir}/links.parquet")
    pairs, about = distance_pairs(acts, 2, typed.model_copy(update={"distances": cfg.distances}), dictionary, None,
                                  {}, set())  # fmt: skip
    assert pairs is None and about["reason"].startswith("in-context distances need word links")
    copies = {}
    for side in ("source", "target"):
        copies[side] = str(tmp_path / Path(getattr(cfg.dictionary, side)).name)
        shutil.copy(getattr(cfg.dictionary, side), copies[side])
    elsewhere = cfg.model_copy(update={"dictionary": cfg.dictionary.model_copy(update=copies)})
    pairs, about = distance_pairs(acts, 2, elsewhere, dictionary, links, {}, set())
    assert pairs is None and "are not a parallel input of" in about["reason"]


@pytest.mark.integration
def test_rerun_with_finished_manifest_skips(finished, capsys):
    cfg, manifest = finished
    assert run_concepts(cfg) == manifest
    assert "already complete" in capsys.readouterr().out
    with pytest.raises(XlrayError, match="different config"):
        run_concepts(cfg.model_copy(update={"seed": 1}))


@pytest.mark.integration
def test_eflomal_dictionary_agrees_with_gold(finished, assets):
    cfg, _ = finished
    gold = pl.read_parquet(assets / "world" / "gold" / "dictionary.parquet").filter(pl.col("language") == "xc")
    gold_map = dict(zip(gold["word"].to_list(), gold["translation"].to_list(), strict=True))
    best = {w: ts[0] for w, ts in top_translations(read_dictionary(f"{cfg.output_dir}/dictionary.parquet"), 1).items()}
    text = (assets / "world" / "parallel" / "xc-en.xc").read_text(encoding="utf-8").split()
    frequent = [w for w, _ in Counter(w for w in text if w in gold_map).most_common(30)]
    assert len(frequent) == 30
    assert sum(best.get(w) == gold_map[w] for w in frequent) >= 24


@pytest.mark.integration
def test_missing_layer_or_language_is_an_error(activations, tmp_path):
    dictionary = {"kind": "file", "path": str(tmp_path / "unused.parquet")}
    with pytest.raises(XlrayError, match=r"layers: \[5\] not extracted"):
        run_concepts(config(activations, tmp_path, dictionary, layers=[0, 5]))
    with pytest.raises(XlrayError, match=r"target: language 'xd' not extracted"):
        run_concepts(config(activations, tmp_path, dictionary, target="xd"))
    assert not (tmp_path / "concepts").exists()


@pytest.mark.integration
def test_dictionary_without_overlap_logs_calign_missing(activations, tmp_path):
    path = tmp_path / "nonsense.parquet"
    write_dictionary(
        pl.DataFrame({"src": ["qqq", "rrr"], "tgt": ["zzz", "yyy"], "count": [3, 2], "prob": [1.0, 1.0]}), path
    )
    cfg = config(activations, tmp_path, {"kind": "file", "path": str(path)}, layers=[2])
    manifest = run_concepts(cfg)
    res = manifest["results"]["2"]
    assert res["calign.xc_en"] is None and res["calign.en_xc"] is None
    assert res["colap"] is not None  # COLAP needs no dictionary
    assert "no source cluster word has a dictionary translation" in manifest["missing"]["2"]["calign.xc_en"]
    assert "distances" in manifest["missing"]["2"]
    client, run = mlflow_run(cfg, manifest["mlflow_run_id"])
    assert "calign.xc_en" not in run.data.metrics and "calign.en_xc" not in run.data.metrics
    assert client.get_metric_history(run.info.run_id, "calign.xc_en") == []
    assert "no source cluster word" in run.data.tags["missing.calign.xc_en.layer_2"]
    assert "missing.distances.layer_2" in run.data.tags
    hist = pl.read_parquet(tmp_path / "concepts" / "distances.parquet")
    assert hist.height == 0 and "count" in hist.columns
    assert (tmp_path / "concepts" / "distances.png").is_file()
    assert run.data.metrics["colap"] == pytest.approx(res["colap"])


def test_shipped_demo_config_validates(repo_root):
    from xlray.configs import load_stage_config

    cfg = load_stage_config(repo_root / "sweeps" / "examples" / "concepts_demo.yaml")
    assert isinstance(cfg, ConceptsConfig)
    assert cfg.dictionary.kind == "eflomal" and cfg.clustering.method == "fast-hdbscan"
