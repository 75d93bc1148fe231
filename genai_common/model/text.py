"""The text model of a checkpoint: dimensions, which tensors are the language model's, the
embedding and the head, whether they are tied, RoPE, layer indices.

`md.text` is a `TextModel` built once per ModelDir; each attribute is computed on first use and
kept (the quantization and memory views ask per tensor). VLMs keep their language model under
`text_config` (or `llm_config` / `language_config`): ModelDir.text_config picks it.
"""

from __future__ import annotations

import re
from collections import namedtuple
from functools import cache, cached_property

from genai_common.model.values import positive_count

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from genai_common.model.model_dir import ModelDir, TensorInfo

# Name parts that mark a tensor as belonging to something other than the language model.
NON_TEXT_MARKERS = (
    "vision",
    "visual",
    "image_",
    "multi_modal_projector",
    "mm_projector",
    "audio",
    "aligner",
    "connector",
    "perceiver",
    "patch_embed",
    "merger",
    "mtp",
)
EMBED_SUFFIXES = (
    "embed_tokens.weight",
    "tok_embeddings.weight",
    "wte.weight",
    "word_embeddings.weight",
)
HEAD_NAMES = ("lm_head.weight", "output.weight", "embed_out.weight")
# a name's layer index: re.search(LAYER_PATTERN, name) (layer_indices does all names at once)
LAYER_PATTERN = r"(?:^|\.)(?:layers|h|blocks)\.(\d+)\."
# LAYER_PATTERN's first match in each line of the names joined by newlines: the lazy prefix finds
# the leftmost `layers.N.` of a name, as re.search does, in one pass over all the names.
FIRST_LAYER_PATTERN = r"(?m)^(?:[^\n]*?\.)?(?:layers|h|blocks)\.(\d+)\."

# transformers' declared default for tie_word_embeddings when config.json omits it (read from
# transformers 5.24 configuration_*.py). Families not listed default to False there.
TIED_BY_DEFAULT = frozenset(
    {
        "gemma",
        "gemma2",
        "gemma3",
        "gemma3_text",
        "gemma3n",
        "gemma3n_text",
        "paligemma",
        "starcoder2",
        "cohere",
        "cohere2",
        "gpt2",
        "falcon",
        "smollm3",
        "mistral3",
        "t5",
    }
)
# mlx-lm 0.32's ModelArgs default tie_word_embeddings=True for these although transformers says
# False: an absent key plus a stored lm_head means mlx-lm ties and sanitize() drops the head.
MLX_LM_TIES_WHEN_ABSENT = frozenset({"llama", "mistral", "qwen2", "granite", "olmo2"})
# mlx-lm 0.32's mistral3 sets text_config.tie_word_embeddings = False when text_config lacks it,
# even if the top level says true (mlx-lm#648: "Missing 1 parameters: language_model.lm_head").
MLX_LM_UNTIES_WHEN_ABSENT_IN_TEXT_CONFIG = frozenset({"mistral3"})
# mlx-lm's Model of these has no lm_head at all: the embedding is the output projection
# (lfm2 and hunyuan whatever the config says; LFM2 names the key tie_embedding)
ALWAYS_TIED = frozenset(
    {"gemma", "gemma2", "cohere", "cohere2", "gpt2", "hunyuan", "lfm2", "lfm2_moe"}
)
# State-space models: no attention heads to configure (mlx-lm's mamba, mamba2)
ATTENTION_FREE = frozenset({"mamba", "mamba2", "falcon_mamba"})
# Families whose mlx-lm sanitize() unties when an lm_head is stored (and ties when it is absent).
TIE_FOLLOWS_WEIGHTS = frozenset({"gemma3", "gemma3_text", "gemma3n", "gemma3n_text"})
# Embedding rows beyond vocab_size: Mllama's text embedding is vocab_size + 8 rows (transformers
# and mlx-vlm 0.7.10 alike; its lm_head keeps vocab_size rows).
EMBED_EXTRA_ROWS = {"mllama": 8}


@cache
def _non_text_search() -> Callable[[str], re.Match[str] | None]:
    """Case-sensitive alternation over the lowered name: ten times faster than re.IGNORECASE
    (compiled on first use: 0.17 ms that a text-only checkpoint never pays)."""
    return re.compile("|".join(re.escape(m) for m in NON_TEXT_MARKERS)).search


def is_text_tensor(name: str) -> bool:
    """Whether a tensor belongs to the language model (not a vision tower, projector, MTP...)."""
    return _non_text_search()(name.lower()) is None


def rope_type(rope: dict[str, Any]) -> str | None:
    """A RoPE dict's type ('type', else 'rope_type'), or None."""
    value = rope.get("type") or rope.get("rope_type")
    return value if isinstance(value, str) else None


class TextDims(
    namedtuple(
        "TextDims",
        "hidden layers heads kv_heads head_dim head_dim_declared v_head_dim vocab intermediate "
        "moe_intermediate max_positions mla_rank",
    )
):
    """The text model's dimensions, each a positive int up to MAX_COUNT or None."""

    __slots__ = ()
    hidden: int | None
    layers: int | None
    heads: int | None
    kv_heads: int | None
    head_dim: int | None  # of queries and keys (MLA: qk_nope_head_dim + qk_rope_head_dim)
    head_dim_declared: bool  # set in the config (head_dim, or MLA's qk dims), not hidden/heads
    v_head_dim: int | None  # of values: head_dim unless the config sets v_head_dim (MLA)
    vocab: int | None
    intermediate: int | None
    moe_intermediate: int | None
    max_positions: int | None
    mla_rank: int | None  # kv_lora_rank: multi-head latent attention (DeepSeek V2/V3 and kin)


def text_dims(tc: dict[str, Any]) -> TextDims:
    """The dimensions a text config declares. Every dimension is a positive int up to MAX_COUNT,
    else None (per-layer head counts, as OpenELM's, leave heads and kv_heads None)."""
    hidden = positive_count(
        tc.get("hidden_size") or tc.get("n_embd") or tc.get("d_model") or tc.get("model_dim")
    )
    layers = positive_count(
        tc.get("num_hidden_layers")
        or tc.get("n_layer")
        or tc.get("num_layers")
        or tc.get("num_transformer_layers")
    )
    heads = positive_count(tc.get("num_attention_heads") or tc.get("n_head"))
    kv_heads = positive_count(tc.get("num_key_value_heads"))
    shared = positive_count(tc.get("n_shared_head"))  # PLaMo: each kv head serves n queries
    if kv_heads is None and heads and shared:
        kv_heads = -(-heads // shared)
    kv_heads = kv_heads or heads
    declared = positive_count(tc.get("head_dim"))
    mla_rank = positive_count(tc.get("kv_lora_rank"))
    nope, rope = (
        positive_count(tc.get("qk_nope_head_dim")),
        positive_count(tc.get("qk_rope_head_dim")),
    )
    if declared is None and mla_rank and nope and rope:
        declared = nope + rope  # MLA: queries and keys are nope + rope wide, whatever hidden/heads
    per_head = hidden // heads if hidden and heads and hidden % heads == 0 else None
    head_dim = declared or per_head
    # values: v_head_dim, else the config's head_dim, else hidden/heads; MLA's nope + rope is the
    # query/key width only (MiniCPM3 sets neither: its values are hidden/heads wide)
    v_head_dim = (
        positive_count(tc.get("v_head_dim")) or positive_count(tc.get("head_dim")) or per_head
    )
    return TextDims(
        hidden=hidden,
        layers=layers,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        head_dim_declared=declared is not None,
        v_head_dim=v_head_dim or head_dim,
        mla_rank=mla_rank,
        vocab=positive_count(tc.get("vocab_size")),
        intermediate=positive_count(tc.get("intermediate_size") or tc.get("n_inner")),
        moe_intermediate=positive_count(tc.get("moe_intermediate_size")),
        max_positions=positive_count(tc.get("max_position_embeddings") or tc.get("n_positions")),
    )


def _shortest(names: Any) -> str | None:
    return min(names, key=lambda n: (len(n), n), default=None)


class TextModel:
    """md.text: the language model's view of a checkpoint (see the module docstring)."""

    def __init__(self, md: ModelDir) -> None:
        self.md = md

    @cached_property
    def config(self) -> dict[str, Any]:
        """The text config (text_config when nested, else config.json; {} when absent)."""
        return self.md.text_config or {}

    @cached_property
    def nested(self) -> bool:
        """Whether the text config is nested in config.json (a VLM's text_config)."""
        return self.md.text_config is not self.md.config

    @cached_property
    def dims(self) -> TextDims:
        return text_dims(self.config)

    @cached_property
    def tensors(self) -> dict[str, TensorInfo]:
        """The language model's tensors (is_text_tensor). One search over all the names first: a
        text-only checkpoint has no marker anywhere, and is returned whole (substring tests: over
        many names they are faster than the alternation regex)."""
        ts = self.md.tensors
        names = "\n".join(ts).lower()
        if any(marker in names for marker in NON_TEXT_MARKERS):
            ts = {n: t for n, t in ts.items() if is_text_tensor(n)}
        return ts

    @cached_property
    def embedding(self) -> TensorInfo | None:
        ts = self.tensors
        name = _shortest(n for n in ts if n.endswith(EMBED_SUFFIXES))
        return ts[name] if name else None

    @cached_property
    def head(self) -> TensorInfo | None:
        ts = self.tensors
        name = _shortest(n for n in ts if n in HEAD_NAMES or n.endswith(".lm_head.weight"))
        return ts[name] if name else None

    @cached_property
    def layer_indices(self) -> set[int]:
        """The layers.N indices of the text tensors (re.search(LAYER_PATTERN, name) on each)."""
        return set(map(int, re.findall(FIRST_LAYER_PATTERN, "\n".join(self.tensors))))

    @cached_property
    def tie(self) -> tuple[bool, bool]:
        """(tied, declared): the config's tie_word_embeddings, else the family default."""
        cfg = self.md.config or {}
        tc = self.config
        for source in (tc, cfg):
            value = source.get("tie_word_embeddings")
            if isinstance(value, bool):
                return value, True
        # a VLM's language model keeps its own default (Aya Vision's cohere2 text_config ties)
        text_type = tc.get("model_type") if self.nested else None
        tied = (self.md.model_type or "") in TIED_BY_DEFAULT or text_type in TIED_BY_DEFAULT
        return tied, False

    @cached_property
    def rope(self) -> tuple[str, Any] | None:
        """('rope_scaling' | 'rope_parameters', value) when the config has one that is not null."""
        for key in ("rope_scaling", "rope_parameters"):
            value = self.config.get(key)
            if value is not None:
                return key, value
        return None
