"""Findings over a world knob (anchors, word_order): a world, tokenizer and random-init twin per dose, the
dose-response over each dose's own control, and the configs it refuses."""

import json
from pathlib import Path

import numpy as np
import pytest

from xlray.cli import main
from xlray.findings.config import FindingsConfig
from xlray.findings.run import (
    RANDOM_INIT,
    Measured,
    build_models,
    control_label,
    findings,
    measure_doses,
    model_label,
)
from xlray.world.build import World, read_world_config

TINY = {
    "world": {"parallel_sentences": 60, "task_train": 30, "task_test": 20, "task_dev": 10},
    "hidden": 32,
    "vocab": 300,
    "heldout": 30,
    "pretrain": {"steps": 10, "batch_size": 8},
    "resamples": 200,
    "transfer": {"enabled": False},
    "tracking": {"enabled": False},
}


def test_a_world_knob_gives_each_dose_its_world_and_control(tmp_path):
    cfg = FindingsConfig(output_dir=str(tmp_path), dose="anchors", doses=[0.0, 0.25, 0.5])
    assert [cfg.world_at(d).anchors for d in cfg.doses] == [0.0, 0.25, 0.5]
    assert cfg.recipe_at(0.5) == cfg.pretrain
    assert len({cfg.assets_at(d) for d in cfg.doses}) == 3
    assert len({control_label(cfg, d) for d in cfg.doses}) == 3
    tlm = FindingsConfig(output_dir=str(tmp_path))
    assert tlm.world_at(1.0) == tlm.world and tlm.recipe_at(1.0).tlm_share == 1.0
    assert {tlm.assets_at(d) for d in tlm.doses} == {tlm.assets_dir()}
    assert {control_label(tlm, d) for d in tlm.doses} == {RANDOM_INIT}


def hand_made(cfg, control_shift, planted_shift, n=60, layers=3, seed=0):
    """Measured scores where the random-init control at dose d sits ``control_shift * d`` above dose 0's and each
    twin ``planted_shift * d`` above its own control."""
    rng = np.random.default_rng(seed)
    gold = [f"animal:{i:02d}" for i in range(6)] + [f"colour:{i:02d}" for i in range(6)]
    advantage, gap, units = {}, {}, {}
    base = rng.normal(0, 0.05, (n, layers))
    for dose in cfg.doses:
        control = base + control_shift * dose + rng.normal(0, 0.01, (n, layers))
        advantage[control_label(cfg, dose)] = control
        advantage[model_label(cfg, dose)] = control + planted_shift * dose + rng.normal(0, 0.01, (n, layers))
    for label in advantage:
        gap[label] = advantage[label]
        units[label] = rng.integers(0, 3, (len(gold), layers, len(gold))).astype(float)
    return Measured(advantage, gap, {k: [0.0] * layers for k in advantage}, units, {}, gold, {})


def by_name(found):
    return {f.name: f for f in found}


def test_the_dose_response_is_over_each_doses_own_control():
    cfg = FindingsConfig(dose="word_order", doses=[0.0, 0.5, 1.0], resamples=500)
    # The world alone lifts the control by 0.2 at the top dose and pretraining plants nothing more: the twins
    # differ by 0.2, but the dose-response over their controls is 0, so it must not come out reproduced.
    world_only = by_name(findings(cfg, hand_made(cfg, control_shift=0.2, planted_shift=0.0)))
    assert world_only["dose-response"].effect == pytest.approx(0.0, abs=0.01)
    assert world_only["dose-response"].verdict == "not reproduced"
    assert world_only["planted-at-1"].verdict == "not reproduced"
    planted = by_name(findings(cfg, hand_made(cfg, control_shift=0.2, planted_shift=0.1)))
    assert planted["dose-response"].effect == pytest.approx(0.1, abs=0.01)
    assert planted["dose-response"].verdict == "reproduced"
    assert planted["planted-at-1"].effect == pytest.approx(0.1, abs=0.01)
    assert planted["planted-at-0.5"].effect == pytest.approx(0.05, abs=0.01)
    assert planted["planted-at-0"].verdict == "not reproduced"


def test_the_doses_worlds_are_probed_on_the_same_links(tmp_path):
    cfg = FindingsConfig.model_validate({**TINY, "output_dir": str(tmp_path), "dose": "anchors",
                                         "doses": [0.0, 0.25, 0.5]})  # fmt: skip
    models = build_models(cfg)
    assert list(models) == [label for d in cfg.doses for label in (control_label(cfg, d), model_label(cfg, d))]
    assert len({models[control_label(cfg, d)] for d in cfg.doses}) == 3  # a tokenizer and model per world
    for dose in cfg.doses:
        assert read_world_config(cfg.assets_at(dose) / "world").anchors == dose
    measured = measure_doses(cfg, models)
    top_anchors = set(World(cfg.world_at(0.5)).anchors)
    english = World(cfg.world).languages["en"]
    concept_of = {form: c for c, form in english.lexicon.items()}
    links = {}
    for label, items in measured.probes.items():
        linked = [(p.meaning, p.language, concept_of[p.english[j]]) for p in items for _, j, _ in p.links]
        assert not {c for _, _, c in linked} & top_anchors
        controls = {concept_of[form] for p in items for _, _, form in p.links}
        assert not controls & top_anchors  # an anchor, seen in every language, would be a biased control
        links[label] = sorted(linked)
    assert len({tuple(v) for v in links.values()}) == 1 and links[RANDOM_INIT + " at anchors 0"]
    assert len({a.shape for a in measured.advantage.values()}) == 1
    found = by_name(findings(cfg, measured))
    top, zero = model_label(cfg, 0.5), model_label(cfg, 0.0)
    adv = {k: a.mean(axis=1) for k, a in measured.advantage.items()}
    expected = (adv[top] - adv[control_label(cfg, 0.5)] - adv[zero] + adv[control_label(cfg, 0.0)]).mean()
    assert found["dose-response"].effect == pytest.approx(expected)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"dose": "anchors", "doses": [0.0, 0.5, 1.0]}, "doses: at anchors 1"),
        ({"dose": "word_order", "world": {"word_order": 0.5}}, "world.word_order: set by doses"),
    ],
)
def test_a_bad_world_knob_config_is_one_line_and_exit_2(tmp_path, capsys, fields, words):
    config = tmp_path / "findings.yaml"
    config.write_text(json.dumps({"stage": "findings", "output_dir": str(tmp_path / "out"), **fields}))
    assert main(["findings", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err
    assert not (tmp_path / "out").exists()


def test_a_world_knob_is_refused_on_a_written_world(tmp_path, capsys, assets):
    config = tmp_path / "findings.yaml"
    config.write_text(json.dumps({"stage": "findings", "output_dir": str(tmp_path / "out"), "assets": str(assets),
                                  "dose": "word_order"}))  # fmt: skip
    assert main(["findings", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "dose: word_order builds one world per dose" in err
    assert not Path(tmp_path / "out").exists()


def test_a_world_knob_check_runs_and_logs_every_model(tmp_path):
    import mlflow

    from xlray.findings.run import run_findings

    tracking = {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "experiment": "findings-world-test"}
    cfg = FindingsConfig.model_validate({**TINY, "output_dir": str(tmp_path / "out"), "dose": "word_order",
                                         "tracking": tracking})  # fmt: skip
    manifest = run_findings(cfg)
    assert len(manifest["models"]) == 6 and len({manifest["models"][control_label(cfg, d)] for d in cfg.doses}) == 3
    doc = json.loads((tmp_path / "out" / "findings.json").read_text())
    assert set(doc["curves"]) == set(manifest["models"])
    assert [f["name"] for f in doc["findings"]][:4] == [
        "planted-at-0",
        "planted-at-0.5",
        "planted-at-1",
        "dose-response",
    ]
    run = mlflow.MlflowClient(tracking["uri"]).get_run(manifest["mlflow_run_id"])
    assert f"advantage.{control_label(cfg, 1.0)}" in run.data.metrics
    assert run.data.tags["verdict.dose-response"] in ("reproduced", "not reproduced", "inconclusive")
