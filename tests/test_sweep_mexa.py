"""The sweep's sentence-alignment step (MEXA over models x language sets): its config, checked before any trial,
and a sweep over two tiny LLMs on local Ray, read back from a real `mlflow server`."""

from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from xlray.configs import TrackingConfig, load_config, load_stage_config
from xlray.errors import XlrayError
from xlray.sweep.checks import preflight
from xlray.sweep.config import SweepConfig
from xlray.sweep.sentence_alignment import step_configs
from xlray.sweep.space import count_trials, stage_configs
from xlray.sweep.tune_parts import pipeline_steps

REPO = Path(__file__).resolve().parents[1]
POOLED = "sentence_alignment.mexa_mean"


def mexa_sweep(out: Path, **changes) -> dict:
    """Only a sentence-alignment step: two models, two language sets, FLORES+-style paths."""
    data = {
        "stage": "sweep",
        "name": "mexa",
        "output_dir": str(out),
        "models": {"llama": {"name": "models/llama"}, "qwen2": {"name": "models/qwen2"}},
        "languages": [["deu_Latn", "fra_Latn"], "hin_Deva"],
        "sentence_alignment": {
            "files": "/data/flores_plus/devtest/{lang}.parquet",
            "pivot": "eng_Latn",
            "extract": {"layers": [0, 1]},
            "alignment": {"block_size": 64},
        },
        "search": {"metric": f"{POOLED}.targets_mean"},
        "tracking": {"uri": f"sqlite:///{out / 'mlflow.db'}"},
    }
    for key, value in changes.items():
        if key in ("extract", "alignment", "files", "pivot"):
            data["sentence_alignment"][key] = value
        else:
            data[key] = value
    return data


def load(tmp_path: Path, data: dict) -> SweepConfig:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path, SweepConfig)


def test_a_sweep_of_only_sentence_alignment_validates_and_makes_its_stage_configs(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = load(tmp_path, mexa_sweep(tmp_path / "out"))
    preflight(cfg)
    assert count_trials(cfg) == 4 and pipeline_steps(cfg) == 1
    assert stage_configs(cfg, {"model": "llama", "languages": "hin_Deva"}, tmp_path, TrackingConfig(enabled=False)) == {
        "adjust": None, "evaluate": []
    }  # fmt: skip
    extract, alignment = step_configs(cfg.sentence_alignment, cfg.models["qwen2"], "qwen2",
                                      ["deu_Latn", "fra_Latn"], str(tmp_path / "t"), {})  # fmt: skip
    (corpus,) = extract.inputs
    assert corpus.format == "parallel_ids" and corpus.files == {
        lang: f"/data/flores_plus/devtest/{lang}.parquet" for lang in ("eng_Latn", "deu_Latn", "fra_Latn")
    }
    assert extract.languages == ["eng_Latn", "deu_Latn", "fra_Latn"] and extract.model.name == "models/qwen2"
    assert (extract.granularity, extract.sentence_pooling, extract.layers) == ("sentence", "mexa", [0, 1])
    assert not extract.tracking.enabled and extract.ray.address == "auto" and extract.actors == 1
    assert alignment.activations == str(tmp_path / "t" / "extract") and alignment.pivot == "eng_Latn"
    assert alignment.languages == ["eng_Latn", "deu_Latn", "fra_Latn"] and alignment.block_size == 64
    assert alignment.model_label == "qwen2"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"extract": {"layerz": [0]}},
         r"sentence_alignment\.extract \(with the trial's model and languages\): layerz: unknown field"),
        ({"extract": {"granularity": "word"}},
         r"sentence_alignment\.extract\.granularity: set for each trial by the step; remove it"),
        ({"extract": {"sentence_pooling": "max"}},
         r"sentence_alignment\.extract .*: sentence_pooling: Input should be 'mean', 'weighted-mean', 'last' or "
         r"'mexa'"),
        ({"alignment": {"block_sise": 8}},
         r"sentence_alignment\.alignment \(with the trial's model and languages\): block_sise: unknown field"),
        ({"alignment": {"languages": ["deu_Latn"]}},
         r"sentence_alignment\.alignment\.languages: set for each trial by the step"),
        ({"languages": [["eng_Latn"]]}, r"languages: the group \['eng_Latn'\] has no language besides"),
        ({"search": {"metric": f"{POOLED}.eng_Latn-spa_Latn"}},
         r"search\.metric: 'sentence_alignment\.mexa_mean\.eng_Latn-spa_Latn' is not a result of this sweep: "
         r"expected .* with a language in \['deu_Latn', 'fra_Latn', 'hin_Deva'\]"),
        ({"search": {"metric": "sentence_alignment.mexa.eng_Latn-deu_Latn"}},  # per layer only, not a result
         r"search\.metric: .* is not a result of this sweep"),
    ],
)  # fmt: skip
def test_bad_step_input_is_named_before_any_trial(tmp_path, monkeypatch, changes, message):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = load(tmp_path, mexa_sweep(tmp_path / "out", **changes))
    with pytest.raises(XlrayError, match=message):
        preflight(cfg)


def test_the_pooled_results_of_every_language_are_search_metrics(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for metric in ("mexa_mean.eng_Latn-hin_Deva", "mexa_max.eng_Latn-fra_Latn", "mexa_max.targets_mean"):
        preflight(load(tmp_path, mexa_sweep(tmp_path / "out", search={"metric": f"sentence_alignment.{metric}"})))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"files": "/data/flores.parquet"}, r"sentence_alignment\.files: '/data/flores\.parquet' has no \{lang\}"),
        ({"sentence_alignment": None}, r"nothing to run: give adjust, evaluate, concepts or sentence_alignment"),
    ],
)
def test_a_bad_step_fails_when_the_sweep_file_loads(tmp_path, changes, message):
    with pytest.raises(XlrayError, match=rf"sweep\.yaml: {message}"):
        load(tmp_path, mexa_sweep(tmp_path / "out", **changes))


def test_shipped_mexa_sweep_passes_every_check_made_before_trials(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = load_stage_config(REPO / "sweeps" / "mexa_llms.yaml")
    preflight(cfg)
    assert {m.name for m in cfg.models.values()} == {"meta-llama/Llama-3.1-8B", "Qwen/Qwen2.5-7B",
                                                     "google/gemma-2-9b", "CohereLabs/aya-expanse-8b"}  # fmt: skip
    assert count_trials(cfg) == 16 and cfg.sentence_alignment.pivot == "eng_Latn"
    extract, _ = step_configs(cfg.sentence_alignment, cfg.models["gemma2-9b"], "gemma2-9b", ["hin_Deva"], "t", {})
    assert extract.inputs[0].files["hin_Deva"] == "/mnt/data/flores_plus/devtest/hin_Deva.parquet"
    assert (extract.sentence_pooling, extract.dtype, extract.gpus_per_actor) == ("mexa", "float16", 1)


def flores_like(assets: Path, folder: Path, languages: list[str], n: int) -> str:
    """FLORES+-shaped Parquet files (id, text; one per language, the same ids) from the world's parallel corpora,
    whose line k is the same meaning in every language; returns the ``{lang}`` path template."""
    import polars as pl

    parallel = assets / "world" / "parallel"
    folder.mkdir()
    for lang in languages:
        side = parallel / (f"{languages[1]}-en.en" if lang == "en" else f"{lang}-en.{lang}")
        lines = side.read_text(encoding="utf-8").splitlines()[:n]
        pl.DataFrame({"id": list(range(n)), "text": lines}).write_parquet(folder / f"{lang}.parquet")
    return str(folder / "{lang}.parquet")


@pytest.mark.integration
def test_sweep_over_two_tiny_llms_logs_mexa_per_layer_in_each_trial_run(ray_session, mlflow_server, assets, tmp_path):
    files = flores_like(assets, tmp_path / "flores", ["en", "xl", "xc"], n=40)
    data = {
        "stage": "sweep",
        "name": "mexa-tiny",
        "output_dir": str(tmp_path / "out"),
        "models": {family: {"name": str(assets / "models" / family)} for family in ("llama", "qwen2")},
        "languages": [["xl", "xc"]],
        "sentence_alignment": {"files": files, "pivot": "en",
                               "extract": {"cpus_per_actor": 0.5, "gpus_per_actor": 0, "batch_size": 16}},
        "search": {"metric": "sentence_alignment.mexa_mean.targets_mean"},
        "resources": {"cpu": 0.5},
        "tracking": {"uri": mlflow_server, "experiment": "sweep-mexa"},
    }  # fmt: skip
    from xlray.sweep.run import run_sweep

    manifest = run_sweep(SweepConfig.model_validate(data))
    assert len(manifest["trials"]) == 2 and manifest["best"] is not None

    client = MlflowClient(mlflow_server)
    parent = client.get_run(manifest["parent_run_id"])
    assert parent.info.run_name == "sweep-mexa-tiny" and parent.info.status == "FINISHED"
    exp = client.get_experiment_by_name("sweep-mexa")
    runs = client.search_runs([exp.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(r.info.run_name for r in runs) == ["llama-xl+xc", "qwen2-xl+xc"]
    for run in runs:
        assert run.info.status == "FINISHED"
        result = manifest["trials"][run.data.tags["xlray.trial_id"]]["result"]
        metrics = run.data.metrics
        assert metrics["sentence_alignment.extract.count.sentences"] == 3 * 40
        means = []
        for lang in ("xl", "xc"):
            history = client.get_metric_history(run.info.run_id, f"sentence_alignment.mexa.en-{lang}")
            assert sorted(m.step for m in history) == [0, 1, 2]  # embeddings + 2 layers, each logged once
            assert all(0 <= m.value <= 1 for m in history)
            mean = sum(m.value for m in history) / 3
            assert result[f"{POOLED}.en-{lang}"] == pytest.approx(mean)
            assert metrics[f"{POOLED}.en-{lang}"] == pytest.approx(mean)
            assert metrics[f"sentence_alignment.mexa_max.en-{lang}"] == max(m.value for m in history)
            counted = client.get_metric_history(run.info.run_id, f"sentence_alignment.n.en-{lang}")
            assert [m.value for m in counted] == [40] * 3  # every sentence id in both languages, at every layer
            means.append(mean)
        assert result[f"{POOLED}.targets_mean"] == pytest.approx(sum(means) / 2)
        assert metrics[f"{POOLED}.targets_mean"] == pytest.approx(sum(means) / 2)
