"""Published configs of public models (Hugging Face Hub, abridged to the keys the checks read) and
their weight names, for --metadata-only directories: the checks must raise no false alarm on them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from genai_common.testing.tiny_llm import DEEPSEEK_V3_YARN

LLAMA31_8B = {
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": False,
    "bos_token_id": 128000,
    "eos_token_id": [128001, 128008, 128009],
    "hidden_act": "silu",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "max_position_embeddings": 131072,
    "mlp_bias": False,
    "model_type": "llama",
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
        "rope_type": "llama3",
    },
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "vocab_size": 128256,
}
QWEN25_7B = {
    "architectures": ["Qwen2ForCausalLM"],
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "hidden_act": "silu",
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "max_position_embeddings": 32768,
    "max_window_layers": 28,
    "model_type": "qwen2",
    "num_attention_heads": 28,
    "num_hidden_layers": 28,
    "num_key_value_heads": 4,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "sliding_window": 131072,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "use_sliding_window": False,
    "vocab_size": 152064,
}
GEMMA2_2B = {
    "architectures": ["Gemma2ForCausalLM"],
    "attn_logit_softcapping": 50.0,
    "bos_token_id": 2,
    "eos_token_id": [1, 107],
    "final_logit_softcapping": 30.0,
    "head_dim": 256,
    "hidden_activation": "gelu_pytorch_tanh",
    "hidden_size": 2304,
    "intermediate_size": 9216,
    "max_position_embeddings": 8192,
    "model_type": "gemma2",
    "num_attention_heads": 8,
    "num_hidden_layers": 26,
    "num_key_value_heads": 4,
    "pad_token_id": 0,
    "query_pre_attn_scalar": 256,
    "rms_norm_eps": 1e-06,
    "rope_theta": 10000.0,
    "sliding_window": 4096,
    "torch_dtype": "bfloat16",
    "vocab_size": 256000,
}
PHI3_128K = {
    "architectures": ["Phi3ForCausalLM"],
    "bos_token_id": 1,
    "eos_token_id": 32000,
    "hidden_act": "silu",
    "hidden_size": 3072,
    "intermediate_size": 8192,
    "max_position_embeddings": 131072,
    "model_type": "phi3",
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 32,
    "original_max_position_embeddings": 4096,
    "pad_token_id": 32000,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {"long_factor": [1.0] * 48, "short_factor": [1.0] * 48, "type": "longrope"},
    "rope_theta": 10000.0,
    "sliding_window": 262144,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "vocab_size": 32064,
}
LLAVA15_7B = {
    "architectures": ["LlavaForConditionalGeneration"],
    "ignore_index": -100,
    "image_token_index": 32000,
    "model_type": "llava",
    "pad_token_id": 32001,
    "projector_hidden_act": "gelu",
    "text_config": {
        "architectures": ["LlamaForCausalLM"],
        "max_position_embeddings": 4096,
        "model_type": "llama",
        "rms_norm_eps": 1e-05,
        "torch_dtype": "float16",
        "vocab_size": 32064,
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "num_key_value_heads": 32,
    },
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
    "vision_config": {
        "hidden_size": 1024,
        "image_size": 336,
        "intermediate_size": 4096,
        "model_type": "clip_vision_model",
        "num_attention_heads": 16,
        "num_hidden_layers": 24,
        "patch_size": 14,
        "projection_dim": 768,
        "vocab_size": 32000,
    },
    "vision_feature_layer": -2,
    "vision_feature_select_strategy": "default",
    "vocab_size": 32064,
    "image_seq_length": 576,
}
QWEN2VL_7B = {
    "architectures": ["Qwen2VLForConditionalGeneration"],
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "vision_token_id": 151654,
    "image_token_id": 151655,
    "video_token_id": 151656,
    "hidden_act": "silu",
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "max_position_embeddings": 32768,
    "max_window_layers": 28,
    "model_type": "qwen2_vl",
    "num_attention_heads": 28,
    "num_hidden_layers": 28,
    "num_key_value_heads": 4,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "sliding_window": 32768,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "use_sliding_window": False,
    "vision_config": {
        "depth": 32,
        "embed_dim": 1280,
        "mlp_ratio": 4,
        "num_heads": 16,
        "in_chans": 3,
        "hidden_size": 3584,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "spatial_patch_size": 14,
        "temporal_patch_size": 2,
    },
    "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
    "vocab_size": 152064,
}

# deepseek-ai/DeepSeek-V3 (and R1, Kimi K2 in the same layout): multi-head latent attention, 256
# routed experts, the first three layers dense, one multi-token-prediction layer stored as
# layers.61 beyond num_hidden_layers. The FP8 quantization_config is left out (a bf16 copy).
DEEPSEEK_V3 = {
    "architectures": ["DeepseekV3ForCausalLM"],
    "attention_bias": False,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "first_k_dense_replace": 3,
    "hidden_act": "silu",
    "hidden_size": 7168,
    "intermediate_size": 18432,
    "kv_lora_rank": 512,
    "max_position_embeddings": 163840,
    "model_type": "deepseek_v3",
    "moe_intermediate_size": 2048,
    "moe_layer_freq": 1,
    "n_group": 8,
    "n_routed_experts": 256,
    "n_shared_experts": 1,
    "norm_topk_prob": True,
    "num_attention_heads": 128,
    "num_experts_per_tok": 8,
    "num_hidden_layers": 61,
    "num_key_value_heads": 128,
    "num_nextn_predict_layers": 1,
    "q_lora_rank": 1536,
    "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64,
    "rms_norm_eps": 1e-06,
    "rope_scaling": dict(DEEPSEEK_V3_YARN),
    "rope_theta": 10000,
    "routed_scaling_factor": 2.5,
    "scoring_func": "sigmoid",
    "tie_word_embeddings": False,
    "topk_group": 4,
    "topk_method": "noaux_tc",
    "torch_dtype": "bfloat16",
    "v_head_dim": 128,
    "vocab_size": 129280,
}


def deepseek_v3_names(layers: int = 61, experts: int = 256, dense: int = 3) -> list[str]:
    """DeepSeek-V3's weight names: MLA projections, dense then MoE MLPs, and the MTP layer."""
    names = ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"]
    attention = (
        "q_a_proj.weight",
        "q_a_layernorm.weight",
        "q_b_proj.weight",
        "kv_a_proj_with_mqa.weight",
        "kv_a_layernorm.weight",
        "kv_b_proj.weight",
        "o_proj.weight",
    )
    mlp = ("gate_proj.weight", "up_proj.weight", "down_proj.weight")
    for i in range(layers + 1):  # + the multi-token-prediction layer
        p = f"model.layers.{i}."
        names += [p + "self_attn." + a for a in attention]
        names += [p + "input_layernorm.weight", p + "post_attention_layernorm.weight"]
        if i < dense:
            names += [p + "mlp." + m for m in mlp]
            continue
        names += [p + "mlp.gate.weight", p + "mlp.gate.e_score_correction_bias"]
        names += [p + f"mlp.experts.{e}.{m}" for e in range(experts) for m in mlp]
        names += [p + "mlp.shared_experts." + m for m in mlp]
    mtp = f"model.layers.{layers}."
    names += [mtp + n for n in ("enorm.weight", "hnorm.weight", "eh_proj.weight")]
    names += [mtp + "shared_head.norm.weight", mtp + "shared_head.head.weight"]
    return names


def text_names(
    layers: int, *, prefix: str = "model.", head: str | None = "lm_head.weight"
) -> list[str]:
    names = [f"{prefix}embed_tokens.weight", f"{prefix}norm.weight"]
    for i in range(layers):
        p = f"{prefix}layers.{i}."
        names += [
            p + m
            for m in (
                "self_attn.q_proj.weight",
                "self_attn.k_proj.weight",
                "self_attn.v_proj.weight",
                "self_attn.o_proj.weight",
                "mlp.gate_proj.weight",
                "mlp.up_proj.weight",
                "mlp.down_proj.weight",
                "input_layernorm.weight",
                "post_attention_layernorm.weight",
            )
        ]
    return names + ([head] if head else [])


def vision_names(layers: int, prefix: str, block: str) -> list[str]:
    return [
        f"{prefix}{block}.{i}.{m}"
        for i in range(layers)
        for m in ("mlp.fc1.weight", "mlp.fc2.weight")
    ]


MODELS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "Llama-3.1-8B-Instruct": (LLAMA31_8B, text_names(32)),
    "Qwen2.5-7B-Instruct": (QWEN25_7B, text_names(28)),
    "gemma-2-2b-it": (GEMMA2_2B, text_names(26, head=None)),
    "Phi-3-mini-128k-instruct": (PHI3_128K, text_names(32)),
    "llava-1.5-7b-hf": (
        LLAVA15_7B,
        text_names(32, prefix="language_model.model.", head="language_model.lm_head.weight")
        + vision_names(24, "vision_tower.vision_model.", "encoder.layers")
        + ["multi_modal_projector.linear_1.weight", "multi_modal_projector.linear_2.weight"],
    ),
    "DeepSeek-V3": (DEEPSEEK_V3, deepseek_v3_names()),
    "Qwen2-VL-7B-Instruct": (
        QWEN2VL_7B,
        text_names(28) + vision_names(32, "visual.", "blocks") + ["visual.merger.mlp.0.weight"],
    ),
}


def write_metadata_only(root: Path, name: str) -> Path:
    """config.json and an index naming every weight (no weight files: --metadata-only)."""
    config, names = MODELS[name]
    model = root / name
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps(config), encoding="utf-8")
    index = {"metadata": {}, "weight_map": {n: "model-00001-of-00001.safetensors" for n in names}}
    (model / "model.safetensors.index.json").write_text(json.dumps(index), encoding="utf-8")
    return model
