"""One place that knows how MLX's memory and device API differs across versions and backends.

- The memory functions moved from ``mx.metal.*`` to the top level in MLX 0.24.1; the old spellings
  print a deprecation line on stderr (not a Python warning) the first time they are called. So we
  look for the top-level name first and touch ``mx.metal`` only on old versions.
- Before 0.24.1 every memory counter off Metal was a stub returning 0: report None there.
- ``mx.device_info()`` exists from 0.30.4; before, ``mx.metal.device_info()`` raised off Metal.
- On Linux, ``pip install mlx`` without a backend extra cannot import (no libmlx.so).

Nothing here imports MLX at module import time.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

# mx.device_info() keys (Metal, CUDA, CPU backends) -> our names.
DEVICE_KEYS = {
    "device_name": "name",
    "architecture": "architecture",
    "memory_size": "total_memory",
    "total_memory": "total_memory",
    "free_memory": "free_memory",
    "max_recommended_working_set_size": "max_recommended_working_set_size",
    "max_buffer_length": "max_buffer_length",
    "resource_limit": "resource_limit",
    "uuid": "uuid",
    "pci_bus_id": "pci_bus_id",
}


def version_tuple(text: str) -> tuple[int, ...]:
    """'0.32.4' -> (0, 32, 4); stops at the first part that is not a number ('0.30.4.dev1')."""
    parts: list[int] = []
    for piece in text.split("."):
        digits = ""
        for char in piece:
            if not char.isdigit():
                break
            digits += char
        if not digits:
            break
        parts.append(int(digits))
        if len(digits) != len(piece):
            break
    return tuple(parts)


def import_mlx() -> tuple[ModuleType | None, str | None]:
    """``(mlx.core, None)`` when MLX imports, else ``(None, reason)`` with the fix to apply."""
    try:
        import mlx.core as mx
    except ImportError as exc:  # ModuleNotFoundError is a subclass
        return None, explain_import_error(exc)
    return mx, None


def explain_import_error(exc: ImportError) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if "libmlx" in str(exc):
        return (
            f"{text} -- mlx is installed without a backend; "
            "install mlx[cpu] (or mlx[cuda13] / mlx[cuda12] for NVIDIA GPUs)"
        )
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == "mlx":
        if sys.platform == "darwin":
            return f"{text} -- install mlx"
        return f"{text} -- install mlx[cpu] (or mlx[cuda13] for NVIDIA GPUs)"
    return text


def mlx_version(mx: ModuleType) -> tuple[int, ...]:
    return version_tuple(getattr(mx, "__version__", "0"))


def backend(mx: ModuleType) -> str:
    """'metal', 'cuda' or 'cpu': the backend this MLX build runs on."""
    metal = getattr(mx, "metal", None)
    if metal is not None and _call_quiet(metal, "is_available"):
        return "metal"
    cuda = getattr(mx, "cuda", None)
    if cuda is not None and _call_quiet(cuda, "is_available"):
        return "cuda"
    return "cpu"


def _call_quiet(namespace: Any, name: str) -> Any:
    fn = getattr(namespace, name, None)
    if fn is None:
        return None
    try:
        return fn()
    except Exception:
        return None


def memory_fn(mx: ModuleType, name: str) -> Callable[..., Any] | None:
    """The memory function ``name`` (top level from 0.24.1, else ``mx.metal.name``), or None."""
    fn = getattr(mx, name, None)
    if fn is not None:
        return fn
    metal = getattr(mx, "metal", None)
    return getattr(metal, name, None) if metal is not None else None


def counters_supported(mx: ModuleType) -> bool:
    """False where MLX's memory counters are stubs that return 0 (before 0.24.1, off Metal)."""
    return mlx_version(mx) >= (0, 24, 1) or backend(mx) == "metal"


def device_info(mx: ModuleType) -> dict[str, Any]:
    """The default device's properties under normalised keys; keys MLX does not give are absent."""
    raw: dict[str, Any] = {}
    fn = getattr(mx, "device_info", None)
    try:
        if fn is not None:
            raw = dict(fn())
        elif backend(mx) == "metal":
            raw = dict(mx.metal.device_info())
    except Exception:
        raw = {}
    info: dict[str, Any] = {}
    for key, value in raw.items():
        info[DEVICE_KEYS.get(key, key)] = value
    major = info.pop("compute_capability_major", None)
    minor = info.pop("compute_capability_minor", None)
    if major is not None:
        info["compute_capability"] = f"{major}.{minor if minor is not None else 0}"
    if "name" not in info and backend(mx) == "cpu":
        name = platform.processor() or platform.machine()
        if name:
            info["name"] = name
    return info


def memory_limit(mx: ModuleType) -> int | None:
    """MLX's memory limit (a guideline, not a cap), where this version can read it."""
    fn = getattr(mx, "get_memory_limit", None)
    if fn is None or not counters_supported(mx):
        return None
    try:
        return int(fn())
    except Exception:
        return None


def cache_limit(mx: ModuleType) -> int | None:
    """MLX's buffer-cache limit. There is no getter: raise it and put the old value back
    (raising never evicts, and the restore cannot evict what the old limit already bounded)."""
    setter = memory_fn(mx, "set_cache_limit")
    if setter is None or not counters_supported(mx):
        return None
    try:
        old = int(setter(1 << 60))
        setter(old)
    except Exception:
        return None
    return old
