"""The tiny Stable Diffusion pipeline (torch stack): diffusers reloads it and it makes a 64x64 image."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

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


# --- sd3: SD3Transformer2DModel, two CLIPs with projection, no T5 ---------------------------------


def _load_sd3(path: Path) -> Any:
    from diffusers import DiffusionPipeline

    # A required component saved as [null, null] loads only when passed as None (diffusers 0.42).
    pipe = DiffusionPipeline.from_pretrained(str(path), text_encoder_3=None, tokenizer_3=None)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_sd3_reloads_and_makes_a_64x64_image(tiny_diffusion_sd3: Path) -> None:
    import numpy as np
    import torch

    pipe = _load_sd3(tiny_diffusion_sd3)
    assert type(pipe).__name__ == "StableDiffusion3Pipeline"
    assert type(pipe.transformer).__name__ == "SD3Transformer2DModel"
    assert pipe.text_encoder_3 is None and pipe.tokenizer_3 is None
    assert pipe.vae_scale_factor * pipe.patch_size == 16  # 64x64 -> 8x8x16 latent -> 4x4 patches
    seen: list[dict[str, tuple[int, ...]]] = []
    pipe.transformer.register_forward_pre_hook(
        lambda _m, _a, kw: seen.append(
            {k: tuple(v.shape) for k, v in kw.items() if k != "timestep" and hasattr(v, "shape")}
        ),
        with_kwargs=True,
    )
    image = pipe(
        "a red cat on a blue box",
        num_inference_steps=2,
        height=64,
        width=64,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    ).images
    assert image.shape == (1, 64, 64, 3)
    assert np.isfinite(image).all() and image.std() > 0
    # CFG batch 2; 77 CLIP rows + 256 zero T5 rows, 128 wide; pooled CLIP-L 32 + CLIP-G 48
    assert seen == 2 * [
        {
            "hidden_states": (2, 16, 8, 8),
            "encoder_hidden_states": (2, 77 + 256, 128),
            "pooled_projections": (2, 80),
        }
    ]


def test_sd3_without_t5_fails_plain_from_pretrained(tiny_diffusion_sd3: Path) -> None:
    """The fact load_diffusion works around: diffusers refuses a required component saved null."""
    from diffusers import DiffusionPipeline

    with pytest.raises(ValueError, match="expected"):
        DiffusionPipeline.from_pretrained(str(tiny_diffusion_sd3))


def test_sd3_layout_and_latent_settings(tiny_diffusion_sd3: Path) -> None:
    root = tiny_diffusion_sd3
    index = json.loads((root / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusion3Pipeline"
    assert index["transformer"] == ["diffusers", "SD3Transformer2DModel"]
    assert index["scheduler"] == ["diffusers", "FlowMatchEulerDiscreteScheduler"]
    for part in ("text_encoder", "text_encoder_2"):
        assert index[part] == ["transformers", "CLIPTextModelWithProjection"]
    assert index["text_encoder_3"] == index["tokenizer_3"] == [None, None]
    assert not (root / "text_encoder_3").exists() and not (root / "tokenizer_3").exists()
    for part in ("transformer", "vae", "text_encoder", "text_encoder_2"):
        assert list((root / part).glob("*.safetensors")), part
    for part in ("tokenizer", "tokenizer_2"):
        for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
            assert (root / part / name).is_file(), f"{part}/{name}"
    vae = json.loads((root / "vae/config.json").read_text())
    assert vae["latent_channels"] == 16
    assert vae["scaling_factor"] == pytest.approx(1.5305)
    assert vae["shift_factor"] == pytest.approx(0.0609)
    assert vae["use_quant_conv"] is False and vae["use_post_quant_conv"] is False
    tr = json.loads((root / "transformer/config.json").read_text())
    assert tr["in_channels"] == tr["out_channels"] == 16
    assert tr["caption_projection_dim"] == tr["num_attention_heads"] * tr["attention_head_dim"]
    te = [
        json.loads((root / p / "config.json").read_text())
        for p in ("text_encoder", "text_encoder_2")
    ]
    assert tr["pooled_projection_dim"] == sum(c["projection_dim"] for c in te)
    assert tr["joint_attention_dim"] >= sum(c["hidden_size"] for c in te)
    sched = json.loads((root / "scheduler/scheduler_config.json").read_text())
    assert sched["shift"] == 3.0
    tok2 = json.loads((root / "tokenizer_2/tokenizer_config.json").read_text())
    assert tok2["pad_token"] == "!"  # open_clip's pad, as SD3's tokenizer_2
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert size < 4 * 2**20


def test_sd3_is_deterministic_per_seed(tmp_path: Path) -> None:
    a = _digest(build("diffusion", tmp_path / "a", variant="sd3", seed=2))
    b = _digest(build("diffusion", tmp_path / "b", variant="sd3", seed=2))
    assert a == b
    c = _digest(build("diffusion", tmp_path / "c", variant="sd3", seed=3))
    weights = "transformer/diffusion_pytorch_model.safetensors"
    assert a[weights] != c[weights]
    assert a["tokenizer_2/vocab.json"] == c["tokenizer_2/vocab.json"]
