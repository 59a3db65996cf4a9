"""Synthetic languages: one shared concept inventory, per-language scripts, surface forms and word order."""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field

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


@dataclass
class Language:
    """A language: its code, typology and lexicon (concept id -> surface form)."""

    code: str
    typology: Typology
    lexicon: dict[str, str] = field(default_factory=dict)

    def form(self, concept: str) -> str:
        return self.lexicon[concept]


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


def make_language(code: str, seed: int, shared_names: dict[str, str]) -> Language:
    """Build one language's lexicon deterministically from the seed and its code."""
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
    taken.update(lang.lexicon.values())
    return lang


def shared_name_forms(seed: int) -> dict[str, str]:
    """Latin-script person names shared by every language (transliterated where the script differs)."""
    rng = random.Random(f"{seed}:names")
    taken: set[str] = set()
    return {
        f"{cls}:{i:02d}": make_word("latin", rng, taken, 2, 3).capitalize()
        for cls in ("first_name", "last_name")
        for i in range(CONCEPT_CLASSES[cls])
    }
