"""MLX quantization of a checkpoint: the config's block, per-layer entries, and what the packed
shapes say.

MLX stores a quantized Linear/Embedding X with in_features K and out_features M as
``X.weight`` uint32 (M, K*bits/32), ``X.scales`` (M, K/group_size) and, in affine mode only,
``X.biases`` (M, K/group_size). The two stored shapes alone fix only group_size*bits (a g32/4-bit
tensor looks like a g64/2-bit one), so K comes from the config wherever the module is a known
text-model projection. Valid parameters are those of mlx.core.quantize in MLX 0.32 (its docs'
table of quantization modes, confirmed by quantizing a test matrix with every pair).

`md.quant` is a `QuantModel` built once per ModelDir.
"""

from __future__ import annotations

from collections import namedtuple
from functools import cached_property

from genai_common.model.values import positive_int

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from genai_common.model.model_dir import ModelDir, TensorInfo

# mode -> (accepted group sizes, accepted bits, scales dtype, has biases)
MODES: dict[str, tuple[tuple[int, ...], tuple[int, ...], str | None, bool]] = {
    "affine": ((32, 64, 128), (1, 2, 3, 4, 5, 6, 8), None, True),
    "mxfp4": ((32,), (4,), "U8", False),
    "mxfp8": ((32,), (8,), "U8", False),
    "nvfp4": ((16,), (4,), "U8", False),
}
DEFAULT_GROUP_SIZE = 64  # mlx_lm.convert's default for affine
# The keys of config['quantization'] that are the default scheme, not per-layer entries.
BLOCK_KEYS = ("group_size", "bits", "mode")

# Module names (last path component) whose input width is a config dimension.
IN_HIDDEN = frozenset(
    {
        "q_proj",
        "k_proj",
        "v_proj",
        "qkv_proj",
        "gate_proj",
        "up_proj",
        "gate_up_proj",
        "embed_tokens",
        "tok_embeddings",
        "wte",
        "word_embeddings",
        "lm_head",
        "w1",
        "w3",
        "c_attn",
        "query_key_value",
        "c_fc",
    }
)
IN_ATTN = frozenset({"o_proj", "c_proj_attn"})
IN_MLP = frozenset({"down_proj", "w2"})


class QParams(namedtuple("QParams", "mode bits group_size")):
    """A quantization scheme: mode (affine, mxfp4, ...), bits, group size."""

    __slots__ = ()
    mode: str
    bits: int | None
    group_size: int | None


def params(entry: dict[str, Any], default: QParams | None = None) -> QParams:
    """The scheme an entry of config['quantization'] sets, the default filling what it omits."""
    mode = entry.get("mode", default.mode if default else "affine")
    mode = mode if isinstance(mode, str) else "affine"
    fixed = MODES.get(mode)
    bits = positive_int(entry.get("bits")) or (default.bits if default else None)
    gs = positive_int(entry.get("group_size")) or (default.group_size if default else None)
    if fixed and mode != "affine":
        bits = bits or fixed[1][0]
        gs = gs or fixed[0][0]
    return QParams(mode, bits, gs)


class QuantModel:
    """md.quant: the checkpoint's MLX quantization (see the module docstring)."""

    def __init__(self, md: ModelDir) -> None:
        self.md = md

    @cached_property
    def block(self) -> Any:
        """config['quantization'] (MLX's block), or None."""
        return (self.md.config or {}).get("quantization")

    @cached_property
    def default(self) -> QParams | None:
        block = self.block
        return params(block) if isinstance(block, dict) else None

    def override_for(self, module: str) -> tuple[str, Any] | None:
        """(key, value) of the per-layer entry the loader will use for `module`, exact path only."""
        block = self.block
        if isinstance(block, dict) and module in block:
            return module, block[module]
        return None

    def params_for(self, module: str) -> QParams | None:
        """The scheme the config gives `module`: its per-layer entry, else the default."""
        over = self.override_for(module)
        if over and isinstance(over[1], dict):
            return params(over[1], self.default)
        return self.default

    def expected_in_features(self, module: str) -> int | None:
        """K for a text-model projection, from the config; None for modules it does not size."""
        if not self.md.text.owns(module):
            return None
        dims = self.md.text.dims
        last = module.rsplit(".", 1)[-1]
        if last in IN_HIDDEN:
            return dims.hidden
        if last in IN_ATTN and dims.heads and dims.v_head_dim:
            return dims.heads * dims.v_head_dim
        if last in IN_MLP:
            if ".experts." in module or ".switch_mlp." in module:
                return dims.moe_intermediate
            if ".shared_expert" in module:
                return positive_int(self.md.text.config.get("shared_expert_intermediate_size"))
            return dims.intermediate
        return None

    @cached_property
    def modules(self) -> dict[str, TensorInfo]:
        """module path -> its packed weight, for every U32 weight that has scales beside it."""
        ts = self.md.tensors
        return {
            name[: -len(".weight")]: t
            for name, t in ts.items()
            if t.dtype == "U32"
            and name.endswith(".weight")
            and name[: -len(".weight")] + ".scales" in ts
        }

    def stored_bits(self, module: str) -> int | None:
        """Bits the stored weight was packed with: from K in the config, else the config's."""
        w = self.md.tensors.get(f"{module}.weight")
        if w is None or not w.shape:
            return None
        k = self.expected_in_features(module)
        if k and (w.shape[-1] * 32) % k == 0:
            return w.shape[-1] * 32 // k
        scheme = self.params_for(module)
        return scheme.bits if scheme else None

    def declared_bits(self, module: str) -> int | None:
        """Bits the config declares for a module: its per-layer entry, else the default block."""
        scheme = self.params_for(module)
        return scheme.bits if scheme else None

    def fits(self, module: str, k: int) -> bool:
        """Whether the stored packed weight and scales are consistent with in_features k at some
        bits and group size MLX accepts."""
        ts = self.md.tensors
        w, scales = ts.get(f"{module}.weight"), ts.get(f"{module}.scales")
        if w is None or scales is None or not w.shape or not scales.shape or k <= 0:
            return False
        packed, groups = w.shape[-1], scales.shape[-1]
        if (packed * 32) % k or groups <= 0 or k % groups:
            return False
        bits, gs = packed * 32 // k, k // groups
        return any(bits in b and gs in g for g, b, _, _ in MODES.values())

    def bitnet_packed(self, name: str) -> bool:
        """A BitNet b1.58 weight: uint8 with a weight_scale beside it (mlx-lm's BitLinear, the
        packed layout BitNet checkpoints ship)."""
        return f"{name[: -len('.weight')]}.weight_scale" in self.md.tensors

    def logical_shape(self, t: TensorInfo) -> tuple[int, int] | None:
        """(rows, in_features) of a 2-D weight. A packed quantized weight is unpacked with the bits
        the config declares for it (per-layer entry, else the default), else the bits its shapes
        imply; a BitNet weight packs four ternary values a byte along the output axis."""
        if not t.shape or len(t.shape) != 2:
            return None
        rows, cols = t.shape
        if t.dtype == "U8" and t.name.endswith(".weight") and self.bitnet_packed(t.name):
            return rows * 4, cols
        if t.dtype == "U32" and t.name.endswith(".weight"):
            module = t.name[: -len(".weight")]
            bits = self.declared_bits(module) or self.stored_bits(module)
            if bits is None:
                return None
            return rows, cols * 32 // bits
        return rows, cols

    def takes(self, t: TensorInfo, k: int) -> bool:
        """Whether a 2-D weight has input width k: plainly, or packed at some valid bits/group
        size (the shapes alone cannot tell g64/4-bit from g128/2-bit; QNT031 reports that)."""
        shape = self.logical_shape(t)
        if shape is not None and shape[1] == k:
            return True
        if t.dtype == "U32" and t.name.endswith(".weight"):
            return self.fits(t.name[: -len(".weight")], k)
        return False


# What loading a non-MLX quantization needs besides torch: groups of top-level packages (one of
# each group) and the device, from diffusers 0.42's quantizers (validate_environment) and
# transformers 5.25's. MLX runtimes read none of them.
FOREIGN_NEEDS: dict[str, tuple[tuple[tuple[str, ...], ...], str]] = {
    "bitsandbytes": ((("bitsandbytes",), ("accelerate",)), "a CUDA, XPU or MPS device"),
    "gguf": ((("gguf",), ("accelerate",)), ""),
    "torchao": ((("torchao",),), ""),
    "quanto": ((("optimum",), ("accelerate",)), ""),  # optimum-quanto
    "modelopt": ((("modelopt",),), "an NVIDIA GPU"),
    "sdnq": ((("sdnq",),), ""),
    "auto-round": ((("auto_round",),), ""),
    "nunchaku_lite": ((("kernels",),), "a CUDA GPU"),
    "bfl": ((("accelerate",),), ""),
    "gptq": ((("gptqmodel", "auto_gptq"),), "a CUDA GPU for most kernels"),
    "awq": ((("awq", "gptqmodel"),), "a CUDA GPU for most kernels"),
    "fp8": ((("accelerate",),), "a GPU with fp8 support"),
    "compressed-tensors": ((("compressed_tensors",),), ""),
    "hqq": ((("hqq",),), ""),
    "eetq": ((("eetq",),), "a CUDA GPU"),
    "aqlm": ((("aqlm",),), ""),
}


def quant_method(qc: dict[str, Any]) -> str:
    """A quantization_config's method, lowered ('unknown' when it names none)."""
    return str(qc.get("quant_method") or qc.get("quant_algo") or "unknown").lower()


def quant_detail(qc: dict[str, Any]) -> str:
    """What a quantization_config says about its format, in a few words (nf4 4-bit, int8...)."""
    parts = []
    if qc.get("load_in_4bit") or qc.get("_load_in_4bit"):
        parts.append(f"{qc.get('bnb_4bit_quant_type') or ''} 4-bit".strip())
    elif qc.get("load_in_8bit") or qc.get("_load_in_8bit"):
        parts.append("8-bit")
    for key in ("weights_dtype", "quant_type", "bits", "format", "quant_algo"):
        value = qc.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            parts.append(f"{key} {value}")
    return ", ".join(parts[:2])


def missing_for(method: str) -> list[str]:
    """The packages (one per group that has none installed) loading `method` needs and this
    environment lacks; [] when nothing is missing or the method is not in FOREIGN_NEEDS."""
    from genai_common.model.loaders import installed

    groups, _ = FOREIGN_NEEDS.get(method, ((), ""))
    return [" or ".join(group) for group in groups if not any(installed(p) for p in group)]
