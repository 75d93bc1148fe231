"""The quick inference test can fail on garbage (issue 10 part 8): the trained tiny model must
give its known answer, any other model must write text; a scrambled-weight model fails both."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from genai_common.project.diagnostics import _infer_child, reply_problem
from genai_common.runtime.inference import garbage_reasons


@pytest.mark.parametrize(
    "text",
    ["The capital of France is Paris.", "def f(x):\n    return x + 1", "1, 2, 3, 4 and 5."],
)
def test_text_is_not_garbage(text: str) -> None:
    assert garbage_reasons(text) == []


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("uzR\ufffd", "replacement"),
        ("", "empty"),
        ("   \n", "empty"),
        ("the the the the the", "one token repeated"),
        ("!!!!!!!!", "one character repeated"),
        ("\x00\x01\x02\x03ab\x04\x05", "not letters"),
        ("\u2591\u2592\u2593\u2588\u2591\u2592 a", "not letters"),
    ],
)
def test_garbage_is_named(text: str, why: str) -> None:
    assert any(why in r for r in garbage_reasons(text)), garbage_reasons(text)


def _scrambled(src: Path, tmp_path: Path) -> Path:
    """A copy of the trained tiny model whose every float tensor is replaced by random values of
    the same shape and RMS (a random-weight model of the same architecture and tokenizer)."""
    import mlx.core as mx

    dst = tmp_path / "scrambled"
    shutil.copytree(src, dst)
    mx.random.seed(7)
    for f in sorted(dst.glob("*.safetensors")):
        arrays, meta = mx.load(str(f), return_metadata=True)
        out = {}
        for k, a in arrays.items():
            if mx.issubdtype(a.dtype, mx.floating) and a.ndim >= 2:
                rms = mx.sqrt(mx.mean(a.astype(mx.float32) ** 2))
                a = (mx.random.normal(a.shape) * rms * 4).astype(a.dtype)
            out[k] = a
        mx.save_safetensors(str(f), out, metadata=meta)
    return dst


def test_trained_tiny_passes(tiny_llm: Path) -> None:
    assert reply_problem("llm", str(tiny_llm), tiny=True) == ""
    assert reply_problem("llm", str(tiny_llm), tiny=False) == ""
    assert not _infer_child("llm", str(tiny_llm), True).get("failed")


def test_scrambled_model_fails(tiny_llm: Path, tmp_path: Path) -> None:
    model = _scrambled(tiny_llm, tmp_path)
    as_tiny = _infer_child("llm", str(model), True)
    assert as_tiny["failed"] and "expected" in as_tiny["summary"]
    as_user = reply_problem("llm", str(model), tiny=False)
    assert as_user.startswith("garbage reply"), as_user
