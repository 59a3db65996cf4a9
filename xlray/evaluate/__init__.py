"""`xlray evaluate`: fine-tune on English, test zero-shot on every language, over seeds.

``run`` is the recipe (``run_evaluation(cfg)``), ``summary`` the mean and spread over seeds and the paired tests
against earlier conditions. The tasks themselves, their config and the condition generator are ``xlray.tasks``.
"""
