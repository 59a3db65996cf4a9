"""Synthetic zero-shot task data in the real public formats: XNLI, WikiANN, Tatoeba and SQuAD/XQuAD/MLQA.

English gets training data; every language gets test and dev data rendered from the same distribution, so a
model fine-tuned on English can be evaluated zero-shot exactly as on the real benchmarks, and tuned on dev.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

from xlray.world.grammar import Meaning, Word, random_meaning, render, render_question
from xlray.world.languages import Language

NLI_LABELS = ("entailment", "neutral", "contradiction")


def sentence(words: list[Word]) -> str:
    return " ".join(w.form for w in words)


def nli_example(m: Meaning, rng: random.Random, lang: Language) -> tuple[str, str, str]:
    """Premise, hypothesis, label: entailment drops details, contradiction negates, neutral changes the event."""
    premise = dataclasses.replace(m, negated=False)
    label = rng.choice(NLI_LABELS)
    if label == "entailment":
        hyp = dataclasses.replace(premise, where=None)
    elif label == "contradiction":
        hyp = dataclasses.replace(premise, where=None, negated=True)
    else:
        other = random_meaning(rng)
        while other.verb == m.verb:
            other = random_meaning(rng)
        hyp = dataclasses.replace(premise, verb=other.verb, obj=other.obj, where=None)
    return sentence(render(premise, lang)), sentence(render(hyp, lang)), label


def ner_example(m: Meaning, lang: Language) -> tuple[list[str], list[str]]:
    words = render(m, lang)
    return [w.form for w in words], [w.tag for w in words]


def named_subject(rng: random.Random) -> Meaning:
    while True:
        m = random_meaning(rng)
        if m.subject.first is not None:
            return dataclasses.replace(m, negated=False)


def qa_paragraph(rng: random.Random, lang: Language, n_sentences: int = 3) -> tuple[str, list[tuple[str, str, int]]]:
    """A context of a few sentences and one question per sentence: (question, answer text, answer_start)."""
    meanings = [named_subject(rng) for _ in range(n_sentences)]
    context, qas = "", []
    for m in meanings:
        words = render(m, lang)
        head = next(i for i, w in enumerate(words) if w.slot.startswith("s."))
        answer = sentence([w for w in words if w.slot.startswith("s.")])
        prefix = context + (" " if context else "")
        start = len(prefix) + sum(len(w.form) + 1 for w in words[:head])
        context = prefix + sentence(words)
        qas.append((sentence(render_question(m, lang)), answer, start))
    return context, qas


def write_tasks(world, out: Path) -> None:  # world: xlray.world.build.World (not imported: avoids a cycle)
    """Write XNLI, WikiANN, Tatoeba and SQuAD/XQuAD files, and XNLI, WikiANN and MLQA dev files, under ``out``."""
    from xlray.tasks.formats.iob import TaggedSentence, write_iob
    from xlray.tasks.formats.squad import Answer, QAExample, write_squad
    from xlray.tasks.formats.tatoeba import write_tatoeba
    from xlray.tasks.formats.xnli import NliExample, write_multinli, write_xnli

    cfg, src = world.cfg, world.cfg.source
    langs = world.languages
    rng = random.Random(f"{cfg.seed}:tasks")
    dev_rng = random.Random(f"{cfg.seed}:tasks-dev")  # its own stream: the dev files left the other files unchanged

    def nli(code: str, n: int, purpose: str, rng: random.Random = rng) -> list[NliExample]:
        return [
            NliExample(*nli_example(m, rng, langs[code]), language=code)
            for m in world.meanings(purpose, n, negation=0.0)
        ]

    def ner(code: str, n: int, purpose: str) -> list[TaggedSentence]:
        return [TaggedSentence(*map(tuple, ner_example(m, langs[code]))) for m in world.meanings(purpose, n)]

    def qa(code: str, n_paragraphs: int, rng: random.Random = rng) -> list[QAExample]:
        examples = []
        for p in range(n_paragraphs):
            context, qas = qa_paragraph(rng, langs[code])
            examples += [
                QAExample(f"{code}-{p}-{k}", q, context, (Answer(a, s),), title=f"{code}-{p}")
                for k, (q, a, s) in enumerate(qas)
            ]
        return examples

    write_multinli(out / "xnli" / f"multinli.train.{src}.tsv", nli(src, cfg.task_train, "nli-train"))
    write_xnli(
        out / "xnli" / "xnli.test.tsv",
        [ex for code in langs for ex in nli(code, cfg.task_test, f"nli-test-{code}")],
    )
    write_iob(out / "panx" / f"train-{src}.tsv", ner(src, cfg.task_train, "ner-train"), lang=src)
    for code in langs:
        write_iob(out / "panx" / f"test-{code}.tsv", ner(code, cfg.task_test, f"ner-test-{code}"), lang=code)
    write_squad(out / "squad" / "train-v1.1.json", qa(src, cfg.task_train // 3))
    for code in langs:
        write_squad(out / "xquad" / f"xquad.{code}.json", qa(code, cfg.task_test // 3))
    # Dev splits, named as the real ones (XTREME's xnli.dev.tsv and panx/dev-<lang>.tsv, MLQA's dev folder): the
    # split a sweep tunes on, so that the test split is only reported.
    write_xnli(
        out / "xnli" / "xnli.dev.tsv",
        [ex for code in langs for ex in nli(code, cfg.task_dev, f"nli-dev-{code}", dev_rng)],
    )
    for code in langs:
        write_iob(out / "panx" / f"dev-{code}.tsv", ner(code, cfg.task_dev, f"ner-dev-{code}"), lang=code)
        dev_qa = qa(code, cfg.task_dev // 3, dev_rng)
        write_squad(out / "mlqa" / "dev" / f"dev-context-{code}-question-{code}.json", dev_qa)
    for code in world.targets:
        pairs = [
            (sentence(world.render(m, code)), sentence(world.render(m, src)))
            for m in world.meanings(f"tatoeba-{code}", cfg.task_test)
        ]
        write_tatoeba(out / "tatoeba", code, pairs)
