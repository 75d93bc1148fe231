"""Start-up stays light: `genai --help`, `import genai_common` and the runtime modules import no
heavy framework (checked in a fresh interpreter's sys.modules)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("mlx", "torch", "transformers", "diffusers", "mlx_lm", "mlx_vlm", "numpy", "safetensors")


def _loaded_after(code: str, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    probe = (
        f"{code}\nimport sys, json\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r}))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_help_imports_nothing_heavy():
    loaded = _loaded_after(
        "from genai_common.cli import main\nimport contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])"
    )
    assert loaded == []


def test_import_package_imports_nothing_heavy():
    assert _loaded_after("import genai_common") == []


@pytest.mark.parametrize(
    "module", ["envinfo", "mlx_compat", "timing", "stream", "memory", "isolate", "loading"]
)
def test_runtime_modules_import_nothing_heavy(module):
    assert _loaded_after(f"import genai_common.runtime.{module}") == []


def test_bench_command_modules_import_nothing_heavy():
    """`genai bench --help` and `--compare` stay light: no framework, no matplotlib, no rich."""
    code = (
        "import genai_common.bench.cli, genai_common.bench.stats, "
        "genai_common.bench.compare, genai_common.bench.records"
    )
    assert _loaded_after(code, (*HEAVY, "matplotlib", "rich")) == []


def test_probe_detects_a_heavy_import():
    """The check can fail: a module that imports mlx is seen."""
    pytest.importorskip("mlx.core", reason="needs an importable mlx")
    assert "mlx" in _loaded_after("import genai_common.runtime.mlx_compat as c\nc.import_mlx()")


RUNTIME_EXPORTS = (
    "timeit",
    "sync",
    "Measurement",
    "measure_stream",
    "StreamMetrics",
    "clear_cache",
    "memory_snapshot",
    "track_memory",
    "MemorySnapshot",
    "run_isolated",
    "IsolatedResult",
    "load_llm",
    "load_vlm",
    "load_diffusion",
    "load_ml",
    "environment",
)


def test_runtime_names_resolve_lazily_from_the_package():
    code = (
        "import genai_common\n"
        f"for name in {RUNTIME_EXPORTS!r}:\n"
        "    assert name in genai_common.__all__, name\n"
        "    assert callable(getattr(genai_common, name)), name\n"
    )
    assert _loaded_after(code) == []  # resolving them imports no framework either
