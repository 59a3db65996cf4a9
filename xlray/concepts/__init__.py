"""Latent concept discovery (clustering of word representations) and cross-lingual alignment metrics."""
