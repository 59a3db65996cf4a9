"""Zero-shot tasks: NLI, NER, QA (fine-tuned on English) and XSR retrieval (no training), each scored with
per-example outcomes for paired significance, and optional continual learning.

``protocol`` says what a task module provides and registers them, ``formats`` reads and writes the public task
formats, ``metrics`` scores with per-example outcomes, ``config`` is `xlray evaluate`'s config, ``conditions``
generates base / adjusted / continual configs. The `xlray evaluate` recipe is ``xlray.evaluate.run``.
"""
