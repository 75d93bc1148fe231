"""The static doctor on mlx-lm's own layouts: no false alarm on any architecture it loads.

For each model type below, mlx-lm's own Model class is built from a tiny config, its parameters
are saved as model.safetensors and the config it was built with (the ModelArgs, every default
filled in) as config.json: the layout an mlx-community conversion of that architecture has. Every
static family must then be silent at warning and error (no tokenizer is written: TOK001 aside).

Each architecture that raised a false alarm here was a defect in the checks (the gated query of
Qwen3-Next and Qwen3.5, BitNet's packed ternary weights, PLaMo's shared kv heads, stacked experts
under `experts.switch_mlp`, Mamba's missing attention heads, LFM2's always-tied head, MiniCPM3's
MLA values of hidden/heads and longrope over qk_rope_head_dim, Kimi Linear's delta-rule layers
named self_attn). The second test breaks a copy and checks the real defect is still caught. A model
type whose arguments mlx-lm changes fails here with the TypeError: update its entry.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from checks_helpers import HYBRID_TINY, LINEAR_ATTENTION, save_checkpoint

from genai_common.doctor import diagnose

BASE: dict[str, Any] = {
    "vocab_size": 256,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "rms_norm_eps": 1e-6,
    "norm_eps": 1e-5,
    "layer_norm_eps": 1e-5,
    "layer_norm_epsilon": 1e-5,
    "max_position_embeddings": 256,
    "rope_theta": 10000.0,
    "rope_scaling": None,
    "partial_rotary_factor": 0.5,
    "tie_word_embeddings": False,
    "attention_bias": False,
    "mlp_bias": False,
    "sliding_window": 64,
    "num_experts": 4,
    "num_local_experts": 4,
    "num_experts_per_tok": 2,
    "moe_intermediate_size": 32,
    "shared_expert_intermediate_size": 32,
}
MLA = {
    "n_shared_experts": 1,
    "n_routed_experts": 4,
    "first_k_dense_replace": 1,
    "kv_lora_rank": 32,
    "q_lora_rank": 32,
    "qk_rope_head_dim": 16,
    "qk_nope_head_dim": 16,
    "v_head_dim": 16,
    "n_group": 1,
    "topk_group": 1,
}
MINISTRAL3 = {
    "rope_parameters": {
        "rope_type": "default",
        "rope_theta": 10000.0,
        "llama_4_scaling_beta": 0.1,
        "original_max_position_embeddings": 256,
    },
    "layer_types": ["sliding_attention", "full_attention"],
}
# model type -> what it needs beyond BASE (mlx-lm 0.32)
ZOO: dict[str, dict[str, Any]] = {
    **{
        name: {}
        for name in (
            "bitnet",
            "cohere",
            "cohere2",
            "falcon_h1",
            "gemma",
            "gemma2",
            "gemma3_text",
            "glm",
            "glm4",
            "gpt_oss",
            "helium",
            "hunyuan_v1_dense",
            "internlm2",
            "internlm3",
            "iquestloopcoder",
            "laguna",
            "llama",
            "mimo",
            "mixtral",
            "muse_glimmer",
            "nanbeige",
            "nanochat",
            "olmo2",
            "olmoe",
            "phi",
            "phi3",
            "phimoe",
            "plamo",
            "plamo2",
            "plamo3",
            "qwen",
            "qwen2",
            "qwen2_moe",
            "qwen2_vl",
            "qwen3",
            "qwen3_vl",
            "seed_oss",
            "smollm3",
            "starcoder2",
            "talkie",
            "telechat3",
        )
    },
    **{name: MLA for name in ("deepseek", "deepseek_v3", "deepseek_v32", "deepseek_v41")},
    **{name: MLA for name in ("glm4_moe_lite", "bailing_moe_v3", "youtu_llm")},
    "granite": {
        "logits_scaling": 1.0,
        "attention_multiplier": 1.0,
        "embedding_multiplier": 1.0,
        "residual_multiplier": 1.0,
    },
    "exaone4": {"sliding_window_pattern": "LLG"},
    "granitemoe": {
        "logits_scaling": 1.0,
        "attention_multiplier": 1.0,
        "embedding_multiplier": 1.0,
        "residual_multiplier": 1.0,
    },
    "dots1": {
        "first_k_dense_replace": 1,
        "n_routed_experts": 4,
        "n_shared_experts": 1,
        "norm_topk_prob": True,
        "routed_scaling_factor": 1.0,
    },
    "ernie4_5_moe": {
        "use_bias": False,
        "moe_num_experts": 4,
        "moe_k": 2,
        "moe_intermediate_size": 32,
        "moe_num_shared_experts": 1,
        "moe_layer_start_index": 1,
    },
    "apertus": {"post_norm": False, "qk_norm": True},
    "openelm": {  # its own names, and head counts per layer
        "num_transformer_layers": 2,
        "model_dim": 64,
        "ffn_dim_divisor": 16,
        "num_query_heads": [4, 4],
        "num_kv_heads": [1, 2],
        "ffn_multipliers": [1.0, 2.0],
    },
    "stablelm": {"use_qkv_bias": False},
    "gpt_bigcode": {"n_embd": 64, "n_layer": 2, "n_inner": 128, "n_head": 4, "n_positions": 256},
    "recurrent_gemma": {
        "conv1d_width": 4,
        "logits_soft_cap": 30.0,
        "attention_window_size": 64,
        "block_types": ["recurrent", "attention"],
    },
    "llama4_text": {"intermediate_size_mlp": 128, "no_rope_layers": [1, 0], "use_qk_norm": False},
    # state-space and hybrid models (no attention heads, or attention on a few layers)
    "mamba": {
        "state_size": 8,
        "conv_kernel": 4,
        "use_bias": False,
        "use_conv_bias": True,
        "time_step_rank": 4,
    },
    "mamba2": {
        "num_heads": 8,
        "state_size": 8,
        "conv_kernel": 4,
        "n_groups": 1,
        "use_bias": False,
        "use_conv_bias": True,
        "time_step_limit": [0.0, 1e9],  # the default's Infinity is not JSON (JSON004)
        "time_step_rank": 4,
    },
    "nemotron_h": {**HYBRID_TINY["nemotron_h"], "hybrid_override_pattern": ["M", "*"]},
    "jamba": {**HYBRID_TINY["jamba"], "attn_layer_offset": 1, "attn_layer_period": 2},
    "lfm2": {**HYBRID_TINY["lfm2"], "full_attn_idxs": [1]},
    "gptj": {"n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 256, "rotary_dim": 8},
    "ernie4_5": {"use_bias": False},
    "minicpm": {"dim_model_base": 64, "scale_depth": 1.0, "scale_emb": 1.0},
    "nemotron": {"hidden_act": "relu2"},
    "glm4_moe": {
        **MLA,
        "norm_topk_prob": True,
        "routed_scaling_factor": 1.0,
        "use_qk_norm": False,
    },
    "hunyuan": {
        "moe_topk": 2,
        "num_shared_expert": 1,
        "use_mixed_mlp_moe": True,
        "use_qk_norm": True,
        "use_cla": False,
        "cla_share_factor": 2,
        "rope_scaling": {"alpha": 1000.0, "factor": 1.0, "type": "dynamic"},
    },
    # MLA without head_dim or v_head_dim (values hidden/heads wide), longrope on the rope part
    "minicpm3": {
        **{k: v for k, v in MLA.items() if k != "v_head_dim"},
        "dim_model_base": 64,
        "scale_depth": 1.0,
        "scale_emb": 1.0,
        "rope_scaling": {
            "type": "longrope",
            "original_max_position_embeddings": 256,
            "short_factor": [1.0] * 8,  # qk_rope_head_dim / 2
            "long_factor": [1.0] * 8,
        },
    },
    "olmo3": {"layer_types": ["sliding_attention", "full_attention"]},
    "ministral3": MINISTRAL3,
    "exaone": {"num_layers": 2},
    "bailing_moe": {
        "num_shared_experts": 1,
        "first_k_dense_replace": 1,
        "norm_topk_prob": True,
        "topk_group": 1,
    },
    "baichuan_m1": {"sliding_window_layers": [0], "conv_window": 2},
    "afmoe": {
        "layer_types": ["sliding_attention", "full_attention"],
        "num_dense_layers": 1,
        "num_shared_experts": 1,
    },
    "granitemoehybrid": {
        "logits_scaling": 1.0,
        "attention_multiplier": 1.0,
        "embedding_multiplier": 1.0,
        "residual_multiplier": 1.0,
        "layer_types": ["mamba", "attention"],
        "shared_intermediate_size": 32,
        "mamba_n_heads": 8,
        "mamba_d_head": 16,
        "mamba_proj_bias": False,
        "mamba_d_state": 8,
        "mamba_d_conv": 4,
        "mamba_n_groups": 1,
        "mamba_conv_bias": True,
        "time_step_limit": [0.0, 1e9],
    },
    # MLA layers beside delta-rule layers that keep the self_attn name (1-based kda_layers)
    "kimi_linear": {
        **MLA,
        "model_max_length": 256,
        "num_experts_per_token": 2,
        "linear_attn_config": {
            "kda_layers": [2],
            "full_attn_layers": [1],
            "num_heads": 4,
            "head_dim": 16,
            "short_conv_kernel_size": 4,
        },
    },
    # the text model under text_config (the multimodal checkpoints' language part)
    "mistral3": {"text_config": {**BASE, "model_type": "ministral3", **MINISTRAL3}},
    "gemma3n": {
        "text_config": {
            **BASE,
            "model_type": "gemma3n_text",
            "num_kv_shared_layers": 0,
            "vocab_size_per_layer_input": 256,
            "rope_local_base_freq": 10000.0,
            "final_logit_softcapping": 30.0,
            "layer_types": ["sliding_attention", "full_attention"],
            "activation_sparsity_pattern": [0.0, 0.0],
            "hidden_size_per_layer_input": 8,
            "altup_num_inputs": 2,
            "altup_coef_clip": 120.0,
            "altup_correct_scale": True,
            "altup_active_idx": 0,
            "laurel_rank": 8,
        }
    },
    # gated delta nets beside gated-query attention (text under text_config for Qwen3.5)
    **{name: LINEAR_ATTENTION for name in ("qwen3_5", "qwen3_5_moe")},
    "qwen3_next": {
        **LINEAR_ATTENTION,
        "decoder_sparse_step": 1,
        "norm_topk_prob": True,
        "mlp_only_layers": [],
    },
}


def mlx_lm_layout(dest: Path, model_type: str, edit: Callable[[dict], None] | None = None) -> Path:
    """model.safetensors and config.json of mlx-lm's Model for `model_type`, tiny; `edit`
    changes the config.json written afterwards (a broken copy)."""
    module = importlib.import_module(f"mlx_lm.models.{model_type}")
    args = module.ModelArgs.from_dict({**BASE, **ZOO[model_type], "model_type": model_type})
    config = {k: v for k, v in dataclasses.asdict(args).items() if v is not None}
    config.update(model_type=model_type, torch_dtype="float32")
    if edit is not None:
        edit(config)
    return save_checkpoint(dest, module.Model(args), config, model_type)


@pytest.mark.parametrize("model_type", sorted(ZOO))
def test_no_false_alarm_on_mlx_lm_layouts(model_type: str, tmp_path: Path) -> None:
    pytest.importorskip("mlx_lm", reason="mlx-lm is not installed (genai-common[llm])")
    model = mlx_lm_layout(tmp_path / model_type, model_type)
    report = diagnose(model)
    alarms = [
        f"{f.code}: {f.message}"
        for f in report.findings
        if f.severity != "info" and f.code != "TOK001"  # no tokenizer files are written
    ]
    assert alarms == []
    assert report.kind == "llm"


def _set(key: str, value: Any) -> Callable[[dict], None]:
    def edit(config: dict) -> None:
        config[key] = value

    return edit


def _rope_lists(n: int) -> Callable[[dict], None]:
    def edit(config: dict) -> None:
        config["rope_scaling"] = {**config["rope_scaling"], "short_factor": [1.0] * n}

    return edit


# architecture, what is broken in config.json, the finding that must catch it
BROKEN = [
    ("minicpm3", _set("v_head_dim", 32), "CFG033"),  # kv_b_proj holds 4 x (16 + 16)
    ("minicpm3", _set("hidden_size", 128), "CFG030"),  # values hidden/heads: o_proj takes 64
    ("minicpm3", _rope_lists(16), "CFG062"),  # longrope over qk_rope 16: 8 factors
    ("kimi_linear", _set("qk_nope_head_dim", 32), "CFG033"),  # its MLA layer is still judged
]


@pytest.mark.parametrize(
    ("model_type", "edit", "code"),
    BROKEN,
    ids=[f"{n}-{c}-{i}" for i, (n, _, c) in enumerate(BROKEN)],
)
def test_broken_copies_still_caught(
    model_type: str, edit: Callable[[dict], None], code: str, tmp_path: Path
) -> None:
    pytest.importorskip("mlx_lm", reason="mlx-lm is not installed (genai-common[llm])")
    report = diagnose(mlx_lm_layout(tmp_path / model_type, model_type, edit))
    found = {f.code for f in report.findings if f.severity in ("error", "warning")}
    assert code in found, [f"{f.code}: {f.message}" for f in report.findings]
