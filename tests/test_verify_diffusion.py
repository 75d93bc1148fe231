"""Diffusion parity (issue 10 part 6): VAE decode and one UNet step, two pipelines or dtypes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.torch


def test_same_pipeline_fp16_vs_fp32_passes(tiny_diffusion: Path) -> None:
    from genai_common.verify.diffusion import DECODE_REL_TOL, verify_diffusion

    found, metrics = verify_diffusion(
        str(tiny_diffusion), str(tiny_diffusion), candidate_dtype="float16"
    )
    assert found == [], [f.message for f in found]
    assert metrics["decode_rel"] is not None and metrics["decode_rel"] < DECODE_REL_TOL
    assert metrics["denoise_rel"] is not None


def _overflowing(src: Path, tmp_path: Path) -> Path:
    """A copy whose VAE decoder conv_in is scaled x1e5: fine in float32 (GroupNorm renormalises),
    beyond ±65504 in float16, like the SDXL VAE's activations."""
    import torch
    from diffusers import AutoencoderKL

    dst = tmp_path / "overflow"
    shutil.copytree(src, dst)
    vae = AutoencoderKL.from_pretrained(dst / "vae")
    with torch.no_grad():
        vae.decoder.conv_in.weight.mul_(1e5)
        vae.decoder.conv_in.bias.mul_(1e5)
    vae.save_pretrained(dst / "vae")
    return dst


def test_fp16_vae_overflow_is_caught(tiny_diffusion: Path, tmp_path: Path) -> None:
    from genai_common.verify.diffusion import verify_diffusion

    model = _overflowing(tiny_diffusion, tmp_path)
    found, metrics = verify_diffusion(str(model), str(model), candidate_dtype="float16")
    assert [f.code for f in found] == ["QLT301"], [f.message for f in found]
    assert metrics["decode_nonfinite"] > 0 and metrics["ref_decode_nonfinite"] == 0
    assert "VAE decode" in found[0].message


def test_different_vae_and_unet_fail(tiny_diffusion: Path, tmp_path: Path) -> None:
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from genai_common.verify.diffusion import verify_diffusion

    dst = tmp_path / "broken"
    shutil.copytree(tiny_diffusion, dst)
    vae = AutoencoderKL.from_pretrained(dst / "vae")
    unet = UNet2DConditionModel.from_pretrained(dst / "unet")
    with torch.no_grad():  # a layout bug: the decoder's last conv transposed spatially
        vae.decoder.conv_out.weight.copy_(vae.decoder.conv_out.weight.transpose(2, 3).flip(2))
        unet.conv_in.weight.mul_(-1.0)
    vae.save_pretrained(dst / "vae")
    unet.save_pretrained(dst / "unet")
    found, _ = verify_diffusion(str(dst), str(tiny_diffusion))
    assert {f.code for f in found} == {"QLT302", "QLT303"}, [f.message for f in found]


def test_quick_inference_fails_on_a_nan_image(tiny_diffusion: Path, tmp_path: Path) -> None:
    """Issue 10 part 8: the diffusion quick inference fails when the image is NaN."""
    import torch
    from diffusers import UNet2DConditionModel

    from genai_common.project.diagnostics import _infer_child

    assert not _infer_child("diffusion", str(tiny_diffusion)).get("failed")
    dst = tmp_path / "nan"
    shutil.copytree(tiny_diffusion, dst)
    unet = UNet2DConditionModel.from_pretrained(dst / "unet")
    with torch.no_grad():
        unet.conv_in.weight.fill_(float("nan"))
    unet.save_pretrained(dst / "unet")
    out = _infer_child("diffusion", str(dst))
    assert out["failed"] and "NaN/Inf" in out["summary"], out
