"""The findings check: verdicts and effects on hand-made inputs, the probes against the world's gold, the report's
two files agreeing, bad configs refused."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from xlray.cli import main
from xlray.configs import ModelConfig
from xlray.findings.config import FindingsConfig
from xlray.findings.planted import PROBED_CLASSES, Probe, by_meaning, link_cosines, probes, translation_advantage
from xlray.findings.report import COLUMNS, markdown, table_row
from xlray.findings.verdict import judge, paired_finding
from xlray.models import load_model
from xlray.world.build import World, WorldConfig
from xlray.world.languages import CONCEPT_CLASSES


@pytest.mark.parametrize(
    ("effect", "low", "high", "verdict"),
    [
        (0.05, 0.01, 0.09, "reproduced"),
        (0.05, -0.01, 0.09, "inconclusive"),  # the interval reaches 0
        (0.01, 0.005, 0.015, "not reproduced"),  # real but smaller than what counts
        (-0.03, -0.05, -0.01, "not reproduced"),  # the wrong sign
        (0.015, 0.005, 0.025, "inconclusive"),  # above 0, under the smallest effect, the interval spans it
    ],
)
def test_judge(effect, low, high, verdict):
    assert judge(effect, low, high, smallest=0.02) == verdict


def test_judge_needs_a_positive_smallest_effect():
    with pytest.raises(ValueError, match="smallest"):
        judge(0.1, 0.05, 0.15, smallest=0)


def test_paired_finding_measures_the_paired_difference():
    rng = np.random.default_rng(0)
    b = rng.normal(0, 1, 400)
    found = paired_finding("x", "a beats b", "planted", b + 0.1, b, smallest=0.05, n_resamples=2000)
    assert found.effect == pytest.approx(0.1)
    assert found.ci_low == pytest.approx(0.1) and found.ci_high == pytest.approx(0.1)  # a constant difference
    assert found.verdict == "reproduced" and found.n == 400
    same = paired_finding("y", "a beats b", "planted", b, b + rng.normal(0, 0.01, 400), 0.05, n_resamples=2000)
    assert abs(same.effect) < 0.005 and same.verdict == "not reproduced"  # constructed to be no effect
    noisy = paired_finding("z", "a beats b", "planted", b + 0.06, b + rng.normal(0, 2, 400), 0.05, n_resamples=2000)
    assert noisy.ci_low < 0 < noisy.ci_high and noisy.verdict == "inconclusive"


def probe(meaning, n_links, language="xl"):
    words = [f"w{i}" for i in range(n_links)]
    return Probe(meaning, language, words, words, [(i, i, "other") for i in range(n_links)])


def test_translation_advantage_is_the_share_of_wins_per_meaning():
    # meaning 0: 2 links in xl, 1 in xc; meaning 1: 2 links. Two layers.
    items = [probe(0, 2), probe(0, 1, "xc"), probe(1, 2)]
    translation = np.array([[0.9, 0.1], [0.8, 0.1], [0.2, 0.9], [0.5, 0.5], [0.7, 0.6]])
    control = np.array([[0.1, 0.2], [0.1, 0.2], [0.3, 0.1], [0.5, 0.4], [0.1, 0.9]])
    adv = translation_advantage(translation, control, items)
    # layer 0: meaning 0 wins 2 of 3, meaning 1 wins 1 of 2 (a tie is no win); layer 1: 1 of 3, 2 of 2 ... -1/2
    assert adv == pytest.approx(np.array([[2 / 3, 1 / 3], [1 / 2, 1 / 2]]) - 0.5)
    assert by_meaning(np.ones((5, 1)), items) == pytest.approx(np.ones((2, 1)))


def test_probes_follow_the_gold_links_with_same_class_controls():
    world = World(WorldConfig())
    items = probes(world, 20)
    assert {p.language for p in items} == set(world.targets)
    assert sorted({p.meaning for p in items}) == list(range(20))
    english = world.languages[world.cfg.source]
    forms = {cls: {english.form(f"{cls}:{i:02d}") for i in range(n)} for cls, n in CONCEPT_CLASSES.items()}
    for p in items[:30]:
        for i, j, control in p.links:
            cls = next(c for c in PROBED_CLASSES if p.english[j] in forms[c])
            assert control in forms[cls] and control != p.english[j]
            assert 0 <= i < len(p.target)


def test_a_word_that_is_its_own_translation_always_wins(assets):
    """With the target sentence equal to the English one, the translation is the word itself (cosine 1), so every
    link wins at every layer: the advantage is its maximum, 1/2."""
    lm = load_model(ModelConfig(name=str(assets / "models" / "bert")))
    world = World(WorldConfig())
    real = [p for p in probes(world, 10) if p.language == "xl"]
    same = [Probe(p.meaning, "xl", p.english, p.english, [(j, j, c) for _, j, c in p.links]) for p in real]
    translation, control, unrelated = link_cosines(lm, same, batch_size=3)
    assert translation == pytest.approx(1.0, abs=1e-5)
    assert (control < 1 - 1e-4).all() and unrelated.shape == translation.shape and unrelated.mean() < 0.99
    assert translation_advantage(translation, control, same) == pytest.approx(0.5)


def doc_with(findings):
    curves = {"ari": [0.0, 0.1, 0.2], "calign": [0.1, 0.2, 0.3]}
    return {"title": "t", "measure": "m", "findings": findings, "curves": {"random init": [0.0, 0.01, 0.02]},
            "concepts": {"random init": curves}}  # fmt: skip


def test_findings_md_holds_the_json_findings():
    found = [
        paired_finding("planted-at-0", "c0", "planted", np.zeros(50), np.zeros(50), 0.02, n_resamples=200),
        paired_finding("depth", "c1", "Mousi", np.full(50, 0.1), np.zeros(50), 0.02, n_resamples=200),
    ]
    doc = json.loads(json.dumps(doc_with([f.as_dict() for f in found])))
    md = markdown(doc)
    rows = [line.strip("|").split(" | ") for line in md.splitlines() if line.startswith("| ")]
    assert [c.strip() for c in rows[0]] == list(COLUMNS)
    assert [[c.strip() for c in r] for r in rows[1:3]] == [table_row(f) for f in doc["findings"]]
    assert [r[0].strip() for r in rows[1:3]] == ["planted-at-0", "depth"]
    assert re.search(r"\| depth \|.*\| reproduced \| 50 \|", md)
    assert re.search(r"\| planted-at-0 \|.*\| not reproduced \| 50 \|", md)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("family", "gpt9", "family"),
        ("doses", [0.25, 0.5, 1.0], "doses"),
        ("doses", [0.0, 0.5], "doses"),
        ("dose", "anchor_share", "dose"),
    ],
)
def test_a_bad_findings_config_is_one_line_and_exit_2(tmp_path, capsys, field, value, words):
    config = tmp_path / "findings.yaml"
    config.write_text(json.dumps({"stage": "findings", "output_dir": str(tmp_path / "out"), field: value}))
    assert main(["findings", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err
    assert not (tmp_path / "out").exists()


def test_the_defaults_validate():
    cfg = FindingsConfig()
    assert cfg.doses[0] == 0.0 and len(cfg.doses) >= 3


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    """The findings check end to end on the default world and tiny bert (about 5 minutes on 2 cores): random init
    against twins pretrained with 0, 50% and 100% TLM rows, logged to a sqlite MLflow store in the output folder."""
    from xlray.findings.run import run_findings

    out = tmp_path_factory.mktemp("findings") / "run"
    tracking = {"uri": f"sqlite:///{out.parent / 'mlflow.db'}", "experiment": "findings-test"}
    cfg = FindingsConfig(output_dir=str(out), tracking=tracking, **E2E)
    return cfg, run_findings(cfg)


# The recipe of the end-to-end test (see README, "Does it find what is there?", for what it measured over seeds).
E2E = {"resamples": 2000}


def test_planting_is_found_at_the_top_dose_and_not_at_zero(planted_run):
    cfg, manifest = planted_run
    verdicts = {f["name"]: f["verdict"] for f in manifest["findings"]}
    effects = {f["name"]: f["effect"] for f in manifest["findings"]}
    assert verdicts["planted-at-0"] == "not reproduced"
    assert verdicts["planted-at-1"] == "reproduced"
    assert verdicts["dose-response"] == "reproduced"
    # the margin over the random-init control measured over pretraining seeds 0-2 (README): +0.039 to +0.096
    assert effects["planted-at-1"] >= 0.02
    assert effects["planted-at-0"] < 0.01


def test_the_concept_and_dictionary_findings_are_there(planted_run):
    _, manifest = planted_run
    found = {f["name"]: f for f in manifest["findings"]}
    probed = sum(CONCEPT_CLASSES[c] for c in PROBED_CLASSES)
    assert all(found[name]["n"] == probed for name in ("concepts-planted", "concepts-dose-response", "classes-learned"))
    # eflomal on the world's parallel text, measured: recall 0.95-1.0 per language, the rotated control 0-0.09
    dictionary = found["dictionary-planted"]
    assert dictionary["verdict"] == "reproduced" and dictionary["effect"] >= 0.8
    assert all(s["recall"] >= 0.9 and s["control_recall"] <= 0.15 for s in dictionary["detail"].values())


def test_findings_files_agree_and_are_logged(planted_run):
    import mlflow

    cfg, manifest = planted_run
    out = Path(cfg.output_dir)
    doc = json.loads((out / "findings.json").read_text())
    assert doc["findings"] == manifest["findings"]
    assert (out / "findings.md").read_text() == markdown(doc)
    assert set(doc["curves"]) == {"random init", "tlm_share 0", "tlm_share 0.5", "tlm_share 1"}
    assert all(len(c) == cfg.layers + 1 for c in doc["curves"].values())
    assert set(doc["concepts"]) == set(doc["curves"])
    assert all(len(c) == cfg.layers + 1 for m in doc["concepts"].values() for c in m.values())
    assert all((out / f"{name}.png").stat().st_size > 0 for name in ("concepts", "advantage", "transfer"))
    run = mlflow.MlflowClient(cfg.tracking.uri).get_run(manifest["mlflow_run_id"])
    assert run.data.tags["verdict.planted-at-0"] == "not reproduced"
    assert run.data.metrics["planted-at-1.effect"] == pytest.approx(doc["findings"][2]["effect"])
    assert run.data.tags["verdict.forgetting"] == {f["name"]: f for f in doc["findings"]}["forgetting"]["verdict"]
    assert any(k.startswith("transfer.adjust.") for k in run.data.metrics)  # the stages log into the same run
    assert any(k.startswith("transfer.continual.") for k in run.data.metrics)


def test_the_transfer_findings_run_the_stages_over_seeds(planted_run):
    cfg, manifest = planted_run
    found = {f["name"]: f for f in manifest["findings"]}
    targets = cfg.world.languages
    zero_shot = [f"{kind}-transfer-{lang}" for kind in ("adjustment", "continual") for lang in sorted(targets)]
    alignment = ["adjustment-separates", "forgetting", "continual-keeps-alignment", "finetuning-raises-alignment"]
    assert list(found)[-len(zero_shot) - len(alignment) :] == zero_shot + alignment
    assert all(found[name]["n"] == len(cfg.transfer.seeds) == 3 for name in zero_shot)  # Welch's t over 3 seeds
    assert all(found[name]["n"] == cfg.heldout for name in alignment)  # paired over the held-out meanings
    doc = json.loads((Path(cfg.output_dir) / "findings.json").read_text())
    zero = doc["transfer"]["zero_shot"]
    assert list(zero) == ["base", "adjusted", "continual"]
    assert all(
        list(scores) == ["en", *targets] and all(len(s) == 3 for s in scores.values()) for scores in zero.values()
    )
    adjusted = found["adjustment-transfer-xl"]
    assert adjusted["effect"] == pytest.approx(np.mean(zero["adjusted"]["xl"]) - np.mean(zero["base"]["xl"]))
    assert set(doc["transfer"]["related_gap"]) == {"pretrained", "adjusted", "base-tuned", "adjusted-tuned",
                                                   "continual-tuned"}  # fmt: skip
    # measured over pretraining seeds 0-2 (README): +0.080 to +0.109, every interval above +0.07
    keeps = found["continual-keeps-alignment"]
    assert keeps["verdict"] == "reproduced" and keeps["effect"] >= 0.04


def test_a_finished_findings_check_is_not_redone(planted_run, capsys):
    from xlray.findings.run import run_findings

    cfg, manifest = planted_run
    assert run_findings(cfg) == json.loads((Path(cfg.output_dir) / "manifest.json").read_text())
    assert "already complete" in capsys.readouterr().out
