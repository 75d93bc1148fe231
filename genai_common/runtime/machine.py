"""What this machine offers a model, without importing mlx: physical memory, the memory budget
MLX may use, the largest buffer, and the MLX backend it would run on.

The static doctor must not import mlx (start-up time is a feature, and importing it can
initialise Metal). So Metal's recommended working set and its largest buffer come from
`mx.device_info()` only when mlx.core is already imported by the caller (the load test, a
notebook); otherwise the working set is estimated as 75% of RAM on macOS (what Metal reports on
machines above 32 GB is in that range) and the buffer check is skipped. Standard library only.
"""

from __future__ import annotations

import os
import sys
from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

APPLE_WORKING_SET_FRACTION = 0.75


class Machine(namedtuple("Machine", "total budget budget_source max_buffer")):
    """Physical memory, the budget the checks use (and where it came from), MLX's max buffer."""

    __slots__ = ()
    total: int | None
    budget: int | None
    budget_source: str
    max_buffer: int | None


def total_memory() -> int | None:
    """Physical memory in bytes: sysconf (no import cost; Linux and macOS), else psutil."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except Exception:
        return None


def machine() -> Machine:
    """This machine's memory and budget (see the module docstring)."""
    total = total_memory()
    mx = sys.modules.get("mlx.core")
    info: dict[str, Any] = {}
    if mx is not None:
        try:
            info = dict(mx.device_info())
        except Exception:
            info = {}
    working = info.get("max_recommended_working_set_size")
    if isinstance(working, int) and working > 0:
        return Machine(
            total, working, "Metal recommended working set", info.get("max_buffer_length")
        )
    if sys.platform == "darwin" and total:
        return Machine(
            total,
            int(total * APPLE_WORKING_SET_FRACTION),
            f"{int(APPLE_WORKING_SET_FRACTION * 100)}% of RAM (estimated working set)",
            info.get("max_buffer_length"),
        )
    return Machine(total, total, "RAM", info.get("max_buffer_length"))


def mlx_backend_here() -> str | None:
    """The MLX backend this machine would use, without importing mlx (unless it already is):
    "metal" on macOS, "cuda" with an mlx-cuda package installed, "cpu" with mlx installed, else
    None."""
    mx = sys.modules.get("mlx.core")
    if mx is not None:
        try:
            if mx.metal.is_available():
                return "metal"
            return "cuda" if mx.cuda.is_available() else "cpu"
        except Exception:
            pass
    if sys.platform == "darwin":
        return "metal"
    from importlib import metadata

    names = {(d.metadata["Name"] or "").lower().replace("_", "-") for d in metadata.distributions()}
    if any(n.startswith("mlx-cuda") for n in names):
        return "cuda"
    return "cpu" if "mlx" in names else None
