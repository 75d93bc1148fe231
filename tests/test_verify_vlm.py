"""VLM parity (issue 10 part 6): mlx-vlm candidate vs reference on a fixed image and prompt."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("mlx_vlm", reason="mlx-vlm runs both sides")


def test_same_model_and_float16_pass(tiny_vlm: Path) -> None:
    from genai_common.verify.vlm import verify_vlm

    found, m = verify_vlm(str(tiny_vlm), str(tiny_vlm))
    assert found == [] and m["kl_mean"] == pytest.approx(0, abs=1e-9) and m["top1"] == 1.0
    assert m["vision_rel"] == 0.0 and m["positions"] > 0
    found, m = verify_vlm(str(tiny_vlm), str(tiny_vlm), candidate_dtype="float16")
    assert found == [], [f.message for f in found]


def test_broken_vision_tower_is_caught(tiny_vlm: Path, tmp_path: Path) -> None:
    import mlx.core as mx

    from genai_common.verify.vlm import verify_vlm

    model = tmp_path / "broken"
    shutil.copytree(tiny_vlm, model)
    for f in sorted(model.glob("*.safetensors")):
        arrays, meta = mx.load(str(f), return_metadata=True)
        for k in arrays:
            if ("visual" in k or "vision_tower" in k) and "patch_embed" in k:
                arrays[k] = -arrays[k] * 3  # a layout/sign bug in the patch embedding
        mx.save_safetensors(str(f), arrays, metadata=meta)
    found, m = verify_vlm(str(model), str(tiny_vlm))
    codes = {f.code for f in found}
    assert "QLT310" in codes, m
