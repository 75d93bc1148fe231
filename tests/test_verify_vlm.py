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
    # the vision side broke: the text side only inherits it, so no layer walk names a text stage
    assert m["first_bad_layer"] == "vision features"
    assert not codes & {"QLT100", "QLT101", "QLT110"}


def _edit_text_side(src: Path, dest: Path, edit) -> Path:
    """A copy of the tiny VLM with `edit(arrays)` applied to its language model's tensors (on
    disk under HF names: model.layers.N... for qwen2_vl, language_model.model... for paligemma)."""
    import mlx.core as mx

    shutil.copytree(src, dest)
    for f in sorted(dest.glob("*.safetensors")):
        arrays, meta = mx.load(str(f), return_metadata=True)
        text = {k: v for k, v in arrays.items() if "vision" not in k and "visual" not in k}
        edit(text)
        arrays.update(text)
        mx.save_safetensors(str(f), arrays, metadata=meta)
    return dest


def _layer_key(arrays: dict, suffix: str) -> str:
    return next(k for k in arrays if k.endswith(suffix))


@pytest.mark.parametrize("fixture", ["tiny_vlm", "tiny_vlm_paligemma"])
def test_text_side_break_is_localised(fixture: str, request, tmp_path: Path) -> None:
    """A norm offset applied twice in the language model: the logits fail (QLT311), the vision
    features agree, and the walk names the language model's layer and the +1 (QLT101)."""
    from genai_common.verify import verify

    good = request.getfixturevalue(fixture)

    def plus_one(a: dict) -> None:
        k = _layer_key(a, "layers.1.input_layernorm.weight")
        a[k] = a[k] + 1

    bad = _edit_text_side(good, tmp_path / "norm", plus_one)
    r = verify(str(bad), str(good))
    codes = [f.code for f in r.findings]
    assert r.verdict == "fail" and "QLT311" in codes and "QLT310" not in codes, codes
    assert r.first_bad_layer == "language_model.model.layers.1.input_layernorm"
    qlt101 = next(f for f in r.findings if f.code == "QLT101")
    assert "layers.1.input_layernorm.weight" in qlt101.message and "+1" in qlt101.message


def test_text_side_swap_is_named(tiny_vlm: Path, tmp_path: Path) -> None:
    """gate_proj and up_proj exchanged by a converter: QLT103 names the pair in layer 0."""
    from genai_common.verify.vlm import verify_vlm

    def swap(a: dict) -> None:
        g = _layer_key(a, "layers.0.mlp.gate_proj.weight")
        u = _layer_key(a, "layers.0.mlp.up_proj.weight")
        a[g], a[u] = a[u], a[g]

    bad = _edit_text_side(tiny_vlm, tmp_path / "swap", swap)
    found, m = verify_vlm(str(bad), str(tiny_vlm))
    assert m["first_bad_layer"].startswith("language_model.model.layers.0.mlp"), m
    swapped = [f for f in found if f.code == "QLT103"]
    assert swapped and "gate_proj" in swapped[0].message and "up_proj" in swapped[0].message
