"""`run_extract` on a local Ray with a fake GPU: cap, truncation counts, resume, lazy reader, bad input."""

import json

import polars as pl
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
    assert manifest["counts"]["sentences"] == 4000
    assert rows(out).equals(uninterrupted)


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


def test_manifest_is_written_last_with_model_and_counts(ray_session, assets, tmp_path):
    cfg = config(assets, tmp_path, "m", inputs=[{"format": "jsonl", "path": write(tmp_path / "c.jsonl",
        b'{"id": "s1", "language": "en", "text": "Bezotu hutu ."}\n')}], languages=["en"])  # fmt: skip
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text()) if run_extract(cfg) else None
    assert manifest["model"]["family"] == "bert" and manifest["layers"] == [0, 2]
    assert manifest["counts"]["encoder_kept"] == 3
    assert open_activations(tmp_path / "m").lazy(layer=0).collect()["sentence_id"].to_list() == ["s1"] * 3
