"""Probe each host of a hostfile: `genai env --json` over ssh, never interactive, bounded.

ssh runs with BatchMode=yes (no password or passphrase prompt), ConnectTimeout and a wall-clock
timeout; it runs one read-only command and changes nothing on the host. Loopback hosts run the
command locally (`python -m genai_common.cli env --json` with this interpreter). Findings:
DST004 unreachable (or genai-common missing there), DST005 versions that differ.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from typing import Any

from genai_common.distributed import checks
from genai_common.distributed.hostfile import Host, is_local
from genai_common.findings import Finding

REMOTE_COMMAND = "genai env --json"
COMPARED = ("python", "mlx", "mlx-lm")


def remote_command(python: str | None = None) -> str:
    """`genai env --json`, or with the hosts' interpreter (mlx.launch --python: a venv at another
    path there) `PY -m genai_common.cli env --json`."""
    if python:
        return f"{shlex.quote(python)} -m genai_common.cli env --json"
    return REMOTE_COMMAND


def ssh_command(host: str, connect_timeout: int = 5, python: str | None = None) -> list[str]:
    return [
        "ssh",
        "-o", "BatchMode=yes",
        "-o", f"ConnectTimeout={connect_timeout}",
        "-o", "StrictHostKeyChecking=accept-new",
        "-o", "LogLevel=ERROR",
        host,
        remote_command(python),
    ]  # fmt: skip


def probe_one(
    host: Host, connect_timeout: int = 5, timeout: float = 30.0, python: str | None = None
) -> tuple[dict[str, Any] | None, Finding | None]:
    """The host's env JSON, or the DST004 finding that says why not. `python`: the interpreter
    on the remote hosts (as mlx.launch --python); a loopback host runs this interpreter."""
    if is_local(host):
        cmd = [sys.executable, "-m", "genai_common.cli", "env", "--json"]
    else:
        cmd = ssh_command(host.ssh, connect_timeout, python)
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return None, checks.unreachable(host.ssh, f"no answer within {timeout:g} s")
    except OSError as exc:
        return None, checks.unreachable(host.ssh, f"cannot run {shlex.join(cmd[:1])}: {exc}")
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-2:]
        why = f"`{remote_command(python)}` exited {proc.returncode}: {' | '.join(tail) or 'no output'}"
        return None, checks.unreachable(host.ssh, why)
    try:
        return json.loads(proc.stdout), None
    except json.JSONDecodeError:
        return None, checks.unreachable(host.ssh, "its `genai env --json` did not print JSON")


def versions_of(env: dict[str, Any]) -> dict[str, str | None]:
    fw = env.get("frameworks") or {}
    return {
        "python": (env.get("python") or {}).get("version"),
        "mlx": (fw.get("mlx") or {}).get("version"),
        "mlx-lm": (fw.get("mlx-lm") or {}).get("version"),
    }


def compare(envs: dict[str, dict[str, Any]]) -> list[Finding]:
    """DST005 for each of python / mlx / mlx-lm whose version differs between hosts."""
    found = []
    for package in COMPARED:
        seen: dict[str, list[str]] = {}
        for host, env in envs.items():
            seen.setdefault(str(versions_of(env)[package]), []).append(host)
        if len(seen) > 1:
            found.append(checks.versions(package, seen))
    return found


def budget(env: dict[str, Any]) -> int | None:
    """Bytes a rank may use on the host: Metal's recommended working set when known, else the
    available memory."""
    device = ((env.get("frameworks") or {}).get("mlx") or {}).get("device") or {}
    wired = device.get("max_recommended_working_set_size")
    if isinstance(wired, int) and wired > 0:
        return wired
    avail = (env.get("memory") or {}).get("available")
    return avail if isinstance(avail, int) and avail > 0 else None


def probe(
    hosts: tuple[Host, ...],
    connect_timeout: int = 5,
    timeout: float = 30.0,
    python: str | None = None,
) -> tuple[dict[str, dict[str, Any]], list[Finding]]:
    """Each distinct host's env (in parallel threads) and the findings."""
    from concurrent.futures import ThreadPoolExecutor

    distinct = list({h.ssh: h for h in hosts}.values())
    with ThreadPoolExecutor(max_workers=min(8, len(distinct)) or 1) as pool:
        results = list(pool.map(lambda h: probe_one(h, connect_timeout, timeout, python), distinct))
    envs, found = {}, []
    for h, (env, problem) in zip(distinct, results, strict=True):
        if problem is not None:
            found.append(problem)
        elif env is not None:
            envs[h.ssh] = env
    found.extend(compare(envs))
    return envs, found
