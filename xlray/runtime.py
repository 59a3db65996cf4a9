"""Starting or joining Ray: local mode is a config choice (``ray.address: null``), not a separate code path.

``null`` always starts a private local Ray, even beside a ``ray start`` on the same machine (that is
``ray.init(address="local")``); only ``$RAY_ADDRESS`` (set for a submitted job) overrides it. ``auto`` or an
address joins a running cluster. Before joining, the cluster's GCS is asked whether it wants a token, and this
process's auth mode is set to match: a client whose default differs from the cluster's (a token file in
``~/.ray`` against a cluster started with ``RAY_AUTH_MODE=disabled``, or the reverse) would otherwise connect but
lose every actor it starts.
"""

from __future__ import annotations

import logging
import os

from xlray.configs import RayConfig
from xlray.errors import XlrayError, one_line

log = logging.getLogger(__name__)

# A cheap unauthenticated call: a token-auth GCS answers UNAUTHENTICATED, an open one answers.
GCS_PROBE = "/ray.rpc.NodeInfoGcsService/GetClusterId"


def start_ray(cfg: RayConfig, verbose: bool | None = None) -> str | None:
    """Join the cluster at ``cfg.address`` (or $RAY_ADDRESS), or start a private local Ray; says which (None if
    this process was connected already). ``verbose`` (default: ``xlray -v``) streams workers' output here."""
    import ray

    from xlray.console import verbose as loud
    from xlray.storage import worker_env

    if ray.is_initialized():
        return None
    verbose = loud() if verbose is None else verbose
    # Ray's INFO records go wherever xlray.console sent the "ray" logger (the log file, unless verbose).
    quiet = {"log_to_driver": verbose, "logging_level": logging.INFO}
    if worker_env():  # the S3 endpoint reaches every worker of this job, on every node
        quiet["runtime_env"] = {"env_vars": worker_env()}
    address = os.environ.get("RAY_ADDRESS") or cfg.address
    if not address:
        ray.init(address="local", num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus, include_dashboard=False, **quiet)
        return f"Ray: a private local Ray at {gcs_of_session()} with {describe(ray.cluster_resources())}"
    if address.startswith("ray://"):
        ray.init(address=address, **quiet)
        return f"Ray: joined {address} through Ray Client"
    gcs = gcs_address(address)
    match_auth_mode(gcs)
    try:
        ray.init(address=gcs, **quiet)
    except (ConnectionError, RuntimeError) as exc:
        raise XlrayError(f"ray.address: cannot join the Ray cluster at {gcs}: {one_line(exc)}") from None
    return f"Ray: joined the cluster at {gcs} with {describe(ray.cluster_resources())}"


def gcs_address(address: str) -> str:
    """``host:port`` of the cluster's GCS, for ``auto`` the one ``ray start`` on this machine recorded."""
    from ray._private.services import canonicalize_bootstrap_address_or_die

    try:
        return canonicalize_bootstrap_address_or_die(address)
    except (ConnectionError, ValueError) as exc:
        raise XlrayError(f"ray.address: {address}: {one_line(exc)}") from None


def cluster_auth_mode(gcs: str, timeout_s: float = 10.0) -> str:
    """``token`` if the GCS at ``gcs`` refuses a call without a token, ``disabled`` if it answers."""
    import grpc

    with grpc.insecure_channel(gcs) as channel:
        probe = channel.unary_unary(GCS_PROBE, request_serializer=bytes, response_deserializer=bytes)
        try:
            probe(b"", timeout=timeout_s)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                return "token"
            raise XlrayError(f"ray.address: cannot reach the Ray cluster's GCS at {gcs}: {exc.details()}") from None
    return "disabled"


def match_auth_mode(gcs: str) -> None:
    """Set this process's (and its workers') Ray auth mode to the cluster's, before ``ray.init`` joins it."""
    from ray._raylet import AuthenticationTokenLoader, Config

    mode = cluster_auth_mode(gcs)
    if os.environ.get("RAY_AUTH_MODE", "").lower() != mode:
        log.info("the Ray cluster at %s uses auth mode %s; using it for this process", gcs, mode)
        os.environ["RAY_AUTH_MODE"] = mode
        Config.initialize("")  # Ray reads the mode from its cached config, so refresh it as Ray itself does
    if mode == "token" and not AuthenticationTokenLoader.instance().has_token(ignore_auth_mode=True):
        raise XlrayError(
            f"ray.address: the Ray cluster at {gcs} uses token auth, and no token was found: set "
            "$RAY_AUTH_TOKEN or $RAY_AUTH_TOKEN_PATH, or put the token in ~/.ray/auth_token"
        )


def gcs_of_session() -> str:
    import ray

    return ray.get_runtime_context().gcs_address


def describe(resources: dict[str, float]) -> str:
    return f"{resources.get('CPU', 0):g} CPU, {resources.get('GPU', 0):g} GPU"


def outside_placement_groups() -> object:
    """Outside any placement group: inside a sweep trial, tasks and actors would otherwise be held to the trial's
    reservation."""
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    return PlacementGroupSchedulingStrategy(placement_group=None)


def device(choice: str = "auto") -> str:
    """The torch device for this process: ``cpu`` or ``cuda`` as asked; ``auto``: the GPU (in a Ray worker, the one
    Ray assigned) if there is one, else the CPU."""
    if choice != "auto":
        return choice
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
