"""`xlray sentence-alignment` as Ray tasks, one a layer: equal to the same scoring called inline; a killed run
resumes from its finished layers; node ids recorded; a file:// output. On the planted sentence-level extraction of
test_sentence_alignment.py (40 sentences, 3 layers)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from test_sentence_alignment import build_activations, config

from xlray.sentence_alignment.run import run_sentence_alignment

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sentence-task-acts")
    build_activations(folder)
    return folder


@pytest.fixture(scope="module")
def uninterrupted(ray_session, built, tmp_path_factory):
    cfg = config(built, tmp_path_factory.mktemp("sentence-whole") / "out")
    return cfg, run_sentence_alignment(cfg)


def without_tasks(manifest: dict) -> dict:
    """A manifest without where and when its tasks ran, nor its MLflow run."""
    return {k: v for k, v in manifest.items() if k not in ("tasks", "mlflow_run_id")}


def test_layer_tasks_equal_the_scoring_called_inline_and_record_their_node(uninterrupted, ray_session):
    from xlray.fanout import pinned_threads
    from xlray.sentence_alignment.run import score_layer

    cfg, manifest = uninterrupted
    pairs = [("en", "de"), ("en", "fr")]
    with pinned_threads(cfg.scheduling.cpus):
        inline = pl.concat([score_layer(cfg.activations, layer, pairs, cfg) for layer in (0, 1, 2)])
    assert pl.read_parquet(Path(cfg.output_dir) / "results.parquet").equals(inline)
    node = ray_session.get_runtime_context().get_node_id()
    assert set(manifest["tasks"]) == {"0", "1", "2"}
    assert all(t["node_id"] == node and t["seconds"] > 0 and not t["reused"] for t in manifest["tasks"].values())
    parts = list((Path(cfg.output_dir) / "parts").glob("*/layer*.parquet"))
    assert sorted(p.name for p in parts) == ["layer000.parquet", "layer001.parquet", "layer002.parquet"]


class Killed(Exception):
    """The driver's death, injected."""


def test_a_killed_run_resumes_from_its_finished_layers(uninterrupted, built, tmp_path, monkeypatch):
    from xlray.parts import Parts

    cfg = config(built, tmp_path / "out", scheduling={"max_concurrent": 1})
    write = Parts.write

    def dies_after_one(self, name, frame, record):
        if list((tmp_path / "out" / "parts").glob("*/*.parquet")):
            raise Killed
        write(self, name, frame, record)

    monkeypatch.setattr(Parts, "write", dies_after_one)
    with pytest.raises(Killed):
        run_sentence_alignment(cfg)
    monkeypatch.undo()
    assert not (tmp_path / "out" / "manifest.json").exists()
    (first,) = (tmp_path / "out" / "parts").glob("*/*.parquet")
    written = first.stat().st_mtime_ns
    manifest = run_sentence_alignment(cfg)
    assert [layer for layer, t in manifest["tasks"].items() if t["reused"]] == [str(int(first.stem[5:]))]
    assert first.stat().st_mtime_ns == written  # taken up, not recomputed
    whole, expected = uninterrupted
    assert without_tasks(manifest) | {"config": None} == without_tasks(expected) | {"config": None}
    ours, theirs = (pl.read_parquet(Path(c.output_dir) / "results.parquet") for c in (cfg, whole))
    assert ours.equals(theirs)


def test_a_file_uri_output_holds_the_same_results(uninterrupted, built, tmp_path, capsys):
    uri = f"file://{tmp_path}/bucket/scores"
    manifest = run_sentence_alignment(config(built, uri))
    whole, expected = uninterrupted
    out = tmp_path / "bucket" / "scores"
    assert pl.read_parquet(out / "results.parquet").equals(pl.read_parquet(Path(whole.output_dir) / "results.parquet"))
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert without_tasks(manifest) | {"config": None} == without_tasks(expected) | {"config": None}
    capsys.readouterr()
    assert run_sentence_alignment(config(built, uri)) == manifest  # finished: found at the URI, nothing run
    assert "already complete" in capsys.readouterr().out
