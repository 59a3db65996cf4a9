"""Zero-shot task evaluation: fine-tune on English, evaluate on every language (NLI, NER, QA; XSR needs no
training), over seeds, with per-example outcomes for paired significance, and optional continual learning.

``formats`` reads and writes the public task formats, ``metrics`` scores with per-example outcomes, ``run`` is the
`xlray evaluate` recipe (``run_evaluation(cfg)``), ``conditions`` generates base / adjusted / continual configs.
"""
