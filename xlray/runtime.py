"""Starting or joining Ray: local mode is a config choice (address None), not a separate code path."""

from __future__ import annotations

import os

from xlray.configs import RayConfig


def start_ray(cfg: RayConfig) -> None:
    """Join the cluster at ``cfg.address`` (or $RAY_ADDRESS), or start a local Ray on this machine."""
    import ray

    if ray.is_initialized():
        return
    address = cfg.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
        return
    ray.init(
        num_cpus=cfg.num_cpus,
        num_gpus=cfg.num_gpus,
        include_dashboard=False,
        log_to_driver=True,
    )


def device() -> str:
    """The torch device for this process: the GPU Ray assigned, else the CPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
