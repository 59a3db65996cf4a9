"""Token-per-line IOB files (WikiANN as distributed by XTREME, CoNLL-2003 style).

One ``token<TAB>tag`` (or whitespace-separated, tag in the last column) per line, a blank line between
sentences. XTREME's PAN-X files prefix every token with its language (``en:Paris``); the prefix is detected
from the first token and stripped. ``-DOCSTART-`` lines are document markers, not tokens.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from xlray.errors import XlrayError, where
from xlray.outputs import atomic_text
from xlray.textio import check_field, read_lines

DEFAULT_TYPES = ("PER", "LOC", "ORG")
LANG_PREFIX = re.compile(r"^([a-z]{2,3}(?:-[a-z]+)*):(?=.)")


@dataclass(frozen=True)
class TaggedSentence:
    """Tokens with one IOB tag each; ``line`` is the file line of the first token (0 when built in memory)."""

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    line: int = 0


def iob_tags(entity_types: Sequence[str] = DEFAULT_TYPES) -> tuple[str, ...]:
    """The tag set for some entity types: ``O`` then ``B-T``, ``I-T`` per type, in that order."""
    return ("O", *(f"{p}-{t}" for t in entity_types for p in ("B", "I")))


def split_line(text: str, path: Path, number: int) -> tuple[str, str]:
    """Split one token line into (token, tag): tab-separated if it has a tab, else on whitespace."""
    fields = text.split("\t") if "\t" in text else text.split()
    if len(fields) < 2 or not fields[0]:
        raise XlrayError(f"{where(path, number)}: expected 'token<TAB>tag', found {text[:60]!r}")
    return fields[0], fields[-1].strip()


class PrefixStripper:
    """Strips the ``lang:`` token prefix once the first token has shown whether the file uses one."""

    def __init__(self, path: Path, strip_lang: bool | None):
        self.path, self.strip_lang, self.prefix = path, strip_lang, ""

    def __call__(self, token: str, number: int) -> str:
        if self.strip_lang is None or (self.strip_lang and not self.prefix):
            found = LANG_PREFIX.match(token)
            if self.strip_lang and not found:
                raise XlrayError(f"{where(self.path, number)}: token {token!r} has no 'lang:' prefix")
            self.strip_lang, self.prefix = bool(found), found.group(0) if found else ""
        if not self.prefix:
            return token
        if not token.startswith(self.prefix) or len(token) == len(self.prefix):
            raise XlrayError(
                f"{where(self.path, number)}: token {token!r} lacks the {self.prefix!r} prefix of the file's "
                "first token (pass strip_lang=False if tokens are not language-prefixed)"
            )
        return token[len(self.prefix) :]


def read_iob(
    path: str | Path, entity_types: Sequence[str] = DEFAULT_TYPES, strip_lang: bool | None = None
) -> Iterator[TaggedSentence]:
    """Stream sentences from an IOB file, checking every tag against the declared entity types.

    ``strip_lang``: None detects a ``lang:`` prefix from the first token, True requires it, False keeps
    tokens as they are.
    """
    path = str(path)  # a local path or a URI (Path would fold s3:// into s3:/)
    allowed = set(iob_tags(entity_types))
    strip = PrefixStripper(path, strip_lang)
    tokens: list[str] = []
    tags: list[str] = []
    start = 0
    for number, text in read_lines(path):
        if not text.strip() or text.split()[0] == "-DOCSTART-":
            if tokens:
                yield TaggedSentence(tuple(tokens), tuple(tags), start)
            tokens, tags = [], []
            continue
        token, tag = split_line(text, path, number)
        if tag not in allowed:
            raise XlrayError(f"{where(path, number)}: tag {tag!r} is not in the label set {', '.join(sorted(allowed))}")
        start = start if tokens else number
        tokens.append(strip(token, number))
        tags.append(tag)
    if tokens:
        yield TaggedSentence(tuple(tokens), tuple(tags), start)


def write_iob(
    path: str | Path,
    sentences: Iterable[TaggedSentence],
    lang: str | None = None,
    entity_types: Sequence[str] = DEFAULT_TYPES,
) -> int:
    """Write ``[lang:]token<TAB>tag`` lines, a blank line after each sentence; returns the sentence count."""
    path, count = Path(path), 0
    allowed = set(iob_tags(entity_types))
    prefix = f"{lang}:" if lang else ""
    with atomic_text(path) as fh:
        for count, sent in enumerate(sentences, 1):
            if not sent.tokens or len(sent.tokens) != len(sent.tags):
                raise XlrayError(f"{path}: sentence {count} has {len(sent.tokens)} tokens and {len(sent.tags)} tags")
            for token, tag in zip(sent.tokens, sent.tags, strict=True):
                if tag not in allowed or not token.strip() or token != token.strip():
                    raise XlrayError(f"{path}: sentence {count}: cannot write token {token!r} with tag {tag!r}")
                fh.write(f"{prefix}{check_field(token, 'token', path)}\t{tag}\n")
            fh.write("\n")
    return count
