"""The checks of a sweep config that need neither Ray nor its output folder, in one place.

`xlray sweep` runs them before any trial and `xlray validate` runs them on the file, so the two cannot drift
apart. Not here: whether a trial's CPUs and GPUs fit a node (``xlray.sweep.run.check_resources``), which needs
the running cluster, and opening a local tracking store (sqlite in the output folder), which creates it.
"""

from __future__ import annotations

from xlray.sweep import sentence_alignment
from xlray.sweep.concepts import check_step
from xlray.sweep.config import SweepConfig
from xlray.sweep.metrics import check_metrics
from xlray.sweep.space import check_space
from xlray.tracking import client_for, server_uri


def preflight(cfg: SweepConfig) -> None:
    """Raise XlrayError naming the field if the space, the concepts or sentence-alignment step or the search metric
    is bad, or if the tracking server (an http(s) URI from the config or $MLFLOW_TRACKING_URI) cannot be reached."""
    check_space(cfg)
    check_step(cfg)
    sentence_alignment.check_step(cfg)
    check_metrics(cfg)
    server = server_uri(cfg.tracking)
    if server:
        client_for(server)
