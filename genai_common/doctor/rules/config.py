"""CFG: the text model's config against the tensors the loader will read.

Uses `text_config` when the config nests one (VLMs). Every comparison is on header shapes only;
quantized shapes are read back to logical ones (packed uint32 columns = in_features*bits/32,
md.quant.logical_shape). What the text model is (md.text) lives in genai_common/model/text.py.
"""

from __future__ import annotations

import re

from genai_common.findings import finding, rule
from genai_common.model.text import (
    ALWAYS_TIED,
    ATTENTION_FREE,
    EMBED_EXTRA_ROWS,
    MLX_LM_TIES_WHEN_ABSENT,
    MLX_LM_UNTIES_WHEN_ABSENT_IN_TEXT_CONFIG,
    TEXT_KEY_SPELLINGS,
    per_layer_type_rope,
    rope_type,
)
from genai_common.model.values import (
    MAX_COUNT,
    first_missing,
    is_range,
    per_layer_counts,
    positive_count,
    positive_int,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from genai_common.findings import Finding
    from genai_common.model import ModelDir, TensorInfo


# RoPE types: required keys (transformers' modeling_rope_utils, the loader's rope_utils).
ROPE_REQUIRED: dict[str, tuple[str, ...]] = {
    "default": (),
    "linear": ("factor",),
    "dynamic": ("factor",),
    "yarn": ("factor",),
    "deepseek_yarn": ("factor",),
    "telechat3-yarn": ("factor",),
    "llama3": ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"),
    "longrope": ("short_factor", "long_factor", "original_max_position_embeddings"),
    "su": ("short_factor", "long_factor"),  # Phi-3's first name for longrope (mlx-lm phi3.py)
    "proportional": (),
    "mrope": ("mrope_section",),
}
# Types mlx-lm 0.32's initialize_rope builds; others raise "Unsupported RoPE type".
MLX_LM_ROPE_TYPES = frozenset(ROPE_REQUIRED)
LAYER_TYPE_VALUES = frozenset(
    {
        "full_attention",
        "sliding_attention",
        "chunked_attention",
        "linear_attention",
        "mamba",
        "conv",
        "attention",
        "hybrid",
        "moe",
        "dense",
    }
)


# ---------------------------------------------------------------------------------------------
# Checks


@rule(
    "CFG001",
    "A required text-config key is missing or has the wrong type",
    severity="error",
    fix="Set the key to a positive integer in config.json (or its text_config); compare with the "
    "original model's config.",
    compares="hidden_size, num_hidden_layers, num_attention_heads, vocab_size: present in one of the "
    "spellings transformers' attribute_map gives them (d_model, n_layer, encoder_attention_heads, "
    "...), positive ints",
)
@rule(
    "CFG002",
    "A text-config value has the wrong type",
    severity="error",
    fix="Fix the value's type in config.json: loaders build the model from these values directly.",
    compares="types of optional keys (num_key_value_heads, head_dim, intermediate_size, "
    "max_position_embeddings, tie_word_embeddings, rope dicts, layer_types)",
)
@rule(
    "CFG003",
    "A text-config count or size is implausibly large",
    severity="error",
    fix="Fix the value in config.json (a typo or a corrupted file); the other checks treat it as "
    "unknown.",
    compares="hidden_size, num_hidden_layers, heads, vocab_size, ... vs 2**53",
)
def required_keys(md: ModelDir) -> Iterator[Finding]:
    tc = md.text_config or {}
    if not tc:
        return
    groups = {
        key: TEXT_KEY_SPELLINGS[key]
        + (("num_query_heads",) if key == "num_attention_heads" else ())
        for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
    }
    where = "text_config" if tc is not (md.config or {}) else "config.json"
    for key, spellings in groups.items():
        present = [s for s in spellings if tc.get(s) is not None] or [
            s for s in spellings if s in tc
        ]
        if not present:
            if key == "vocab_size" and md.kind == "vlm":
                continue  # some VLM text configs inherit it from the top level
            if key == "num_attention_heads" and md.model_type in ATTENTION_FREE:
                continue
            others = ", ".join(spellings[1:4])
            yield finding("CFG001", f"{where} has no {key} (nor {others}, ...)", file="config.json")
        elif per_layer_counts(tc[present[0]]):
            continue  # OpenELM: a head count per layer
        elif positive_int(tc[present[0]]) is None:
            yield finding(
                "CFG001",
                f"{where}.{present[0]} = {tc[present[0]]!r} is not a positive integer",
                file="config.json",
            )
        elif positive_int(tc[present[0]]) > MAX_COUNT:
            yield _too_large(where, present[0], tc[present[0]])
    optional_ints = (
        "num_key_value_heads",
        "head_dim",
        "intermediate_size",
        "max_position_embeddings",
        "sliding_window",
    )
    for key in optional_ints:
        if tc.get(key) is not None and positive_int(tc[key]) is None:
            yield finding(
                "CFG002",
                f"{where}.{key} = {tc[key]!r} is not a positive integer",
                file="config.json",
            )
        elif (positive_int(tc.get(key)) or 0) > MAX_COUNT:
            yield _too_large(where, key, tc[key])
    tie = tc.get("tie_word_embeddings", (md.config or {}).get("tie_word_embeddings"))
    if tie is not None and not isinstance(tie, bool):
        yield finding(
            "CFG002", f"tie_word_embeddings = {tie!r} is not true/false", file="config.json"
        )
    for key, value in md.text.ropes:
        if not isinstance(value, dict):
            yield finding("CFG002", f"{key} = {value!r} is not an object", file="config.json")
    layer_types = tc.get("layer_types")
    if layer_types is not None and not (
        isinstance(layer_types, list) and all(isinstance(x, str) for x in layer_types)
    ):
        yield finding("CFG002", "layer_types is not a list of strings", file="config.json")


def _too_large(where: str, key: str, value: Any) -> Finding:
    n = positive_int(value) or 0
    shown = f"{n}" if n < 10**30 else f"a {len(str(n))}-digit number"
    return finding(
        "CFG003",
        f"{where}.{key} = {shown} is larger than 2**53: no model has that many",
        file="config.json",
    )


@rule(
    "CFG010",
    "Embedding rows differ from vocab_size",
    severity="error",
    fix="Make vocab_size equal the embedding's rows (the weights are the truth after a resize), or "
    "re-export the weights; a strict load fails with 'Expected shape'.",
    compares="embed_tokens.weight rows vs text vocab_size",
)
@rule(
    "CFG011",
    "Embedding columns differ from hidden_size",
    severity="error",
    fix="The weights belong to a different model size: use the config.json that came with them.",
    compares="embed_tokens.weight columns (unpacked when quantized) vs hidden_size",
)
@rule(
    "CFG012",
    "The lm_head shape differs from (vocab_size, hidden_size)",
    severity="error",
    fix="Make vocab_size/hidden_size match the stored head, or re-export the head.",
    compares="lm_head.weight (rows, unpacked columns) vs (vocab_size, hidden_size)",
)
def embedding(md: ModelDir) -> Iterator[Finding]:
    dims = md.text.dims
    emb = md.text.embedding
    if emb is None or not emb.shape:
        return
    shape = md.quant.logical_shape(emb)
    if shape is None:
        return
    rows, cols = shape
    extra = EMBED_EXTRA_ROWS.get(md.model_type or "", 0)
    if dims.vocab is not None and rows != dims.vocab + extra:
        yield finding(
            "CFG010",
            f"{emb.name} has {rows} rows but vocab_size = {dims.vocab}"
            + (f" (+ {extra} for {md.model_type})" if extra else ""),
            file=emb.file,
        )
    if dims.hidden is not None and not md.quant.takes(emb, dims.hidden):
        yield finding(
            "CFG011",
            f"{emb.name} has {cols} columns{' (unpacked)' if emb.dtype == 'U32' else ''} "
            f"but hidden_size = {dims.hidden}",
            file=emb.file,
        )
    head = md.text.head
    if head is None or not head.shape:
        return
    hshape = md.quant.logical_shape(head)
    if hshape is None:
        return
    want = (dims.vocab or hshape[0], dims.hidden or hshape[1])
    if hshape[0] != want[0] or not md.quant.takes(head, want[1]):
        yield finding(
            "CFG012",
            f"{head.name} is {hshape[0]} x {hshape[1]} but (vocab_size, hidden_size) = "
            f"({want[0]}, {want[1]})",
            file=head.file,
        )


@rule(
    "CFG020",
    "Transformer layers in the weights differ from num_hidden_layers",
    severity="error",
    fix="Set num_hidden_layers to the layers stored, or restore the missing layer shards; a strict "
    "load reports 'Missing parameters' or 'Received parameters not in model'.",
    compares="distinct layers.N indices in the text tensors vs num_hidden_layers",
)
def layers(md: ModelDir) -> Iterator[Finding]:
    """The language model's layer stacks (md.text.text_stacks: judged from where its embedding
    lives, so a vision or audio tower's layers never count) against the configured count; an
    encoder-decoder's two stacks each against its own count (encoder_layers, decoder_layers)."""
    dims = md.text.dims
    tc = md.text_config or {}
    stacks = md.text.text_stacks
    own = {
        c: (f"{part}_layers", positive_count(tc.get(f"{part}_layers")))
        for c in stacks
        for part in ("encoder", "decoder")
        if c.endswith(f".{part}.layers.") or c == f"{part}.layers."
    }
    if len(stacks) > 1 and len(own) == len(stacks) and all(n for _, n in own.values()):
        for container, (key, want) in sorted(own.items()):
            yield from _layer_count(stacks[container], want, 0, container[:-1], want_key=key)
        return
    if dims.layers is None:
        return
    found = md.text.layer_indices
    if not found:
        return
    extra_allowed = positive_int(tc.get("num_nextn_predict_layers")) or 0
    yield from _layer_count(found, dims.layers, extra_allowed, "", want_key="num_hidden_layers")


def _layer_count(
    found: set[int], want: int, extra_allowed: int, where: str, *, want_key: str
) -> Iterator[Finding]:
    missing = first_missing(found, want, limit=9)  # _short_list shows 8, then "..."
    extra = sorted(i for i in found if i >= want + extra_allowed)
    if missing or extra:
        parts = [
            f"weights hold {len(found)} {where + ' ' if where else ''}layers (0..{max(found)})"
        ]
        if missing:
            parts.append(f"missing {_short_list(missing)}")
        if extra:
            parts.append(f"extra {_short_list(extra)}")
        yield finding("CFG020", f"{', '.join(parts)}; {want_key} = {want}")


def _short_list(values: list[int], limit: int = 8) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


def _recurrent_prefixes(text: dict[str, TensorInfo]) -> set[str]:
    """`...self_attn.` modules that hold a recurrence's decay (A_log), not softmax attention:
    Kimi Linear's delta-rule layers keep the attention name and q/k/v_proj of their own widths."""
    return {name[: -len("A_log")] for name in text if name.endswith(".self_attn.A_log")}


@rule(
    "CFG030",
    "Attention projection shapes disagree with heads x head_dim",
    severity="error",
    fix="Fix num_attention_heads / num_key_value_heads / head_dim (head_dim may differ from "
    "hidden_size / heads: set it explicitly when it does).",
    compares="q_proj out == heads*head_dim (or twice it, a gated query, when o_proj takes "
    "heads*head_dim), k/v_proj out == kv_heads*head_dim, o_proj in == heads*head_dim",
)
@rule(
    "CFG031",
    "num_attention_heads is not a multiple of num_key_value_heads",
    severity="error",
    fix="Grouped-query attention needs heads % kv_heads == 0: fix one of the two counts.",
    compares="num_attention_heads % num_key_value_heads",
)
@rule(
    "CFG032",
    "hidden_size is not divisible by num_attention_heads and no head_dim is set",
    severity="error",
    fix="Set head_dim explicitly in the config (loaders fall back to hidden_size // heads).",
    compares="hidden_size % num_attention_heads when head_dim is absent",
)
def attention(md: ModelDir) -> Iterator[Finding]:
    dims = md.text.dims
    if dims.heads and dims.kv_heads and dims.heads % dims.kv_heads:
        yield finding(
            "CFG031",
            f"num_attention_heads = {dims.heads} is not a multiple of num_key_value_heads = "
            f"{dims.kv_heads}",
            file="config.json",
        )
    if dims.hidden and dims.heads and not dims.head_dim_declared and dims.hidden % dims.heads:
        yield finding(
            "CFG032",
            f"hidden_size = {dims.hidden} is not divisible by num_attention_heads = {dims.heads} "
            "and head_dim is not set",
            file="config.json",
        )
    if not (dims.heads and dims.kv_heads and dims.head_dim):
        return
    # Judge the first text layer that stores separate projections; one finding per projection.
    expect_out = {
        "q_proj": dims.heads * dims.head_dim,
        "k_proj": dims.kv_heads * dims.head_dim,
        "v_proj": dims.kv_heads * dims.head_dim,
    }
    heads_text = (
        f"num_attention_heads = {dims.heads}, num_key_value_heads = {dims.kv_heads}, "
        f"head_dim = {dims.head_dim}{'' if dims.head_dim_declared else ' (hidden/heads)'}"
    )
    o_in = dims.heads * (dims.v_head_dim or dims.head_dim)
    o_text = heads_text
    if dims.v_head_dim != dims.head_dim:
        o_text = f"num_attention_heads = {dims.heads}, v_head_dim = {dims.v_head_dim}"
    judged = (*expect_out, "o_proj")
    reported: set[str] = set()
    text = md.text.tensors
    recurrent = _recurrent_prefixes(text)
    for name, t in text.items():
        if not name.endswith("_proj.weight") or ".self_attn." not in name:
            continue
        if name[: name.rindex(".self_attn.") + len(".self_attn.")] in recurrent:
            continue
        proj = name.rsplit(".", 2)[-2]
        if proj in reported or proj not in judged:
            continue
        shape = md.quant.logical_shape(t)
        if shape is None:
            continue
        out_f, in_f = shape
        if proj == "q_proj" and out_f == 2 * expect_out[proj]:
            # a gated query (Qwen3-Next, Qwen3.5): queries and their output gate from one
            # projection; the same layer's o_proj then takes heads x head_dim, not twice that
            o_proj = text.get(name[: -len("q_proj.weight")] + "o_proj.weight")
            if o_proj is not None and md.quant.takes(o_proj, o_in):
                continue
        if proj in expect_out and out_f != expect_out[proj]:
            reported.add(proj)
            yield finding(
                "CFG030",
                f"{name} has {out_f} outputs, expected {expect_out[proj]} from {heads_text}",
                file=t.file,
            )
        elif proj == "o_proj" and not md.quant.takes(t, o_in):
            reported.add(proj)
            yield finding(
                "CFG030",
                f"{name} has {in_f} inputs, expected {o_in} from {o_text}",
                file=t.file,
            )


@rule(
    "CFG040",
    "tie_word_embeddings is true but an lm_head is stored",
    severity="warning",
    fix="Set tie_word_embeddings to false if the stored head was trained separately; otherwise drop "
    "lm_head.weight. Loaders either drop it silently or fail with 'Received parameters not in "
    "model: lm_head.weight'.",
    compares="tie_word_embeddings (declared or family default) vs a stored lm_head.weight",
)
@rule(
    "CFG041",
    "tie_word_embeddings is false but no lm_head is stored",
    severity="error",
    fix="Set tie_word_embeddings to true (the embedding doubles as the head), or add the missing "
    "lm_head shard; a strict load fails with 'Missing parameters: lm_head.weight'.",
    compares="tie_word_embeddings (declared, else the default of the family model_type or the "
    "architectures class names name) vs a stored lm_head.weight",
)
@rule(
    "CFG042",
    "tie_word_embeddings is absent and the loaders disagree on its default",
    severity="warning",
    fix="Write tie_word_embeddings explicitly into config.json: mlx-lm ties (and drops the stored "
    "lm_head) where transformers keeps it untied.",
    compares="absent tie_word_embeddings, stored lm_head, mlx-lm vs transformers defaults",
)
def tie(md: ModelDir) -> Iterator[Finding]:
    emb = md.text.embedding
    if emb is None:
        return
    head = md.text.head
    tied, declared = md.text.tie
    family = md.model_type or ""
    basis = None if declared else md.text.tie_basis[1]
    source = "declared" if declared else f"absent; {basis or 'this family'} defaults to {tied}"
    if ((tied and head is not None) or (not tied and head is None)) and (
        md.text.head_follows_weights
    ):
        return  # the loader's sanitize follows whatever is stored
    if tied and head is not None:
        yield finding(
            "CFG040",
            f"tie_word_embeddings = true ({source}) but {head.name} is stored",
            file=head.file,
            severity="error" if family in ALWAYS_TIED else None,
        )
    elif not tied and head is None and family not in ALWAYS_TIED:
        if not declared and basis is None:
            yield finding(
                "CFG041",
                f"tie_word_embeddings is absent and neither model_type {family!r} nor "
                "architectures name a family the installed libraries know, so its default "
                f"cannot be told; no lm_head.weight is stored (only {emb.name}): declare "
                "tie_word_embeddings: true",
                file="config.json",
                severity="warning",
            )
        else:
            yield finding(
                "CFG041",
                f"tie_word_embeddings = false ({source}) but no lm_head.weight is stored "
                f"(only {emb.name})",
            )
    if not declared and head is not None and family in MLX_LM_TIES_WHEN_ABSENT:
        yield finding(
            "CFG042",
            f"tie_word_embeddings is absent: transformers unties {family} (keeps {head.name}), "
            "mlx-lm ties it and drops the stored head",
            file="config.json",
        )
    nested = md.text_config is not md.config
    if (
        family in MLX_LM_UNTIES_WHEN_ABSENT_IN_TEXT_CONFIG
        and nested
        and "tie_word_embeddings" not in (md.text_config or {})
        and head is None
    ):
        yield finding(
            "CFG042",
            f"text_config has no tie_word_embeddings: mlx-lm unties {family} there and expects an "
            "lm_head the weights do not store",
            file="config.json",
        )


@rule(
    "CFG050",
    "layer_types length differs from num_hidden_layers",
    severity="error",
    fix="layer_types needs one entry per layer (transformers rejects the config otherwise).",
    compares="len(layer_types) vs num_hidden_layers",
)
@rule(
    "CFG051",
    "layer_types has an entry no loader knows",
    severity="warning",
    fix="Check the spelling against the model family (full_attention, sliding_attention, "
    "linear_attention, ...).",
    compares="layer_types entries vs known attention kinds",
)
def layer_types(md: ModelDir) -> Iterator[Finding]:
    tc = md.text_config or {}
    layer_types = tc.get("layer_types")
    if not isinstance(layer_types, list):
        return
    n = positive_int(tc.get("num_hidden_layers"))
    if n is not None and len(layer_types) != n:
        yield finding(
            "CFG050",
            f"layer_types has {len(layer_types)} entries but num_hidden_layers = {n}",
            file="config.json",
        )
    unknown = sorted({x for x in layer_types if isinstance(x, str)} - LAYER_TYPE_VALUES)
    if unknown:
        yield finding("CFG051", f"layer_types has unknown entries {unknown}", file="config.json")


@rule(
    "CFG060",
    "RoPE scaling type is not supported by mlx-lm",
    severity="error",
    fix="Use a RoPE type the loader implements (default, linear, dynamic, llama3, yarn, longrope, "
    "proportional, mrope) or a runtime that supports this one.",
    compares="rope_scaling/rope_parameters 'type' or 'rope_type' vs mlx-lm's initialize_rope",
)
@rule(
    "CFG061",
    "RoPE scaling is missing a key its type requires",
    severity="error",
    fix="Add the missing keys (copy them from the original model's config).",
    compares="keys present per RoPE type (linear/dynamic: factor; llama3: factor, low/high_freq_factor, "
    "original_max_position_embeddings; longrope: short/long_factor, original_max_position_embeddings; "
    "mrope: mrope_section)",
)
@rule(
    "CFG062",
    "A RoPE scaling value is out of range",
    severity="error",
    fix="Fix the value (factor >= 1, high_freq_factor > low_freq_factor, original context below "
    "max_position_embeddings, longrope factor lists of rotary_dim/2 entries, 3 mrope sections).",
    compares="RoPE values per type, as transformers' validation and mlx-lm's rope_utils check them",
)
@rule(
    "CFG063",
    "RoPE scaling dict has neither 'type' nor 'rope_type'",
    severity="warning",
    fix="Add 'rope_type' (transformers >= 4.43 spelling) or 'type'; without it the loader uses the "
    "default RoPE and ignores the scaling.",
    compares="presence of type/rope_type in rope_scaling",
)
def rope(md: ModelDir) -> Iterator[Finding]:
    """Each RoPE dict (md.text.ropes: one per layer type when rope_parameters is keyed by it)."""
    for key, value in md.text.ropes:
        if isinstance(value, dict) and value:
            yield from _rope(md, key.partition("[")[0], key, value)


@rule(
    "CFG064",
    "RoPE settings only inside rope_parameters, which the loader's module never reads",
    severity="error",
    fix="Copy rope_theta (and, for a scaled RoPE, the dict as rope_scaling) to the top level of "
    "config.json, as transformers 4 wrote them; keep rope_parameters for transformers 5.",
    compares="config.json top-level rope_theta/rope_scaling vs rope_parameters, and whether the "
    "installed mlx-lm module for model_type mentions rope_parameters (its source text)",
)
def rope_parameters_unread(md: ModelDir) -> Iterator[Finding]:
    """transformers 5 saves rope_theta and the RoPE scaling only inside `rope_parameters`; most
    mlx-lm modules (llama, mistral, qwen2, phi3 in 0.32) read only the top-level keys, so a model
    saved by transformers 5 and loaded (or converted) by mlx-lm runs with the dataclass default
    rope_theta and no scaling: it loads and writes worse text, no error anywhere."""
    if md.loader != "mlx-lm" or not isinstance(md.model_type, str):
        return
    tc = md.text.config
    params = tc.get("rope_parameters")
    if not isinstance(params, dict):
        return
    per_type = per_layer_type_rope(params, tc.get("layer_types"))
    from genai_common.model.loaders import rope_reading

    reading = rope_reading("mlx_lm", md.model_type)
    if reading is None or reading[0]:
        return
    default = reading[1]
    lost = []
    theta = params.get("rope_theta")
    number = isinstance(theta, int | float) and not isinstance(theta, bool)
    if (
        not per_type
        and "rope_theta" not in tc
        and number
        and (default is None or float(theta) != default)
    ):
        shown = "its default" if default is None else f"{default:g}"
        lost.append(f"rope_theta {theta:g} (the module will use {shown})")
    # per layer type (Gemma 3 saved by transformers 5): each type's theta maps to a field of its
    # own (rope_theta, rope_local_base_freq), so only a lost scaling is judged
    scaled = sorted(
        {
            str(kind)
            for d in (params.values() if per_type else [params])
            if isinstance(d, dict) and (kind := rope_type(d)) not in (None, "default")
        }
    )
    if scaled and tc.get("rope_scaling") is None:
        lost.append(f"the {'/'.join(map(repr, scaled))} RoPE scaling (the module will use none)")
    if lost:
        yield finding(
            "CFG064",
            f"mlx-lm's module for model_type {md.model_type!r} reads only top-level rope_theta / "
            f"rope_scaling; rope_parameters holds {' and '.join(lost)}",
            file="config.json",
        )


def _rope(md: ModelDir, base: str, key: str, rope: dict[str, Any]) -> Iterator[Finding]:
    kind = rope_type(rope)
    if kind is None:
        if base == "rope_parameters" and set(rope) <= {"rope_theta", "partial_rotary_factor"}:
            return  # transformers v5 keeps plain rope_theta here
        yield finding("CFG063", f"{key} = {rope} has no 'type' or 'rope_type'", file="config.json")
        return
    if kind not in MLX_LM_ROPE_TYPES:
        yield finding(
            "CFG060",
            f"{key} type {kind!r} is not one of mlx-lm's {sorted(MLX_LM_ROPE_TYPES)}",
            file="config.json",
        )
        return
    tc = md.text_config or {}
    # Phi-3 and others keep original_max_position_embeddings beside, not inside, the rope dict.
    missing = [
        k
        for k in ROPE_REQUIRED[kind]
        if k not in rope and not (k == "original_max_position_embeddings" and k in tc)
    ]
    if missing:
        yield finding(
            "CFG061",
            f"{key} type {kind!r} lacks {missing} (has {sorted(rope)})",
            file="config.json",
        )
    yield from _rope_values(md, key, kind, rope)


def _rope_values(md: ModelDir, key: str, kind: str, rope: dict[str, Any]) -> Iterator[Finding]:
    dims = md.text.dims
    bad: list[str] = []
    factor = rope.get("factor")
    if "factor" in rope and (not isinstance(factor, int | float) or isinstance(factor, bool)):
        bad.append(f"factor = {factor!r} is not a number")
    elif isinstance(factor, int | float) and kind != "default" and factor < 1:
        bad.append(f"factor = {factor} < 1")
    orig = rope.get(
        "original_max_position_embeddings",
        (md.text_config or {}).get("original_max_position_embeddings"),
    )
    if orig is not None and positive_int(orig) is None:
        bad.append(f"original_max_position_embeddings = {orig!r} is not a positive integer")
    if kind == "llama3":
        low, high = rope.get("low_freq_factor"), rope.get("high_freq_factor")
        if isinstance(low, int | float) and isinstance(high, int | float) and high <= low:
            bad.append(f"high_freq_factor = {high} <= low_freq_factor = {low}")
        if positive_int(orig) and dims.max_positions and orig >= dims.max_positions:
            bad.append(
                f"original_max_position_embeddings = {orig} >= max_position_embeddings = "
                f"{dims.max_positions}"
            )
    if kind in ("yarn", "deepseek_yarn"):
        fast, slow = rope.get("beta_fast"), rope.get("beta_slow")
        if isinstance(fast, int | float) and isinstance(slow, int | float) and fast <= slow:
            bad.append(f"beta_fast = {fast} <= beta_slow = {slow}")
    if kind in ("longrope", "su") and dims.head_dim:
        tc = md.text_config or {}
        partial = tc.get("partial_rotary_factor", 1.0)
        partial = partial if isinstance(partial, int | float) else 1.0
        # MLA rotates only the qk_rope_head_dim part of each head (MiniCPM3's longrope)
        rotary = positive_count(tc.get("qk_rope_head_dim")) if dims.mla_rank else None
        half = (rotary or int(dims.head_dim * partial)) // 2
        for name in ("short_factor", "long_factor"):
            value = rope.get(name)
            if value is None:
                continue
            if not isinstance(value, list):
                bad.append(f"{name} is {type(value).__name__}, not a list")
            elif len(value) != half:
                bad.append(f"{name} has {len(value)} entries, rotary_dim/2 = {half}")
    if kind == "mrope":
        section = rope.get("mrope_section")
        if section is not None and (not isinstance(section, list) or len(section) != 3):
            bad.append(f"mrope_section = {section!r} does not have 3 entries")
    for text in bad:
        yield finding("CFG062", f"{key} ({kind}): {text}", file="config.json")


@rule(
    "CFG070",
    "No context length in the config",
    severity="info",
    fix="Set max_position_embeddings; without it loaders fall back to their class default, which may "
    "not be the trained context.",
    compares="max_position_embeddings present",
)
@rule(
    "CFG071",
    "A window or original context exceeds max_position_embeddings",
    severity="warning",
    fix="Check sliding_window and rope original_max_position_embeddings against "
    "max_position_embeddings.",
    compares="sliding_window, original_max_position_embeddings vs max_position_embeddings",
)
def context(md: ModelDir) -> Iterator[Finding]:
    tc = md.text_config or {}
    if not tc:
        return
    dims = md.text.dims
    if dims.max_positions is None and not any(
        k in tc for k in ("max_position_embeddings", "n_positions", "seq_length", "max_seq_len")
    ):
        yield finding("CFG070", "config has no max_position_embeddings", file="config.json")
        return
    if dims.max_positions is None:
        return
    window = positive_int(tc.get("sliding_window"))
    if window and window > dims.max_positions and tc.get("use_sliding_window", True):
        yield finding(
            "CFG071",
            f"sliding_window = {window} > max_position_embeddings = {dims.max_positions}",
            file="config.json",
            severity="info",
        )
    for key, value in md.text.ropes:
        if not isinstance(value, dict):
            continue
        orig = positive_int(value.get("original_max_position_embeddings"))
        kind = rope_type(value)
        if orig and orig > dims.max_positions and kind not in ("llama3",):
            yield finding(
                "CFG071",
                f"{key}.original_max_position_embeddings = {orig} > "
                f"max_position_embeddings = {dims.max_positions}",
                file="config.json",
            )


EXPERT_PATTERN = r"\.experts\.(\d+)\."


@rule(
    "CFG080",
    "Stored experts differ from the configured expert count",
    severity="error",
    fix="Set num_local_experts / num_experts to the experts stored, or restore the missing shards.",
    compares="distinct experts.N indices (or stacked switch_mlp rows) vs num_experts",
)
def experts(md: ModelDir) -> Iterator[Finding]:
    tc = md.text_config or {}
    n = positive_int(
        tc.get("num_local_experts") or tc.get("num_experts") or tc.get("n_routed_experts")
    )
    if n is None:
        return
    ts = md.tensors
    expert = re.compile(EXPERT_PATTERN).search
    indices = {int(m.group(1)) for name in ts if (m := expert(name)) and md.text.owns(name)}
    if indices:
        if not is_range(indices, n):
            yield finding(
                "CFG080",
                f"weights hold experts {_short_list(sorted(indices))} ({len(indices)}) but the "
                f"config sets {n}",
            )
        return
    stacked = [
        t
        for name, t in ts.items()
        if ".switch_mlp." in name and name.endswith(".weight") and t.shape
    ]
    for t in stacked[:1]:
        if len(t.shape) == 3 and t.shape[0] != n:
            yield finding(
                "CFG080",
                f"{t.name} stacks {t.shape[0]} experts but the config sets {n}",
                file=t.file,
            )


@rule(
    "CFG033",
    "Latent-attention (MLA) projection shapes disagree with the config",
    severity="error",
    fix="Fix q_lora_rank / kv_lora_rank / qk_nope_head_dim / qk_rope_head_dim / v_head_dim to the "
    "published config of the checkpoint: mlx-lm fails with 'Expected shape' on load.",
    compares="q_a_proj out == q_lora_rank, q_b_proj (or q_proj) out == heads x (nope + rope), "
    "kv_a_proj_with_mqa out == kv_lora_rank + rope, kv_b_proj out == heads x (nope + v) and in == "
    "kv_lora_rank; mlx-lm's embed_q / unembed_out (heads, ...) likewise",
)
def mla(md: ModelDir) -> Iterator[Finding]:
    """The first layer's latent-attention projections against the MLA dimensions."""
    dims = md.text.dims
    tc = md.text_config or {}
    if not (dims.mla_rank and dims.heads):
        return
    q_rank = positive_count(tc.get("q_lora_rank"))
    nope = positive_count(tc.get("qk_nope_head_dim"))
    rope = positive_count(tc.get("qk_rope_head_dim"))
    v = dims.v_head_dim
    if not (nope and rope and v):
        return
    h = dims.heads
    # projection -> (rows, input width or None, the config text), rows/inputs as stored
    expect = {
        "q_a_proj": (q_rank, dims.hidden, f"q_lora_rank = {q_rank}"),
        "q_b_proj": (h * (nope + rope), q_rank, f"heads {h} x (qk_nope {nope} + qk_rope {rope})"),
        "q_proj": (
            h * (nope + rope),
            dims.hidden,
            f"heads {h} x (qk_nope {nope} + qk_rope {rope})",
        ),
        "kv_a_proj_with_mqa": (
            dims.mla_rank + rope,
            dims.hidden,
            f"kv_lora_rank {dims.mla_rank} + qk_rope {rope}",
        ),
        "kv_b_proj": (
            h * (nope + v),
            dims.mla_rank,
            f"heads {h} x (qk_nope {nope} + v_head_dim {v}), from kv_lora_rank {dims.mla_rank}",
        ),
    }
    # mlx-lm's conversion splits kv_b_proj per head: (heads, out, in), the last axis packed
    stacked = {
        "embed_q": ((h, dims.mla_rank), f"heads {h}, kv_lora_rank {dims.mla_rank}"),
        "unembed_out": ((h, v), f"heads {h}, v_head_dim {v}"),
    }
    reported: set[str] = set()
    text = md.text.tensors
    recurrent = _recurrent_prefixes(text)
    for name, t in text.items():
        if ".self_attn." not in name or not name.endswith(".weight"):
            continue
        if name[: name.rindex(".self_attn.") + len(".self_attn.")] in recurrent:
            continue
        proj = name.rsplit(".", 2)[-2]
        if proj in reported:
            continue
        if proj in stacked and t.shape and len(t.shape) == 3:
            want, text = stacked[proj]
            if tuple(t.shape[:2]) != want:
                reported.add(proj)
                yield finding(
                    "CFG033",
                    f"{name} is {list(t.shape)}, expected {list(want)} + [..] from {text}",
                    file=t.file,
                )
            continue
        if proj not in expect:
            continue
        rows, width, text = expect[proj]
        shape = md.quant.logical_shape(t) if t.shape and len(t.shape) == 2 else None
        if shape is None or rows is None:
            continue
        if shape[0] != rows:
            reported.add(proj)
            yield finding(
                "CFG033", f"{name} has {shape[0]} outputs, expected {rows} from {text}", file=t.file
            )
        elif width is not None and not md.quant.takes(t, width):
            reported.add(proj)
            yield finding(
                "CFG033", f"{name} has {shape[1]} inputs, expected {width} from {text}", file=t.file
            )


@rule(
    "CFG081",
    "The mixture-of-experts layout disagrees with the config",
    severity="error",
    fix="Fix moe_intermediate_size, n_shared_experts or first_k_dense_replace to the checkpoint's "
    "published config: mlx-lm fails with 'Expected shape' or 'parameters not in model' on load.",
    compares="routed and shared expert widths vs moe_intermediate_size (x n_shared_experts); "
    "layers below first_k_dense_replace dense, the others with experts",
)
def moe_layout(md: ModelDir) -> Iterator[Finding]:
    """DeepSeek-style MoE: expert widths, shared experts, and which layers are dense."""
    tc = md.text_config or {}
    dims = md.text.dims
    moe = dims.moe_intermediate
    if moe is None or not (tc.get("n_routed_experts") or tc.get("first_k_dense_replace")):
        return
    shared = positive_count(tc.get("n_shared_experts"))
    dense_below = tc.get("first_k_dense_replace")
    dense_below = dense_below if isinstance(dense_below, int) and dense_below >= 0 else None
    layer = re.compile(r"(?:^|\.)layers\.(\d+)\.mlp\.(.+)$").search
    reported: set[str] = set()
    with_experts: set[int] = set()
    dense: set[int] = set()
    for name, t in md.text.tensors.items():
        m = layer(name)
        if m is None:
            continue
        index, rest = int(m.group(1)), m.group(2)
        if rest.startswith(("experts.", "switch_mlp.", "gate.")):
            with_experts.add(index)
        elif rest.startswith(("gate_proj.", "up_proj.", "down_proj.")):
            dense.add(index)
        if not rest.endswith("gate_proj.weight") or not t.shape:
            continue
        rows = t.shape[-2] if len(t.shape) == 3 else t.shape[0]  # stacked: (experts, width, in)
        routed = rest.startswith(("experts.", "switch_mlp."))
        if routed and rows != moe and "routed" not in reported:
            reported.add("routed")
            yield finding(
                "CFG081", f"{name} is {rows} wide but moe_intermediate_size = {moe}", file=t.file
            )
        shared_rows = moe * shared if shared else None
        is_shared = rest.startswith("shared_experts.")
        if is_shared and shared_rows and rows != shared_rows and "shared" not in reported:
            reported.add("shared")
            yield finding(
                "CFG081",
                f"{name} is {rows} wide but moe_intermediate_size {moe} x n_shared_experts "
                f"{shared} = {shared_rows}",
                file=t.file,
            )
    if dense_below is None or not (with_experts or dense):
        return
    wrong_dense = sorted(i for i in with_experts if i < dense_below)
    wrong_moe = sorted(i for i in dense - with_experts if i >= dense_below)
    if wrong_dense or wrong_moe:
        parts = []
        if wrong_dense:
            parts.append(f"layers {_short_list(wrong_dense)} hold experts")
        if wrong_moe:
            parts.append(f"layers {_short_list(wrong_moe)} are dense")
        yield finding(
            "CFG081",
            f"{' and '.join(parts)} but first_k_dense_replace = {dense_below} "
            f"(layers below it dense, the rest experts)",
            file="config.json",
        )


CONFIG_DTYPES = {"bfloat16": "BF16", "float16": "F16", "float32": "F32"}


@rule(
    "CFG090",
    "Weights are stored in another float type than the config's torch_dtype",
    severity="warning",
    fix="Keep bfloat16-trained weights in bfloat16 (float16 overflows above 65504: Gemma-family "
    "activations become inf); convert with --dtype bfloat16 or fix torch_dtype.",
    compares="config torch_dtype/dtype vs the dominant float dtype in the headers",
)
def dtype(md: ModelDir) -> Iterator[Finding]:
    tc, cfg = md.text_config or {}, md.config or {}
    declared = next(
        (
            v
            for src in (tc, cfg)
            for k in ("torch_dtype", "dtype")
            if isinstance(v := src.get(k), str) and v in CONFIG_DTYPES
        ),
        None,
    )
    if declared is None:
        return
    counts: dict[str, int] = {}
    for t in md.text.tensors.values():
        if t.dtype in ("BF16", "F16", "F32") and t.shape is not None:
            n = 1
            for d in t.shape:
                n *= d
            counts[t.dtype] = counts.get(t.dtype, 0) + n
    if not counts:
        return
    stored = max(counts, key=lambda k: counts[k])
    want = CONFIG_DTYPES[declared]
    if stored == want or (want == "F32" and stored in ("BF16", "F16")):
        return  # saving a float32-declared model in half precision is the usual conversion
    severity = "warning" if (want, stored) == ("BF16", "F16") else "info"
    yield finding(
        "CFG090",
        f"torch_dtype = {declared} but most weights are stored as {stored}",
        file="config.json",
        severity=severity,  # type: ignore[arg-type]
    )
