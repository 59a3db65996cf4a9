"""`xlray adjust` on the synthetic world and tiny models: measured effects on held-out pairs, outputs, MLflow."""

import json
import math
import shutil

import pytest
import torch
from safetensors.torch import load_file

from xlray.adjust.config import AdjustConfig
from xlray.adjust.measure import distance_stats
from xlray.adjust.pairs import read_pairs
from xlray.adjust.run import run_adjust
from xlray.cli import main as cli_main
from xlray.configs import ModelConfig, load_config, load_stage_config
from xlray.errors import XlrayError
from xlray.models import encoder_of, load_model

LAST = -1


def config(assets, out, family="bert", reg_lambda=1.0, tracking=None, layer=-1, **extra):
    parallel = assets / "world" / "parallel"
    return AdjustConfig(
        stage="adjust",
        model={"name": str(assets / "models" / family)},
        corpus={
            "format": "lines",
            "source": str(parallel / "{lang}-en.{lang}"),
            "english": str(parallel / "{lang}-en.en"),
        },
        languages=["xl"],
        pairs={"max_sent": 320, "heldout_sent": 100},
        loss={"reg_lambda": reg_lambda, "layer": layer},
        # A few hundred pairs and a high rate, so that the effects show within seconds on a 2-layer model.
        optim={"lr": 1e-3, "batch_size": 16, "device": "cpu"},
        output_dir=str(out),
        tracking=tracking or {"enabled": False},
        **extra,
    )


def reuse_pairs(src, dst):
    """Start a run from another run's aligned pairs (same corpus settings), so two runs differ only in λ."""
    dst.mkdir(parents=True)
    for name in ("pairs.parquet", "pairs.json"):
        shutil.copy(src / name, dst / name)


@pytest.fixture(scope="module")
def bert_runs(assets, tmp_path_factory):
    root = tmp_path_factory.mktemp("adjust")
    tracking = {"uri": f"sqlite:///{root / 'mlflow.db'}", "experiment": "adjust-test"}
    one = run_adjust(config(assets, root / "lambda1", tracking=tracking))
    reuse_pairs(root / "lambda1", root / "lambda0")
    zero = run_adjust(config(assets, root / "lambda0", reg_lambda=0.0))
    return root, one, zero


def stats(root, name):
    return json.loads((root / name / "stats.json").read_text())


def test_adjustment_brings_held_out_aligned_words_closer(bert_runs):
    root, manifest, _ = bert_runs
    s = stats(root, "lambda1")
    before, after = s["before"]["xl"], s["after"]["xl"]
    counts = manifest["counts"]["xl"]
    assert counts["heldout"] == 100 and counts["train"] == 320 - 100 - counts["no_alignable_word"]
    assert manifest["optimizer_steps"] == math.ceil(counts["train"] / 16)
    assert after["aligned"][LAST] < 0.5 * before["aligned"][LAST]
    # Not a collapse of the whole space: aligned words came closer than words that are not aligned.
    ratio = lambda d: d["aligned"][LAST] / d["unaligned"][LAST]  # noqa: E731
    assert ratio(after) < 0.75 * ratio(before)
    # The regulariser keeps English near the original: its drift is small next to the distances it closed.
    assert before["drift"][LAST] == 0.0
    assert after["drift"][LAST] < 0.5 * before["aligned"][LAST]  # about 0.27 on this world


def test_without_the_regulariser_english_drifts_more(bert_runs):
    root, _, _ = bert_runs
    one, zero = stats(root, "lambda1")["after"]["xl"], stats(root, "lambda0")["after"]["xl"]
    assert zero["drift"][LAST] > 2 * one["drift"][LAST]  # about 3x on this world
    assert (
        read_pairs(root / "lambda0" / "pairs.parquet").batch.links
        == read_pairs(root / "lambda1" / "pairs.parquet").batch.links
    )


def test_checkpoint_is_the_adjusted_model_and_the_manifest_comes_last(bert_runs):
    root, manifest, _ = bert_runs
    out = root / "lambda1"
    ckpt = out / manifest["checkpoint"]
    assert (ckpt / "model.safetensors").is_file() and (ckpt / "tokenizer.json").is_file()
    assert json.loads((ckpt / "alignment_stats.json").read_text()) == stats(root, "lambda1")
    assert load_config(ckpt / "adjust_config.yaml", AdjustConfig).loss.reg_lambda == 1.0
    assert (out / "manifest.json").stat().st_mtime_ns >= max(p.stat().st_mtime_ns for p in ckpt.iterdir())
    # Reloaded through the production loader, the checkpoint reproduces the "after" statistics.
    lm = load_model(ModelConfig(name=str(ckpt)))
    original = load_model(ModelConfig(name=manifest["config"]["model"]["name"]))
    heldout = read_pairs(out / "pairs.parquet", split="heldout")
    again = distance_stats(encoder_of(lm), encoder_of(original), lm.tokenizer, heldout, "mean", lm.max_length)
    assert again["xl"]["aligned"] == pytest.approx(stats(root, "lambda1")["after"]["xl"]["aligned"], rel=1e-4)


def test_a_finished_run_is_skipped_and_a_changed_config_refused(bert_runs, assets):
    root, manifest, _ = bert_runs
    out = root / "lambda1"
    stamp = (out / "checkpoint" / "model.safetensors").stat().st_mtime_ns
    assert run_adjust(config(assets, out)) == manifest  # tracking differs, which does not change the result
    assert (out / "checkpoint" / "model.safetensors").stat().st_mtime_ns == stamp
    with pytest.raises(XlrayError, match="different config"):
        run_adjust(config(assets, out, seed=1))


def test_params_steps_and_statistics_are_in_mlflow(bert_runs):
    from mlflow.tracking import MlflowClient

    root, manifest, _ = bert_runs
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    run = client.get_run(manifest["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["config.loss.reg_lambda"] == "1.0" and run.data.params["config.optim.betas"] == "[0.9, 0.98]"
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == list(range(1, manifest["optimizer_steps"] + 1))
    assert history[-1].value < history[0].value
    s = stats(root, "lambda1")
    metrics = run.data.metrics
    assert metrics["before.aligned.xl.layer_2"] == pytest.approx(s["before"]["xl"]["aligned"][2])
    assert metrics["after.drift.all.layer_2"] == pytest.approx(s["after"]["all"]["drift"][2])
    assert metrics["pairs.xl.heldout"] == 100
    assert run.data.tags["checkpoint"] == str((root / "lambda1" / "checkpoint").resolve())
    (corpus,) = run.inputs.dataset_inputs  # the runs table's Dataset column: what the run read
    parallel = manifest["config"]["corpus"]
    files = [parallel["source"].replace("{lang}", "xl"), parallel["english"].replace("{lang}", "xl")]
    assert corpus.dataset.name == "corpus xl-en" and json.loads(corpus.dataset.source)["uris"] == files
    assert {t.key: t.value for t in corpus.tags} == {"mlflow.data.context": "train"}
    assert client.get_experiment(run.info.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"


@pytest.mark.parametrize("family", ["xlm-roberta", "mt5"])
def test_other_families_are_adjusted_too(assets, tmp_path, family):
    manifest = run_adjust(config(assets, tmp_path, family=family))
    s = stats(tmp_path.parent, tmp_path.name)
    before, after = s["before"]["xl"], s["after"]["xl"]
    assert after["aligned"][LAST] < 0.6 * before["aligned"][LAST]
    assert after["aligned"][LAST] / after["unaligned"][LAST] < before["aligned"][LAST] / before["unaligned"][LAST]
    if family == "mt5":  # only the encoder is trained; the decoder stays as it was
        new = load_file(tmp_path / manifest["checkpoint"] / "model.safetensors")
        old = load_file(assets / "models" / "mt5" / "model.safetensors")
        dec = [k for k in new if k.startswith("decoder.block")]
        enc = [k for k in new if k.startswith("encoder.block")]
        assert dec and all(torch.equal(new[k], old[k]) for k in dec)
        assert any(not torch.equal(new[k], old[k]) for k in enc)


def test_mixed_precision_and_gradient_accumulation(assets, tmp_path):
    from accelerate.state import AcceleratorState

    cfg = config(assets, tmp_path)
    cfg.optim = cfg.optim.model_copy(update={"mixed_precision": "bf16", "grad_accum": 2})
    try:
        manifest = run_adjust(cfg)
    finally:
        AcceleratorState._reset_state()  # later tests in this process may want another precision
    train = manifest["counts"]["xl"]["train"]
    assert manifest["optimizer_steps"] == math.ceil(math.ceil(train / 16) / 2)  # micro-batches, then pairs
    s = stats(tmp_path.parent, tmp_path.name)
    assert s["after"]["xl"]["aligned"][LAST] < 0.5 * s["before"]["xl"]["aligned"][LAST]


def test_bad_configs_are_one_line_errors(assets, tmp_path, capsys):
    import yaml

    good = config(assets, tmp_path / "out").model_dump(mode="json")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**good, "optim": {**good["optim"], "learning_rate": 1e-3}}))
    with pytest.raises(XlrayError, match=r"bad.yaml: optim.learning_rate: unknown field"):
        load_config(bad, AdjustConfig)
    assert cli_main(["adjust", str(bad)]) == 2
    assert "optim.learning_rate: unknown field" in capsys.readouterr().err
    several = {**good, "languages": ["xl", "xc"], "corpus": {**good["corpus"], "source": "a.src"}}
    bad.write_text(yaml.safe_dump(several))
    with pytest.raises(XlrayError, match=r"needs a \{lang\} placeholder"):
        load_config(bad, AdjustConfig)
    with pytest.raises(XlrayError, match=r"loss.layer: 5 is out of range"):
        run_adjust(config(assets, tmp_path / "layer", layer=5))


def test_the_example_config_validates(repo_root):
    cfg = load_stage_config(repo_root / "sweeps" / "examples" / "adjust_demo.yaml")
    assert isinstance(cfg, AdjustConfig) and cfg.loss.reg_lambda == 1.0 and cfg.pairs.max_words == 64
