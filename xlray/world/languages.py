"""Synthetic languages: one shared concept inventory, per-language scripts, surface forms and word order.

Names (transliterated where the script differs) and, in some languages, digits are shared strings, as in real
corpora. The world's ``anchors`` knob shares more: a share of the concepts of ``OWN_FORM_CLASSES`` that every
target language writes exactly as the source language does (loanwords in the source's script), the shared anchor
tokens that make small models align languages (Conneau et al. 2020; K et al. 2020). Its ``word_order`` knob puts a
share of each target language's sentences in the source language's word order (K et al. 2020 find structural
similarity matters for transfer; Dufter & Schütze 2020 that a fake language in reversed word order aligns less).
"""

from __future__ import annotations

import random
import unicodedata
import zlib
from dataclasses import dataclass, field, replace
from typing import Any

# Concept classes and how many concepts each has. Names, places and organisations are named entities (NER);
# numbers are written as digits in some languages (identical strings across languages, as in real corpora).
CONCEPT_CLASSES: dict[str, int] = {
    "colour": 8,
    "animal": 14,
    "verb": 12,
    "number": 7,
    "first_name": 10,
    "last_name": 10,
    "place": 8,
    "org": 6,
}
FUNCTION_WORDS = ("det", "in", "not", "who", "and")
# The classes that have a form of their own in every language (not names, not digits): the probed ones, and
# those from which the anchors are drawn.
OWN_FORM_CLASSES = ("colour", "animal", "verb", "place", "org")

LATIN_C, LATIN_V = "bcdfghklmnprstvz", "aeiou"
CYRILLIC_C, CYRILLIC_V = "бвгджзклмнпрстфхцчш", "аеиоуыэюя"
DEVANAGARI_C = "कखगघचजटडतदनपबमयरलवसह"
DEVANAGARI_V = (
    "",
    "\u093e",
    "\u093f",
    "\u0940",
    "\u0941",
    "\u0947",
    "\u094b",
)  # inherent a, then vowel signs
COMBINING = ("", "", "\u0301", "\u0303", "\u0323")  # acute, tilde, dot below: decomposed (NFD) diacritics


@dataclass(frozen=True)
class Typology:
    """How a language orders its words: clause order, adjective position, adposition, determiners."""

    order: str  # a permutation of "SVO"
    adj_first: bool
    prepositions: bool
    has_det: bool
    digits: bool
    script: str


TYPOLOGY: dict[str, Typology] = {
    "en": Typology("SVO", True, True, True, True, "latin"),
    "xl": Typology("SVO", False, True, True, True, "latin-diacritic"),
    "xc": Typology("SVO", True, True, False, True, "cyrillic"),
    "xd": Typology("SOV", True, False, False, False, "devanagari"),
    "xv": Typology("VSO", False, True, True, False, "latin"),
}


def syllable(script: str, rng: random.Random) -> str:
    """One consonant-vowel syllable in the given script."""
    if script == "latin":
        return rng.choice(LATIN_C) + rng.choice(LATIN_V)
    if script == "latin-diacritic":
        return rng.choice(LATIN_C) + rng.choice(LATIN_V) + rng.choice(COMBINING)
    if script == "cyrillic":
        return rng.choice(CYRILLIC_C) + rng.choice(CYRILLIC_V)
    if script == "devanagari":
        return rng.choice(DEVANAGARI_C) + rng.choice(DEVANAGARI_V)
    raise ValueError(f"unknown script {script!r}")


def transliterate(word: str, script: str) -> str:
    """Map a Latin-script name into another script letter by letter (names travel across languages this way)."""
    if script in ("latin", "latin-diacritic"):
        return word
    table = {
        "cyrillic": dict(zip(LATIN_C + LATIN_V, "бцдфгхклмнпрствзаеиоу", strict=True)),
        "devanagari": dict(zip(LATIN_C + LATIN_V, "बचदफगहकलमनपरसतवज" + "अएइओउ", strict=True)),
    }[script]
    return "".join(table.get(ch, ch) for ch in word.lower())


@dataclass(frozen=True)
class SourceOrder:
    """A share of a language's sentences said in the source language's word order (the world's ``word_order``)."""

    typology: Typology  # the language's own, with the source's clause order, adjective position and adposition
    share: float
    salt: str  # which sentences: a pure function of the salt (world seed, language) and the meaning

    def applies(self, meaning: Any) -> bool:
        return zlib.crc32(f"{self.salt}:{meaning!r}".encode()) / 2**32 < self.share


@dataclass
class Language:
    """A language: its code, typology and lexicon (concept id -> surface form)."""

    code: str
    typology: Typology
    lexicon: dict[str, str] = field(default_factory=dict)
    source_order: SourceOrder | None = None

    def form(self, concept: str) -> str:
        return self.lexicon[concept]

    def ordered_for(self, meaning: Any) -> Language:
        """This language as it says ``meaning``: in the source's word order where ``source_order`` puts it."""
        if self.source_order is None or not self.source_order.applies(meaning):
            return self
        return replace(self, typology=self.source_order.typology, source_order=None)


def in_source_order(lang: Language, source: Typology, share: float, seed: int) -> None:
    """Let ``lang`` say a share of its sentences in the ``source`` typology's order (keeping its own determiners,
    digits and script); share 0 leaves it as it is."""
    if share > 0:
        typ = replace(lang.typology, order=source.order, adj_first=source.adj_first, prepositions=source.prepositions)
        lang.source_order = SourceOrder(typ, share, f"{seed}:{lang.code}:order")


def concept_ids() -> list[str]:
    """All content concept ids, e.g. ``animal:03``, in a fixed order."""
    return [f"{cls}:{i:02d}" for cls, n in CONCEPT_CLASSES.items() for i in range(n)]


def make_word(script: str, rng: random.Random, taken: set[str], min_syl: int = 1, max_syl: int = 4) -> str:
    """A new surface form, unique within the language; long words split into several subwords."""
    while True:
        word = unicodedata.normalize(
            "NFC", "".join(syllable(script, rng) for _ in range(rng.randint(min_syl, max_syl)))
        )
        if script == "latin-diacritic":
            word = unicodedata.normalize("NFD", word)
        if word not in taken:
            taken.add(word)
            return word


def make_language(
    code: str, seed: int, shared_names: dict[str, str], borrowed: dict[str, str] | None = None
) -> Language:
    """Build one language's lexicon deterministically from the seed and its code; ``borrowed`` (concept -> form)
    replaces the native forms of those concepts after every native form is drawn, so the other words do not
    depend on it (a native word that a loan happens to equal is redrawn)."""
    if code not in TYPOLOGY:
        raise ValueError(f"unknown synthetic language {code!r}; known: {sorted(TYPOLOGY)}")
    typ = TYPOLOGY[code]
    rng = random.Random(f"{seed}:{code}")
    taken: set[str] = set()
    lang = Language(code, typ)
    for concept in concept_ids():
        cls, idx = concept.split(":")
        if cls in ("first_name", "last_name"):
            lang.lexicon[concept] = transliterate(shared_names[concept], typ.script)
        elif cls == "number" and typ.digits:
            lang.lexicon[concept] = str(int(idx) + 2)
        else:
            lang.lexicon[concept] = make_word(typ.script, rng, taken)
    for word in FUNCTION_WORDS:
        lang.lexicon[f"fn:{word}"] = make_word(typ.script, rng, taken, 1, 2)
    if borrowed:
        lang.lexicon.update(borrowed)
        taken.update(borrowed.values())
        for concept, form in list(lang.lexicon.items()):
            if concept not in borrowed and form in borrowed.values():
                lang.lexicon[concept] = make_word(typ.script, rng, taken)
    return lang


def anchor_concepts(seed: int, share: float) -> list[str]:
    """The concepts written alike in every language at an anchor share: ``round(share * n)`` of each class of
    ``OWN_FORM_CLASSES``, drawn in one seeded order per class, so a higher share keeps a lower one's anchors."""
    rng = random.Random(f"{seed}:anchors")
    chosen = []
    for cls in OWN_FORM_CLASSES:
        order = [f"{cls}:{i:02d}" for i in range(CONCEPT_CLASSES[cls])]
        rng.shuffle(order)
        chosen += sorted(order[: round(share * len(order))])
    return chosen


def shared_name_forms(seed: int) -> dict[str, str]:
    """Latin-script person names shared by every language (transliterated where the script differs)."""
    rng = random.Random(f"{seed}:names")
    taken: set[str] = set()
    return {
        f"{cls}:{i:02d}": make_word("latin", rng, taken, 2, 3).capitalize()
        for cls in ("first_name", "last_name")
        for i in range(CONCEPT_CLASSES[cls])
    }
