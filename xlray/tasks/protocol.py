"""What a task module is, and the registry of them: adding a task is writing a module and adding an entry.

Every task module (``nli``, ``ner``, ``qa``, ``xsr``) reads its data and scores one language
(:class:`TaskModule`); a task that fine-tunes (all but XSR) also builds its head, makes training features and
computes a batch's loss (:class:`FineTunedTaskModule`). The modules satisfy these protocols as modules (PEP 544):
plain functions, no classes; ``tests/test_task_protocol.py`` checks every registered one.
"""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType
from typing import Any, Protocol, TypeGuard, runtime_checkable

import torch

from xlray.models import LoadedModel
from xlray.tasks.common import LangResult
from xlray.tasks.config import EvaluateConfig
from xlray.tasks.heads import TaskModel

TASKS: dict[str, str] = {
    "nli": "xlray.tasks.nli",
    "ner": "xlray.tasks.ner",
    "qa": "xlray.tasks.qa",
    "xsr": "xlray.tasks.xsr",
}


@runtime_checkable
class TaskModule(Protocol):
    """A zero-shot task: its data read and checked, and one language scored."""

    def load(self, cfg: EvaluateConfig) -> Any:
        """Training (if any) and test examples of every language in ``cfg.languages``, read and checked."""
        ...

    def evaluate(self, cfg: EvaluateConfig, lm: LoadedModel, model: Any, data: Any, lang: str) -> LangResult:
        """Scores of ``lang`` with their per-example outcomes; ``model``: the fine-tuned TaskModel, or None for a
        task that does not fine-tune."""
        ...


@runtime_checkable
class FineTunedTaskModule(TaskModule, Protocol):
    """A task fine-tuned on English before it is scored: a head on the encoder, its features and its loss."""

    def build(self, cfg: EvaluateConfig, lm: LoadedModel) -> TaskModel:
        """The encoder with a fresh head, on the encoder's device."""
        ...

    def train_features(
        self, cfg: EvaluateConfig, lm: LoadedModel, data: Any
    ) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """Token features with their labels, and counts of what did not fit (logged as ``data.*``)."""
        ...

    def loss(self, model: TaskModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The task's loss on one padded batch of training features."""
        ...


def task_module(kind: str) -> TaskModule:
    """The module implementing a task kind (imported when first asked for)."""
    return importlib.import_module(TASKS[kind])  # type: ignore[return-value]  # checked by test_task_protocol


def fine_tunes(task: TaskModule) -> TypeGuard[FineTunedTaskModule]:
    """Whether the task fine-tunes (and so runs per seed) or only scores the starting model (XSR)."""
    return isinstance(task, FineTunedTaskModule)


def protocol_problems(module: ModuleType, protocol: type) -> list[str]:
    """Why ``module`` does not satisfy ``protocol``: each missing function, and each whose parameters are not the
    protocol's (same names, in the same order); empty if it does."""
    problems = []
    for name, member in inspect.getmembers(protocol, inspect.isfunction):
        if name.startswith("_"):
            continue
        wanted = list(inspect.signature(member).parameters)[1:]  # without self
        found = getattr(module, name, None)
        if not callable(found):
            problems.append(f"{module.__name__}.{name}: missing")
        elif list(inspect.signature(found).parameters) != wanted:
            params = list(inspect.signature(found).parameters)
            problems.append(f"{module.__name__}.{name}: takes {params}, the protocol {wanted}")
    return problems
