"""A deterministic synthetic multilingual world: languages over one concept inventory, corpora, tasks, tiny models.

Nothing can be downloaded in tests or the local demo, so this world stands in for WikiMatrix/XNLI/WikiANN/Tatoeba/
XQuAD and for mBERT/XLM-R/mT5, written in the same file formats and loaded through the same code paths.
"""
