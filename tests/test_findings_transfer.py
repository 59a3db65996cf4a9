"""The transfer findings (Efimov et al., Mousi et al.) on hand-made inputs whose answer is known, and the findings
config's checks of a written world (bad input: one line, exit status 2)."""

import json
import shutil
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from xlray.cli import main
from xlray.findings.config import FindingsConfig
from xlray.findings.planted import ProbeScores
from xlray.findings.transfer import alignment_findings, seed_mean, zero_shot_findings
from xlray.stats import welch_test
from xlray.tasks.outcomes import SCHEMA, compare_runs

N_EXAMPLES = 100
# accuracy per seed: adjusted clearly above base; continual clearly below adjusted
ACCURACY = {"base": [0.40, 0.42, 0.41], "adjusted": [0.60, 0.63, 0.64], "continual": [0.40, 0.41, 0.43]}


def outcomes(condition: str, accuracy: list[float]) -> pl.DataFrame:
    """Hit/miss outcomes of one condition over three seeds, in en and xl, with exactly these accuracies."""
    rows = {key: [] for key in SCHEMA}
    for seed, share in enumerate(accuracy):
        for language in ("en", "xl"):
            hits = np.zeros(N_EXAMPLES)
            hits[: round(share * N_EXAMPLES)] = 1
            np.random.default_rng(seed).shuffle(hits)
            for example, hit in enumerate(hits):
                values = (condition, "nli", seed, language, "accuracy", example, f"id{example}", [float(hit)])
                for key, value in zip(SCHEMA, values, strict=True):
                    rows[key].append(value)
    return pl.DataFrame(rows, schema=SCHEMA)


def test_zero_shot_findings_are_the_seed_means_difference_with_welchs_interval(tmp_path):
    frames = {name: outcomes(name, acc) for name, acc in ACCURACY.items()}
    runs = []
    for name, against in (("base", []), ("adjusted", ["base"]), ("continual", ["base", "adjusted"])):
        (tmp_path / name).mkdir()
        if against:
            tests = pl.concat([compare_runs(frames[name], frames[b], n_resamples=500) for b in against])
            tests.write_parquet(tmp_path / name / "significance.parquet")
        runs.append(SimpleNamespace(condition=name, output_dir=str(tmp_path / name)))
    cfg = FindingsConfig()
    found = {f.name: f for f in zero_shot_findings(cfg, runs)}
    assert set(found) == {"adjustment-transfer-xl", "continual-transfer-xl"}  # English is not a zero-shot target

    adjusted = found["adjustment-transfer-xl"]
    welch = welch_test(ACCURACY["adjusted"], ACCURACY["base"])
    assert adjusted.effect == pytest.approx(np.mean(ACCURACY["adjusted"]) - np.mean(ACCURACY["base"]))
    assert (adjusted.ci_low, adjusted.ci_high, adjusted.p_value) == pytest.approx((welch.ci_low, welch.ci_high,
                                                                                  welch.p_value))  # fmt: skip
    assert adjusted.verdict == "reproduced" and adjusted.n == 3
    assert adjusted.detail["over_examples"]["n_examples"] == N_EXAMPLES
    continual = found["continual-transfer-xl"]  # constructed to fail: continual is worse than adjusted
    assert continual.effect == pytest.approx(np.mean(ACCURACY["continual"]) - np.mean(ACCURACY["adjusted"]))
    assert continual.verdict == "not reproduced"


def scores(gap: np.ndarray, advantage: np.ndarray) -> ProbeScores:
    return ProbeScores(advantage, gap, gap.mean(axis=0).tolist())


def test_alignment_findings_compare_the_right_models():
    rng = np.random.default_rng(0)
    base = rng.normal(0.1, 0.05, (300, 3))
    zero = np.zeros_like(base)
    probed = {
        "pretrained": scores(base, zero),
        "adjusted": scores(base + 0.2, zero),  # adjustment separates by 0.2
        "adjusted-tuned": scores(base + 0.05, zero),  # fine-tuning forgets 0.15 of it
        "continual-tuned": scores(base + 0.05, zero),  # and continual learning keeps no more (constructed: no)
        "base-tuned": scores(base, zero + 0.1),  # fine-tuning raises the advantage by 0.1
    }
    found = {f.name: f for f in alignment_findings(FindingsConfig(resamples=500), probed)}
    assert found["adjustment-separates"].effect == pytest.approx(0.2)
    assert found["forgetting"].effect == pytest.approx(0.15)
    assert found["continual-keeps-alignment"].effect == pytest.approx(0.0, abs=1e-12)
    assert found["finetuning-raises-alignment"].effect == pytest.approx(0.1)
    verdicts = {name: f.verdict for name, f in found.items()}
    assert verdicts == {"adjustment-separates": "reproduced", "forgetting": "reproduced",
                        "continual-keeps-alignment": "not reproduced",
                        "finetuning-raises-alignment": "reproduced"}  # fmt: skip
    assert all(f.n == 300 for f in found.values())


def test_seed_mean_averages_each_score():
    a = scores(np.ones((2, 3)), np.zeros((2, 3)))
    b = scores(3 * np.ones((2, 3)), np.ones((2, 3)))
    mean = seed_mean([a, b])
    assert np.allclose(mean.related_gap, 2) and np.allclose(mean.advantage, 0.5) and mean.cosine_gap == [2, 2, 2]


def bad(tmp_path, capsys, **fields) -> str:
    config = tmp_path / "findings.yaml"
    config.write_text(json.dumps({"stage": "findings", "output_dir": str(tmp_path / "out"), **fields}))
    assert main(["findings", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()
    return err


def test_a_assets_gives_the_config_its_world(assets):
    cfg = FindingsConfig(assets=str(assets))
    world = json.loads((assets / "world" / "world.json").read_text())["config"]
    assert cfg.world.model_dump() == world and cfg.assets_dir() == assets
    assert FindingsConfig.model_validate(cfg.model_dump()) == cfg  # its own dump validates again


@pytest.fixture
def bert_only(tmp_path, assets):
    """A written world with one model, the random-init bert."""
    copy = tmp_path / "assets"
    shutil.copytree(assets / "world", copy / "world")
    shutil.copytree(assets / "models" / "bert", copy / "models" / "bert")
    return copy


def test_a_model_not_in_the_world_is_refused(tmp_path, capsys, bert_only):
    err = bad(tmp_path, capsys, assets=str(bert_only), family="xlm-roberta")
    assert "family: no model 'xlm-roberta'" in err and "(it has: bert)" in err


def test_a_world_without_gold_files_is_refused(tmp_path, capsys, bert_only):
    (bert_only / "world" / "gold" / "dictionary.parquet").unlink()
    (bert_only / "world" / "parallel" / "xc-en.gold.align").unlink()
    err = bad(tmp_path, capsys, assets=str(bert_only))
    assert err.count("assets:") == 1 and "parallel/xc-en.gold.align" in err and "gold/dictionary.parquet" in err


def test_a_folder_without_a_world_is_refused(tmp_path, capsys):
    err = bad(tmp_path, capsys, assets=str(tmp_path / "nowhere"))
    assert "assets: no synthetic world" in err and "xlray world --output" in err


def test_a_world_that_differs_from_the_written_one_is_refused(tmp_path, capsys, assets):
    err = bad(tmp_path, capsys, assets=str(assets), world={"seed": 7})
    assert "world: differs from the world written at" in err


@pytest.mark.parametrize(
    ("transfer", "words"),
    [
        ({"seeds": [0, 1]}, "transfer.seeds: the test over seeds (Welch's t) needs at least 3"),
        ({"seeds": [0, 0, 1]}, "transfer.seeds"),
        ({"dose": 0.25}, "transfer.dose: 0.25 is not one of doses"),
    ],
)
def test_a_bad_transfer_config_is_refused(tmp_path, capsys, transfer, words):
    assert words in bad(tmp_path, capsys, transfer=transfer)


def test_the_transfer_findings_of_a_decoder_only_family_are_refused(tmp_path, capsys):
    err = bad(tmp_path, capsys, family="llama")
    assert "transfer.enabled: adjustment and fine-tuning take an encoder" in err and "llama is decoder-only" in err
