"""pytest plugin (entry point `pytest11: genai_common`): tiny real-format models as fixtures.

Session fixtures (built once per test run, shared; never modify their files):
    tiny_llm (llama), tiny_llm_qwen2, tiny_llm_gemma, tiny_llm_4bit,
    tiny_llm_deepseek_v3 (multi-head latent attention + routed/shared experts, float32),
    tiny_vlm (qwen2_vl), tiny_vlm_paligemma, tiny_diffusion (sd, needs torch),
    tiny_diffusion_sd3 (sd3: SD3 transformer, two CLIPs, no T5; needs torch), tiny_ml
Factory (a fresh directory each call; use it when a test changes files):
    tiny_model_factory(kind, variant=None, seed=0) -> Path

The llm, vlm and ml models are trained at build time (seconds of CPU each) and cached per seed and
version under $GENAI_TINY_CACHE or $XDG_CACHE_HOME/genai-common/tiny (testing/tiny_cache.py), so
only the first run on a machine pays for training. A fixture whose stack is not installed skips the
test and names what is missing. Nothing heavy is imported until a fixture is used.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# kind -> modules its builder and real loader need
_NEEDS = {
    "llm": ("mlx", "mlx_lm", "tokenizers"),
    "vlm": ("mlx", "mlx_vlm", "tokenizers", "PIL"),
    "diffusion": ("torch", "diffusers", "transformers"),
    "ml": ("mlx", "safetensors"),
}


def _require(kind: str) -> None:
    missing = [m for m in _NEEDS[kind] if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"tiny {kind} model needs {', '.join(missing)} (genai-common[{kind}])")


def _build(factory: pytest.TempPathFactory, kind: str, variant: str | None, seed: int = 0) -> Path:
    from genai_common.testing.tiny import build

    _require(kind)
    name = f"tiny-{kind}-{variant or 'default'}-{seed}"
    return build(kind, factory.mktemp(name), variant=variant, seed=seed)


def _session_fixture(name: str, kind: str, variant: str | None) -> Any:
    """A session fixture `name` that builds the tiny `kind` model (`variant`) once per run."""

    def fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
        return _build(tmp_path_factory, kind, variant)

    fixture.__doc__ = f"The tiny {kind} model ({variant or 'default'}), built once per test run."
    return pytest.fixture(scope="session", name=name)(fixture)


tiny_llm = _session_fixture("tiny_llm", "llm", "llama")
tiny_llm_qwen2 = _session_fixture("tiny_llm_qwen2", "llm", "qwen2")
tiny_llm_gemma = _session_fixture("tiny_llm_gemma", "llm", "gemma")
tiny_llm_4bit = _session_fixture("tiny_llm_4bit", "llm", "llama-4bit")
tiny_llm_deepseek_v3 = _session_fixture("tiny_llm_deepseek_v3", "llm", "deepseek_v3")
tiny_vlm = _session_fixture("tiny_vlm", "vlm", "qwen2_vl")
tiny_vlm_paligemma = _session_fixture("tiny_vlm_paligemma", "vlm", "paligemma")
tiny_diffusion = _session_fixture("tiny_diffusion", "diffusion", "sd")
tiny_diffusion_sd3 = _session_fixture("tiny_diffusion_sd3", "diffusion", "sd3")
tiny_ml = _session_fixture("tiny_ml", "ml", None)


@pytest.fixture
def tiny_model_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Build a tiny model into a fresh directory: factory(kind, variant=None, seed=0) -> Path."""

    def factory(kind: str, variant: str | None = None, seed: int = 0) -> Path:
        return _build(tmp_path_factory, kind, variant, seed)

    return factory
