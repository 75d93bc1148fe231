"""genai-common: the shared runtime of genai-templates projects.

Public names are re-exported lazily (PEP 562) so that `import genai_common` stays cheap: nothing
here imports mlx, torch or transformers until the name that needs them is used.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # no typing/importlib at import: `genai doctor` pays for every module
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "timeit": "genai_common.runtime.timing",
    "sync": "genai_common.runtime.timing",
    "Measurement": "genai_common.runtime.timing",
    "measure_stream": "genai_common.runtime.stream",
    "StreamMetrics": "genai_common.runtime.stream",
    "clear_cache": "genai_common.runtime.memory",
    "memory_snapshot": "genai_common.runtime.memory",
    "track_memory": "genai_common.runtime.memory",
    "torch_cpu_peak": "genai_common.runtime.memory",
    "MemorySnapshot": "genai_common.runtime.memory",
    "run_isolated": "genai_common.runtime.isolate",
    "IsolatedResult": "genai_common.runtime.isolate",
    "load_llm": "genai_common.runtime.loading",
    "load_vlm": "genai_common.runtime.loading",
    "load_diffusion": "genai_common.runtime.loading",
    "load_ml": "genai_common.runtime.loading",
    "environment": "genai_common.runtime.envinfo",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'genai_common' has no attribute {name!r}")
    __import__(module)
    value = getattr(sys.modules[module], name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
