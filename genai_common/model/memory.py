"""What a checkpoint needs in memory, from its headers and config: weight bytes, the KV cache
per token and at a context, the VAE decode's activations.

Weights are summed exactly from the safetensors headers (packed weights, scales and biases
included), so MoE experts and nested text configs count without a parameter formula. The KV cache
per token is layers x 2 x kv_heads x head_dim x dtype bytes, where a sliding-attention layer
(`layer_kinds`: layer_types, or the interval and pattern keys mlx-lm reads instead) holds at most
`sliding_window` tokens and linear-attention/SSM layers hold a fixed state (not counted).
Multi-head latent attention (DeepSeek V2/V3 and their kin: `kv_lora_rank` in the config) is
counted as mlx-lm caches it (`kv_layout`): most families cache the compressed latent and the
shared rope key (kv_lora_rank + qk_rope_head_dim per layer and token, plus the sparse-attention
indexer's keys where `index_head_dim` is set), while deepseek_v2, minicpm3 and youtu_llm cache
full per-head keys and values.

`md.memory` is a `Memory` built once per ModelDir. What the machine offers is the runtime's
business (genai_common.runtime.machine).
"""

from __future__ import annotations

from collections import namedtuple
from functools import cached_property

from genai_common.model.values import numel, per_layer_counts, positive_count, positive_int

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from genai_common.model.model_dir import ModelDir, TensorInfo

DTYPE_BYTES: dict[str, float] = {
    "F64": 8,
    "I64": 8,
    "U64": 8,
    "F32": 4,
    "I32": 4,
    "U32": 4,
    "F16": 2,
    "BF16": 2,
    "I16": 2,
    "U16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "F8_E8M0": 1,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "F4": 0.5,
}
CONFIG_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
NO_KV_LAYER_TYPES = frozenset({"linear_attention", "mamba", "conv", "mlp"})
# mlx-lm 0.32 model types with kv_lora_rank whose attention caches expanded per-head K and V
# (models/deepseek_v2.py, minicpm3.py, youtu_llm.py); every other one caches the latent
MLA_EXPANDED_CACHE = frozenset({"deepseek_v2", "minicpm3", "youtu_llm"})
FLUX_DEFAULT_SAMPLE_SIZE = 128  # FluxPipeline.default_sample_size: not in any config file
VAE_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}

KVLayout = namedtuple("KVLayout", "elements widths description")
VaeDecode = namedtuple("VaeDecode", "bytes height width per_megapixel dtype")


def tensor_bytes(t: Any) -> int | None:
    """A tensor's bytes: its byte span when the header gave one, else shape x dtype size."""
    if t.nbytes is not None:
        return int(t.nbytes)
    if t.shape is None or t.dtype not in DTYPE_BYTES:
        return None
    return int(numel(t.shape) * DTYPE_BYTES[t.dtype])


def layer_kinds(tc: dict[str, Any], layers: int) -> dict[str, int]:
    """How many layers of each attention kind, as mlx-lm builds their caches, from the first of:
    `layer_types` naming every layer; `full_attention_interval` p (qwen3_next, qwen3_5: every
    p-th layer full attention, the rest linear attention with a fixed state); `full_attn_idxs`
    (lfm2: the attention layers, the rest short convolutions); `hybrid_override_pattern`
    (nemotron_h: * attention, M mamba, - and E MLP-only); `attn_layer_period`/`offset` (jamba);
    `linear_attn_config.kda_layers` (kimi_linear: the 1-based linear layers);
    `sliding_window_pattern`, an int p (gemma3_text, cohere2: every p-th layer full, the rest
    sliding) or a string of L/G (exaone4: L sliding, G full); else all full attention. Counted
    arithmetically: a hostile num_hidden_layers such as 2**40 must not allocate one entry per
    layer."""
    types = tc.get("layer_types")
    if isinstance(types, list) and len(types) == layers:
        counts: dict[str, int] = {}
        for kind in types:
            if isinstance(kind, str):
                counts[kind] = counts.get(kind, 0) + 1
        return counts
    interval = positive_int(tc.get("full_attention_interval"))
    if interval:
        full = layers // interval
        return {"full_attention": full, "linear_attention": layers - full}
    attention_idxs = tc.get("full_attn_idxs")  # LFM2: the attention layers, the rest conv
    if isinstance(attention_idxs, list) and all(isinstance(i, int) for i in attention_idxs):
        full = len({i for i in attention_idxs if 0 <= i < layers})
        return {"full_attention": full, "conv": layers - full}
    pattern = tc.get("hybrid_override_pattern")  # Nemotron-H: * attention, M mamba, - / E mlp
    if isinstance(pattern, (str, list)) and pattern and len(pattern) == layers:
        marks = [m for m in pattern if isinstance(m, str)]
        full, mamba = marks.count("*"), marks.count("M")
        return {"full_attention": full, "mamba": mamba, "mlp": layers - full - mamba}
    period = positive_int(tc.get("attn_layer_period"))  # Jamba: i % period == offset attends
    offset = tc.get("attn_layer_offset")
    if period and isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0:
        full = (layers - offset + period - 1) // period if period > offset < layers else 0
        return {"full_attention": full, "mamba": layers - full}
    linear_cfg = tc.get("linear_attn_config")
    kda = linear_cfg.get("kda_layers") if isinstance(linear_cfg, dict) else None
    if isinstance(kda, list) and all(isinstance(i, int) for i in kda):
        linear = len({i for i in kda if 1 <= i <= layers})
        return {"full_attention": layers - linear, "linear_attention": linear}
    pattern = tc.get("sliding_window_pattern")
    if (period := positive_int(pattern)) and period > 1:
        full = layers // period
        return {"full_attention": full, "sliding_attention": layers - full}
    if isinstance(pattern, str) and pattern and set(pattern) <= {"L", "G"}:
        periods, rest = divmod(layers, len(pattern))
        sliding = periods * pattern.count("L") + pattern[:rest].count("L")
        return {"full_attention": layers - sliding, "sliding_attention": sliding}
    return {"full_attention": layers}


def decode_values_per_pixel(channels: list[int]) -> float:
    """Live values per output pixel at the peak of a diffusers decoder with these
    block_out_channels (see Memory.vae_decode; benchmarks/bench_vae_decode.py measures it)."""
    c0, c1 = channels[0], channels[1] if len(channels) > 1 else channels[0]
    return max(2.6 * (c0 + c1), 3.8 * c1)


class Memory:
    """md.memory: see the module docstring."""

    def __init__(self, md: ModelDir) -> None:
        self.md = md

    def all_tensors(self) -> list[TensorInfo]:
        """Every tensor the loader reads; for a diffusers pipeline, those of each component."""
        if self.md.kind != "diffusion":
            return list(self.md.tensors.values())
        return self.md.pipeline.all_tensors()

    @cached_property
    def weights(self) -> tuple[int, int, Any]:
        """(total bytes, tensors without a size, the largest tensor)."""
        total, unknown, largest, largest_n = 0, 0, None, -1
        for t in self.all_tensors():
            n = tensor_bytes(t)
            if n is None:
                unknown += 1
                continue
            total += n
            if n > largest_n:
                largest, largest_n = t, n
        return total, unknown, largest

    @cached_property
    def declared_bytes(self) -> int | None:
        """The index's metadata.total_size: the weight bytes before a download."""
        try:
            index = self.md.index
        except Exception:
            return None
        total = getattr(index, "total_size", None)
        return total if isinstance(total, int) and total > 0 else None

    @cached_property
    def kv_dtype_bytes(self) -> int:
        """Bytes per cached value: the config's torch_dtype / dtype, else 2."""
        for source in (self.md.text_config or {}, self.md.config or {}):
            for key in ("torch_dtype", "dtype"):
                value = source.get(key)
                if isinstance(value, str) and value in CONFIG_DTYPE_BYTES:
                    return CONFIG_DTYPE_BYTES[value]
        return 2

    @cached_property
    def kv_layout(self) -> KVLayout | None:
        """What one layer caches per token (elements), the last-axis widths of the cached arrays
        (what a quantized cache groups), and how it was counted; None when unknown."""
        dims = self.md.text.dims
        tc = self.md.text.config
        if dims.mla_rank is None:
            if not (dims.kv_heads and dims.head_dim):
                return None
            return KVLayout(
                2 * dims.kv_heads * dims.head_dim,
                (dims.head_dim,),
                f"K+V: 2 x {dims.kv_heads} x {dims.head_dim}",
            )
        rope = positive_count(tc.get("qk_rope_head_dim")) or 0
        model_type = tc.get("model_type") or self.md.model_type
        if model_type in MLA_EXPANDED_CACHE:
            if not (dims.heads and dims.head_dim and dims.v_head_dim):
                return None
            return KVLayout(
                dims.heads * (dims.head_dim + dims.v_head_dim),
                (dims.head_dim, dims.v_head_dim),
                f"MLA, expanded per head as mlx-lm's {model_type} caches it: "
                f"{dims.heads} x ({dims.head_dim} keys + {dims.v_head_dim} values)",
            )
        index = positive_count(tc.get("index_head_dim"))
        widths = (dims.mla_rank, rope, *((index,) if index else ()))
        description = f"MLA latent as mlx-lm caches it: kv_lora_rank {dims.mla_rank} + rope {rope}"
        if index:
            description += f" + indexer keys 2 x {index}"
        return KVLayout(dims.mla_rank + rope + 2 * (index or 0), widths, description)

    def kv_bytes(self, context: int) -> tuple[int, int, int] | None:
        """(bytes per token at short context, bytes at `context`, largest single layer there)."""
        dims = self.md.text.dims
        tc = self.md.text.config
        kv_per_layer = per_layer_counts(tc.get("num_kv_heads"))
        if kv_per_layer and dims.head_dim:  # OpenELM: each layer its own kv heads
            sizes = [2 * kv * dims.head_dim * self.kv_dtype_bytes for kv in kv_per_layer]
            return sum(sizes), sum(sizes) * context, max(sizes) * context
        layout = self.kv_layout
        if not (dims.layers and layout):
            return None
        per_layer_token = layout.elements * self.kv_dtype_bytes
        window = positive_int(tc.get("sliding_window"))
        per_token = total = largest = 0
        for kind, count in layer_kinds(tc, dims.layers).items():
            if kind in NO_KV_LAYER_TYPES:
                continue
            tokens = min(context, window) if kind == "sliding_attention" and window else context
            per_token += per_layer_token * count
            total += per_layer_token * tokens * count
            largest = max(largest, per_layer_token * tokens)
        return per_token, total, largest

    @cached_property
    def vae_decode(self) -> VaeDecode | None:
        """Peak activation bytes of the VAE decode at the pipeline's default resolution.

        Values per output pixel: max(2.6 (c0 + c1), 3.8 c1) for the decoder's block_out_channels
        c0, c1: a fit to the peak of live tensor bytes (torch.profiler allocation events; torch
        2.13 CPU kernels, diffusers 0.42) over six decoder shapes, within 4% of each (reference/
        LEARNINGS.md). Half-precision decoders hold 1.25x more (GroupNorm computes in float32);
        a float16 VAE with force_upcast (SDXL's) decodes in float32. GPU backends add their own
        workspaces; the figure is what the tensors need."""
        md = self.md
        if md.kind != "diffusion":
            return None
        pipe = md.pipeline
        vae = pipe.config("vae")
        blocks = vae.get("block_out_channels")
        if not isinstance(blocks, list) or not blocks:
            return None
        channels = [positive_count(c) for c in blocks]
        if None in channels:
            return None
        factor = 2 ** (len(channels) - 1)
        den = pipe.denoiser
        sample = positive_count(pipe.config(den).get("sample_size")) if den else None
        if den == "transformer" and pipe.family == "flux":
            sample = FLUX_DEFAULT_SAMPLE_SIZE
        if not sample or sample * factor > 2**20:
            return None
        side = sample * factor
        stored = [t.dtype for t in pipe.tensors("vae").values() if t.dtype in VAE_DTYPES]
        dtype = VAE_DTYPES[max(set(stored), key=stored.count)] if stored else None
        if dtype is None:
            dtype = "float32 (assumed: no VAE weights read)"
        elif dtype == "float16" and vae.get("force_upcast") is True:
            dtype = "float32 (force_upcast)"
        per_value = 4 if dtype.startswith("float32") else 2 * 1.25
        per_pixel = decode_values_per_pixel(channels) * per_value  # type: ignore[arg-type]
        return VaeDecode(int(per_pixel * side * side), side, side, int(per_pixel * 1e6), dtype)
