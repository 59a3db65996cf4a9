"""Sentence-level cross-lingual alignment per layer (MEXA, retrieval, cosine gap, CKA) from parallel sentences."""
