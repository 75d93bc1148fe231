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
    ".shared.weight",  # BART and T5's token embedding, shared by encoder, decoder and head
)
HEAD_NAMES = ("lm_head.weight", "output.weight", "embed_out.weight")
# a name's layer index: re.search(LAYER_PATTERN, name) (layer_indices does all names at once)
LAYER_PATTERN = r"(?:^|\.)(?:layers|h|blocks)\.(\d+)\."
# LAYER_PATTERN's first match in each line of the names joined by newlines: the lazy prefix finds
# the leftmost `layers.N.` of a name, as re.search does, in one pass over all the names.
FIRST_LAYER_PATTERN = r"(?m)^(?:[^\n]*?\.)?(?:layers|h|blocks)\.(\d+)\."
# the same first match, with its container (the name up to and including `layers.`)
STACK_PATTERN = r"(?m)^((?:[^\n]*?\.)?(?:layers|h|blocks)\.)(\d+)\."

# How configs spell the text model's sizes. transformers maps each canonical name to a family's
# own key with `attribute_map` (BART and Florence-2's language model: num_attention_heads ->
# encoder_attention_heads, hidden_size -> d_model, num_hidden_layers -> encoder_layers; GPT-2:
# n_embd, n_head, n_layer; T5: d_kv for head_dim): the canonical name first, then every key an
# attribute_map of transformers 5.25 gives for it (tests/test_checks_config.py re-reads them from
# the installed transformers), a key that is itself another size's canonical name excepted.
TEXT_KEY_SPELLINGS: dict[str, tuple[str, ...]] = {
    "hidden_size": (
        "hidden_size",
        "n_embd",
        "d_model",
        "model_dim",
        "hidden_dim",
        "embed_dim",
        "emb_dim",
        "dim",
        "text_hidden_size",
        "mask_feature_size",
    ),
    "num_hidden_layers": (
        "num_hidden_layers",
        "n_layer",
        "num_layers",
        "num_transformer_layers",
        "n_layers",
        "encoder_layers",
        "decoder_layers",
        "decoder_num_hidden_layers",
        "layers",
        "depth",
        "num_stages",
        "num_encoder_blocks",
    ),
    "num_attention_heads": (
        "num_attention_heads",
        "n_head",
        "num_heads",
        "n_heads",
        "encoder_attention_heads",
        "decoder_attention_heads",
        "attention_heads",
        "num_encoder_attention_heads",
        "encoder_num_attention_heads",
        "decoder_num_attention_heads",
    ),
    "num_key_value_heads": ("num_key_value_heads", "decoder_num_key_value_heads"),
    "head_dim": ("head_dim", "d_kv", "kv_channels", "attention_head_dim"),
    "vocab_size": ("vocab_size", "tgt_vocab_size", "input_vocab_size"),
    "intermediate_size": ("intermediate_size", "n_inner", "encoder_ffn_dim", "ffn_hidden_size"),
    "max_position_embeddings": (
        "max_position_embeddings",
        "n_positions",
        "max_seq_len",
        "context_length",
        "model_max_length",
    ),
}


def spelled(tc: dict[str, Any], key: str) -> tuple[str, Any] | None:
    """(the key the config uses, its value) for a canonical size name: the first of
    TEXT_KEY_SPELLINGS[key] present and not null; None when the config spells it no way."""
    for name in TEXT_KEY_SPELLINGS[key]:
        value = tc.get(name)
        if value is not None:
            return name, value
    return None


def _size(tc: dict[str, Any], key: str) -> int | None:
    found = spelled(tc, key)
    return positive_count(found[1]) if found else None


# transformers' declared default for tie_word_embeddings when config.json omits it: the model
# types whose config class says `tie_word_embeddings: bool = True` in transformers 5.25 (read from
# its configuration_*.py; tests/test_checks_config.py re-reads the installed transformers), and
# T5, which ties through its shared embedding. A model type whose class does not say so is untied
# (modeling_utils reads getattr(config, "tie_word_embeddings", False)).
TIED_BY_DEFAULT = frozenset(
    {
        "albert",
        "aya_vision",
        "bart",
        "bert",
        "bert-generation",
        "big_bird",
        "bigbird_pegasus",
        "biogpt",
        "blenderbot",
        "blenderbot-small",
        "blip",
        "blip_text_model",
        "bloom",
        "camembert",
        "canary",
        "cohere",
        "cohere2",
        "cohere2_moe",
        "cohere2_vision",
        "cohere_compass_text",
        "convbert",
        "cpmant",
        "ctrl",
        "d_fine",
        "dab-detr",
        "data2vec-text",
        "deberta",
        "deberta-v2",
        "deepseek_vl",
        "deepseek_vl_hybrid",
        "deformable_detr",
        "deimv2",
        "diffusion_gemma",
        "diffusion_gemma_text",
        "distilbert",
        "electra",
        "ernie",
        "ernie4_5",
        "ernie4_5_moe",
        "ernie4_5_vl_moe",
        "ernie4_5_vl_moe_text",
        "esm",
        "falcon",
        "falcon_mamba",
        "fine_acoustics",
        "flaubert",
        "flava",
        "florence2",
        "fnet",
        "fun_asr_nano",
        "funnel",
        "gemma",
        "gemma2",
        "gemma3",
        "gemma3_text",
        "gemma3n",
        "gemma3n_text",
        "gemma4",
        "gemma4_assistant",
        "gemma4_text",
        "gemma4_unified",
        "gemma4_unified_assistant",
        "gemma4_unified_text",
        "glmasr",
        "got_ocr2",
        "gpt2",
        "gpt_bigcode",
        "gpt_neo",
        "gpt_neox_japanese",
        "granite_docling",
        "granite_docling_text",
        "granite_speech",
        "granite_speech5_ctc",
        "granite_speech_plus",
        "granite_swa",
        "grounding-dino",
        "gte",
        "hunyuan_vl",
        "hunyuan_vl_text",
        "hyperclovax_vision_v2",
        "ibert",
        "internvl",
        "janus",
        "jetmoe",
        "jina_embeddings_v3",
        "kimi_k25",
        "kosmos-2",
        "kosmos-2.5",
        "kosmos_2_5_text_model",
        "kosmos_2_text_model",
        "lara_mini",
        "layoutlm",
        "led",
        "lfm2",
        "lfm2_moe",
        "lfm2_vl",
        "lfm3",
        "lfm3_vl",
        "lighton_ocr",
        "longformer",
        "longt5",
        "luke",
        "lxmert",
        "m2m_100",
        "mamba",
        "marian",
        "mbart",
        "megatron-bert",
        "mimi",
        "minicpm3",
        "minicpm_ocr",
        "mistral3",
        "mm-grounding-dino",
        "mobilebert",
        "modernbert",
        "modernbert-decoder",
        "moonshine",
        "moss_transcribe_diarize",
        "mpnet",
        "mpt",
        "mra",
        "mt5",
        "mvp",
        "neomme",
        "nllb-moe",
        "nystromformer",
        "openai-gpt",
        "opt",
        "ovis2",
        "paddleocr_vl",
        "paddleocr_vl_text",
        "paligemma",
        "param2moe",
        "pe_audio_video",
        "pegasus",
        "pegasus_x",
        "plbart",
        "pop2piano",
        "pp_chart2table",
        "pp_doclayout_v3",
        "pp_doclayout_v4",
        "prophetnet",
        "qwen2_5_omni_text",
        "qwen3_asr",
        "qwen3_vl_moe_text",
        "recurrent_gemma",
        "roberta",
        "roberta-prelayernorm",
        "roc_bert",
        "roformer",
        "rt_detr_v2",
        "sam",
        "sam_hq",
        "seamless_m4t",
        "seamless_m4t_v2",
        "smollm3",
        "speech_to_text",
        "speecht5",
        "squeezebert",
        "starcoder2",
        "switch_transformers",
        "t5",
        "t5_gemma_module",
        "t5gemma",
        "t5gemma2",
        "t5gemma2_decoder",
        "t5gemma2_encoder",
        "t5gemma2_text",
        "tapas",
        "trocr",
        "udop",
        "vaultgemma",
        "vilt",
        "visual_bert",
        "voxtral_realtime",
        "whisper",
        "xglm",
        "xlm",
        "xlm-roberta",
        "xlm-roberta-xl",
        "xlnet",
        "xmod",
        "yoso",
        "youtu",
        "zamba",
        "zamba2",
        "zaya",
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
# Families whose loader's sanitize() unties when an lm_head is stored (and ties when it is
# absent), besides those whose installed loader source says so (loaders.head_follows_weights:
# mlx-lm's gemma3_text, recurrent_gemma; mlx-vlm 0.7.10's florence2, whose lm_head is always a
# Linear filled from the shared embedding when the checkpoint omits it).
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


ROPE_KEYS = frozenset(
    {"rope_type", "type", "rope_theta", "factor", "partial_rotary_factor", "mrope_section"}
)


def per_layer_type_rope(value: Any, layer_types: Any = None) -> bool:
    """Whether a rope dict is keyed by layer type (transformers 5: {"full_attention": {...},
    "sliding_attention": {...}}): every value an object, no RoPE key of its own, and the keys
    attention kinds (the config's layer_types, or names ending in `_attention`)."""
    if not isinstance(value, dict) or not value or not value.keys().isdisjoint(ROPE_KEYS):
        return False
    kinds = set(layer_types) if isinstance(layer_types, list) else set()
    return all(
        isinstance(v, dict) and isinstance(k, str) and (k in kinds or k.endswith("attention"))
        for k, v in value.items()
    )


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
    hidden = _size(tc, "hidden_size")
    layers = _size(tc, "num_hidden_layers")
    heads = _size(tc, "num_attention_heads")
    kv_heads = _size(tc, "num_key_value_heads")
    shared = positive_count(tc.get("n_shared_head"))  # PLaMo: each kv head serves n queries
    if kv_heads is None and heads and shared:
        kv_heads = -(-heads // shared)
    kv_heads = kv_heads or heads
    declared = _size(tc, "head_dim")
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
    v_head_dim = positive_count(tc.get("v_head_dim")) or _size(tc, "head_dim") or per_head
    return TextDims(
        hidden=hidden,
        layers=layers,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        head_dim_declared=declared is not None,
        v_head_dim=v_head_dim or head_dim,
        mla_rank=mla_rank,
        vocab=_size(tc, "vocab_size"),
        intermediate=_size(tc, "intermediate_size"),
        moe_intermediate=positive_count(tc.get("moe_intermediate_size")),
        max_positions=_size(tc, "max_position_embeddings"),
    )


# transformers' model class names: family + head (LlamaForCausalLM, GPT2LMHeadModel,
# Gemma3ForConditionalGeneration, MistralModel)
ARCHITECTURE_HEADS = r"(?:For[A-Z][A-Za-z]*|LMHeadModel|Model)$"


def _norm(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def architecture_family(arch: str) -> str:
    """The family of a class name in `architectures`, normalised (Gemma2ForCausalLM -> gemma2,
    Qwen2_5_VLForConditionalGeneration -> qwen25vl), as _norm writes model types."""
    return _norm(re.sub(ARCHITECTURE_HEADS, "", arch))


@cache
def _known_families() -> frozenset[str]:
    """Normalised model types the installed transformers, mlx-lm and mlx-vlm know, with the
    families that tie by default (found without importing any of them)."""
    from genai_common.model.loaders import supported, transformers_model_types

    names = set(TIED_BY_DEFAULT) | set(transformers_model_types() or ())
    for package in ("mlx_lm", "mlx_vlm"):
        info = supported(package)
        if info is not None:
            names |= info[0]
    return frozenset(_norm(n) for n in names)


def _parent(path: str) -> str:
    """`a.b.` -> `a.`, `a.` -> `` (module paths end with a dot)."""
    return path[: path.rfind(".", 0, len(path) - 1) + 1]


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
    def stacks(self) -> dict[str, set[int]]:
        """Every layer stack in the weights: container -> layer indices. A name's container is
        its text up to and including the word of its first `layers.N.` / `h.N.` / `blocks.N.`
        (`model.layers.`, `vision_tower.encoder.layers.`, `transformer.h.`): one pass over all
        the names, as LAYER_PATTERN would find it name by name."""
        out: dict[str, set[int]] = {}
        for container, index in re.findall(STACK_PATTERN, "\n".join(self.md.tensors)):
            out.setdefault(container, set()).add(int(index))
        return out

    @cached_property
    def anchor(self) -> str | None:
        """The module path the language model's token embedding lives under (`model.`,
        `language_model.model.`, `llm.model.`, `transformer.embedding.`), or None when no
        embedding is stored outside a marked sub-network. Judged from the structure: the shortest
        embedding name that no NON_TEXT_MARKERS part marks as something else."""
        ts = self.md.tensors
        names = [n for n in ts if n.endswith(EMBED_SUFFIXES) and is_text_tensor(n)]
        if not names:
            return None
        vocab = self.dims.vocab
        heads = [n for n in ts if n in HEAD_NAMES or n.endswith(".lm_head.weight")]
        head = _shortest(heads)
        beside = head[: head.rfind(".lm_head.") + 1] if head and ".lm_head." in head else ""

        def rank(n: str) -> tuple[bool, bool, int, str]:
            # the one with vocab_size rows, under the head's path, shortest (a talker or TTS
            # model beside the language model has an embedding of its own)
            shape = ts[n].shape
            rows_differ = bool(vocab and shape and shape[0] != vocab)
            return rows_differ, not n.startswith(beside), len(n), n

        name = min(names, key=rank)
        module = name[: -len(".weight")]
        return module[: module.rfind(".") + 1]

    @cached_property
    def text_stacks(self) -> dict[str, set[int]]:
        """The layer stacks of the language model: those directly under the embedding's module
        path (`model.layers.` beside `model.embed_tokens`), else one level below it (an
        encoder-decoder's `encoder.layers.` and `decoder.layers.`), else the same beside its
        parent (ChatGLM's `transformer.encoder.layers.` beside `transformer.embedding.`). A stack
        deeper below (a vision encoder's own language model, `model.qwen2_model.model.model.
        layers.`, a SAM's `model.sam_model.blocks.`) is another network's, whatever its names.
        {} when there is no embedding to anchor on (the marker rule then decides alone)."""
        anchor = self.anchor
        if anchor is None:
            return {}
        stacks = {c: ids for c, ids in self.stacks.items() if is_text_tensor(c)}
        levels = [anchor]
        if anchor:
            levels.append(_parent(anchor))
        for level in levels:
            if level == "" and anchor:
                break  # never the whole checkpoint: a vision tower may sit at the top too
            for depth in (0, 1):
                found = {
                    c: ids
                    for c, ids in stacks.items()
                    if _parent(c).startswith(level) and _parent(c)[len(level) :].count(".") == depth
                }
                if found:
                    return found
        return {}

    @cached_property
    def foreign(self) -> tuple[str, ...]:
        """Module paths of the other networks that have their own layer stack (a vision or audio
        tower, a resampler, a second language model inside a vision encoder): the first part of
        each other stack's path that the language model's own paths do not share."""
        text = self.text_stacks
        if not text:
            return ()
        own = [*text, self.anchor or ""]
        roots: set[str] = set()
        for container in self.stacks:
            if container in text:
                continue
            end = 0
            while True:
                end = container.find(".", end) + 1
                if end == 0:
                    break
                prefix = container[:end]
                if not any(p.startswith(prefix) for p in own):
                    roots.add(prefix)
                    break
        return tuple(sorted(roots))

    def owns(self, name: str) -> bool:
        """Whether a tensor (or module path) is the language model's: not under another network's
        path (`foreign`) and not marked as something else (NON_TEXT_MARKERS)."""
        return is_text_tensor(name) and not name.startswith(self.foreign or ("\0",))

    @cached_property
    def tensors(self) -> dict[str, TensorInfo]:
        """The language model's tensors (owns). One search over all the names first: a text-only
        checkpoint has no marker anywhere and no other network's stack, and is returned whole
        (substring tests: over many names they are faster than the alternation regex)."""
        ts = self.md.tensors
        names = "\n".join(ts).lower()
        foreign = self.foreign
        if any(marker in names for marker in NON_TEXT_MARKERS):
            ts = {n: t for n, t in ts.items() if is_text_tensor(n)}
        if foreign:
            ts = {n: t for n, t in ts.items() if not n.startswith(foreign)}
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
        """The layer indices of the language model's stacks (text_stacks); without an embedding to
        anchor on, the layers.N indices of the text tensors (re.search(LAYER_PATTERN, name) on
        each)."""
        stacks = self.text_stacks
        if stacks:
            return set().union(*stacks.values())
        return set(map(int, re.findall(FIRST_LAYER_PATTERN, "\n".join(self.tensors))))

    @cached_property
    def tie(self) -> tuple[bool, bool]:
        """(tied, declared): the config's tie_word_embeddings, else the family default
        (tie_basis says which family decided it, and whether any did)."""
        cfg = self.md.config or {}
        tc = self.config
        for source in (tc, cfg):
            value = source.get("tie_word_embeddings")
            if isinstance(value, bool):
                return value, True
        return bool(self.tie_basis[0]), False

    @cached_property
    def head_follows_weights(self) -> bool:
        """Whether the loader keeps whatever the checkpoint stores (a stored lm_head used, an absent
        one tied): TIE_FOLLOWS_WEIGHTS, or the installed loader's sanitize() says so
        (loaders.head_follows_weights)."""
        family = self.md.model_type or ""
        if family in TIE_FOLLOWS_WEIGHTS:
            return True
        package = {"mlx-lm": "mlx_lm", "mlx-vlm": "mlx_vlm"}.get(self.md.loader or "")
        if package is None or not family:
            return False
        from genai_common.model.loaders import head_follows_weights

        return head_follows_weights(package, family)

    @cached_property
    def tie_basis(self) -> tuple[bool, str | None]:
        """(tied by default, the family that says so) when config.json omits tie_word_embeddings.
        The family is the model_type (a VLM's text_config model_type too: Aya Vision's cohere2
        ties); for a model_type no installed library knows (a fine-tune renamed it), the class
        names in `architectures` (Gemma2ForCausalLM -> gemma2, transformers' naming convention).
        (False, None): no family could be told, so neither could the default."""
        cfg = self.md.config or {}
        tc = self.config
        types = [self.md.model_type, tc.get("model_type") if self.nested else None]
        types = [t for t in types if isinstance(t, str) and t]
        for t in types:
            if t in TIED_BY_DEFAULT:
                return True, f"model_type {t!r}"
        known = _known_families()
        for t in types:
            norm = _norm(t)
            if norm in known or norm.removesuffix("text") in known:
                return False, f"model_type {t!r}"
        tied_families = {_norm(n) for n in TIED_BY_DEFAULT}
        archs = [
            a
            for source in (cfg, tc)
            if isinstance(source.get("architectures"), list)
            for a in source["architectures"]
            if isinstance(a, str)
        ]
        for arch in archs:
            family = architecture_family(arch)
            if family in tied_families:
                return True, f"architectures {arch!r}"
        for arch in archs:
            if architecture_family(arch) in known:
                return False, f"architectures {arch!r}"
        return False, None

    @cached_property
    def ropes(self) -> list[tuple[str, Any]]:
        """Every RoPE dict the text config holds, as (where, value): ('rope_scaling', {...}), or,
        for transformers 5's per-layer-type rope_parameters ({"full_attention": {...},
        "sliding_attention": {...}}, each with its own rope_type: Gemma 3, Gemma 4, Laguna),
        one ("rope_parameters['full_attention']", {...}) per layer type. [] when there is none."""
        found = self.rope
        if found is None:
            return []
        key, value = found
        if per_layer_type_rope(value, self.config.get("layer_types")):
            return [(f"{key}[{t!r}]", sub) for t, sub in value.items()]
        return [found]

    @cached_property
    def rope(self) -> tuple[str, Any] | None:
        """('rope_scaling' | 'rope_parameters', value) when the config has one that is not null."""
        for key in ("rope_scaling", "rope_parameters"):
            value = self.config.get(key)
            if value is not None:
                return key, value
        return None
