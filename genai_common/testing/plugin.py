"""pytest plugin (entry point `pytest11: genai_common`): tiny real-format models as fixtures.

Session fixtures (built once per test run, shared; never modify their files):
    tiny_llm (llama), tiny_llm_qwen2, tiny_llm_gemma, tiny_llm_4bit,
    tiny_vlm (qwen2_vl), tiny_vlm_paligemma, tiny_diffusion (sd, needs torch), tiny_ml
Factory (a fresh directory each call; use it when a test changes files):
    tiny_model_factory(kind, variant=None, seed=0) -> Path

A fixture whose stack is not installed skips the test and names what is missing. Nothing heavy is
imported until a fixture is used.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

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


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory, "llm", "llama")


@pytest.fixture(scope="session")
def tiny_llm_qwen2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory, "llm", "qwen2")


@pytest.fixture(scope="session")
def tiny_llm_gemma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory, "llm", "gemma")


@pytest.fixture(scope="session")
def tiny_llm_4bit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory, "llm", "llama-4bit")


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory, "vlm", "qwen2_vl")


@pytest.fixture(scope="session")
def tiny_vlm_paligemma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory, "vlm", "paligemma")


@pytest.fixture(scope="session")
def tiny_diffusion(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory, "diffusion", "sd")


@pytest.fixture(scope="session")
def tiny_ml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory, "ml", None)


@pytest.fixture
def tiny_model_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Build a tiny model into a fresh directory: factory(kind, variant=None, seed=0) -> Path."""

    def factory(kind: str, variant: str | None = None, seed: int = 0) -> Path:
        return _build(tmp_path_factory, kind, variant, seed)

    return factory
