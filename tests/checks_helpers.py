"""Helpers for the check-family tests: run one family on a directory, edit configs, rewrite headers.

Broken variants are made from private copies of the tiny models (conftest.py's llama and
llama4, tiny_model_factory) or from small directories written inline. Tensor data is zeros of the right length: the checks read
headers only, so the values never matter, but the files are valid safetensors.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from genai_common.doctor.registry import check_family
from genai_common.findings import Finding
from genai_common.formats.safetensors import encode_header, read_header
from genai_common.model import ModelDir

Spec = dict[str, tuple[str, tuple[int, ...]]]

# The plugin's tiny MLX models (fixture names): each passes every check family clean.
CLEAN_TINY = [
    "tiny_llm",
    "tiny_llm_qwen2",
    "tiny_llm_gemma",
    "tiny_llm_4bit",
    "tiny_llm_deepseek_v3",
    "tiny_vlm",
    "tiny_vlm_paligemma",
]


def run(path: Path, family: str, *, metadata_only: bool = False) -> list[Finding]:
    md = ModelDir.open(path, metadata_only=metadata_only)
    return check_family(family, md)


def codes(path: Path, family: str, **kw: Any) -> list[str]:
    return [f.code for f in run(path, family, **kw)]


def problems(path: Path, family: str, **kw: Any) -> list[Finding]:
    """Findings at warning or error (what a clean model must not have)."""
    return [f for f in run(path, family, **kw) if f.severity != "info"]


def messages(path: Path, family: str, code: str, **kw: Any) -> list[str]:
    return [f.message for f in run(path, family, **kw) if f.code == code]


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def edit_json(path: Path, change: Callable[[dict], Any]) -> None:
    """Apply `change` to the JSON object in `path` (in place, or by returning a new object)."""
    data = read_json(path)
    out = change(data)
    data = out if isinstance(out, dict) else data
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def without(*keys: str) -> Callable[[dict], None]:
    """A change for edit_json / rewrite_tensors that removes these keys."""

    def change(d: dict) -> None:
        for key in keys:
            d.pop(key, None)

    return change


def write_safetensors(path: Path, spec: Spec) -> Path:
    """A valid safetensors file with these names (sorted), dtypes and shapes; data is zeros."""
    head, size = encode_header({name: spec[name] for name in sorted(spec)}, {"format": "mlx"})
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(head)
        fh.write(b"\0" * size)
    return path


def read_spec(path: Path) -> Spec:
    return {name: (t.dtype, t.shape) for name, t in read_header(path).tensors.items()}


def rewrite_tensors(
    model: Path, change: Callable[[Spec], Spec | None], file: str = "model.safetensors"
) -> None:
    """Rewrite one weight file's header through `change` (data becomes zeros)."""
    path = model / file
    spec = read_spec(path)
    out = change(spec)
    write_safetensors(path, out if out is not None else spec)
    index = model / "model.safetensors.index.json"
    if index.exists():  # keep the index naming what is stored
        final = read_spec(path)
        edit_json(index, lambda d: {**d, "weight_map": {k: file for k in final}})


# A tiny multi-head-latent-attention model (DeepSeek V3 layout: q and kv low-rank projections,
# the first layer dense, then routed + shared experts), sized so every width is a multiple of 32.
MLA_CONFIG: dict[str, Any] = {
    "architectures": ["DeepseekV3ForCausalLM"],
    "model_type": "deepseek_v3",
    "vocab_size": 256,
    "hidden_size": 64,
    "intermediate_size": 128,
    "moe_intermediate_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "n_shared_experts": 1,
    "n_routed_experts": 4,
    "num_experts_per_tok": 2,
    "n_group": 1,
    "topk_group": 1,
    "first_k_dense_replace": 1,
    "kv_lora_rank": 64,
    "q_lora_rank": 32,
    "qk_rope_head_dim": 16,
    "qk_nope_head_dim": 32,
    "v_head_dim": 32,
    "max_position_embeddings": 128,
    "rms_norm_eps": 1e-6,
    "rope_scaling": {
        "type": "yarn",
        "factor": 1.0,
        "original_max_position_embeddings": 128,
        "beta_fast": 32,
        "beta_slow": 1,
        "mscale": 1.0,
        "mscale_all_dim": 0.0,
    },
    "torch_dtype": "float32",
}


def mlx_lm_model(config: dict[str, Any]) -> Any:
    """mlx-lm's own model class for config["model_type"], randomly initialised."""
    import importlib

    module = importlib.import_module(f"mlx_lm.models.{config['model_type']}")
    return module.Model(module.ModelArgs.from_dict(config))


# Gated-delta-net widths (Qwen3-Next, Qwen3.5 linear-attention layers), tiny
LINEAR_ATTENTION: dict[str, Any] = {
    "linear_num_value_heads": 4,
    "linear_num_key_heads": 2,
    "linear_key_head_dim": 16,
    "linear_value_head_dim": 16,
    "linear_conv_kernel_dim": 4,
}
# Tiny widths of the hybrid families whose layer pattern decides the KV cache; each test adds the
# pattern it needs (LFM2 full_attn_idxs, Nemotron-H hybrid_override_pattern, Jamba's period)
HYBRID_TINY: dict[str, dict[str, Any]] = {
    "lfm2": {
        "conv_bias": False,
        "conv_L_cache": 3,
        "block_dim": 64,
        "block_multiple_of": 32,
        "block_ffn_dim_multiplier": 1.0,
        "block_auto_adjust_ff_dim": False,
        "block_ff_dim": 128,
    },
    "nemotron_h": {
        "mamba_num_heads": 8,
        "mamba_head_dim": 16,
        "mamba_proj_bias": False,
        "ssm_state_size": 8,
        "conv_kernel": 4,
        "n_groups": 1,
        "use_conv_bias": True,
        "use_bias": False,
        "time_step_limit": [0.0, 1e9],  # the default's Infinity is not JSON (JSON004)
    },
    "jamba": {
        "expert_layer_offset": 1,
        "expert_layer_period": 2,
        "mamba_d_conv": 4,
        "mamba_d_state": 8,
        "mamba_expand": 2,
    },
}
MAX_TINY_PARAMETERS = 4_000_000


def save_checkpoint(dest: Path, model: Any, config: dict[str, Any], name: str) -> Path:
    """model.safetensors with `model`'s parameters (MLX layout) and config.json, refusing a model
    that was built with its full-size defaults: an architecture whose config keys were not given
    once wrote 22 GB here and filled the disk. The parameters are lazy until saved."""
    import mlx.core as mx
    from mlx.utils import tree_flatten

    weights = dict(tree_flatten(model.parameters()))
    size = sum(w.size for w in weights.values())
    if size > MAX_TINY_PARAMETERS:
        pytest.fail(f"{name} was built with its defaults ({size:,} parameters), not tiny")
    dest.mkdir(parents=True, exist_ok=True)
    mx.save_safetensors(str(dest / "model.safetensors"), weights, metadata={"format": "mlx"})
    (dest / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return dest


def mlx_lm_checkpoint(dest: Path, config: dict[str, Any]) -> Path:
    """config.json + model.safetensors with the parameters of mlx-lm's model for `config`
    (mlx-lm's own layout, as an mlx-community conversion stores it). Needs mlx and mlx-lm."""
    return save_checkpoint(dest, mlx_lm_model(config), config, config["model_type"])
