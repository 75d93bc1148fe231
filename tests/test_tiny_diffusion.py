"""The tiny Stable Diffusion pipeline (torch stack): diffusers reloads it and it makes a 64x64 image."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from genai_common.testing.tiny import build

pytestmark = pytest.mark.torch


def _digest(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def test_pipeline_reloads_and_makes_a_64x64_image(tiny_diffusion: Path) -> None:
    import numpy as np
    import torch
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(str(tiny_diffusion))
    pipe.set_progress_bar_config(disable=True)
    assert type(pipe).__name__ == "StableDiffusionPipeline"
    assert pipe.vae_scale_factor == 8  # as in SD: 64x64 image <-> 8x8 latent
    out = pipe(
        "a red cat on a blue box",
        num_inference_steps=2,
        height=64,
        width=64,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    )
    image = out.images
    assert image.shape == (1, 64, 64, 3)
    assert np.isfinite(image).all()
    assert out.nsfw_content_detected is None  # no safety checker ran


def test_layout_has_no_safety_checker_and_sd_latent_scale(tiny_diffusion: Path) -> None:
    index = json.loads((tiny_diffusion / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    assert index["requires_safety_checker"] is False
    assert index["safety_checker"] == [None, None]
    for part in ("unet", "vae", "text_encoder"):
        assert list((tiny_diffusion / part).glob("*.safetensors")), part
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        assert (tiny_diffusion / "tokenizer" / name).is_file()
    vae = json.loads((tiny_diffusion / "vae" / "config.json").read_text())
    assert vae["scaling_factor"] == pytest.approx(0.18215)


def test_clip_tokenizer_round_trips_and_fits_the_text_encoder(tiny_diffusion: Path) -> None:
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(str(tiny_diffusion / "tokenizer"))
    text_config = json.loads((tiny_diffusion / "text_encoder" / "config.json").read_text())
    ids = tok("The quick brown fox").input_ids
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert len(ids) < len("the quick brown fox") + 2  # merges were learned
    assert tok.decode(ids, skip_special_tokens=True) == "the quick brown fox"
    assert len(tok) == text_config["vocab_size"]
    assert tok.model_max_length == text_config["max_position_embeddings"] == 77


def test_diffusion_is_deterministic_per_seed(tmp_path: Path) -> None:
    a = _digest(build("diffusion", tmp_path / "a", seed=2))
    b = _digest(build("diffusion", tmp_path / "b", seed=2))
    assert a == b
    c = _digest(build("diffusion", tmp_path / "c", seed=3))
    assert (
        a["unet/diffusion_pytorch_model.safetensors"]
        != c["unet/diffusion_pytorch_model.safetensors"]
    )
    assert a["tokenizer/vocab.json"] == c["tokenizer/vocab.json"]
