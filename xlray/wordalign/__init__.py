"""Word alignment of parallel corpora (eflomal) and the bilingual dictionaries built from it.

Named ``wordalign`` because "align" means two other things in xlray: the alignment loss of `xlray adjust` and the
alignment statistics (``align.*`` metrics) of the sweep.
"""
