"""Meanings and their rendering: one abstract sentence rendered in every language gives gold word alignments.

Every rendered word carries a slot id (unique within a meaning) and its concept; two renderings of one meaning are
aligned wherever their slot ids match. Function words without a counterpart (determiners) stay unaligned.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from xlray.world.languages import CONCEPT_CLASSES, Language


@dataclass(frozen=True)
class Phrase:
    """A noun phrase: a person name, or [number] [colour] animal, with a slot prefix for its words."""

    slot: str
    first: str | None = None
    last: str | None = None
    number: str | None = None
    colour: str | None = None
    animal: str | None = None


@dataclass(frozen=True)
class Meaning:
    """An abstract clause: subject, verb, object, an optional location/organisation and an optional negation."""

    subject: Phrase
    verb: str
    obj: Phrase
    where: str | None = None
    negated: bool = False


@dataclass(frozen=True)
class Word:
    """A rendered word: surface form, slot id (for alignment), concept id and NER tag."""

    form: str
    slot: str
    concept: str
    tag: str = "O"


def pick(rng: random.Random, cls: str) -> str:
    return f"{cls}:{rng.randrange(CONCEPT_CLASSES[cls]):02d}"


def random_phrase(rng: random.Random, slot: str, allow_name: bool) -> Phrase:
    if allow_name and rng.random() < 0.5:
        return Phrase(slot, first=pick(rng, "first_name"), last=pick(rng, "last_name") if rng.random() < 0.6 else None)
    return Phrase(
        slot,
        number=pick(rng, "number") if slot == "o" and rng.random() < 0.5 else None,
        colour=pick(rng, "colour") if rng.random() < 0.7 else None,
        animal=pick(rng, "animal"),
    )


def random_meaning(rng: random.Random, negation: float = 0.0) -> Meaning:
    """Draw one meaning; about half carry a place or organisation."""
    where = None
    if rng.random() < 0.5:
        where = pick(rng, "place" if rng.random() < 0.6 else "org")
    return Meaning(
        subject=random_phrase(rng, "s", allow_name=True),
        verb=pick(rng, "verb"),
        obj=random_phrase(rng, "o", allow_name=True),
        where=where,
        negated=rng.random() < negation,
    )


def render_phrase(p: Phrase, lang: Language) -> list[Word]:
    if p.first:
        words = [Word(lang.form(p.first), f"{p.slot}.first", p.first, "B-PER")]
        if p.last:
            words.append(Word(lang.form(p.last), f"{p.slot}.last", p.last, "I-PER"))
        return words
    typ = lang.typology
    words = []
    if typ.has_det and p.number is None:
        words.append(Word(lang.form("fn:det"), f"{p.slot}.det.{lang.code}", "fn:det"))
    if p.number:
        words.append(Word(lang.form(p.number), f"{p.slot}.number", p.number))
    noun = Word(lang.form(p.animal), f"{p.slot}.animal", p.animal)
    adj = [Word(lang.form(p.colour), f"{p.slot}.colour", p.colour)] if p.colour else []
    return words + (adj + [noun] if typ.adj_first else [noun] + adj)


def render_where(concept: str, lang: Language) -> list[Word]:
    tag = "B-LOC" if concept.startswith("place") else "B-ORG"
    adp = Word(lang.form("fn:in"), "w.in", "fn:in")
    noun = Word(lang.form(concept), "w.noun", concept, tag)
    return [adp, noun] if lang.typology.prepositions else [noun, adp]


def render(m: Meaning, lang: Language) -> list[Word]:
    """Render a meaning as a sentence of words in the language's order, ending with a full stop."""
    lang = lang.ordered_for(m)
    verb = [Word(lang.form(m.verb), "v", m.verb)]
    if m.negated:
        verb = [Word(lang.form("fn:not"), "v.not", "fn:not"), *verb]
    parts = {"S": render_phrase(m.subject, lang), "V": verb, "O": render_phrase(m.obj, lang)}
    words = [w for key in lang.typology.order for w in parts[key]]
    if m.where:
        words += render_where(m.where, lang)
    return words + [Word(".", "punct", "punct:.")]


def render_question(m: Meaning, lang: Language) -> list[Word]:
    """'Who <verb> <object>?' in the language's order: the answer is the meaning's subject."""
    lang = lang.ordered_for(m)
    parts = {
        "S": [Word(lang.form("fn:who"), "q.who", "fn:who")],
        "V": [Word(lang.form(m.verb), "v", m.verb)],
        "O": render_phrase(m.obj, lang),
    }
    return [w for key in lang.typology.order for w in parts[key]] + [Word("?", "punct", "punct:?")]


def alignment(src: list[Word], tgt: list[Word]) -> list[tuple[int, int]]:
    """Gold one-to-one links (i, j) between two renderings of one meaning, by matching slot ids."""
    where_tgt = {w.slot: j for j, w in enumerate(tgt)}
    return [(i, where_tgt[w.slot]) for i, w in enumerate(src) if w.slot in where_tgt]
