"""Streaming word-level activation extraction with Ray Data (CPU tokenization, GPU actor pool, atomic shards)."""
