"""MEM: exact weight bytes from headers, KV cache arithmetic, and the verdicts against a machine.

The verdicts are pure functions of the model and a Machine (total RAM, budget, max buffer), so the
failing cases pass small machines explicitly instead of needing a model larger than this one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from checks_helpers import (
    HYBRID_TINY,
    LINEAR_ATTENTION,
    MLA_CONFIG,
    edit_json,
    mlx_lm_checkpoint,
    mlx_lm_model,
    problems,
)

from genai_common.doctor.rules import memory
from genai_common.formats.safetensors import read_header
from genai_common.model import ModelDir
from genai_common.model.memory import layer_kinds
from genai_common.runtime.machine import Machine, machine

KiB = 1024
BIG = Machine(2**40, 2**40, "test", None)  # room for anything: only the informational findings


def data_bytes(path: Path) -> int:
    return path.stat().st_size - 8 - read_header(path).header_len


def codes_on(model: Path, machine: Machine) -> list[str]:
    return [f.code for f in memory.estimate(ModelDir.open(model), machine)]


@pytest.mark.parametrize("fixture", ["tiny_llm", "tiny_llm_4bit", "tiny_vlm"])
def test_clean_tiny_models_fit_this_machine(fixture: str, request: pytest.FixtureRequest) -> None:
    model = request.getfixturevalue(fixture)
    assert problems(model, "memory") == []
    assert machine().total and machine().total > 0


@pytest.mark.parametrize("fixture", ["tiny_llm", "tiny_llm_4bit"])
def test_weight_bytes_are_exact(fixture: str, request: pytest.FixtureRequest) -> None:
    model = request.getfixturevalue(fixture)
    total, unknown, largest = ModelDir.open(model).memory.weights
    assert unknown == 0
    assert total == sum(data_bytes(p) for p in model.glob("model*.safetensors"))  # scales/biases in
    assert largest is not None


def test_kv_cache_per_token(tiny_llm: Path) -> None:
    # 2 layers x (k, v) x 2 kv heads x head_dim 16 x 2 bytes (float16)
    per_token, at_ctx, one_layer = ModelDir.open(tiny_llm).memory.kv_bytes(2048)
    assert per_token == 2 * 2 * 2 * 16 * 2 == 256
    assert at_ctx == 256 * 2048 and one_layer == 128 * 2048


def test_kv_cache_sliding_layers_hold_a_window(llama: Path) -> None:
    edit_json(
        llama / "config.json",
        lambda d: d.update(layer_types=["sliding_attention", "full_attention"], sliding_window=16),
    )
    _, at_ctx, _ = ModelDir.open(llama).memory.kv_bytes(2048)
    assert at_ctx == 128 * 16 + 128 * 2048


def test_kv_cache_linear_attention_layers_hold_none(llama: Path) -> None:
    edit_json(
        llama / "config.json",
        lambda d: d.update(layer_types=["linear_attention", "full_attention"]),
    )
    per_token, _, _ = ModelDir.open(llama).memory.kv_bytes(2048)
    assert per_token == 128


def test_mem001_reports_the_figures(tiny_llm: Path) -> None:
    [f] = memory.estimate(ModelDir.open(tiny_llm), Machine(2**30, 2**30, "RAM", None))
    assert f.code == "MEM001" and "KV cache 256 B/token, 512.00 KiB at 2048 tokens" in f.message


def test_mem010_weights_exceed_ram(tiny_llm: Path) -> None:
    assert "MEM010" in codes_on(tiny_llm, Machine(100 * KiB, 100 * KiB, "RAM", None))


def test_mem011_weights_plus_kv_exceed_budget(tiny_llm: Path) -> None:
    findings = memory.estimate(ModelDir.open(tiny_llm), Machine(2**30, 600 * KiB, "test", None))
    [f] = [f for f in findings if f.code == "MEM011"]
    assert "at 2048 tokens" in f.message and "tokens fit" in f.message


def test_mem012_weights_exceed_working_set(tiny_llm: Path) -> None:
    assert "MEM012" in codes_on(tiny_llm, Machine(2**30, 200 * KiB, "working set", None))


def test_mem020_largest_buffer(tiny_llm: Path) -> None:
    assert "MEM020" not in codes_on(tiny_llm, Machine(2**30, 2**30, "RAM", 2**20))
    findings = memory.estimate(ModelDir.open(tiny_llm), Machine(2**30, 2**30, "RAM", 100 * KiB))
    [f] = [f for f in findings if f.code == "MEM020"]
    assert "one layer's KV cache at 2048 tokens is 256.00 KiB" in f.message


def test_metadata_only_uses_index_total_size(tmp_path: Path) -> None:
    # Llama-3.1-8B in bf16 before download: 16 GB of weights + 16 GiB of KV at 128k tokens
    from public_configs import write_metadata_only

    model = write_metadata_only(tmp_path, "Llama-3.1-8B-Instruct")
    edit_json(
        model / "model.safetensors.index.json",
        lambda d: d["metadata"].update(total_size=16060522496),
    )
    md = ModelDir.open(model, metadata_only=True)
    findings = {
        f.code: f.message
        for f in memory.estimate(md, Machine(64 * 2**30, 24 * 2**30, "test", None))
    }
    assert findings["MEM001"].startswith("weights 14.96 GiB (index total_size)")
    assert "KV 16.00 GiB at 131072 tokens" in findings["MEM011"]
    roomy = {f.code for f in memory.estimate(md, Machine(2**40, 2**40, "test", None))}
    assert roomy == {"MEM001"}


def test_diffusion_weights_are_summed_over_components(tmp_path: Path) -> None:
    from test_checks_diffusion import sd_pipeline

    sd = sd_pipeline(tmp_path / "sd")
    total, unknown, largest = ModelDir.open(sd).memory.weights
    unet = 32 * 4 * 3 * 3 * 4
    vae = 16 * 4 * 3 * 3 * 4
    assert (total, unknown, largest.name) == (unet + vae, 0, "conv_in.weight")
    assert "MEM010" in codes_on(sd, Machine(1024, 1024, "RAM", None))


def _cache_bytes_per_token(model: object) -> int:
    """Bytes one token takes in the prompt cache mlx-lm makes for `model`, read from the cache
    arrays after a 10-token prompt (each array's bytes over its allocated positions)."""
    import mlx.core as mx
    from mlx_lm.models.cache import make_prompt_cache

    cache = make_prompt_cache(model)
    model(mx.array([list(range(1, 11))]), cache=cache)
    total = 0
    for layer in cache:
        for sub in getattr(layer, "caches", [layer]):  # CacheList (deepseek_v32's indexer)
            for array in (sub.keys, sub.values):
                total += array.nbytes // array.shape[2]
    return total


MLA_FAMILIES = {
    "llama": {"head_dim": 16},  # plain K+V (the config keys below it ignores)
    "deepseek_v3": {},  # latent + rope key
    "glm4_moe_lite": {},  # latent + rope key
    "deepseek_v2": {},  # expanded per-head keys and values
    "deepseek_v32": {"index_head_dim": 16, "index_n_heads": 2, "index_topk": 4},  # + indexer
}


@pytest.mark.parametrize("model_type", sorted(MLA_FAMILIES))
def test_kv_estimate_is_what_mlx_lm_caches(model_type: str, tmp_path: Path) -> None:
    config = {**MLA_CONFIG, "model_type": model_type, **MLA_FAMILIES[model_type]}
    if model_type == "llama":
        config = {k: v for k, v in config.items() if "lora" not in k and "qk_" not in k}
        config["num_key_value_heads"] = 2
    measured = _cache_bytes_per_token(mlx_lm_model(config))
    (tmp_path / "config.json").write_text(json.dumps(config))
    per_token, at_context, _ = ModelDir.open(tmp_path, metadata_only=True).memory.kv_bytes(128)
    assert per_token == measured
    assert at_context == measured * 128


def test_deepseek_v3_kv_cache_is_the_latent(tmp_path: Path) -> None:
    # 61 layers x (512 + 64) x 2 bytes: 25x less than 2 x 128 heads x head_dim would say
    from public_configs import write_metadata_only

    md = ModelDir.open(write_metadata_only(tmp_path, "DeepSeek-V3"), metadata_only=True)
    [mem001] = [f for f in memory.estimate(md, Machine(2**40, 2**40, "test", None))]
    assert "KV cache 68.62 KiB/token, 10.72 GiB at 163840 tokens" in mem001.message
    assert "MLA latent as mlx-lm caches it: kv_lora_rank 512 + rope 64" in mem001.message


def test_mla_checkpoint_in_mlx_lm_layout_is_clean(tmp_path: Path) -> None:
    model = mlx_lm_checkpoint(tmp_path / "mla", MLA_CONFIG)
    for family in ("config", "quant", "memory", "formats", "files"):
        assert problems(model, family) == [], family


HYBRID = {
    "gemma3_text": {"sliding_window_pattern": 3},  # every third layer full
    "cohere2": {"sliding_window_pattern": 4, "layer_norm_eps": 1e-5, "logit_scale": 1.0},
    "exaone4": {
        "sliding_window_pattern": "LLG",
        "tie_word_embeddings": False,
        "rope_scaling": None,
    },
    "gemma2": {},  # alternates in attention, but mlx-lm caches every layer in full
    "qwen3_next": {  # every fourth layer full attention, the rest gated delta net
        "full_attention_interval": 4,
        **LINEAR_ATTENTION,
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "decoder_sparse_step": 1,
        "shared_expert_intermediate_size": 32,
        "moe_intermediate_size": 32,
        "norm_topk_prob": True,
        "partial_rotary_factor": 0.5,
        "mlp_only_layers": [],
    },
    "lfm2": {  # attention on full_attn_idxs, short convolutions elsewhere
        **HYBRID_TINY["lfm2"],
        "norm_eps": 1e-5,
        "full_attn_idxs": [2, 5],
    },
    "nemotron_h": {  # * attention, M mamba, - MLP only (no cache at all)
        **HYBRID_TINY["nemotron_h"],
        "attention_bias": False,
        "mlp_bias": False,
        "layer_norm_epsilon": 1e-5,
        "hybrid_override_pattern": list("M-M*M-*"),
    },
    "jamba": {  # attention where i % attn_layer_period == attn_layer_offset, mamba elsewhere
        **HYBRID_TINY["jamba"],
        "attn_layer_offset": 1,
        "attn_layer_period": 3,
        "num_experts": 4,
        "num_experts_per_tok": 2,
    },
    "kimi_linear": {  # MLA on the layers kda_layers leaves out
        **MLA_CONFIG,
        "model_type": "kimi_linear",
        "num_experts": 4,
        "model_max_length": 128,
        "linear_attn_config": {
            "kda_layers": [1, 2, 4, 5, 7],
            "full_attn_layers": [3, 6],
            "head_dim": 16,
            "num_heads": 4,
            "short_conv_kernel_size": 4,
        },
    },
}


@pytest.mark.parametrize("model_type", sorted(HYBRID))
def test_layer_kinds_are_the_caches_mlx_lm_makes(model_type: str) -> None:
    config = {
        "vocab_size": 64,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "rms_norm_eps": 1e-6,
        "sliding_window": 4,
        "max_position_embeddings": 128,
        "rope_theta": 10000.0,
        **HYBRID[model_type],
        "model_type": model_type,
        "num_hidden_layers": 7,
    }
    model = mlx_lm_model(config)
    caches = [type(c).__name__ for c in model.make_cache()] if hasattr(model, "make_cache") else []
    caches = caches or ["KVCache"] * 7  # no make_cache: mlx-lm gives every layer a KVCache
    kinds = layer_kinds(config, 7)
    kv = kinds.get("full_attention", 0) + kinds.get("sliding_attention", 0)
    assert kv == caches.count("KVCache") + caches.count("RotatingKVCache")
    assert kinds.get("sliding_attention", 0) == caches.count("RotatingKVCache")
    state = sum(kinds.get(k, 0) for k in ("linear_attention", "mamba", "conv"))
    assert state == caches.count("ArraysCache")  # a fixed state, not a growing cache
    assert sum(kinds.values()) == 7


def test_sliding_layers_hold_at_most_the_window(tmp_path: Path) -> None:
    config = {"model_type": "gemma3_text", "num_hidden_layers": 6, "num_attention_heads": 4}
    config |= {"num_key_value_heads": 1, "head_dim": 256, "hidden_size": 1024}
    config |= {"sliding_window": 512, "sliding_window_pattern": 6, "torch_dtype": "bfloat16"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    per_layer_token = 2 * 1 * 256 * 2
    per_token, total, largest = ModelDir.open(tmp_path, metadata_only=True).memory.kv_bytes(8192)
    assert per_token == 6 * per_layer_token
    assert total == per_layer_token * (5 * 512 + 8192)  # five sliding layers, one full
    assert largest == per_layer_token * 8192
    huge = layer_kinds({"sliding_window_pattern": 6}, 2**40)  # arithmetic, no list
    assert huge == {"full_attention": 2**40 // 6, "sliding_attention": 2**40 - 2**40 // 6}


def _sdxl_like(root: Path, *, dtype: str = "F16", force_upcast: bool = True) -> Path:
    """SDXL's shapes where the VAE decode is judged: unet sample_size 128, a four-level VAE of
    128/256/512/512 channels (1024 px), its weights' dtype and force_upcast."""
    from checks_helpers import write_safetensors
    from test_checks_diffusion import sd_pipeline

    sd = sd_pipeline(root)
    edit_json(sd / "model_index.json", lambda c: c.update(_class_name="StableDiffusionXLPipeline"))
    edit_json(sd / "unet/config.json", lambda c: c.update(sample_size=128))
    vae = {"block_out_channels": [128, 256, 512, 512], "sample_size": 1024}
    edit_json(sd / "vae/config.json", lambda c: c.update(vae, force_upcast=force_upcast))
    write_safetensors(
        sd / "vae/diffusion_pytorch_model.safetensors",
        {"decoder.conv_in.weight": (dtype, (512, 4, 3, 3))},
    )
    return sd


def test_vae_decode_estimate_at_the_default_resolution(tmp_path: Path) -> None:
    # 1024 x 1024 px x max(2.6 x 384, 3.8 x 256) values x 4 bytes (force_upcast: float32)
    sd = _sdxl_like(tmp_path / "sdxl")
    decode = ModelDir.open(sd).memory.vae_decode
    assert (decode.width, decode.height, decode.dtype) == (1024, 1024, "float32 (force_upcast)")
    assert decode.bytes == int(max(2.6 * 384, 3.8 * 256) * 4 * 1024 * 1024)
    findings = {f.code: f.message for f in memory.estimate(ModelDir.open(sd), BIG)}
    assert findings["MEM030"].startswith(
        "VAE decode at 1024x1024 (the pipeline's default) needs about 3.90 GiB of activations "
        "in float32 (force_upcast)"
    )
    assert "MEM031" not in findings
    # a bfloat16 VAE without force_upcast: 2 bytes a value, 1.25x for GroupNorm's float32
    bf16 = ModelDir.open(_sdxl_like(tmp_path / "bf16", dtype="BF16")).memory.vae_decode
    assert bf16.dtype == "bfloat16" and bf16.bytes == pytest.approx(decode.bytes * 2.5 / 4, abs=1)


def test_vae_decode_over_budget_is_a_warning(tmp_path: Path) -> None:
    sd = _sdxl_like(tmp_path / "sdxl")
    small = Machine(8 * 2**30, 2 * 2**30, "working set", None)
    [warning] = [f for f in memory.estimate(ModelDir.open(sd), small) if f.code == "MEM031"]
    assert warning.severity == "warning"
    assert "VAE decode at 1024x1024 3.90 GiB > budget 2.00 GiB (working set)" in warning.message
    assert "about 0.5 megapixels fit" in warning.message


def _measured_decode_peak(vae: object, latent: object) -> int:
    """The peak of live tensor bytes while `vae` decodes `latent` (exact: torch_cpu_peak)."""
    import torch

    from genai_common.runtime.memory import torch_cpu_peak

    with torch.inference_mode():
        return torch_cpu_peak(vae.decode, latent)[1]


@pytest.mark.torch
@pytest.mark.parametrize("fixture", ["tiny_diffusion", "tiny_diffusion_sd3"])
def test_vae_decode_estimate_is_what_the_decoder_allocates(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    import torch
    from diffusers import AutoencoderKL

    model = request.getfixturevalue(fixture)
    decode = ModelDir.open(model).memory.vae_decode
    vae = AutoencoderKL.from_pretrained(str(model / "vae")).eval()
    side = decode.height // 2 ** (len(vae.config.block_out_channels) - 1)
    measured = _measured_decode_peak(vae, torch.zeros(1, vae.config.latent_channels, side, side))
    assert decode.bytes == pytest.approx(measured, rel=0.1)


@pytest.mark.torch
def test_vae_decode_estimate_on_the_sd_vae_shape(tmp_path: Path) -> None:
    # the decoder SD 1.x/2.x, SDXL, SD3 and Flux share (128/256/512/512, two resnets per block),
    # random weights, decoding a 128x128 image
    import torch
    from diffusers import AutoencoderKL

    sd = _sdxl_like(tmp_path / "sdxl", dtype="F32", force_upcast=False)
    per_pixel = ModelDir.open(sd).memory.vae_decode.per_megapixel / 1e6
    blocks = ("DownEncoderBlock2D",) * 4, ("UpDecoderBlock2D",) * 4
    torch.manual_seed(0)
    vae = AutoencoderKL(
        down_block_types=blocks[0],
        up_block_types=blocks[1],
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
    ).eval()
    measured = _measured_decode_peak(vae, torch.zeros(1, 4, 16, 16))
    assert per_pixel * 128 * 128 == pytest.approx(measured, rel=0.1)


def test_tiny_deepseek_v3_kv_estimate_is_its_mlx_lm_cache(tiny_llm_deepseek_v3: Path) -> None:
    # the real layout (kv_b_proj, experts one by one) as mlx-lm loads it: the latent + rope key
    pytest.importorskip("mlx_lm", reason="the cache is mlx-lm's")
    from mlx_lm import load

    model, _ = load(str(tiny_llm_deepseek_v3))
    md = ModelDir.open(tiny_llm_deepseek_v3)
    per_token, at_context, _ = md.memory.kv_bytes(1000)
    assert per_token == _cache_bytes_per_token(model) and at_context == per_token * 1000
    [mem001] = [f for f in memory.estimate(md, BIG) if f.code == "MEM001"]
    assert "MLA latent as mlx-lm caches it: kv_lora_rank 64 + rope 32" in mem001.message


def test_qwen3_next_caches_only_its_full_attention_layers(tmp_path: Path) -> None:
    # Qwen/Qwen3-Next-80B-A3B-Instruct's published attention keys: 48 layers, every fourth full
    # attention (the rest gated delta nets with a fixed state), 2 kv heads of 256, 262,144
    # positions, bfloat16: 12 x 2 x 2 x 256 x 2 B = 24 KiB per token, not 96 KiB
    config = {
        "model_type": "qwen3_next",
        "hidden_size": 2048,
        "num_hidden_layers": 48,
        "num_attention_heads": 16,
        "num_key_value_heads": 2,
        "head_dim": 256,
        "full_attention_interval": 4,
        "max_position_embeddings": 262144,
        "torch_dtype": "bfloat16",
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    md = ModelDir.open(tmp_path, metadata_only=True)
    [mem001] = [f for f in memory.estimate(md, BIG) if f.code == "MEM001"]
    assert "KV cache 24.00 KiB/token, 6.00 GiB at 262144 tokens" in mem001.message


def test_openelm_kv_heads_per_layer_are_what_mlx_lm_caches(tmp_path: Path) -> None:
    config = {
        "model_type": "openelm",
        "head_dim": 16,
        "num_transformer_layers": 3,
        "model_dim": 64,
        "vocab_size": 64,
        "ffn_dim_divisor": 16,
        "num_query_heads": [4, 4, 8],
        "num_kv_heads": [1, 2, 4],
        "ffn_multipliers": [1.0, 1.0, 2.0],
        "torch_dtype": "float32",
    }
    measured = _cache_bytes_per_token(mlx_lm_model(config))
    (tmp_path / "config.json").write_text(json.dumps(config))
    per_token, at_context, largest = ModelDir.open(tmp_path, metadata_only=True).memory.kv_bytes(
        100
    )
    assert per_token == measured == (1 + 2 + 4) * 2 * 16 * 4
    assert (at_context, largest) == (measured * 100, 4 * 2 * 16 * 4 * 100)
