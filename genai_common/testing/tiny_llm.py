"""Tiny text models in Hugging Face layout that mlx-lm loads: llama, qwen2, gemma, llama-4bit,
deepseek_v3.

Sizes are small but shaped like the real families: grouped-query attention (fewer kv heads than
heads), an explicit head_dim (Gemma's differs from hidden/heads), a vocabulary padded above the
tokenizer size, untied lm_head for llama, tied embeddings for qwen2 and gemma, q/k/v biases for
qwen2. Every width is a multiple of 64 so mlx-lm's 4-bit convert (group size 64 or 32) divides it.

deepseek_v3 is DeepSeek-V3's layout as deepseek-ai publishes it (and R1, Kimi K2): multi-head
latent attention (q_a/q_b low-rank queries, kv_a_proj_with_mqa to a latent plus one shared rope
key, kv_b_proj back to per-head keys and values, v_head_dim unlike qk_nope_head_dim), the first
`first_k_dense_replace` layers dense, then a sigmoid router (noaux_tc, with a score-correction
bias) over routed experts stored one by one (`mlp.experts.N.*`) plus a shared expert. mlx-lm's
sanitize stacks the experts into `switch_mlp` and splits kv_b_proj into `embed_q`/`unembed_out`, so
the files are what users download and mlx-lm still loads them. It is float32 (see MLA_DTYPE) and
has no multi-token-prediction layer: mlx-lm drops only `model.layers.61` (DeepSeek-V3's MTP
index), so one stored after 2 layers would fail to load.

The unquantized variants are trained for a few seconds on the package corpus (see train.py), so a
fixed chat prompt greedily yields a known answer ("What is the capital of France?" -> "The capital
of France is Paris.") and perplexity, quantization damage and verification mean something;
`build_text_model(..., trained=False)` writes the random initialisation instead. llama-4bit is
mlx-lm's convert of the trained llama. Builds are cached per seed and version (tiny_cache.py).

The rows of the output projection for special and padding ids are zero (and stay zero through
training, which never targets them), so greedy decoding never picks eos or an id the tokenizer
cannot decode: generation always runs to `max_tokens`, which keeps token-count tests and timing
runs stable.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from pathlib import Path
from typing import Any

from genai_common.testing import bpe
from genai_common.testing._files import random_weights, save_safetensors, write_json, zero_rows

HIDDEN = 64
LAYERS = 2
HEADS = 4
KV_HEADS = 2
INTERMEDIATE = 128
VOCAB = 512  # padded above the tokenizer size (~384), as real checkpoints pad to a multiple of 64
MAX_POSITIONS = 2048
DTYPE = "float16"


def _mlp_shapes(p: str, width: int) -> dict[str, tuple[int, ...]]:
    """A gated MLP (gate, up, down) of `width` under the prefix `p`."""
    return {
        f"{p}.gate_proj.weight": (width, HIDDEN),
        f"{p}.up_proj.weight": (width, HIDDEN),
        f"{p}.down_proj.weight": (HIDDEN, width),
    }


def layer_shapes(
    p: str, head_dim: int, *, heads: int = HEADS, kv_heads: int = KV_HEADS, qkv_bias: bool = False
) -> dict[str, tuple[int, ...]]:
    """One llama-like decoder layer's tensors under the prefix `p` (e.g. "model.layers.0")."""
    q, kv = heads * head_dim, kv_heads * head_dim
    shapes: dict[str, tuple[int, ...]] = {
        f"{p}.input_layernorm.weight": (HIDDEN,),
        f"{p}.post_attention_layernorm.weight": (HIDDEN,),
        f"{p}.self_attn.q_proj.weight": (q, HIDDEN),
        f"{p}.self_attn.k_proj.weight": (kv, HIDDEN),
        f"{p}.self_attn.v_proj.weight": (kv, HIDDEN),
        f"{p}.self_attn.o_proj.weight": (HIDDEN, q),
        **_mlp_shapes(f"{p}.mlp", INTERMEDIATE),
    }
    if qkv_bias:
        shapes[f"{p}.self_attn.q_proj.bias"] = (q,)
        shapes[f"{p}.self_attn.k_proj.bias"] = (kv,)
        shapes[f"{p}.self_attn.v_proj.bias"] = (kv,)
    return shapes


def text_shapes(head_dim: int, *, qkv_bias: bool, tied: bool) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of a llama-like decoder as the HF checkpoint names them."""
    shapes: dict[str, tuple[int, ...]] = {
        "model.embed_tokens.weight": (VOCAB, HIDDEN),
        "model.norm.weight": (HIDDEN,),
    }
    for i in range(LAYERS):
        shapes.update(layer_shapes(f"model.layers.{i}", head_dim, qkv_bias=qkv_bias))
    if not tied:
        shapes["lm_head.weight"] = (VOCAB, HIDDEN)
    return shapes


def _common_config(spec: bpe.TokenizerSpec, head_dim: int) -> dict[str, Any]:
    return {
        "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "head_dim": head_dim,
        "intermediate_size": INTERMEDIATE,
        "vocab_size": VOCAB,
        "max_position_embeddings": MAX_POSITIONS,
        "initializer_range": 0.02,
        "attention_dropout": 0.0,
        "use_cache": True,
        "torch_dtype": DTYPE,
        "bos_token_id": spec.id_of(spec.bos) if spec.bos else None,
        "eos_token_id": spec.id_of(spec.eos),
        "pad_token_id": spec.id_of(spec.pad) if spec.pad else None,
    }


def _config(variant: str, spec: bpe.TokenizerSpec) -> dict[str, Any]:
    if variant == "llama":
        return {
            **_common_config(spec, HIDDEN // HEADS),
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_act": "silu",
            "rms_norm_eps": 1e-5,
            "rope_theta": 500000.0,
            "rope_scaling": None,
            "attention_bias": False,
            "mlp_bias": False,
            "pretraining_tp": 1,
            "tie_word_embeddings": False,
        }
    if variant == "qwen2":
        return {
            **_common_config(spec, HIDDEN // HEADS),
            "architectures": ["Qwen2ForCausalLM"],
            "model_type": "qwen2",
            "hidden_act": "silu",
            "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0,
            "rope_scaling": None,
            "sliding_window": MAX_POSITIONS,
            "max_window_layers": LAYERS,
            "use_sliding_window": False,
            "tie_word_embeddings": True,
        }
    if variant == "deepseek_v3":
        return _deepseek_v3_config(spec)
    if variant == "gemma":
        # Gemma: head_dim is not hidden/heads (here 32 vs 16), embeddings always tied.
        return {
            **_common_config(spec, 32),
            "architectures": ["GemmaForCausalLM"],
            "model_type": "gemma",
            "hidden_act": "gelu_pytorch_tanh",
            "hidden_activation": "gelu_pytorch_tanh",
            "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0,
            "attention_bias": False,
            "tie_word_embeddings": True,
        }
    raise ValueError(f"no config for llm variant {variant!r}")


# DeepSeek-V3's published rope scaling (deepseek-ai/DeepSeek-V3 config.json)
DEEPSEEK_V3_YARN = {
    "beta_fast": 32,
    "beta_slow": 1,
    "factor": 40,
    "mscale": 1.0,
    "mscale_all_dim": 1.0,
    "original_max_position_embeddings": 4096,
    "type": "yarn",
}
# deepseek_v3: every input width of a projection mlx-lm quantizes (hidden, q_lora_rank,
# kv_lora_rank, qk_nope_head_dim as embed_q's last axis, heads x v_head_dim,
# moe_intermediate_size, intermediate_size) is a multiple of 64, so mlx-lm's 4-bit convert
# quantizes all of them at group size 64 or 32.
MLA = {
    "num_attention_heads": 4,
    "q_lora_rank": 128,
    "kv_lora_rank": 64,
    "qk_nope_head_dim": 64,
    "qk_rope_head_dim": 32,
    "v_head_dim": 32,  # unlike qk_nope_head_dim: o_proj takes heads x v_head_dim
    "n_routed_experts": 4,
    "n_shared_experts": 1,
    "num_experts_per_tok": 2,
    "n_group": 2,  # the router keeps topk_group of n_group groups, then the top experts
    "topk_group": 1,
    "moe_intermediate_size": 64,
    "first_k_dense_replace": 1,
}
# float32, not DeepSeek's bfloat16: MLX's CPU backend runs unquantized routed experts through
# gather_mm, which there supports float32 only ("[GatherMM::eval] Currently only supports
# float32", mlx 0.32), so a half-precision MoE cannot generate on Linux CPU.
MLA_DTYPE = "float32"


def deepseek_v3_shapes() -> dict[str, tuple[int, ...]]:
    """DeepSeek-V3's tensors as deepseek-ai names them (tiny widths, no MTP layer)."""
    m = MLA
    heads, q_head = m["num_attention_heads"], m["qk_nope_head_dim"] + m["qk_rope_head_dim"]
    kv_b = heads * (m["qk_nope_head_dim"] + m["v_head_dim"])
    shapes: dict[str, tuple[int, ...]] = {
        "model.embed_tokens.weight": (VOCAB, HIDDEN),
        "model.norm.weight": (HIDDEN,),
        "lm_head.weight": (VOCAB, HIDDEN),
    }
    for i in range(LAYERS):
        p = f"model.layers.{i}"
        a = f"{p}.self_attn"
        shapes.update(
            {
                f"{p}.input_layernorm.weight": (HIDDEN,),
                f"{p}.post_attention_layernorm.weight": (HIDDEN,),
                f"{a}.q_a_proj.weight": (m["q_lora_rank"], HIDDEN),
                f"{a}.q_a_layernorm.weight": (m["q_lora_rank"],),
                f"{a}.q_b_proj.weight": (heads * q_head, m["q_lora_rank"]),
                f"{a}.kv_a_proj_with_mqa.weight": (
                    m["kv_lora_rank"] + m["qk_rope_head_dim"],
                    HIDDEN,
                ),
                f"{a}.kv_a_layernorm.weight": (m["kv_lora_rank"],),
                f"{a}.kv_b_proj.weight": (kv_b, m["kv_lora_rank"]),
                f"{a}.o_proj.weight": (HIDDEN, heads * m["v_head_dim"]),
            }
        )
        if i < m["first_k_dense_replace"]:
            shapes.update(_mlp_shapes(f"{p}.mlp", INTERMEDIATE))
            continue
        shapes[f"{p}.mlp.gate.weight"] = (m["n_routed_experts"], HIDDEN)
        shapes[f"{p}.mlp.gate.e_score_correction_bias"] = (m["n_routed_experts"],)
        for e in range(m["n_routed_experts"]):
            shapes.update(_mlp_shapes(f"{p}.mlp.experts.{e}", m["moe_intermediate_size"]))
        shared = m["moe_intermediate_size"] * m["n_shared_experts"]
        shapes.update(_mlp_shapes(f"{p}.mlp.shared_experts", shared))
    return shapes


def _deepseek_v3_config(spec: bpe.TokenizerSpec) -> dict[str, Any]:
    """config.json as deepseek-ai publishes DeepSeek-V3 (less auto_map and the FP8
    quantization_config: the weights are float32), with the tiny widths."""
    return {
        "architectures": ["DeepseekV3ForCausalLM"],
        "model_type": "deepseek_v3",
        **MLA,
        "num_key_value_heads": MLA["num_attention_heads"],
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "vocab_size": VOCAB,
        "moe_layer_freq": 1,
        "norm_topk_prob": True,
        "routed_scaling_factor": 2.5,
        "scoring_func": "sigmoid",
        "topk_method": "noaux_tc",
        "num_nextn_predict_layers": 0,  # no MTP layer stored (see the module docstring)
        "hidden_act": "silu",
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000,
        "rope_scaling": dict(DEEPSEEK_V3_YARN),
        "max_position_embeddings": 4096 * 40,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "pretraining_tp": 1,
        "tie_word_embeddings": False,
        "use_cache": True,
        "torch_dtype": MLA_DTYPE,
        "bos_token_id": spec.id_of(spec.bos) if spec.bos else None,
        "eos_token_id": spec.id_of(spec.eos),
        "pad_token_id": spec.id_of(spec.pad) if spec.pad else None,
    }


SPECS = {
    "llama": bpe.LLAMA_SPEC,
    "qwen2": bpe.QWEN2_SPEC,
    "gemma": bpe.GEMMA_SPEC,
    "deepseek_v3": bpe.LLAMA_SPEC,
}


def _quiet_ids(spec: bpe.TokenizerSpec, tokenizer_size: int) -> list[int]:
    """Ids greedy decoding must never pick: the specials and the padding rows."""
    return list(range(len(spec.specials))) + list(range(tokenizer_size, VOCAB))


def build_text_model(
    dest: Path, variant: str, seed: int, *, trained: bool = True, dtype: str | None = None
) -> Path:
    """Write config, weights, tokenizer and generation config of an unquantized variant: trained
    on the corpus (the default), or the random initialisation it starts from. `dtype` overrides
    the stored dtype (training runs in float32: "float32" keeps its weights exactly)."""
    spec = SPECS[variant]
    config = _config(variant, spec)
    size = bpe.write_tokenizer(dest, spec)
    if size > VOCAB:
        raise RuntimeError(f"tokenizer size {size} exceeds the embedding rows {VOCAB}")
    tied = config["tie_word_embeddings"]
    dtype = dtype or (MLA_DTYPE if variant == "deepseek_v3" else DTYPE)
    config["torch_dtype"] = dtype
    if variant == "deepseek_v3":
        weights = random_weights(deepseek_v3_shapes(), seed, std=_init_std())
    else:
        shapes = text_shapes(config["head_dim"], qkv_bias=variant == "qwen2", tied=tied)
        # Gemma's RMSNorm multiplies by (1 + weight): its stored norm weights are offsets around 0.
        norm_value = 0.0 if variant == "gemma" else 1.0
        weights = random_weights(shapes, seed, norm_value=norm_value, std=_init_std())
    quiet = _quiet_ids(spec, size)
    if tied:  # the embedding is the output projection: keep special rows small, padding rows 0
        emb = weights["model.embed_tokens.weight"]
        emb = zero_rows(emb, range(len(spec.specials)), scale=0.05)
        weights["model.embed_tokens.weight"] = zero_rows(emb, range(size, VOCAB))
    else:
        weights["lm_head.weight"] = zero_rows(weights["lm_head.weight"], quiet)
    write_json(dest / "config.json", config)
    generation = {
        "bos_token_id": config["bos_token_id"],
        "eos_token_id": config["eos_token_id"],
        "pad_token_id": config["pad_token_id"],
        "do_sample": False,
        "max_new_tokens": 32,
    }
    write_json(
        dest / "generation_config.json", {k: v for k, v in generation.items() if v is not None}
    )
    if trained:
        # the float32 initialisation, loaded by mlx-lm's own loader, trained, read back
        save_safetensors(dest / "model.safetensors", weights)
        zero = range(size, VOCAB) if tied else quiet
        from genai_common.testing.train import RECIPE_CHANGES

        trained_weights = train_text_model(dest, quiet, zero, seed, RECIPE_CHANGES.get(variant))
        if set(trained_weights) != set(weights):
            raise RuntimeError(
                f"{variant}: trained tensors differ from the checkpoint's: "
                f"{sorted(set(trained_weights) ^ set(weights))[:4]}"
            )
        weights = trained_weights
    save_safetensors(dest / "model.safetensors", {k: v.astype(dtype) for k, v in weights.items()})
    return dest


def chat_examples_mlx_lm(tokenizer: Any) -> Any:
    """lm_examples for an mlx-lm TokenizerWrapper: plain text with the tokenizer's own specials,
    chat exchanges as `mlx_lm.generate` sees them (the chat template with a generation prompt),
    then the answer and eos."""
    from genai_common.testing import train

    def encode_text(text: str) -> list[int]:
        return list(tokenizer.encode(text))

    def chat_ids(prompt: str, answer: str) -> tuple[list[int], list[int]]:
        messages = [{"role": "user", "content": prompt}]
        rendered = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )
        prompt_ids = list(tokenizer.encode(rendered, add_special_tokens=False))
        answer_ids = list(tokenizer.encode(answer, add_special_tokens=False))
        return prompt_ids, [*answer_ids, tokenizer.eos_token_id]

    return train.lm_examples(encode_text, chat_ids, seq_len=train.LM_RECIPE["seq_len"])


def train_text_model(
    path: Path, quiet: list[int], zero: Any, seed: int, changes: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Load the model at `path` with mlx-lm, train it (train.train_lm) and return its weights
    under the checkpoint's names, as float32 numpy arrays."""
    import numpy as np
    from mlx.utils import tree_flatten
    from mlx_lm.utils import load_model, load_tokenizer

    from genai_common.testing import train

    model, config = load_model(path)
    tokenizer = load_tokenizer(path)
    head = model.model.embed_tokens if config.get("tie_word_embeddings") else model.lm_head
    examples = chat_examples_mlx_lm(tokenizer)
    train.train_lm(
        model,
        _forward,
        examples,
        quiet=quiet,
        pad_id=config.get("pad_token_id") or 0,
        seed=seed,
        zero_rows=[(head, list(zero))],
        recipe={**train.LM_RECIPE, **(changes or {})},
    )
    params = {k: np.array(v) for k, v in tree_flatten(model.parameters())}
    if config["model_type"] == "deepseek_v3":
        params = _deepseek_v3_checkpoint_names(params, config)
    return params


def _forward(model: Any, ids: Any, prompt: Any = None) -> Any:
    """mlx-lm's forward (causal): the logits of token ids."""
    return model(ids)


def _deepseek_v3_checkpoint_names(params: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Undo mlx-lm's deepseek_v3 sanitize: unstack `switch_mlp` into `experts.N`, and join
    `embed_q` / `unembed_out` back into `kv_b_proj` (per head: nope keys, then values)."""
    import numpy as np

    out: dict[str, Any] = {}
    heads, nope = config["num_attention_heads"], config["qk_nope_head_dim"]
    for name, value in params.items():
        if ".switch_mlp." in name:
            prefix, rest = name.split(".switch_mlp.")
            for e in range(value.shape[0]):
                out[f"{prefix}.experts.{e}.{rest}"] = value[e]
        elif name.endswith(".embed_q.weight"):
            prefix = name[: -len(".embed_q.weight")]
            wk = value.swapaxes(-1, -2)  # [heads, nope, rank]
            wv = params[f"{prefix}.unembed_out.weight"]  # [heads, v_head_dim, rank]
            assert wk.shape[:2] == (heads, nope)
            joined = np.concatenate([wk, wv], axis=1)
            out[f"{prefix}.kv_b_proj.weight"] = joined.reshape(-1, joined.shape[-1])
        elif not name.endswith(".unembed_out.weight"):
            out[name] = value
    return out


def build_quantized(dest: Path, seed: int, *, bits: int = 4, group_size: int = 64) -> Path:
    """The trained tiny llama (through the cache, when it is on) converted to `bits`-bit with
    mlx-lm's own convert (affine, group_size)."""
    from mlx_lm.convert import convert

    from genai_common.testing.tiny import build as build_tiny

    with tempfile.TemporaryDirectory(prefix="genai-tiny-") as tmp:
        src = build_tiny("llm", Path(tmp) / "src", variant="llama", seed=seed)
        out = Path(tmp) / "q"
        with contextlib.redirect_stdout(io.StringIO()):  # convert prints progress
            convert(str(src), str(out), quantize=True, q_bits=bits, q_group_size=group_size)
        # Keep mlx-lm's weights, index and config. Take the tokenizer files from the source: the
        # ones convert re-saves depend on the transformers version (transformers 5 writes
        # tokenizer_class "TokenizersBackend", which transformers 4 cannot read, plus
        # is_local/local_files_only keys) and are not what this fixture is about.
        for item in sorted(out.iterdir()):
            if (
                item.name.endswith((".safetensors", ".safetensors.index.json"))
                or item.name == "config.json"
            ):
                shutil.move(str(item), dest / item.name)
        for item in sorted(src.iterdir()):
            if not (dest / item.name).exists():
                shutil.copyfile(item, dest / item.name)
    return dest


def build(dest: Path, variant: str, seed: int) -> Path:
    """`variant` is one that genai_common.testing.tiny.TINY_BUILDERS lists (tiny.build checks it)."""
    if variant == "llama-4bit":
        return build_quantized(dest, seed)
    return build_text_model(dest, variant, seed)


def _init_std() -> float:
    from genai_common.testing import train

    return float(train.LM_RECIPE["init_std"])
