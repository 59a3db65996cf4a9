"""Readers and writers for the public task formats: XNLI/MultiNLI TSV, WikiANN/CoNLL IOB, Tatoeba, SQuAD JSON.

Readers stream (one example or sentence at a time) and raise a one-line ``XlrayError`` naming file:line (or
the question id for JSON) on bad input. Writers produce the same layouts atomically, for the synthetic world.
"""

from xlray.tasks.formats.iob import DEFAULT_TYPES, TaggedSentence, iob_tags, read_iob, write_iob
from xlray.tasks.formats.squad import Answer, QAExample, ReadStats, read_squad, write_squad
from xlray.tasks.formats.tatoeba import SentencePair, read_tatoeba, tatoeba_paths, write_tatoeba
from xlray.tasks.formats.xnli import LABELS, NliExample, read_xnli, write_multinli, write_xnli

__all__ = [
    "DEFAULT_TYPES", "LABELS", "Answer", "NliExample", "QAExample", "ReadStats", "SentencePair",
    "TaggedSentence", "iob_tags", "read_iob", "read_squad", "read_tatoeba", "read_xnli", "tatoeba_paths",
    "write_iob", "write_multinli", "write_squad", "write_tatoeba", "write_xnli",
]  # fmt: skip
