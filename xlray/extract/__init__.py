"""Streaming word-level activation extraction: on GPUs a Ray Data pipeline (CPU tokenizers, GPU actors, shard
writers), without GPUs a pool of plain CPU actors; shards are written whole or not at all."""
