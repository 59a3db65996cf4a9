"""Word alignment of parallel corpora and the bilingual dictionaries built from it."""
