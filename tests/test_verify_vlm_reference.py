"""genai verify for a VLM against transformers (issue 10 part 6): an mlx-vlm conversion of the tiny
qwen2_vl and paligemma (Hugging Face checkpoints, save format "pt") scored against its source run
by transformers (AutoModelForImageTextToText, float32, CPU) on the same prepared image and
prompt; a broken conversion caught, and the layer named by a walk over transformers' modules.
Needs torch, transformers and mlx-vlm in one environment (the torch stack)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("mlx_vlm", reason="the candidate runs in mlx-vlm")
pytestmark = pytest.mark.torch

VARIANTS = ["tiny_vlm", "tiny_vlm_paligemma"]


def _convert(src: Path, dest: Path) -> Path:
    from mlx_vlm.convert import convert

    convert(str(src), mlx_path=str(dest))
    return dest


@pytest.fixture(scope="module", params=VARIANTS)
def pair(request, tmp_path_factory) -> tuple[Path, Path]:
    """(mlx-vlm conversion, its Hugging Face source)."""
    source = request.getfixturevalue(request.param)
    return _convert(source, tmp_path_factory.mktemp("vlmconv") / "mlx"), source


def _edit(src: Path, dest: Path, edit) -> Path:
    import mlx.core as mx

    shutil.copytree(src, dest)
    for f in sorted(dest.glob("*.safetensors")):
        arrays, meta = mx.load(str(f), return_metadata=True)
        edit(arrays)
        mx.save_safetensors(str(f), arrays, metadata=meta)
    return dest


def test_conversion_matches_transformers(pair) -> None:
    from genai_common.verify import verify
    from genai_common.verify.reference_hf import backend_of

    converted, source = pair
    assert (backend_of(str(converted)), backend_of(str(source))) == ("mlx", "transformers")
    r = verify(str(converted), str(source))
    assert r.metrics["reference_backend"] == "transformers"
    assert r.verdict == "pass", [f.message for f in r.findings]
    # the first decoder layer's input agrees though the two libraries scale Gemma's embeddings
    # in different places (transformers inside the module, mlx-vlm after it)
    assert r.metrics["vision_rel"] < 1e-3 and r.metrics["kl_mean"] < 1e-6
    assert r.metrics["top1"] == 1.0 and r.metrics["positions"] > 0


def test_broken_conversion_is_localised_against_transformers(pair, tmp_path) -> None:
    from genai_common.verify import verify

    converted, source = pair

    def plus_one(arrays: dict) -> None:
        k = next(k for k in arrays if k.endswith("layers.1.input_layernorm.weight"))
        arrays[k] = arrays[k] + 1

    bad = _edit(converted, tmp_path / "norm", plus_one)
    r = verify(str(bad), str(source))
    codes = [f.code for f in r.findings]
    assert r.verdict == "fail" and "QLT311" in codes and "QLT310" not in codes, codes
    # stages carry mlx-vlm's names on both sides (transformers' model.language_model mapped)
    assert r.first_bad_layer == "language_model.model.layers.1.input_layernorm", r.findings
    assert any(f.code == "QLT101" and "+1" in f.message for f in r.findings)


def test_vision_break_against_transformers(pair, tmp_path) -> None:
    from genai_common.verify import verify

    converted, source = pair

    def negate_patches(arrays: dict) -> None:
        for k in arrays:
            if ("visual" in k or "vision_tower" in k) and "patch_embed" in k:
                arrays[k] = -arrays[k] * 3

    bad = _edit(converted, tmp_path / "vision", negate_patches)
    r = verify(str(bad), str(source))
    assert "QLT310" in [f.code for f in r.findings] and r.first_bad_layer == "vision features"
