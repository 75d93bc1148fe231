"""The mlx.launch command line (mlx's own launcher; never reimplemented here)."""

from __future__ import annotations

import os
import shutil
import socket
import sys


def launcher() -> list[str] | None:
    """mlx.launch next to this interpreter, else on PATH; None when mlx is not installed."""
    here = os.path.join(os.path.dirname(sys.executable), "mlx.launch")
    if os.access(here, os.X_OK):
        return [here]
    found = shutil.which("mlx.launch")
    return [found] if found else None


def free_port(span: int = 8) -> int:
    """A port whose next `span` ports were free a moment ago (ring uses one per rank and IP)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + span >= 65535:
            continue
        try:
            for p in range(port, port + span):
                with socket.socket() as t:
                    t.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue
    return 45000


def command(
    program: list[str],
    *,
    ranks: int | None = None,
    hostfile: str | None = None,
    backend: str = "ring",
    port: int | None = None,
    envs: tuple[str, ...] = (),
    python: str | None = None,
) -> list[str]:
    """`mlx.launch [-n N | --hostfile F] --backend B [--starting-port P] [--env K=V]
    [--python PY] -- program`. With `python`, mlx.launch runs `PY program...` on every host (a
    remote venv at another path than this one); program then starts after the interpreter."""
    base = launcher()
    if base is None:
        raise FileNotFoundError("mlx.launch not found: install mlx (pip install mlx)")
    cmd = [*base]
    if hostfile:
        cmd += ["--hostfile", hostfile]
    else:
        cmd += ["-n", str(ranks or 2)]
    cmd += ["--backend", backend]
    if port is not None and backend == "ring":
        cmd += ["--starting-port", str(port)]
    for e in envs:
        cmd += ["--env", e]
    if python:
        cmd += ["--python", python]
    return [*cmd, "--", *program]
