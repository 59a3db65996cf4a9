"""Cross-lingual adjustment (Cao et al. 2020; Efimov et al. 2023): pull aligned words of parallel sentences together.

``pairs`` reads and word-aligns the parallel corpus, ``loss`` is the alignment loss (reused by continual learning),
``run`` is the stage written out as a recipe.
"""
