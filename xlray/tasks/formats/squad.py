"""Extractive QA in the SQuAD v1.1 JSON layout, shared by XQuAD and MLQA.

``{"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question", "answers": [{"text",
"answer_start"}]}]}]}]}``. The format is one JSON document, so the file is parsed once; examples are then
yielded one at a time. Every answer must occur at its ``answer_start``; a question with a bad answer is an
error, or with ``skip_bad_answers`` it is skipped and counted in ``ReadStats`` and in a logged warning.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Any

from xlray.errors import XlrayError, where
from xlray.outputs import atomic_text
from xlray.textio import open_binary, strip_bom

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    text: str
    start: int


@dataclass(frozen=True)
class QAExample:
    """One question over one context with its gold answers (character offsets into the context)."""

    id: str
    question: str
    context: str
    answers: tuple[Answer, ...]
    title: str = ""


@dataclass
class ReadStats:
    """What a reader kept and what it skipped, so that nothing is dropped without a count."""

    examples: int = 0
    skipped: int = 0
    skipped_ids: list[str] = field(default_factory=list)


def load_json(path: str | Path) -> Any:
    """Parse a UTF-8 JSON file, local or a URI (a leading BOM is dropped); bad bytes or bad JSON are errors naming
    file:line."""
    with open_binary(path) as f:
        raw = strip_bom(f.read())
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise XlrayError(f"{where(path, line)}: invalid UTF-8; re-encode the file as UTF-8") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise XlrayError(f"{where(path, exc.lineno)}: malformed JSON: {exc.msg}") from None


def field_of(obj: Any, key: str, kind: type, path: Path, loc: str) -> Any:
    """``obj[key]`` checked to be of ``kind``, with an error that names the JSON location."""
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise XlrayError(f"{path}: {loc}: expected {key!r} to be a {kind.__name__}")
    return value


def bad_answer(context: str, answers: tuple[Answer, ...]) -> str | None:
    """Describe the first answer that does not occur at its start offset, or None when all do."""
    if not answers:
        return "has no answers (SQuAD v2 unanswerable questions are not supported)"
    for ans in answers:
        found = context[ans.start : ans.start + len(ans.text)]
        if ans.start < 0 or found != ans.text:
            return f"answer {ans.text[:40]!r} does not occur at answer_start {ans.start} (found {found[:40]!r})"
    return None


def parse_qa(qa: Any, context: str, title: str, path: Path, loc: str) -> QAExample:
    """Build one QAExample from a ``qas`` entry, checking field types."""
    qid = field_of(qa, "id", str, path, loc)
    answers = []
    for k, ans in enumerate(field_of(qa, "answers", list, path, f"question {qid!r}")):
        aloc = f"question {qid!r}, answer {k}"
        answers.append(Answer(field_of(ans, "text", str, path, aloc), field_of(ans, "answer_start", int, path, aloc)))
    return QAExample(qid, field_of(qa, "question", str, path, f"question {qid!r}"), context, tuple(answers), title)


def iter_raw(doc: Any, path: Path) -> Iterator[QAExample]:
    """Walk data -> paragraphs -> qas, yielding examples without checking answer offsets."""
    for i, article in enumerate(field_of(doc, "data", list, path, "top level")):
        title = article.get("title", "") if isinstance(article, dict) else ""
        for j, para in enumerate(field_of(article, "paragraphs", list, path, f"data[{i}]")):
            loc = f"data[{i}].paragraphs[{j}]"
            context = field_of(para, "context", str, path, loc)
            for k, qa in enumerate(field_of(para, "qas", list, path, loc)):
                yield parse_qa(qa, context, str(title), path, f"{loc}.qas[{k}]")


def read_squad(path: str | Path, skip_bad_answers: bool = False, stats: ReadStats | None = None) -> Iterator[QAExample]:
    """Stream questions from a SQuAD/XQuAD/MLQA file; duplicate ids and misplaced answers are errors."""
    stats = stats if stats is not None else ReadStats()
    seen: set[str] = set()
    for ex in iter_raw(load_json(path), path):
        if ex.id in seen:
            raise XlrayError(f"{path}: question id {ex.id!r} occurs twice")
        seen.add(ex.id)
        problem = bad_answer(ex.context, ex.answers)
        if problem and not skip_bad_answers:
            raise XlrayError(f"{path}: question {ex.id!r}: {problem}")
        if problem:
            stats.skipped += 1
            stats.skipped_ids.append(ex.id)
            continue
        stats.examples += 1
        yield ex
    if stats.skipped:
        log.warning(
            "%s: skipped %d of %d questions with a missing or misplaced answer (first: %s)",
            path,
            stats.skipped,
            stats.skipped + stats.examples,
            stats.skipped_ids[0],
        )


def write_squad(path: str | Path, examples: Iterable[QAExample], version: str = "1.1") -> int:
    """Write SQuAD JSON, grouping consecutive examples by title and context; returns the question count."""
    path, count, data = Path(path), 0, []
    for title, by_title in groupby(examples, key=lambda ex: ex.title):
        paragraphs = []
        for context, group in groupby(by_title, key=lambda ex: ex.context):
            qas = []
            for ex in group:
                if problem := bad_answer(context, ex.answers):
                    raise XlrayError(f"{path}: cannot write question {ex.id!r}: {problem}")
                answers = [{"text": a.text, "answer_start": a.start} for a in ex.answers]
                qas.append({"id": ex.id, "question": ex.question, "answers": answers})
                count += 1
            paragraphs.append({"context": context, "qas": qas})
        data.append({"title": title, "paragraphs": paragraphs})
    with atomic_text(path) as fh:
        json.dump({"version": version, "data": data}, fh, ensure_ascii=False)
    return count
