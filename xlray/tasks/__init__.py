"""Zero-shot task data and scoring: readers/writers for the public task formats and metrics with per-example
outcomes."""
