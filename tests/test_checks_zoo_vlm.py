"""The static doctor on mlx-vlm's own layouts: no false alarm on the VLM families it loads.

For each model type below, mlx-vlm's own Model class is built from a tiny config the way
`mlx_vlm.utils.load_model` builds it (ModelConfig.from_dict, then the text/vision/perceiver
configs), its parameters are saved as model.safetensors (the names and shapes mlx-vlm's sanitize
produces: what an mlx-community conversion holds) and the config as config.json. Every static
family must then be silent at warning and error. No tokenizer or processor files are written:
TOK001 is the one finding that is about them, and it is left aside for every family.

Each family that raised a false alarm here was a defect in the checks (mlx-vlm 0.7.10): a connector
that pixel-shuffles before its first layer (Idefics3 and SmolVLM's scale_factor, Aya Vision and
LFM2-VL's downsample_factor, InternVL's downsample_ratio), Mistral 3's patch merger with its
spatial_merge_size at the top level, Mllama's projector taking vision_output_dim and its embedding
of vocab_size + 8 rows, Idefics2's gated connector and perceiver, GLM-4V's merger after a strided
downsample, Aya Vision's cohere2 language model tied by default, Kimi-VL's MoonViT (MLP fc0 up and
fc1 down, embed_dim beside a hidden_size that is no merger output, a projector over
merge_kernel_size windows). The second test breaks a copy of each of those layouts and checks the
real defect is still caught.

Left out: phi3_v (mlx-vlm builds a full CLIP ViT-L/14-336, about 300M parameters, whatever the
vision_config says); gemma3n, deepseek_vl_v2, minicpmv, molmo (not yet built tiny).
A model type whose arguments mlx-vlm changes fails here with its error.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from checks_helpers import save_checkpoint

from genai_common.doctor import diagnose

TEXT: dict[str, Any] = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "rms_norm_eps": 1e-6,
    "vocab_size": 256,
    "max_position_embeddings": 256,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
}
VISION: dict[str, Any] = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "intermediate_size": 64,
    "num_attention_heads": 2,
    "image_size": 32,
    "patch_size": 8,
    "layer_norm_eps": 1e-6,
}
QWEN_VISION: dict[str, Any] = {
    "depth": 2,
    "hidden_size": 32,
    "out_hidden_size": 64,
    "intermediate_size": 64,
    "num_heads": 2,
    "patch_size": 8,
    "spatial_patch_size": 8,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "image_size": 32,
}
MROPE = {"rope_type": "default", "mrope_section": [2, 3, 3], "mrope_interleaved": True}


def text(model_type: str, **extra: Any) -> dict[str, Any]:
    config = {"model_type": model_type, **TEXT, **extra}
    if model_type.startswith(("gemma", "cohere")):
        del config["tie_word_embeddings"]  # their configs leave it to the (tied) default
    return config


def vision(model_type: str, **extra: Any) -> dict[str, Any]:
    return {"model_type": model_type, **VISION, **extra}


# model type -> config.json (Hugging Face's shape: text_config and vision_config), mlx-vlm 0.7.10
ZOO: dict[str, dict[str, Any]] = {
    "qwen2_vl": {
        **text("qwen2_vl"),
        "image_token_id": 250,
        "video_token_id": 251,
        "vision_config": {
            "model_type": "qwen2_vl",
            **{
                k: v
                for k, v in QWEN_VISION.items()
                if k not in ("out_hidden_size", "intermediate_size")
            },
            "embed_dim": 32,
            "hidden_size": 64,
            "mlp_ratio": 2.0,
        },
    },
    "qwen2_5_vl": {
        **text("qwen2_5_vl"),
        "image_token_id": 250,
        "video_token_id": 251,
        "vision_config": {
            "model_type": "qwen2_5_vl",
            **QWEN_VISION,
            "window_size": 32,
            "fullatt_block_indexes": [1],
        },
    },
    **{
        name: {
            "model_type": name,
            "image_token_id": 250,
            "video_token_id": 251,
            "text_config": text(name, rope_scaling=MROPE, **moe),
            "vision_config": {
                "model_type": name,
                **QWEN_VISION,
                "num_position_embeddings": 16,
                "deepstack_visual_indexes": [0],
            },
        }
        for name, moe in (
            ("qwen3_vl", {}),
            (
                "qwen3_vl_moe",
                {
                    "num_experts": 4,
                    "num_experts_per_tok": 2,
                    "decoder_sparse_step": 1,
                    "mlp_only_layers": [],
                    "moe_intermediate_size": 32,
                },
            ),
        )
    },
    "glm4v": {
        "model_type": "glm4v",
        "image_token_id": 250,
        "video_token_id": 251,
        "text_config": text(
            "glm4v_text",
            eos_token_id=[0],
            partial_rotary_factor=0.5,
            rope_scaling={"rope_type": "default", "mrope_section": [2, 3, 3]},
        ),
        "vision_config": {
            "model_type": "glm4v",
            **{k: v for k, v in QWEN_VISION.items() if not k.startswith("spatial_patch")},
        },
    },
    "gemma3": {
        "model_type": "gemma3",
        "image_token_index": 250,
        "mm_tokens_per_image": 4,
        "text_config": text(
            "gemma3_text", mm_tokens_per_image=4, sliding_window=64, query_pre_attn_scalar=16
        ),
        "vision_config": vision("siglip_vision_model"),
    },
    "paligemma": {
        "model_type": "paligemma",
        "image_token_index": 250,
        "hidden_size": 64,
        "text_config": text("gemma", num_image_tokens=16),
        "vision_config": vision("siglip_vision_model", projection_dim=64),
    },
    **{
        name: {
            "model_type": name,
            "image_token_id": 250,
            "scale_factor": 2,
            "text_config": text("llama"),
            "vision_config": vision(vision_type),
        }
        for name, vision_type in (("idefics3", "idefics3"), ("smolvlm", "smolvlm_vision"))
    },
    "idefics2": {
        "model_type": "idefics2",
        "image_token_id": 250,
        "text_config": text("mistral"),
        "vision_config": vision("idefics2"),
        "perceiver_config": {
            "model_type": "idefics2Perceiver",
            "resampler_n_latents": 4,
            "resampler_depth": 1,
            "resampler_n_heads": 2,
            "resampler_head_dim": 16,
            "num_key_value_heads": 1,
        },
    },
    **{
        name: {
            "model_type": name,
            "image_token_index": 250,
            "text_config": text("llama"),
            "vision_config": vision("clip_vision_model", projection_dim=32),
        }
        for name in ("llava", "llava_next")
    },
    "llava_onevision": {
        "model_type": "llava_onevision",
        "image_token_index": 250,
        "text_config": text("qwen2"),
        "vision_config": vision("siglip_vision_model"),
    },
    **{
        name: {
            "model_type": name,
            "image_token_index": 250,
            **({"spatial_merge_size": 2} if name == "mistral3" else {}),
            "text_config": text("mistral"),
            "vision_config": vision("pixtral", head_dim=16, rope_theta=10000.0),
        }
        for name in ("mistral3", "pixtral")
    },
    "mllama": {
        "model_type": "mllama",
        "image_token_index": 250,
        "text_config": text("mllama", cross_attention_layers=[1]),
        "vision_config": {
            **{k: v for k, v in VISION.items() if k != "layer_norm_eps"},
            "max_num_tiles": 4,
            "num_global_layers": 1,
            "intermediate_layers_indices": [0],
            "vision_output_dim": 96,  # hidden 32 x (1 intermediate layer + the last)
        },
    },
    "internvl_chat": {
        "model_type": "internvl_chat",
        "image_token_index": 250,
        "downsample_ratio": 0.5,
        "text_config": text("qwen2"),
        "vision_config": vision("intern_vit_6b"),
    },
    "internvl": {
        "model_type": "internvl",
        "image_token_id": 250,
        "downsample_ratio": 0.5,
        "text_config": text("qwen3"),
        "vision_config": vision("internvl_vision"),
    },
    "aya_vision": {
        "model_type": "aya_vision",
        "image_token_index": 250,
        "downsample_factor": 2,
        "alignment_intermediate_size": 96,
        "text_config": text("cohere2", layer_norm_eps=1e-5, sliding_window=64),
        "vision_config": vision("siglip_vision_model"),
    },
    "lfm2_vl": {
        "model_type": "lfm2-vl",
        "image_token_id": 250,
        "downsample_factor": 2,
        "projector_hidden_size": 64,
        "text_config": {
            **text("lfm2"),
            "block_dim": 64,
            "conv_dim": 64,
            "conv_dim_out": 64,
            "num_heads": 4,
            "layer_types": ["conv", "full_attention"],
            "block_ff_dim": 128,
            "block_auto_adjust_ff_dim": False,
            "norm_eps": 1e-5,
        },
        "vision_config": vision("lfm2_vl", num_patches=16),
    },
    "glm4v_moe": {
        "model_type": "glm4v_moe",
        "image_token_id": 250,
        "video_token_id": 251,
        "text_config": text(
            "glm4v_moe_text",
            n_routed_experts=4,
            n_shared_experts=1,
            num_experts_per_tok=2,
            moe_intermediate_size=32,
            first_k_dense_replace=1,
            n_group=1,
            topk_group=1,
            norm_topk_prob=True,
            routed_scaling_factor=1.0,
            use_qk_norm=False,
            attention_bias=False,
            partial_rotary_factor=0.5,
            rope_scaling={"rope_type": "default", "mrope_section": [2, 3, 3]},
        ),
        "vision_config": {
            "model_type": "glm4v_moe",
            **{k: v for k, v in QWEN_VISION.items() if not k.startswith("spatial_patch")},
        },
    },
    # Bunny's config.json names no image_token_index (its -200 placeholder is code, not vocab)
    "llava_bunny": {
        "model_type": "llava-qwen2",
        "auto_map": {},
        "hidden_size": 64,
        "mm_hidden_size": 32,
        "text_config": text("qwen2"),
        "vision_config": vision("siglip_vision_model"),
    },
    # Florence-2: a BART language model (encoder and decoder stacks) whose config spells the
    # sizes as BART does (d_model, encoder/decoder_attention_heads, encoder/decoder_layers), with
    # microsoft/Florence-2's num_hidden_layers beside them; a DaViT vision tower
    "florence2": {
        "model_type": "florence2",
        "vocab_size": 256,
        "image_token_id": 250,
        "projection_dim": 64,
        "text_config": {
            "model_type": "florence2_language",
            "d_model": 64,
            "encoder_attention_heads": 4,
            "decoder_attention_heads": 4,
            "encoder_ffn_dim": 128,
            "decoder_ffn_dim": 128,
            "encoder_layers": 2,
            "decoder_layers": 2,
            "num_hidden_layers": 2,
            "vocab_size": 256,
            "max_position_embeddings": 256,
            "is_encoder_decoder": True,
        },
        "vision_config": {
            "model_type": "davit",
            "depths": [1, 1, 1, 1],
            "dim_embed": [8, 16, 32, 64],
            "num_heads": [1, 2, 2, 4],
            "num_groups": [1, 2, 2, 4],
            "window_size": 2,
            "projection_dim": 64,
            "hidden_size": 64,
            "image_size": [32, 32],
        },
    },
    # MoonViT: embed_dim beside hidden_size (not a merger output), MLP fc0 up / fc1 down; the
    # projector takes merge_kernel_size windows of patches
    "kimi_vl": {
        "model_type": "kimi_vl",
        "image_token_index": 250,
        "media_placeholder_token_id": 250,
        "text_config": text(
            "deepseek_v3",
            n_routed_experts=4,
            n_shared_experts=1,
            num_experts_per_tok=2,
            moe_intermediate_size=32,
            first_k_dense_replace=1,
            n_group=1,
            topk_group=1,
            kv_lora_rank=32,
            q_lora_rank=32,
            qk_rope_head_dim=16,
            qk_nope_head_dim=16,
            v_head_dim=16,
        ),
        "vision_config": {
            "model_type": "moonvit",
            "depth": 2,
            "embed_dim": 32,
            "hidden_size": 32,
            "num_heads": 2,
            "image_size": 32,
            "patch_size": 8,
            "intermediate_size": 64,
            "init_pos_emb_height": 4,
            "init_pos_emb_width": 4,
            "merge_kernel_size": [2, 2],
        },
    },
}


def mlx_vlm_layout(dest: Path, name: str, edit: Callable[[dict], None] | None = None) -> Path:
    """model.safetensors and config.json of mlx-vlm's Model for ZOO[name], tiny; `edit` changes
    the config.json written afterwards (a broken copy)."""
    from mlx_vlm.utils import get_model_and_args, update_module_configs

    config = copy.deepcopy(ZOO[name])
    work = copy.deepcopy(config)  # from_dict changes the dict it is given
    module, _ = get_model_and_args(work)
    work.setdefault("text_config", {})
    work.setdefault("vision_config", {})
    model_config = module.ModelConfig.from_dict(work)
    model_config = update_module_configs(
        model_config, module, work, ["text", "vision", "perceiver", "projector", "audio"]
    )
    model = module.Model(model_config)
    if edit is not None:
        edit(config)
    return save_checkpoint(dest, model, config, name)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_no_false_alarm_on_mlx_vlm_layouts(name: str, tmp_path: Path) -> None:
    pytest.importorskip("mlx_vlm", reason="mlx-vlm is not installed (genai-common[vlm])")
    report = diagnose(mlx_vlm_layout(tmp_path / name, name))
    alarms = [
        f"{f.code}: {f.message}"
        for f in report.findings
        if f.severity != "info" and f.code != "TOK001"  # no tokenizer files are written
    ]
    assert alarms == []
    assert report.kind == "vlm"


def _set(key: str, value: Any, where: str | None = None) -> Callable[[dict], None]:
    def edit(config: dict) -> None:
        (config[where] if where else config)[key] = value

    return edit


# family, what is broken in config.json, the finding that must catch it
BROKEN = [
    ("idefics3", _set("scale_factor", 4), "VLM030"),  # the connector takes 32 x 2^2
    ("aya_vision", _set("downsample_factor", 4), "VLM030"),
    ("lfm2_vl", _set("downsample_factor", 4), "VLM030"),
    ("internvl", _set("downsample_ratio", 0.25), "VLM030"),
    ("mistral3", _set("spatial_merge_size", 4), "VLM030"),
    ("mllama", _set("vision_output_dim", 64, "vision_config"), "VLM030"),
    ("mllama", _set("vocab_size", 250, "text_config"), "CFG010"),  # 264 rows = 256 + 8
    ("idefics2", _set("hidden_size", 48, "vision_config"), "VLM030"),
    ("glm4v", _set("out_hidden_size", 48, "vision_config"), "VLM030"),
    ("aya_vision", _set("tie_word_embeddings", False, "text_config"), "CFG041"),
    ("kimi_vl", _set("merge_kernel_size", [1, 1], "vision_config"), "VLM030"),  # takes 32 x 4
    ("kimi_vl", _set("intermediate_size", 48, "vision_config"), "VLM021"),  # fc0 has 64 rows
    ("kimi_vl", _set("embed_dim", 48, "vision_config"), "VLM020"),  # fc0 takes 32
    ("glm4v", _set("hidden_size", 48, "text_config"), "VLM031"),  # the merger maps to 64
    ("florence2", _set("decoder_layers", 3, "text_config"), "CFG020"),  # 2 decoder layers
    ("florence2", _set("encoder_attention_heads", 0, "text_config"), "CFG001"),
]


@pytest.mark.parametrize(
    ("name", "edit", "code"), BROKEN, ids=[f"{n}-{c}-{i}" for i, (n, _, c) in enumerate(BROKEN)]
)
def test_broken_copies_still_caught(
    name: str, edit: Callable[[dict], None], code: str, tmp_path: Path
) -> None:
    pytest.importorskip("mlx_vlm", reason="mlx-vlm is not installed (genai-common[vlm])")
    report = diagnose(mlx_vlm_layout(tmp_path / name, name, edit))
    errors = {f.code for f in report.findings if f.severity == "error"}
    assert code in errors, [f"{f.code}: {f.message}" for f in report.findings]
