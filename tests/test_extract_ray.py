"""`run_extract` on a local Ray with a fake GPU: cap, truncation counts, resume, lazy reader, bad input."""

import json
import re
import threading
import time
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from xlray.configs import ModelConfig
from xlray.errors import XlrayError
from xlray.extract.config import ExtractConfig
from xlray.extract.reader import open_activations
from xlray.extract.run import run_extract

pytestmark = pytest.mark.integration


def config(assets, tmp_path, name="out", **overrides):
    world = assets / "world" / "parallel"
    fields = {
        "model": ModelConfig(name=str(assets / "models" / "bert")),
        "inputs": [{"format": "parallel", "source": str(world / "xc-en.xc"), "target": str(world / "xc-en.en"),
                    "source_language": "xc", "target_language": "en"}],
        "languages": ["xc", "en"],
        "output_dir": str(tmp_path / name),
        "layers": [0, 2],
        "chunk_lines": 400,
        "tracking": {"enabled": False},
    }  # fmt: skip
    return ExtractConfig(**(fields | overrides))


def rows(folder):
    frame = pl.scan_parquet(f"{folder}/shards/*.parquet").collect()
    return frame.with_columns(pl.col("vector").cast(pl.List(pl.Float32))).sort(
        "sentence_id", "language", "word_index", "layer"
    )


def test_cap_counts_and_reader(ray_session, assets, tmp_path):
    manifest = run_extract(config(assets, tmp_path))
    counts = manifest["counts"]
    assert counts["sentences"] == 4000  # 2000 lines, both sides
    assert counts["encoder_kept"] + counts["encoder_capped"] == counts["encoder_words"] == sum(
        len(line.split()) for side in ("xc", "en")
        for line in (assets / "world" / "parallel" / f"xc-en.{side}").read_text(encoding="utf-8").splitlines()
    )  # fmt: skip
    acts = open_activations(tmp_path / "out")
    per_type = acts.lazy(layer=2).group_by("language", "word").len().collect()
    assert per_type["len"].max() == 15  # frequent types are capped at exactly 15
    assert counts["encoder_kept"] == per_type["len"].sum()
    x, meta = acts.matrix(2, "xc")
    assert x.shape == (meta.height, 64) and x.dtype.name == "float32" and set(meta["language"]) == {"xc"}
    dots = acts.lazy(layer=0, words=["."]).collect()
    assert set(dots["word"]) == {"."} and dots.height == 30  # 15 per language
    with pytest.raises(XlrayError, match="layer 1 was not extracted"):
        acts.matrix(1, "xc")
    with pytest.raises(XlrayError, match=r"language\(s\) \['zz'\] were not extracted"):
        acts.matrix(2, "zz")


@pytest.fixture(scope="module")
def uninterrupted(ray_session, assets, tmp_path_factory):
    """Rows of one uninterrupted run through the GPU stages (tokenizer actor, forward actor on the fake GPU, writer)."""
    tmp = tmp_path_factory.mktemp("uninterrupted")
    run_extract(config(assets, tmp, "full"))
    return rows(tmp / "full")


def test_the_cap_pass_in_tasks_and_in_one_task_agree(ray_session, assets, monkeypatch):
    from dataclasses import asdict

    from xlray.extract import run
    from xlray.extract.corpus import plan_chunks

    cfg = config(assets, Path("unused"), chunk_lines=100)
    chunks = [asdict(c) for c in plan_chunks(cfg.inputs, cfg.chunk_lines)]
    assert len(chunks) > run.CAP_PASS_IN_ONE_TASK
    in_tasks = run.cap_pass(cfg.model_dump_json(), chunks, False, 15, 2)
    monkeypatch.setattr(run, "CAP_PASS_IN_ONE_TASK", len(chunks))
    assert in_tasks == run.cap_pass(cfg.model_dump_json(), chunks, False, 15, 2) and in_tasks


def test_resume_after_interruption_gives_the_same_rows(ray_session, assets, tmp_path, uninterrupted):
    # An interrupted run: some shards written, a half-written temporary file, no manifest.
    cfg2 = config(assets, tmp_path, "resumed")
    run_extract(cfg2)
    out = tmp_path / "resumed"
    (out / "manifest.json").unlink()
    shards = sorted((out / "shards").glob("*.parquet"))
    for shard in shards[1:3]:
        shard.unlink()
    (out / "shards" / ".000-000001.parquet.tmp-123").write_bytes(b"PAR1 half written")
    manifest = run_extract(cfg2)
    assert manifest["counts"]["sentences"] == 4000  # cumulative: every shard
    assert rows(out).equals(uninterrupted)
    # Throughput counts only what this invocation ran: the two re-made shards, not the three kept ones.
    redone = [json.loads(pq.read_schema(s).metadata[b"xlray.stats"]) for s in shards[1:3]]
    words = sum(stats["encoder_words"] for stats in redone)
    assert manifest["this_run"]["shards"] == 2 and manifest["this_run"]["words"] == words
    assert words < manifest["counts"]["encoder_words"]
    assert manifest["words_per_second"] == pytest.approx(words / manifest["this_run"]["seconds"])


def test_cpu_actors_write_the_same_rows_as_the_gpu_stages(ray_session, assets, tmp_path, uninterrupted):
    manifest = run_extract(config(assets, tmp_path, "cpu", gpus_per_actor=0, actors="auto"))
    assert manifest["counts"]["sentences"] == 4000
    assert 0 < manifest["counts"]["sentences_run"] < 4000  # the cap keeps nothing of some sentences
    assert rows(tmp_path / "cpu").equals(uninterrupted)


def test_truncation_is_counted(ray_session, assets, tmp_path):
    cfg = config(assets, tmp_path, "short", model=ModelConfig(name=str(assets / "models" / "bert"), max_length=8),
                 cap=None)  # fmt: skip
    counts = run_extract(cfg)["counts"]
    assert counts["encoder_truncated_sentences"] > 1000
    assert counts["encoder_kept"] + counts["encoder_truncated_words"] == counts["encoder_words"]


def test_logs_to_mlflow(ray_session, assets, tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = config(assets, tmp_path, tracking={"uri": uri, "experiment": "extract-test"}, layers=[1])
    manifest = run_extract(cfg)
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("extract-test").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["count.encoder_kept"] == manifest["counts"]["encoder_kept"]
    assert run.data.params["config.pooling"] == "last"
    (read,) = run.inputs.dataset_inputs  # the corpus, named as the other stages name it
    assert read.dataset.name == "corpus xc-en" and "xc-en.xc" in read.dataset.source
    assert {t.key: t.value for t in read.tags}["mlflow.data.context"] == "extract"


def write(path, data: bytes):
    path.write_bytes(data)
    return str(path)


def test_bad_input_is_named_and_leaves_no_manifest(ray_session, assets, tmp_path):
    model = ModelConfig(name=str(assets / "models" / "bert"))
    base = {"model": model, "languages": ["en"], "layers": [1], "tracking": {"enabled": False}}
    bad = write(tmp_path / "bad.txt", b"a b\n\xff\xfe c\nd e\n")
    cfg = ExtractConfig(
        **base, inputs=[{"format": "text", "path": bad, "language": "en"}], output_dir=str(tmp_path / "o1")
    )
    with pytest.raises(XlrayError, match=rf"{bad}:2: not valid UTF-8"):
        run_extract(cfg)
    assert not (tmp_path / "o1" / "manifest.json").exists()
    skipping = cfg.model_copy(update={"on_invalid": "skip", "output_dir": str(tmp_path / "o2")})
    assert run_extract(skipping)["counts"]["invalid_lines"] == 1

    empty = write(tmp_path / "empty.txt", b"a b\n\nd e\n")
    cfg = ExtractConfig(
        **base, inputs=[{"format": "text", "path": empty, "language": "en"}], output_dir=str(tmp_path / "o3")
    )
    with pytest.raises(XlrayError, match=rf"{empty}:2: empty line"):
        run_extract(cfg)

    a, b = write(tmp_path / "p.xx", b"a\nb\n"), write(tmp_path / "p.en", b"a\n")
    pair = {"format": "parallel", "source": a, "target": b, "source_language": "xx", "target_language": "en"}
    cfg = ExtractConfig(**base | {"languages": ["xx", "en"]}, output_dir=str(tmp_path / "o4"), inputs=[pair])
    with pytest.raises(XlrayError, match=r"p.xx has 2 lines but .*p.en has 1"):
        run_extract(cfg)

    tsv = write(tmp_path / "t.tsv", b"id\tlanguage\ttext\n1\ten\ta b\n2\tzz\tc d\n")
    cfg = ExtractConfig(**base, inputs=[{"format": "tsv", "path": tsv}], output_dir=str(tmp_path / "o5"))
    with pytest.raises(XlrayError, match=rf"{tsv}:3: language 'zz' is not declared"):
        run_extract(cfg)

    cfg = ExtractConfig(**base, inputs=[{"format": "text", "path": str(tmp_path / "nope.txt"), "language": "en"}],
                        output_dir=str(tmp_path / "o6"))  # fmt: skip
    with pytest.raises(XlrayError, match="nope.txt: cannot open input"):
        run_extract(cfg)


def test_gpu_request_without_gpus_fails_fast(ray_session, assets, tmp_path):
    cfg = config(assets, tmp_path, "gpu", gpus_per_actor=4)
    with pytest.raises(XlrayError, match="gpus_per_actor: 4"):
        run_extract(cfg)


def test_cpu_actors_that_cannot_start_say_why(ray_session, assets, tmp_path):
    cfg = config(assets, tmp_path, "big", gpus_per_actor=0, cpus_per_actor=64, ray={"gpu_wait_s": 3})
    with pytest.raises(XlrayError, match=r"actors could not start: no node of the cluster has 64 CPU"):
        run_extract(cfg)
    free, total = ray_session.available_resources(), ray_session.cluster_resources()
    assert free.get("CPU") == total["CPU"]  # the actors that waited are gone
    assert not (tmp_path / "big" / "manifest.json").exists()


def test_manifest_is_written_last_with_model_and_counts(ray_session, assets, tmp_path):
    cfg = config(assets, tmp_path, "m", inputs=[{"format": "jsonl", "path": write(tmp_path / "c.jsonl",
        b'{"id": "s1", "language": "en", "text": "Bezotu hutu ."}\n')}], languages=["en"])  # fmt: skip
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text()) if run_extract(cfg) else None
    assert manifest["model"]["family"] == "bert" and manifest["layers"] == [0, 2]
    assert manifest["counts"]["encoder_kept"] == 3
    assert open_activations(tmp_path / "m").lazy(layer=0).collect()["sentence_id"].to_list() == ["s1"] * 3


def test_a_failed_pipeline_releases_its_actors_before_returning(ray_session, assets, tmp_path):
    """After a failed extraction the next one in the same process starts at once (its actors find free CPUs and
    the GPU), on the GPU stages and on the CPU actor path."""
    import ray

    bad = write(tmp_path / "bad.txt", b"a b\n\xff\xfe c\nd e\n")
    model = ModelConfig(name=str(assets / "models" / "bert"))
    for gpus in (1, 0):
        cfg = ExtractConfig(model=model, languages=["en"], layers=[1], tracking={"enabled": False},
                            inputs=[{"format": "text", "path": bad, "language": "en"}], gpus_per_actor=gpus,
                            output_dir=str(tmp_path / f"failed{gpus}"), ray={"gpu_wait_s": 20})  # fmt: skip
        with pytest.raises(XlrayError, match="not valid UTF-8"):
            run_extract(cfg)
        free, total = ray.available_resources(), ray.cluster_resources()
        assert free.get("CPU") == total["CPU"] and free.get("GPU") == total["GPU"]  # nothing held any more
        again = cfg.model_copy(update={"on_invalid": "skip", "output_dir": str(tmp_path / f"again{gpus}")})
        assert run_extract(again)["counts"]["invalid_lines"] == 1  # gpu_wait_s=20: fails if the actors wait


def kill_worker_when(shards, at_least: int, stop: threading.Event) -> None:
    """SIGKILL the extraction worker once ``at_least`` shards are written (as the OOM killer or a preemption
    would)."""
    import psutil

    while not stop.is_set():
        if shards.is_dir() and len(list(shards.glob("*.parquet"))) >= at_least:
            for proc in psutil.process_iter(["cmdline"]):
                if " ".join(proc.info["cmdline"] or []).startswith("ray::ExtractChunks"):
                    proc.kill()
                    return
        time.sleep(0.05)


def test_a_worker_that_dies_is_one_line_exit_1_and_the_rerun_resumes(ray_session, assets, tmp_path, capsys):
    import yaml

    from xlray.cli import main

    cfg = config(assets, tmp_path, "killed", gpus_per_actor=0, actors=1, chunk_lines=100, ray={"actor_restarts": 0})
    path = tmp_path / "extract.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    stop = threading.Event()
    killer = threading.Thread(target=kill_worker_when, args=(tmp_path / "killed" / "shards", 2, stop), daemon=True)
    killer.start()
    try:
        assert main(["extract", str(path)]) == 1
    finally:
        stop.set()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert re.match(r"xlray: failed: extract: chunk 000-0000\d\d failed: the worker process died: ", err[0])
    assert re.search(r"worker log: /\S+/worker-[\w-]+-\d+\.err", err[0]) and "Traceback" not in err[0]
    assert not (tmp_path / "killed" / "manifest.json").exists()
    kept = len(list((tmp_path / "killed" / "shards").glob("*.parquet")))
    assert 2 <= kept < 20
    assert main(["extract", str(path)]) == 0
    assert f"20 chunks, {kept} already done, {20 - kept} to run" in capsys.readouterr().out
    assert json.loads((tmp_path / "killed" / "manifest.json").read_text())["this_run"]["shards"] == 20 - kept
