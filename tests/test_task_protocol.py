"""Every registered task module satisfies the task protocol: the functions `xlray evaluate` calls, with the
protocol's parameters; the ones that fine-tune also the training part."""

from __future__ import annotations

import types

import pytest

from xlray.tasks.protocol import TASKS, FineTunedTaskModule, TaskModule, fine_tunes, protocol_problems, task_module

FINE_TUNED = {"nli", "ner", "qa"}  # XSR only scores the starting model


@pytest.mark.parametrize("kind", sorted(TASKS))
def test_every_registered_task_module_satisfies_the_protocol(kind):
    module = task_module(kind)
    assert isinstance(module, TaskModule)
    assert protocol_problems(module, TaskModule) == []
    assert fine_tunes(module) == (kind in FINE_TUNED)
    if kind in FINE_TUNED:
        assert protocol_problems(module, FineTunedTaskModule) == []


def test_the_registry_holds_the_four_tasks_and_retrieval_lacks_the_training_part():
    assert sorted(TASKS) == ["ner", "nli", "qa", "xsr"]
    assert protocol_problems(task_module("xsr"), FineTunedTaskModule) == [
        "xlray.tasks.xsr.build: missing",
        "xlray.tasks.xsr.loss: missing",
        "xlray.tasks.xsr.train_features: missing",
    ]


def test_protocol_problems_names_missing_functions_and_wrong_parameters():
    fake = types.ModuleType("fake_task")
    fake.load = lambda config: None  # the protocol's parameter is cfg
    assert not isinstance(fake, TaskModule)  # no evaluate
    assert protocol_problems(fake, TaskModule) == [
        "fake_task.evaluate: missing",
        "fake_task.load: takes ['config'], the protocol ['cfg']",
    ]
    fake.evaluate = lambda cfg, lm, model, data, lang: None
    fake.load = lambda cfg: None
    assert isinstance(fake, TaskModule) and not fine_tunes(fake)
    assert protocol_problems(fake, TaskModule) == []
