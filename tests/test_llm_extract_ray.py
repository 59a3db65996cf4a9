"""Decoder-only LLMs through `xlray extract` on a local Ray: sentence vectors of a FLORES+-shaped corpus on the GPU
pipeline and on CPU actors alike, resume, the bad inputs that exit 2 leaving nothing behind, and a 2-GPU actor
reserving 2 GPUs."""

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from xlray.cli import main
from xlray.extract.config import ExtractConfig
from xlray.extract.reader import open_activations
from xlray.extract.run import run_extract

pytestmark = pytest.mark.integration

LANGS = ("xl", "en")


def flores_files(assets, tmp_path, sentences=120) -> dict[str, str]:
    """The world's xl-en corpus as FLORES+ lays it out: a Parquet file per language, ids 0.. in its own order."""
    world = assets / "world" / "parallel"
    files = {}
    for lang, order in zip(LANGS, (1, -1), strict=True):
        lines = (world / f"xl-en.{lang}").read_text(encoding="utf-8").splitlines()[:sentences]
        ids = list(range(len(lines)))[::order]
        table = pa.table({"id": pa.array(ids, pa.int64()), "text": [lines[i] for i in ids]})
        files[lang] = str(tmp_path / "devtest" / f"{lang}.parquet")
        os.makedirs(tmp_path / "devtest", exist_ok=True)
        pq.write_table(table, files[lang], row_group_size=50)
    return files


def config(assets, tmp_path, name, model=None, **fields) -> ExtractConfig:
    return ExtractConfig(
        model={"name": str(model or assets / "models" / "llama"), "dtype": "float32"},
        inputs=[{"format": "parallel_ids", "files": flores_files(assets, tmp_path)}],
        languages=list(LANGS), output_dir=str(tmp_path / name), granularity="sentence", sentence_pooling="mexa",
        layers=[0, 2], batch_size=16, actors=1, tracking={"enabled": False}, **fields,
    )  # fmt: skip


def vectors(folder, layer=2):
    acts = open_activations(folder)
    out = {}
    for lang in LANGS:
        x, meta = acts.matrix(layer, lang)
        out[lang] = (x, meta["sentence_id"].to_list())
    return out


def test_sentence_vectors_are_the_same_on_the_gpu_pipeline_and_cpu_actors_and_resume(ray_session, assets, tmp_path):
    gpu = run_extract(config(assets, tmp_path, "gpu", gpus_per_actor=1))  # the fake GPU: the Ray Data pipeline
    cpu = run_extract(config(assets, tmp_path, "cpu", gpus_per_actor=0))  # plain CPU actors
    assert gpu["counts"]["encoder_pooled"] == cpu["counts"]["encoder_pooled"] == 240
    assert gpu["config"]["granularity"] == "sentence" and open_activations(tmp_path / "gpu").granularity == "sentence"
    on_gpu, on_cpu = vectors(tmp_path / "gpu"), vectors(tmp_path / "cpu")
    for lang in LANGS:
        assert on_gpu[lang][1] == on_cpu[lang][1] == sorted(map(str, range(120)))  # ids joined across languages
        np.testing.assert_allclose(on_gpu[lang][0], on_cpu[lang][0], rtol=1e-5, atol=1e-6)
    # A lost shard is redone alone, to the same vectors.
    shards = sorted((tmp_path / "cpu" / "shards").glob("*.parquet"))
    assert len(shards) == 6  # 2 files x 3 row groups
    shards[1].unlink()
    (tmp_path / "cpu" / "manifest.json").unlink()
    again = run_extract(config(assets, tmp_path, "cpu", gpus_per_actor=0))
    assert again["this_run"]["shards"] == 1
    redone = vectors(tmp_path / "cpu")
    for lang in LANGS:
        np.testing.assert_array_equal(redone[lang][0], on_cpu[lang][0])


def write_config(tmp_path, cfg: ExtractConfig) -> str:
    path = tmp_path / f"{os.path.basename(cfg.output_dir)}.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")), encoding="utf-8")
    return str(path)


def test_bad_inputs_exit_2_naming_the_field_and_leave_nothing(ray_session, assets, tmp_path, capsys):
    slow = tmp_path / "slow"
    shutil.copytree(assets / "models" / "llama", slow)
    (slow / "tokenizer.json").unlink()  # no fast tokenizer, and nothing to build one from
    cases = {
        "no-fast": (config(assets, tmp_path, "no-fast", model=slow), "has no fast tokenizer"),
        "budget": (config(assets, tmp_path, "budget", store_budget_gb=1e-6), "store_budget_gb=1e-06"),
        "gpus": (config(assets, tmp_path, "gpus", gpus_per_actor=2), "no node of this local Ray has more than 1"),
    }
    for name, (cfg, message) in cases.items():
        assert main(["extract", write_config(tmp_path, cfg)]) == 2, name
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / name / "manifest.json").exists() and not (tmp_path / name / "shards").exists()


def test_concepts_refuse_sentence_vectors(ray_session, assets, tmp_path, capsys):
    run_extract(config(assets, tmp_path, "sentences", gpus_per_actor=0))
    world = assets / "world" / "parallel"
    dictionary = {"kind": "eflomal", "source": str(world / "xl-en.xl"), "target": str(world / "xl-en.en")}
    concepts = {"stage": "concepts", "activations": str(tmp_path / "sentences"), "source": "xl", "target": "en",
                "output_dir": str(tmp_path / "concepts"), "tracking": {"enabled": False},
                "dictionary": dictionary}  # fmt: skip
    path = tmp_path / "concepts.yaml"
    path.write_text(yaml.safe_dump(concepts), encoding="utf-8")
    assert main(["concepts", str(path)]) == 2
    err = capsys.readouterr().err
    assert "activations:" in err and "holds sentence vectors" in err and "extract with granularity: word" in err
    assert not (tmp_path / "concepts" / "manifest.json").exists()


def test_an_actor_of_two_gpus_reserves_two(assets, tmp_path):
    """On its own local Ray with two (fake) GPUs: while the one forward actor runs, both GPUs are taken."""
    cfg = config(assets, tmp_path, "two", gpus_per_actor=2, ray={"num_cpus": 2, "num_gpus": 2})
    script = textwrap.dedent(f"""
        import threading, time, ray
        from xlray.extract.config import ExtractConfig
        from xlray.extract.run import run_extract
        cfg = ExtractConfig.model_validate_json({cfg.model_dump_json()!r})
        lowest, done = [2.0], threading.Event()
        def watch():
            while not done.is_set():
                if ray.is_initialized():
                    lowest[0] = min(lowest[0], ray.available_resources().get("GPU", 0.0))
                time.sleep(0.05)
        threading.Thread(target=watch, daemon=True).start()
        run_extract(cfg)
        done.set()
        print("LOWEST", lowest[0])
    """)
    env = os.environ | {"RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "LOWEST 0.0" in out.stdout
    assert open_activations(tmp_path / "two").manifest["counts"]["encoder_pooled"] == 240
