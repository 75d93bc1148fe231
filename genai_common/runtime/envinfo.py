"""`genai env`: Python, OS, CPU, memory, and each GenAI framework's version and backend.

Versions come from package metadata (no import). Backends need an import: ``mlx.core`` is cheap
(about 35 ms); ``torch`` is slow (seconds), so it is imported only when installed and its import
time is reported. mlx-lm, mlx-vlm, diffusers and transformers are never imported here (they run
on MLX or torch, whose backend we already know).

JSON shape (``environment()`` and ``genai env --json``)::

    {"schema": 1,
     "genai_common": str,
     "python": {"version", "implementation", "executable"},
     "os": {"system", "release", "machine", "platform"},
     "cpu": {"name", "logical_cores", "physical_cores"},
     "memory": {"total", "available", "wired_limit_mb"},    # bytes; wired_limit_mb: macOS's
                      # sysctl iogpu.wired_limit_mb (0: the system default), null off macOS
     "network": {"source", "interfaces": [{"name", "ipv4", "up", "members", "port",
                 "thunderbolt"}]} | null,                 # runtime/network.py (issue 13)
     "env_vars": {name: value},       # MLX_*, HF_*, TRANSFORMERS_*, ... when set; tokens redacted
     "frameworks": {name: {"installed": bool, "version": str|null, "usable": bool,
                           "backend": "metal"|"cuda"|"cpu"|null, "error": str|null, ...}}}

frameworks holds mlx, mlx-lm, mlx-vlm, torch, diffusers, transformers. mlx adds "device"
(normalised ``mx.device_info()``: name, architecture, total_memory, free_memory,
max_recommended_working_set_size, max_buffer_length, resource_limit, ...; absent keys are not
known, never 0), "memory_limit" and "cache_limit"; torch adds "device" ("cuda", "mps" or "cpu"),
"device_name" and "import_seconds".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

FRAMEWORKS = ("mlx", "mlx-lm", "mlx-vlm", "torch", "diffusers", "transformers")
ENV_PREFIXES = ("MLX_", "HF_", "TRANSFORMERS_", "PYTORCH_", "CUDA_VISIBLE_DEVICES")
SECRET_WORDS = ("TOKEN", "KEY", "SECRET", "PASSWORD", "CREDENTIAL")


def installed_version(dist: str) -> str | None:
    """The installed version of `dist` from its package metadata (nothing is imported), or None."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def versions(dists: Iterable[str] = ("genai-common", *FRAMEWORKS)) -> dict[str, str]:
    """Installed versions of `dists`, from package metadata (nothing is imported); the ones not
    installed are left out. Cheap enough for any report line (bench records, RESULTS.md rows)."""
    found = {dist: installed_version(dist) for dist in dists}
    return {dist: v for dist, v in found.items() if v is not None}


def cpu_name() -> str:
    """The CPU or chip name ('Apple M3 Max', 'Intel(R) Xeon(R) ...'), best effort."""
    if sys.platform == "darwin":
        from genai_common.runtime import macos

        name = macos.sysctl_string("machdep.cpu.brand_string")
        if name:
            return name
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _memory() -> dict[str, int]:
    import psutil

    vm = psutil.virtual_memory()
    return {
        "total": int(vm.total),
        "available": int(vm.available),
        "wired_limit_mb": wired_limit_mb(),
    }


def wired_limit_mb() -> int | None:
    """Metal's wired-memory limit (sysctl iogpu.wired_limit_mb; 0 = the system default), None
    where there is no such sysctl (Linux: MLX on CPU / CUDA has no wired limit)."""
    if sys.platform != "darwin":
        return None
    from genai_common.runtime import macos

    return macos.sysctl_int("iogpu.wired_limit_mb")


def _cpu() -> dict[str, Any]:
    import psutil

    return {
        "name": cpu_name(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
    }


def mlx_entry() -> dict[str, Any]:
    """`genai env`'s MLX entry: version, whether it imports, backend, device and limits."""
    from genai_common.runtime import mlx_compat

    version = installed_version("mlx")
    entry: dict[str, Any] = {"installed": version is not None, "version": version}
    mx, error = mlx_compat.import_mlx()
    if mx is None:
        entry.update(usable=False, backend=None, error=error)
        return entry
    entry.update(
        usable=True,
        backend=mlx_compat.backend(mx),
        error=None,
        version=getattr(mx, "__version__", entry["version"]),
        device=mlx_compat.device_info(mx),
    )
    for key, value in (
        ("memory_limit", mlx_compat.memory_limit(mx)),
        ("cache_limit", mlx_compat.cache_limit(mx)),
    ):
        if value is not None:
            entry[key] = value
    return entry


def _torch_entry() -> dict[str, Any]:
    version = installed_version("torch")
    entry: dict[str, Any] = {"installed": version is not None, "version": version}
    if version is None:
        entry.update(usable=False, backend=None, error=None)
        return entry
    start = time.perf_counter()
    try:
        import torch
    except Exception as exc:
        entry.update(usable=False, backend=None, error=f"{type(exc).__name__}: {exc}")
        return entry
    entry["import_seconds"] = round(time.perf_counter() - start, 3)
    device, backend, name = "cpu", "cpu", None
    try:
        if torch.cuda.is_available():
            device, backend, name = "cuda", "cuda", torch.cuda.get_device_name(0)
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            device, backend = "mps", "metal"
    except Exception as exc:  # a broken driver: say so, but torch still runs on CPU
        entry["device_error"] = f"{type(exc).__name__}: {exc}"
    entry.update(usable=True, backend=backend, error=None, device=device)
    if name:
        entry["device_name"] = name
    return entry


def _follower_entry(
    dist: str, base: dict[str, Any], base_name: str, without_base: str | None = None
) -> dict[str, Any]:
    """A framework that runs on another one's backend (mlx-lm on mlx, diffusers on torch).
    without_base: the note for one that stays usable, with no backend, when its base is not."""
    version = installed_version(dist)
    entry: dict[str, Any] = {"installed": version is not None, "version": version}
    if version is None:
        entry.update(usable=False, backend=None, error=None)
    elif base["usable"]:
        entry.update(usable=True, backend=base["backend"], error=None)
    elif without_base is not None:
        entry.update(usable=True, backend=None, error=None, note=without_base)
    else:
        reason = base["error"] or f"{base_name} is not installed"
        entry.update(usable=False, backend=None, error=f"needs {base_name}: {reason}")
    return entry


def env_vars() -> dict[str, str]:
    """The environment variables that change how the frameworks run; secrets are redacted."""
    found = {}
    for key, value in sorted(os.environ.items()):
        if key.startswith(ENV_PREFIXES):
            secret = any(word in key.upper() for word in SECRET_WORDS)
            found[key] = "<redacted>" if secret else value
    return found


def environment(network: bool = True) -> dict[str, Any]:
    """Everything `genai env --json` prints, as a dict (see the module docstring for the keys).
    network=False leaves the interfaces out ("network": null): what is stored in files (bench
    records) carries no addresses of the machine."""
    mlx = mlx_entry()
    torch = _torch_entry()
    frameworks = {
        "mlx": mlx,
        "mlx-lm": _follower_entry("mlx-lm", mlx, "mlx"),
        "mlx-vlm": _follower_entry("mlx-vlm", mlx, "mlx"),
        "torch": torch,
        "diffusers": _follower_entry("diffusers", torch, "torch"),
        # without torch, tokenizers, processors and configs still work (what mlx-lm/-vlm use)
        "transformers": _follower_entry(
            "transformers", torch, "torch", without_base="no torch: tokenizers/configs only"
        ),
    }
    return {
        "schema": 1,
        "genai_common": installed_version("genai-common"),
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "os": {
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
            "platform": platform.platform(),
        },
        "cpu": _cpu(),
        "memory": _memory(),
        "network": _network() if network else None,
        "env_vars": env_vars(),
        "frameworks": frameworks,
    }


def _network() -> dict[str, Any] | None:
    from genai_common.runtime import network

    return network.capture()


def gib(value: int | None) -> str:
    """The one byte formatter (model.values.gib); "-" when unknown."""
    from genai_common.model.values import gib as human

    return "-" if value is None else human(value)


def summary_rows(env: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) lines of the machine part, for people."""
    cpu, mem = env["cpu"], env["memory"]
    return [
        ("Python", f"{env['python']['version']} ({env['python']['executable']})"),
        ("OS", f"{env['os']['system']} {env['os']['release']} {env['os']['machine']}"),
        ("CPU", f"{cpu['name']} ({cpu['logical_cores']} logical cores)"),
        ("Memory", f"{gib(mem['total'])} total, {gib(mem['available'])} available"),
    ]


def framework_rows(env: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(framework, version, backend, detail) for people."""
    rows = []
    for name, entry in env["frameworks"].items():
        if not entry["installed"]:
            rows.append((name, "-", "-", "not installed"))
            continue
        detail = entry.get("error") or entry.get("note") or ""
        if name == "mlx" and entry["usable"]:
            device = entry.get("device", {})
            parts = [str(device.get("name", "")), str(device.get("architecture", ""))]
            if "total_memory" in device:
                parts.append(gib(device["total_memory"]))
            detail = " ".join(p for p in parts if p)
        elif name == "torch" and entry["usable"]:
            detail = f"device {entry['device']}, import {entry['import_seconds']:.2f} s"
            if entry.get("device_name"):
                detail += f", {entry['device_name']}"
        backend = entry["backend"] or ("unusable" if not entry["usable"] else "-")
        rows.append((name, entry["version"] or "-", backend, detail))
    return rows


def _print_plain(env: dict[str, Any]) -> None:
    for label, value in summary_rows(env):
        print(f"{label:<8} {value}")
    print()
    print(f"{'framework':<14} {'version':<12} {'backend':<9} detail")
    for name, version, backend, detail in framework_rows(env):
        print(f"{name:<14} {version:<12} {backend:<9} {detail}".rstrip())


def _print_rich(env: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    machine = Table(show_header=False, box=None)
    for label, value in summary_rows(env):
        machine.add_row(f"[bold]{label}[/]", escape(value))
    console.print(machine)
    table = Table("framework", "version", "backend", "detail")
    for row in framework_rows(env):
        _, version, backend, _ = row
        style = "red" if backend == "unusable" else ("dim" if version == "-" else None)
        # texts, not markup: an error's fix reads "install mlx[cpu]"
        table.add_row(*map(escape, row), style=style)
    console.print(table)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    env = environment()
    if args.json:
        print(json.dumps(env, indent=2))
    elif sys.stdout.isatty():
        _print_rich(env)
    else:
        _print_plain(env)
    return 0
