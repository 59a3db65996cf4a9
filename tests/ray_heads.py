"""Starting and stopping a real `ray start --head` of a test's own (temp dir, ports, 127.0.0.1 only).

A head is stopped by killing only its own processes (those whose command line names its temp dir or GCS port, and
their children): `ray stop` would kill every Ray on the machine, including the `ray.init` session that other tests
in the same pytest process use.
"""

from __future__ import annotations

import os
import re
import shutil
import socket

HEAD_PORT_FLAGS = (
    "port",
    "dashboard-port",
    "ray-client-server-port",
    "dashboard-agent-listen-port",
    "dashboard-agent-grpc-port",
    "runtime-env-agent-port",
    "metrics-export-port",
    "node-manager-port",
    "object-manager-port",
)


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for sock in socks:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in socks]
    for sock in socks:
        sock.close()
    return ports


def stop_head(temp_dir: str, gcs_port: int) -> None:
    """Kill this head's processes only: those naming its temp dir or GCS port, and their children."""
    import psutil

    pattern = re.compile(rf"{re.escape(temp_dir)}|:{gcs_port}\b")
    own = {os.getpid()}
    family: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        if proc.pid not in own and pattern.search(" ".join(proc.info["cmdline"] or [])):
            family[proc.pid] = proc
            family.update({child.pid: child for child in proc.children(recursive=True)})
    for proc in family.values():
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(list(family.values()), timeout=5)
    for proc in alive:
        proc.kill()
    shutil.rmtree(temp_dir, ignore_errors=True)


def start_head(tmpdir: str, env: dict[str, str], dashboard: bool = False) -> dict[str, int]:
    """`ray start --head` on 127.0.0.1 with its own ports, and Ray's temp dir under ``$RAY_TMPDIR`` = ``tmpdir``
    (so ``ray.address: auto`` finds it there, as it finds a workstation's head under /tmp); returns the ports."""
    import subprocess
    import sys
    from pathlib import Path

    ports = dict(zip(HEAD_PORT_FLAGS, free_ports(len(HEAD_PORT_FLAGS)), strict=True))
    ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
    cmd = [ray, "start", "--head", "--node-ip-address", "127.0.0.1", "--num-cpus", "2", "--num-gpus", "0"]
    cmd += ["--include-dashboard", str(dashboard).lower(), "--disable-usage-stats"]
    cmd += [arg for flag, p in ports.items() for arg in (f"--{flag}", str(p))]
    started = subprocess.run(cmd, env={**env, "RAY_TMPDIR": tmpdir}, capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
    return ports
