"""NLI pairs in the XNLI layout (``xnli.{dev,test}.tsv``) and XTREME's MultiNLI training layout.

Both are tab-separated with a header row and no quoting (as XTREME reads them). XNLI columns include
``language, gold_label, sentence1, sentence2``; ``multinli.train.en.tsv`` has ``premise, hypo, label`` and
spells contradiction ``contradictory``. Labels come out as entailment / neutral / contradiction.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from xlray.errors import XlrayError, where
from xlray.outputs import atomic_text
from xlray.textio import check_field, read_lines

LABELS = ("entailment", "neutral", "contradiction")
ALIASES = {"contradictory": "contradiction"}
XNLI_COLUMNS = (
    "language", "gold_label", "sentence1_binary_parse", "sentence2_binary_parse", "sentence1_parse",
    "sentence2_parse", "sentence1", "sentence2", "promptID", "pairID", "genre", "label1", "label2", "label3",
    "label4", "label5", "sentence1_tokenized", "sentence2_tokenized", "match",
)  # fmt: skip
MULTINLI_COLUMNS = ("premise", "hypo", "label")
XNLI_KEYS = ("language", "gold_label", "sentence1", "sentence2")


@dataclass(frozen=True)
class NliExample:
    """One premise/hypothesis pair; ``line`` is where it was read from (0 when built in memory)."""

    premise: str
    hypothesis: str
    label: str
    language: str
    line: int = 0


def normalise_label(raw: str, path: str | Path, line: int) -> str:
    """Map a raw label to entailment/neutral/contradiction, or raise naming file:line."""
    label = ALIASES.get(raw.strip(), raw.strip())
    if label not in LABELS:
        raise XlrayError(f"{where(path, line)}: label {raw!r} is not one of {', '.join(LABELS)} (or 'contradictory')")
    return label


def header_columns(header: list[str], path: Path) -> tuple[int, int, int, int | None]:
    """Column indices of (premise, hypothesis, label, language or None) from the header row."""
    if all(key in header for key in XNLI_KEYS):
        idx = [header.index(key) for key in ("sentence1", "sentence2", "gold_label", "language")]
        return idx[0], idx[1], idx[2], idx[3]
    if all(key in header for key in MULTINLI_COLUMNS):
        return header.index("premise"), header.index("hypo"), header.index("label"), None
    raise XlrayError(
        f"{where(path, 1)}: header has neither the XNLI columns ({', '.join(XNLI_KEYS)}) "
        f"nor the MultiNLI columns ({', '.join(MULTINLI_COLUMNS)})"
    )


def read_xnli(
    path: str | Path, languages: Collection[str] | None = None, default_language: str = "en"
) -> Iterator[NliExample]:
    """Stream NLI pairs from an XNLI or MultiNLI-style TSV, optionally only the given languages.

    Rows of a file without a language column get ``default_language``. Blank lines are skipped; a requested
    language that never occurs is an error once the file is read, so a typo cannot yield an empty test set.
    """
    path = str(path)  # a local path or a URI (Path would fold s3:// into s3:/)
    lines = read_lines(path)
    first = next(lines, None)
    if first is None:
        raise XlrayError(f"{path}: empty file; expected a header row")
    cols = header_columns(first[1].split("\t"), path)
    width = max(c for c in cols if c is not None) + 1
    seen: set[str] = set()
    for number, text in lines:
        if not text.strip():
            continue
        fields = text.split("\t")
        if len(fields) < width:
            raise XlrayError(
                f"{where(path, number)}: expected at least {width} tab-separated fields, found {len(fields)}"
            )
        language = fields[cols[3]].strip() if cols[3] is not None else default_language
        if languages is not None and language not in languages:
            continue
        seen.add(language)
        label = normalise_label(fields[cols[2]], path, number)
        yield NliExample(fields[cols[0]], fields[cols[1]], label, language, number)
    missing = sorted(set(languages or ()) - seen)
    if missing:
        raise XlrayError(f"{path}: no rows for language(s) {', '.join(missing)}")


def checked_row(ex: NliExample, path: Path) -> NliExample:
    """Refuse examples that the TSV layout cannot hold or that carry an unknown label."""
    if ex.label not in LABELS:
        raise XlrayError(f"{path}: cannot write label {ex.label!r}; expected one of {', '.join(LABELS)}")
    for what, value in (("premise", ex.premise), ("hypothesis", ex.hypothesis), ("language", ex.language)):
        check_field(value, what, path)
    return ex


def write_xnli(path: str | Path, examples: Iterable[NliExample]) -> int:
    """Write pairs in the full 19-column XNLI layout (unused columns empty); returns the number of rows."""
    path, count = Path(path), 0
    with atomic_text(path) as fh:
        fh.write("\t".join(XNLI_COLUMNS) + "\n")
        for count, ex in enumerate(examples, 1):
            ex = checked_row(ex, path)
            row = dict.fromkeys(XNLI_COLUMNS, "")
            row.update(language=ex.language, gold_label=ex.label, sentence1=ex.premise, sentence2=ex.hypothesis)
            row.update(pairID=str(count), label1=ex.label)
            fh.write("\t".join(row[c] for c in XNLI_COLUMNS) + "\n")
    return count


def write_multinli(path: str | Path, examples: Iterable[NliExample]) -> int:
    """Write pairs as XTREME's ``multinli.train.en.tsv`` (contradiction spelled 'contradictory')."""
    path, count = Path(path), 0
    with atomic_text(path) as fh:
        fh.write("\t".join(MULTINLI_COLUMNS) + "\n")
        for ex in examples:
            ex, count = checked_row(ex, path), count + 1
            label = "contradictory" if ex.label == "contradiction" else ex.label
            fh.write(f"{ex.premise}\t{ex.hypothesis}\t{label}\n")
    return count
