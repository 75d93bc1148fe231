"""Tiny vision-language models in Hugging Face layout that mlx-vlm loads and generates with.

qwen2_vl: flat config (text keys at the root, `vision_config` nested), mrope, tensors named as
the original Qwen2-VL checkpoints (`model.*`, `lm_head.*`, `visual.*`); mlx-vlm renames
`visual` -> `vision_tower` and `model` -> `language_model.model` and moves the Conv3d patch
weight from [out, in, t, kh, kw] to channels-last. The image processor works on 28-pixel blocks
(patch 14 x merge 2): a 64x64 image becomes 56x56 = 4x4 patches = 4 image tokens.

paligemma: nested `text_config` (gemma) and `vision_config` (SigLIP), tensors named
`language_model.model.*`, `vision_tower.vision_model.*`, `multi_modal_projector.linear.*`; the
tokenizer carries `<image>` and the 1024 `<locNNNN>` + 128 `<segNNN>` tokens the processor expects,
so the model's vocabulary covers every id the tokenizer can emit. image_size 56, patch 14:
16 image tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from genai_common.testing import bpe
from genai_common.testing._files import random_weights, save_safetensors, write_json, zero_rows
from genai_common.testing.tiny_llm import (
    HEADS,
    HIDDEN,
    INTERMEDIATE,
    KV_HEADS,
    LAYERS,
    layer_shapes,
    text_shapes,
)

DTYPE = "float32"  # the vision towers run on CPU in tests; keep full precision
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

# --- qwen2_vl ------------------------------------------------------------------------------------

QWEN2_VL_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

QWEN2_VL_SPEC = bpe.TokenizerSpec(
    specials=(
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|vision_pad|>",
        "<|image_pad|>",
        "<|video_pad|>",
    ),
    bos=None,
    eos="<|im_end|>",
    pad="<|endoftext|>",
    chat_template=QWEN2_VL_TEMPLATE,
    add_bos=False,
)

QWEN_VISION = {"embed_dim": 32, "depth": 2, "num_heads": 2, "mlp_ratio": 2, "patch_size": 14}
QWEN_VOCAB = 512


def _qwen2_vl_vision_shapes() -> dict[str, tuple[int, ...]]:
    e, p = QWEN_VISION["embed_dim"], QWEN_VISION["patch_size"]
    mlp = int(e * QWEN_VISION["mlp_ratio"])
    merged = e * 4  # spatial_merge_size 2 -> 2x2 patches per token
    shapes: dict[str, tuple[int, ...]] = {
        "visual.patch_embed.proj.weight": (e, 3, 2, p, p),
        "visual.merger.ln_q.weight": (e,),
        "visual.merger.ln_q.bias": (e,),
        "visual.merger.mlp.0.weight": (merged, merged),
        "visual.merger.mlp.0.bias": (merged,),
        "visual.merger.mlp.2.weight": (HIDDEN, merged),
        "visual.merger.mlp.2.bias": (HIDDEN,),
    }
    for i in range(QWEN_VISION["depth"]):
        b = f"visual.blocks.{i}"
        shapes.update(
            {
                f"{b}.norm1.weight": (e,),
                f"{b}.norm1.bias": (e,),
                f"{b}.norm2.weight": (e,),
                f"{b}.norm2.bias": (e,),
                f"{b}.attn.qkv.weight": (3 * e, e),
                f"{b}.attn.qkv.bias": (3 * e,),
                f"{b}.attn.proj.weight": (e, e),
                f"{b}.attn.proj.bias": (e,),
                f"{b}.mlp.fc1.weight": (mlp, e),
                f"{b}.mlp.fc1.bias": (mlp,),
                f"{b}.mlp.fc2.weight": (e, mlp),
                f"{b}.mlp.fc2.bias": (e,),
            }
        )
    return shapes


def _qwen2_vl_config(spec: bpe.TokenizerSpec) -> dict[str, Any]:
    ids = {t: spec.id_of(t) for t in spec.specials}
    return {
        "architectures": ["Qwen2VLForConditionalGeneration"],
        "model_type": "qwen2_vl",
        "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "intermediate_size": INTERMEDIATE,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-6,
        "vocab_size": QWEN_VOCAB,
        "max_position_embeddings": 2048,
        "rope_theta": 1000000.0,
        # mrope splits head_dim/2 rotary frequencies over (time, height, width)
        "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},
        "sliding_window": 2048,
        "use_sliding_window": False,
        "max_window_layers": LAYERS,
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "tie_word_embeddings": False,
        "torch_dtype": DTYPE,
        "use_cache": True,
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "vision_token_id": ids["<|vision_pad|>"],
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_config": {
            "model_type": "qwen2_vl",
            "depth": QWEN_VISION["depth"],
            "embed_dim": QWEN_VISION["embed_dim"],
            "hidden_size": HIDDEN,
            "hidden_act": "quick_gelu",
            "mlp_ratio": QWEN_VISION["mlp_ratio"],
            "num_heads": QWEN_VISION["num_heads"],
            "in_chans": 3,
            "patch_size": QWEN_VISION["patch_size"],
            "spatial_patch_size": QWEN_VISION["patch_size"],
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
    }


def _qwen2_vl_preprocessor() -> dict[str, Any]:
    return {
        "image_processor_type": "Qwen2VLImageProcessor",
        "processor_class": "Qwen2VLProcessor",
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "rescale_factor": 1 / 255,
        "image_mean": CLIP_MEAN,
        "image_std": CLIP_STD,
        "min_pixels": 56 * 56,
        "max_pixels": 224 * 224,
        "patch_size": QWEN_VISION["patch_size"],
        "temporal_patch_size": 2,
        "merge_size": 2,
        "resample": 3,
    }


def build_qwen2_vl(dest: Path, seed: int, *, trained: bool = True) -> Path:
    spec = QWEN2_VL_SPEC
    size = bpe.write_tokenizer(dest, spec)
    config = _qwen2_vl_config(spec)
    shapes = text_shapes(HIDDEN // HEADS, qkv_bias=True, tied=False)
    shapes.update(_qwen2_vl_vision_shapes())
    shapes["model.embed_tokens.weight"] = (QWEN_VOCAB, HIDDEN)
    shapes["lm_head.weight"] = (QWEN_VOCAB, HIDDEN)
    weights = _init_weights(shapes, seed, _is_qwen2_vl_text)
    quiet = list(range(len(spec.specials))) + list(range(size, QWEN_VOCAB))
    weights["lm_head.weight"] = zero_rows(weights["lm_head.weight"], quiet)
    write_json(dest / "config.json", config)
    write_json(dest / "preprocessor_config.json", _qwen2_vl_preprocessor())
    write_json(
        dest / "generation_config.json",
        {
            "bos_token_id": config["bos_token_id"],
            "eos_token_id": [config["eos_token_id"], config["pad_token_id"]],
            "pad_token_id": config["pad_token_id"],
            "do_sample": False,
        },
    )
    _save_weights(dest, weights, seed, quiet, quiet, _is_qwen2_vl_text, trained=trained)
    return dest


# --- paligemma -----------------------------------------------------------------------------------

PALI_EXTRA = tuple(f"<loc{i:04d}>" for i in range(1024)) + tuple(
    f"<seg{i:03d}>" for i in range(128)
)

PALIGEMMA_SPEC = bpe.TokenizerSpec(
    specials=("<pad>", "<eos>", "<bos>", "<unk>", "<image>", *PALI_EXTRA),
    bos="<bos>",
    eos="<eos>",
    pad="<pad>",
    # PaliGemma is a prefix model without chat turns; mlx-vlm builds its prompt itself.
    chat_template="{{ bos_token }}{% for message in messages %}{{ message['content'] }}\n{% endfor %}",
    extra_config={"extra_special_tokens": {"image_token": "<image>"}},
)

PALI_VISION = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "patch_size": 14,
    "image_size": 56,
}
PALI_VOCAB = 1600  # tokenizer: 256 bytes + 1157 specials + merges = 1535 ids
PALI_HEADS, PALI_KV_HEADS = 4, 1  # PaliGemma's Gemma uses multi-query attention


def _paligemma_shapes() -> dict[str, tuple[int, ...]]:
    v = PALI_VISION
    e, p = v["hidden_size"], v["patch_size"]
    n_patches = (v["image_size"] // p) ** 2
    head_dim = HIDDEN // PALI_HEADS
    vt = "vision_tower.vision_model"
    shapes: dict[str, tuple[int, ...]] = {
        f"{vt}.embeddings.patch_embedding.weight": (e, 3, p, p),
        f"{vt}.embeddings.patch_embedding.bias": (e,),
        f"{vt}.embeddings.position_embedding.weight": (n_patches, e),
        f"{vt}.post_layernorm.weight": (e,),
        f"{vt}.post_layernorm.bias": (e,),
        "multi_modal_projector.linear.weight": (HIDDEN, e),
        "multi_modal_projector.linear.bias": (HIDDEN,),
        "language_model.model.embed_tokens.weight": (PALI_VOCAB, HIDDEN),
        "language_model.model.norm.weight": (HIDDEN,),
    }
    for i in range(v["num_hidden_layers"]):
        b = f"{vt}.encoder.layers.{i}"
        for norm in ("layer_norm1", "layer_norm2"):
            shapes[f"{b}.{norm}.weight"] = (e,)
            shapes[f"{b}.{norm}.bias"] = (e,)
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            shapes[f"{b}.self_attn.{proj}.weight"] = (e, e)
            shapes[f"{b}.self_attn.{proj}.bias"] = (e,)
        shapes[f"{b}.mlp.fc1.weight"] = (v["intermediate_size"], e)
        shapes[f"{b}.mlp.fc1.bias"] = (v["intermediate_size"],)
        shapes[f"{b}.mlp.fc2.weight"] = (e, v["intermediate_size"])
        shapes[f"{b}.mlp.fc2.bias"] = (e,)
    for i in range(LAYERS):
        b = f"language_model.model.layers.{i}"
        shapes.update(layer_shapes(b, head_dim, heads=PALI_HEADS, kv_heads=PALI_KV_HEADS))
    return shapes


def _paligemma_config(spec: bpe.TokenizerSpec) -> dict[str, Any]:
    v = PALI_VISION
    n_tokens = (v["image_size"] // v["patch_size"]) ** 2
    return {
        "architectures": ["PaliGemmaForConditionalGeneration"],
        "model_type": "paligemma",
        "bos_token_id": spec.id_of("<bos>"),
        "eos_token_id": spec.id_of("<eos>"),
        "pad_token_id": spec.id_of("<pad>"),
        "image_token_index": spec.id_of("<image>"),
        "hidden_size": HIDDEN,
        "projection_dim": HIDDEN,
        "vocab_size": PALI_VOCAB,
        "torch_dtype": DTYPE,
        "text_config": {
            "model_type": "gemma",
            "hidden_size": HIDDEN,
            "intermediate_size": INTERMEDIATE,
            "num_hidden_layers": LAYERS,
            "num_attention_heads": PALI_HEADS,
            "num_key_value_heads": PALI_KV_HEADS,
            "head_dim": HIDDEN // PALI_HEADS,
            "hidden_activation": "gelu_pytorch_tanh",
            "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0,
            "max_position_embeddings": 2048,
            "vocab_size": PALI_VOCAB,
            "num_image_tokens": n_tokens,
            "torch_dtype": DTYPE,
        },
        "vision_config": {
            "model_type": "siglip_vision_model",
            **v,
            "num_channels": 3,
            "projection_dim": HIDDEN,
            "num_image_tokens": n_tokens,
            "layer_norm_eps": 1e-6,
            "hidden_act": "gelu_pytorch_tanh",
        },
    }


def build_paligemma(dest: Path, seed: int, *, trained: bool = True) -> Path:
    spec = PALIGEMMA_SPEC
    size = bpe.write_tokenizer(dest, spec)
    if size > PALI_VOCAB:
        raise RuntimeError(f"tokenizer size {size} exceeds the embedding rows {PALI_VOCAB}")
    config = _paligemma_config(spec)
    weights = _init_weights(_paligemma_shapes(), seed, _is_paligemma_text)
    for name in weights:  # Gemma's RMSNorm scales by (1 + weight): store offsets around 0
        if name.startswith("language_model.") and name.endswith("norm.weight"):
            weights[name] = weights[name] * 0
    emb = weights["language_model.model.embed_tokens.weight"]
    emb = zero_rows(emb, range(len(spec.specials)), scale=0.05)
    weights["language_model.model.embed_tokens.weight"] = zero_rows(emb, range(size, PALI_VOCAB))
    quiet = list(range(len(spec.specials))) + list(range(size, PALI_VOCAB))
    write_json(dest / "config.json", config)
    n_tokens = config["text_config"]["num_image_tokens"]
    image_size = PALI_VISION["image_size"]
    write_json(
        dest / "preprocessor_config.json",
        {
            "image_processor_type": "SiglipImageProcessor",
            "processor_class": "PaliGemmaProcessor",
            "do_convert_rgb": None,
            "do_normalize": True,
            "do_rescale": True,
            "do_resize": True,
            "image_mean": [0.5, 0.5, 0.5],
            "image_std": [0.5, 0.5, 0.5],
            "image_seq_length": n_tokens,
            "resample": 3,
            "rescale_factor": 1 / 255,
            "size": {"height": image_size, "width": image_size},
        },
    )
    write_json(
        dest / "processor_config.json",
        {"processor_class": "PaliGemmaProcessor", "image_seq_length": n_tokens},
    )
    write_json(
        dest / "generation_config.json",
        {
            "bos_token_id": config["bos_token_id"],
            "eos_token_id": config["eos_token_id"],
            "pad_token_id": config["pad_token_id"],
        },
    )
    padding = list(range(size, PALI_VOCAB))
    _save_weights(dest, weights, seed, quiet, padding, _is_paligemma_text, trained=trained)
    return dest


# --- training the text side ----------------------------------------------------------------------


def _is_qwen2_vl_text(name: str) -> bool:
    return name.startswith(("model.", "lm_head."))


def _is_paligemma_text(name: str) -> bool:
    return name.startswith("language_model.")


def _init_weights(
    shapes: dict[str, tuple[int, ...]], seed: int, is_text: Callable[[str], bool]
) -> dict[str, Any]:
    """Random float32 weights: the language model's at the training recipe's init_std, the
    vision tower's and projector's at 0.02 (they are not trained)."""
    from genai_common.testing import train

    text = {k: v for k, v in shapes.items() if is_text(k)}
    vision = {k: v for k, v in shapes.items() if not is_text(k)}
    return {
        **random_weights(text, seed, std=float(train.LM_RECIPE["init_std"])),
        **random_weights(vision, seed),
    }


def _save_weights(
    dest: Path,
    weights: dict[str, Any],
    seed: int,
    quiet: list[int],
    zero: list[int],
    is_text: Callable[[str], bool],
    *,
    trained: bool,
) -> None:
    """Write model.safetensors: the initialisation, or (trained) the text side trained by
    train_text_side with the vision tower as initialised."""
    save_safetensors(dest / "model.safetensors", weights)
    if not trained:
        return
    text = train_text_side(dest, quiet, zero, seed)
    expected = {k for k in weights if is_text(k)}
    if set(text) != expected:
        raise RuntimeError(
            f"trained tensors differ from the checkpoint's text tensors: "
            f"{sorted(set(text) ^ expected)[:4]}"
        )
    save_safetensors(dest / "model.safetensors", {**weights, **text})


def chat_examples_mlx_vlm(model: Any, processor: Any) -> Any:
    """lm_examples for an mlx-vlm processor: plain text as its tokenizer encodes it, chat
    exchanges as `mlx_vlm.generate` tokenizes a prompt without an image (its chat template, its
    processor, its choice of special tokens),
    then the answer and eos."""
    from mlx_vlm.prompt_utils import apply_chat_template
    from mlx_vlm.utils import prepare_inputs, should_add_special_tokens

    from genai_common.testing import train

    tokenizer = getattr(processor, "tokenizer", processor)
    config = model.config

    def encode_text(text: str) -> list[int]:
        return list(tokenizer.encode(text))

    def chat_ids(prompt: str, answer: str) -> tuple[list[int], list[int]]:
        rendered = apply_chat_template(processor, config, prompt, num_images=0)
        inputs = prepare_inputs(  # as mlx_vlm.generate tokenizes a prompt without an image
            processor,
            images=None,
            prompts=rendered,
            image_token_index=getattr(config, "image_token_index", None),
            add_special_tokens=should_add_special_tokens(config.model_type, processor),
        )
        prompt_ids = [int(i) for i in inputs["input_ids"].tolist()[0]]
        answer_ids = list(tokenizer.encode(answer, add_special_tokens=False))
        return prompt_ids, [*answer_ids, tokenizer.eos_token_id]

    return train.lm_examples(encode_text, chat_ids, seq_len=train.LM_RECIPE["seq_len"])


def language_logits(model: Any, ids: Any, prompt: Any = None) -> Any:
    """The language model's logits for token ids alone (no image): the text side.

    PaliGemma's is a prefix-LM: mlx-vlm prefills a prompt with attention both ways (its
    `use_bidirectional_attention`, on by default) and decodes causally, so its mask is causal
    with both-way blocks over the chat prompts (train.prefix_lm_mask); `prompt` None is causal.
    """
    import mlx.core as mx

    from genai_common.testing import train

    if model.config.model_type != "paligemma":
        return model.language_model(ids).logits
    if prompt is None:
        prompt = mx.zeros(ids.shape, dtype=mx.int32)
    return model.language_model(ids, mask=train.prefix_lm_mask(prompt)).logits


def train_text_side(path: Path, quiet: list[int], zero: list[int], seed: int) -> dict[str, Any]:
    """Load the VLM at `path` with mlx-vlm, train its language model (train.train_lm; the vision
    tower and projector frozen) and return the language model's weights under the checkpoint's
    names, as float32 numpy arrays."""
    import numpy as np
    from mlx.utils import tree_flatten
    from mlx_vlm import load

    from genai_common.testing import train

    model, processor = load(str(path))
    lm = model.language_model
    head = lm.lm_head if hasattr(lm, "lm_head") else lm.model.embed_tokens
    model.freeze()
    lm.unfreeze()
    train.train_lm(
        model,
        language_logits,
        chat_examples_mlx_vlm(model, processor),
        quiet=quiet,
        pad_id=0,
        seed=seed,
        zero_rows=[(head, zero)],
    )
    out: dict[str, Any] = {}
    for name, value in tree_flatten(lm.parameters()):
        full = f"language_model.{name}"
        if model.config.model_type == "qwen2_vl":  # mlx-vlm's sanitize, undone
            full = name
        out[full] = np.array(value)
    return out


def build(dest: Path, variant: str, seed: int) -> Path:
    """`variant` is one that genai_common.testing.tiny.TINY_BUILDERS lists (tiny.build checks it)."""
    return build_paligemma(dest, seed) if variant == "paligemma" else build_qwen2_vl(dest, seed)
