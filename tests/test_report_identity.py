"""The report names a trial from what it logged (tags and ``hp.*`` params), the way ``trial_label`` named its run,
without reading the run name."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from xlray.sweep.report import identity, setting
from xlray.sweep.space import trial_label
from xlray.tracking import flatten

TASK = {"kind": "xsr", "folder": "/data/tatoeba", "layer": 8}


@pytest.mark.parametrize(
    "hps",
    [
        {"adjust.loss.reg_lambda": 1.0},
        {"adjust.loss.reg_lambda": 1e-05, "adjust.optim.lr": 0.00123456, "evaluate.task": TASK},
        {"evaluate.train.epochs": 3, "evaluate.continual.anchors": False, "adjust.loss.pooling": "mean"},
        {},
    ],
)
def test_setting_from_params_is_what_trial_label_shows(hps):
    params = flatten({f"hp.{k}": v for k, v in hps.items()})  # as xlray.sweep.trial.trial_run logs them
    label = trial_label({"model": "bert", "languages": "xl+xc", **hps})
    assert setting(params, list(hps)) == (label.removeprefix("bert-xl+xc-") if hps else "default")


def test_identity_reads_tags_and_params_not_the_run_name():
    run = SimpleNamespace(
        info=SimpleNamespace(run_name="renamed in the UI"),
        data=SimpleNamespace(
            tags={"xlray.trial_id": "t1", "xlray.model": "bert", "xlray.languages": "xl"},
            params={"hp.adjust.loss.reg_lambda": "0.5", "hp.evaluate.task.kind": "nli", "languages": "xl"},
        ),
    )
    ident = identity(run, ["adjust.loss.reg_lambda", "evaluate.task"])
    assert ident == {
        "trial_id": "t1",
        "model": "bert",
        "languages": "xl",
        "setting": "reg_lambda=0.5-task=nli",
        "hp.adjust.loss.reg_lambda": "0.5",
        "hp.evaluate.task.kind": "nli",
    }
    assert identity(run, [])["setting"] == "reg_lambda=0.5-kind=nli"  # keys the space does not name: as logged
