"""Sweep configs without Ray: the space, the trial stage configs, and bad input named before any trial runs."""

from pathlib import Path

import pytest
import yaml

from xlray.cli import main
from xlray.configs import TrackingConfig, load_config, load_stage_config
from xlray.demo import DemoConfig, demo_sweep
from xlray.errors import XlrayError
from xlray.sweep.config import SweepConfig
from xlray.sweep.metrics import check_metrics
from xlray.sweep.run import run_sweep
from xlray.sweep.space import check_space, param_space, stage_configs, trial_label

REPO = Path(__file__).resolve().parents[1]


def demo(**changes) -> dict:
    data = demo_sweep(DemoConfig(), Path("out")).model_dump(mode="json")
    data.update(changes)
    return data


def sweep(tmp_path: Path, **changes) -> SweepConfig:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(demo(**changes)))
    return load_config(path, SweepConfig)


def test_demo_yaml_is_what_the_demo_runs():
    assert load_stage_config(REPO / "sweeps" / "demo.yaml") == demo_sweep(DemoConfig(), Path("xlray-runs/demo"))


def test_trial_configs_carry_the_hyperparameters_model_and_languages(tmp_path):
    cfg = sweep(tmp_path, space={"adjust.loss.reg_lambda": {"grid": [0.0, 1.0]},
                                 "evaluate.continual.align_weight": {"grid": [0.1]}})  # fmt: skip
    trial = {"model": "bert", "languages": "xc", "adjust.loss.reg_lambda": 0.0, "evaluate.continual.align_weight": 0.1}
    configs = stage_configs(cfg, trial, tmp_path / "t", TrackingConfig(enabled=False))
    adjust = configs["adjust"]
    assert adjust.loss.reg_lambda == 0.0 and adjust.languages == ["xc"] and adjust.optim.lr == 5e-4
    assert adjust.output_dir == str(tmp_path / "t" / "adjust")
    assert [c.condition for c in configs["evaluate"]] == ["base", "adjusted", "continual"]
    base, adjusted, continual = configs["evaluate"]
    assert base.model.name == "out/assets/models/bert-pretrained" and adjusted.model.name == str(
        tmp_path / "t/adjust/checkpoint"
    )
    assert continual.continual.enabled and continual.continual.align_weight == 0.1
    assert continual.continual.pairs == str(tmp_path / "t/adjust/pairs.parquet")
    assert continual.languages == ["en", "xc"]
    assert set(continual.significance.compare_with) == {"base", "adjusted"}
    assert trial_label(trial) == "bert-xc-reg_lambda=0-align_weight=0.1"


def test_dropped_condition_is_not_compared_with(tmp_path):
    cfg = sweep(tmp_path, conditions=["adjusted", "continual"])
    trial = {"model": "bert", "languages": "xl", "adjust.loss.reg_lambda": 1.0}
    configs = stage_configs(cfg, trial, tmp_path, TrackingConfig(enabled=False))
    assert [c.condition for c in configs["evaluate"]] == ["adjusted", "continual"]
    assert set(configs["evaluate"][1].significance.compare_with) == {"adjusted"}
    assert cfg.alignment_checkpoints() == ["original", "adjusted", "adjusted-tuned", "continual-tuned"]


def test_param_space_grids_models_and_languages_and_samples_ranges(tmp_path):
    cfg = sweep(tmp_path, search={"algorithm": "random", "num_samples": 3},
                space={"adjust.optim.lr": {"loguniform": [1e-5, 1e-3]}, "adjust.seed": {"grid": [0, 1]}})  # fmt: skip
    space = param_space(cfg)
    assert space["languages"] == {"grid_search": ["xl", "xc"]}
    assert space["model"] == "bert"  # one model: not a dimension
    assert space["adjust.seed"] == {"grid_search": [0, 1]}
    assert type(space["adjust.optim.lr"]).__name__ == "Float"
    optuna = param_space(sweep(tmp_path, search={"algorithm": "optuna"}))
    assert type(optuna["languages"]).__name__ == "Categorical"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"space": {"adjust.loss.reg_lamda": {"grid": [1.0]}}},
         r"space\.adjust\.loss\.reg_lamda: unknown hyperparameter; did you mean adjust\.loss\.reg_lambda"),
        ({"space": {"model.name": {"grid": ["x"]}}}, r"space\.model\.name: a hyperparameter is adjust\.<field path>"),
        ({"space": {"adjust.loss.reg_lambda": {"grid": [-1.0]}}},
         r"space\.adjust\.loss\.reg_lambda=-1\.0: adjust \(with this trial's hyperparameters\): loss\.reg_lambda: "
         r"Input should be greater than or equal to 0"),
        ({"space": {"adjust.optim.lr": {"uniform": [1e-4, 1e-3]}}}, r"search\.algorithm grid needs grid values"),
        ({"search": {"metric": "zero_shot.continual.xx.accuracy"}},
         r"search\.metric: .*language 'xx' is not evaluated"),
        ({"search": {"metric": "accuracy"}}, r"search\.metric: 'accuracy' is not a result of this sweep"),
        ({"scheduler": {"kind": "asha", "metric": "zero_shot.base.en.accuracy"}},
         r"scheduler\.metric: ASHA needs a result of the first step"),
    ],
)  # fmt: skip
def test_bad_space_or_metric_is_named_before_any_trial(tmp_path, changes, message):
    cfg = sweep(tmp_path, **changes)
    with pytest.raises(XlrayError, match=message):
        check_space(cfg)
        check_metrics(cfg)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"space": {"adjust.loss.reg_lambda": {"grid": []}}},
         r"space\.adjust\.loss\.reg_lambda\.grid: List should have at least 1"),
        ({"languages": []}, r"languages: List should have at least 1 item"),
        ({"models": {}}, r"models: Dictionary should have at least 1 item"),
        ({"space": {"adjust.optim.lr": {"loguniform": [1e-3, 1e-5]}}},
         r"space\.adjust\.optim\.lr: loguniform: low must be below high"),
        ({"space": {"adjust.optim.lr": {"grid": [1e-3], "choice": [1e-4]}}},
         r"space\.adjust\.optim\.lr: give exactly one of grid, choice"),
        ({"adjust": None}, r"adjust: the adjusted and continual conditions need an adjustment template"),
        ({"search": {"algorithm": "optuna"}, "scheduler": {"kind": "asha"}},
         r"scheduler\.kind: asha cannot drive optuna"),
        ({"resources": {"gpu": -1}}, r"resources\.gpu: Input should be greater than or equal to 0"),
    ],
)  # fmt: skip
def test_empty_or_inconsistent_sweep_files_fail_to_load_naming_the_field(tmp_path, changes, message):
    with pytest.raises(XlrayError, match=rf"sweep\.yaml: {message}"):
        sweep(tmp_path, **changes)


def test_unreachable_tracking_server_fails_in_seconds_before_ray_or_trials(tmp_path):
    cfg = sweep(tmp_path, output_dir=str(tmp_path / "out"), tracking={"uri": "http://127.0.0.1:9", "experiment": "x"})
    with pytest.raises(XlrayError, match=r"tracking: cannot reach MLflow at http://127\.0\.0\.1:9: .*refused"):
        run_sweep(cfg)
    assert not (tmp_path / "out" / "trials").exists() and not (tmp_path / "out" / "sweep.json").exists()


def test_cli_reports_a_bad_sweep_file_in_one_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(demo(space={"adjust.los.reg_lambda": {"grid": [1.0]}})))
    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("xlray: error: space.adjust.los.reg_lambda: unknown hyperparameter") and "\n" not in err


@pytest.mark.parametrize("name", ["adjust_efimov2023", "concepts_mousi2024", "demo"])
def test_shipped_sweeps_pass_every_check_made_before_trials(name, monkeypatch):
    from xlray.sweep.checks import preflight

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    preflight(load_stage_config(REPO / "sweeps" / f"{name}.yaml"))


def test_task_as_a_hyperparameter_names_trials_by_kind_and_retrieval_has_no_continual(tmp_path):
    cfg = load_stage_config(REPO / "sweeps" / "adjust_efimov2023.yaml")
    tasks = cfg.space["evaluate.task"].grid
    assert [t["kind"] for t in tasks] == ["nli", "ner", "qa", "xsr"]
    trial = {"model": "mbert", "languages": "hi", "adjust.loss.reg_lambda": 1.0, "evaluate.task": tasks[3]}
    configs = stage_configs(cfg, trial, tmp_path, TrackingConfig(enabled=False))
    assert [c.condition for c in configs["evaluate"]] == ["base", "adjusted"]
    assert configs["evaluate"][0].task.folder == "/mnt/data/xtreme/tatoeba"
    assert trial_label(trial) == "mbert-hi-reg_lambda=1-task=xsr"
    ner = stage_configs(cfg, {**trial, "evaluate.task": tasks[1]}, tmp_path, TrackingConfig(enabled=False))
    assert [c.task.kind for c in ner["evaluate"]] == ["ner"] * 3 and ner["evaluate"][2].continual.enabled


def test_concepts_override_typo_is_named_before_any_trial():
    from xlray.sweep.concepts import check_step

    data = yaml.safe_load((REPO / "sweeps" / "concepts_mousi2024.yaml").read_text())
    data["concepts"]["extract"]["layerz"] = [0]
    with pytest.raises(
        XlrayError, match=r"concepts\.extract \(with the trial's checkpoint and language\): layerz: unknown"
    ):
        check_step(SweepConfig.model_validate(data))


def test_report_reads_trials_from_mlflow_into_tables_and_plots(tmp_path):
    """A parent run and one trial run written with the MLflow client (sqlite), then `write_report` on them."""
    import polars as pl
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    from xlray.sweep.report import write_report

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("xlray-demo")
    parent = client.create_run(exp, run_name="sweep-demo").info.run_id
    tags = {"mlflow.parentRunId": parent, "xlray.role": "trial", "xlray.trial_id": "t1", "xlray.model": "bert",
            "xlray.languages": "xl"}  # fmt: skip
    run = client.create_run(exp, run_name="bert-xl-reg_lambda=1", tags=tags).info.run_id
    client.log_param(run, "hp.adjust.loss.reg_lambda", "1.0")
    values = {"zero_shot.base.xl.accuracy": 0.4, "zero_shot.base.xl.accuracy_std": 0.02, "zero_shot.base.xl.seeds": 3,
              "zero_shot.continual.xl.accuracy": 0.6, "zero_shot.continual.xl.accuracy.vs_base.p_value": 0.001,
              "zero_shot.continual.xl.accuracy.vs_base.delta": 0.2, "zero_shot.continual.seed0.loss": 0.9,
              "zero_shot.continual.seed0.xl.accuracy": 0.61, "zero_shot.continual.xl.n.examples": 150}  # fmt: skip
    client.log_batch(run, metrics=[Metric(k, v, 0, 0) for k, v in values.items()])
    client.log_batch(
        run, metrics=[Metric("align.adjusted.ratio.all", 0.9 - 0.1 * layer, 0, layer) for layer in range(3)]
    )
    cfg = SweepConfig.model_validate(demo(tracking={"experiment": "xlray-demo"}))

    paths = write_report(cfg, tmp_path / "report", uri, parent)
    assert {p.name for p in paths} >= {"trials.csv", "zero_shot.parquet", "layers.parquet", "summary.md", "layers.png"}
    table = pl.read_parquet(tmp_path / "report" / "zero_shot.parquet")
    assert table.select("condition", "language", "metric", "mean", "std", "p_vs_base").sort("condition").rows() == [
        ("base", "xl", "accuracy", 0.4, 0.02, None),
        ("continual", "xl", "accuracy", 0.6, None, 0.001),
    ]
    assert set(table["setting"]) == {"reg_lambda=1"}
    layers = pl.read_parquet(tmp_path / "report" / "layers.parquet")
    assert layers.sort("layer")["value"].to_list() == pytest.approx([0.9, 0.8, 0.7])
    assert (
        "| bert | xl | reg_lambda=1 | xl | accuracy | 0.400 ± 0.020 |  | 0.600 (b p=0.001) |"
        in (tmp_path / "report" / "summary.md").read_text()
    )


def test_bad_template_field_fails_when_the_sweep_config_loads_even_without_a_space(tmp_path):
    adjust = demo()["adjust"]
    adjust["optim"]["lrr"] = 1e-3
    with pytest.raises(XlrayError, match=r"sweep\.yaml: adjust\.optim\.lrr: unknown field"):
        sweep(tmp_path, space={}, adjust=adjust)
    evaluate = demo()["evaluate"] | {"seeds": []}
    with pytest.raises(XlrayError, match=r"sweep\.yaml: evaluate\.seeds: List should have at least 1"):
        sweep(tmp_path, evaluate=evaluate)
    with pytest.raises(XlrayError, match=r"adjust\.model: set for each trial by the sweep; remove it"):
        sweep(tmp_path, adjust=demo()["adjust"] | {"model": {"name": "other"}})


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"pretrain": None}, "steps: the findings step"),
    ],
)
def test_a_demo_that_cannot_pretrain_or_compare_is_refused(config, words):
    with pytest.raises(ValueError, match=words):
        DemoConfig.model_validate(config)
    DemoConfig.model_validate({**config, "pretrain": None, "steps": ["extract"]})  # the random-init demo still runs
