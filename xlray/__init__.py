"""xlray: Ray-based experiments on cross-lingual alignment inside multilingual transformers."""

__version__ = "0.1.0"
