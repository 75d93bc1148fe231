"""MEM: will it fit. Weight bytes from the headers, KV cache at the configured context, the machine.

Weights are summed exactly from the safetensors headers (packed weights, scales and biases
included), so MoE experts and nested text configs count without a parameter formula. The KV cache
per token is layers x 2 x kv_heads x head_dim x dtype bytes, where a sliding-attention layer
(`layer_kinds`: layer_types, or the interval and pattern keys mlx-lm reads instead) holds at most
`sliding_window` tokens and linear-attention/SSM layers hold a fixed
state (not counted). Multi-head latent attention (DeepSeek V2/V3 and their kin: `kv_lora_rank` in
the config) is counted as mlx-lm caches it (`kv_layout`): most families cache the compressed
latent and the shared rope key (kv_lora_rank + qk_rope_head_dim per layer and token, plus the
sparse-attention indexer's keys where `index_head_dim` is set), while deepseek_v2, minicpm3 and
youtu_llm cache full per-head keys and values.

The machine: total RAM from psutil. On Apple Silicon, Metal's recommended working set (what MLX
may keep wired) and its largest buffer come from `mx.device_info()`, but the static doctor must
not import mlx (start-up time is a feature, and importing it can initialise Metal). So they are
read only when mlx.core is already imported by the caller (the load test, a notebook); otherwise
the working set is estimated as 75% of RAM on macOS (what Metal reports on machines above 32 GB
is in that range) and the buffer check is skipped.
"""

from __future__ import annotations

import os
import sys
from collections import namedtuple
from collections.abc import Iterator

from genai_common.checks import finding, register
from genai_common.checks.config import (
    per_layer_counts,
    positive_count,
    positive_int,
    run_each,
    tensors,
    text_dims,
)
from genai_common.report import Finding

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from genai_common.model_dir import ModelDir


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
APPLE_WORKING_SET_FRACTION = 0.75
NO_KV_LAYER_TYPES = frozenset({"linear_attention", "mamba", "conv", "mlp"})
# mlx-lm 0.32 model types with kv_lora_rank whose attention caches expanded per-head K and V
# (models/deepseek_v2.py, minicpm3.py, youtu_llm.py); every other one caches the latent
MLA_EXPANDED_CACHE = frozenset({"deepseek_v2", "minicpm3", "youtu_llm"})

KVLayout = namedtuple("KVLayout", "elements widths description")

register(
    "MEM001",
    "Memory needed",
    "info",
    "Informational: weights from the headers, KV cache at the configured context.",
    compares="sum of tensor bytes; KV bytes per token and at max_position_embeddings",
)
register(
    "MEM010",
    "The weights alone exceed the machine's memory",
    "error",
    "Use a quantized variant (4-bit is about a quarter of bf16) or a machine with more memory; "
    "loading will swap heavily or abort with a Metal out-of-memory error.",
    compares="weight bytes vs total RAM",
)
register(
    "MEM011",
    "Weights plus the KV cache at the full context exceed the memory budget",
    "warning",
    "Run with a shorter context (max_kv_size / prompt cache limits), quantize the KV cache, or "
    "use a smaller variant.",
    compares="weight bytes + KV bytes at max_position_embeddings vs the working-set budget",
)
register(
    "MEM012",
    "The weights exceed the memory budget (recommended working set)",
    "warning",
    "The model fits in RAM but not in what the GPU may keep wired: expect paging and slow "
    "generation; use a quantized variant or raise the wired limit (sudo sysctl iogpu.wired_limit_mb).",
    compares="weight bytes vs the recommended working set (or 75% of RAM on macOS)",
)
register(
    "MEM020",
    "A single buffer is larger than the device's maximum buffer length",
    "warning",
    "Metal cannot allocate one buffer that large ('[metal::malloc] Attempting to allocate ... "
    "greater than the maximum allowed buffer size'): shorten the context or split the tensor.",
    compares="largest tensor and one layer's KV cache at full context vs max_buffer_length",
)

register(
    "MEM030",
    "VAE decode memory at the pipeline's default resolution",
    "info",
    "Informational: the decoder's activations grow with the pixel count (about 4x at twice the "
    "side); decoding in tiles (diffusers: pipe.vae.enable_tiling(); mflux: --vae-tiling) bounds "
    "them.",
    compares="max(2.6 (c0 + c1), 3.8 c1) values per output pixel x bytes per value "
    "(block_out_channels c0, c1; fitted to measured decoder peaks)",
)
register(
    "MEM031",
    "Weights plus the VAE decode at the default resolution exceed the memory budget",
    "warning",
    "Decode in tiles (diffusers: pipe.vae.enable_tiling(); mflux: --vae-tiling), generate smaller "
    "images, or quantize the denoiser to leave room: the decode is the last step, so an "
    "out-of-memory there loses the whole denoising run.",
    compares="weight bytes + VAE decode activations at the default resolution vs the budget",
)


class Machine(namedtuple("Machine", "total budget budget_source max_buffer")):
    """Physical memory, the budget the checks use (and where it came from), MLX's max buffer."""

    __slots__ = ()
    total: int | None
    budget: int | None
    budget_source: str
    max_buffer: int | None


def total_memory() -> int | None:
    """Physical memory in bytes: sysconf (no import cost; Linux and macOS), else psutil."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except Exception:
        return None


def machine() -> Machine:
    total = total_memory()
    mx = sys.modules.get("mlx.core")
    info: dict[str, Any] = {}
    if mx is not None:
        try:
            info = dict(mx.device_info())
        except Exception:
            info = {}
    working = info.get("max_recommended_working_set_size")
    if isinstance(working, int) and working > 0:
        return Machine(
            total, working, "Metal recommended working set", info.get("max_buffer_length")
        )
    if sys.platform == "darwin" and total:
        return Machine(
            total,
            int(total * APPLE_WORKING_SET_FRACTION),
            f"{int(APPLE_WORKING_SET_FRACTION * 100)}% of RAM (estimated working set)",
            info.get("max_buffer_length"),
        )
    return Machine(total, total, "RAM", info.get("max_buffer_length"))


def tensor_bytes(t: Any) -> int | None:
    if t.nbytes is not None:
        return int(t.nbytes)
    if t.shape is None or t.dtype not in DTYPE_BYTES:
        return None
    n = 1
    for d in t.shape:
        n *= d
    return int(n * DTYPE_BYTES[t.dtype])


def all_tensors(md: ModelDir) -> list[Any]:
    """Every tensor the loader reads; for a diffusers pipeline, those of each component folder."""
    if md.kind != "diffusion":
        return list(tensors(md).values())
    from genai_common.checks.diffusion import components

    out: list[Any] = []
    for name, (lib, cls) in components(md).items():
        if lib is None and cls is None:
            continue
        try:
            out.extend((md.component(name).tensors or {}).values())
        except Exception:  # an unreadable component is the formats family's finding
            continue
    return out


def weight_bytes(md: ModelDir) -> tuple[int, int, Any]:
    """(total bytes, tensors without a size, the largest tensor)."""
    total, unknown, largest, largest_n = 0, 0, None, -1
    for t in all_tensors(md):
        n = tensor_bytes(t)
        if n is None:
            unknown += 1
            continue
        total += n
        if n > largest_n:
            largest, largest_n = t, n
    return total, unknown, largest


def kv_dtype_bytes(md: ModelDir) -> int:
    tc = md.text_config or {}
    cfg = md.config or {}
    for source in (tc, cfg):
        for key in ("torch_dtype", "dtype"):
            value = source.get(key)
            if isinstance(value, str) and value in CONFIG_DTYPE_BYTES:
                return CONFIG_DTYPE_BYTES[value]
    return 2


def kv_layout(md: ModelDir) -> KVLayout | None:
    """What one layer caches per token (elements), the last-axis widths of the cached arrays
    (what a quantized cache groups), and how it was counted; None when unknown."""
    dims = text_dims(md)
    tc = md.text_config or {}
    if dims.mla_rank is None:
        if not (dims.kv_heads and dims.head_dim):
            return None
        return KVLayout(
            2 * dims.kv_heads * dims.head_dim,
            (dims.head_dim,),
            f"K+V: 2 x {dims.kv_heads} x {dims.head_dim}",
        )
    rope = positive_count(tc.get("qk_rope_head_dim")) or 0
    model_type = tc.get("model_type") or md.model_type
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


def kv_bytes(md: ModelDir, context: int) -> tuple[int, int, int] | None:
    """(bytes per token at short context, bytes at `context`, largest single layer at `context`)."""
    dims = text_dims(md)
    tc = md.text_config or {}
    kv_per_layer = per_layer_counts(tc.get("num_kv_heads"))
    if kv_per_layer and dims.head_dim:  # OpenELM: each layer its own kv heads
        sizes = [2 * kv * dims.head_dim * kv_dtype_bytes(md) for kv in kv_per_layer]
        return sum(sizes), sum(sizes) * context, max(sizes) * context
    layout = kv_layout(md)
    if not (dims.layers and layout):
        return None
    per_layer_token = layout.elements * kv_dtype_bytes(md)
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


def gib(n: float) -> str:
    """Bytes in the largest binary unit that keeps the number at or above 1."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{int(n)} B"


def _estimate(md: ModelDir) -> Iterator[Finding]:
    yield from estimate(md, machine())


def declared_bytes(md: ModelDir) -> int | None:
    """The index's metadata.total_size: the weight bytes before a download (--metadata-only)."""
    try:
        index = md.index
    except Exception:
        return None
    total = getattr(index, "total_size", None)
    return total if isinstance(total, int) and total > 0 else None


VaeDecode = namedtuple("VaeDecode", "bytes height width per_megapixel dtype")
FLUX_DEFAULT_SAMPLE_SIZE = 128  # FluxPipeline.default_sample_size: not in any config file
VAE_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}


def decode_values_per_pixel(channels: list[int]) -> float:
    """Live values per output pixel at the peak of a diffusers decoder with these
    block_out_channels (see vae_decode; benchmarks/bench_vae_decode.py measures it)."""
    c0, c1 = channels[0], channels[1] if len(channels) > 1 else channels[0]
    return max(2.6 * (c0 + c1), 3.8 * c1)


def vae_decode(md: ModelDir) -> VaeDecode | None:
    """Peak activation bytes of the VAE decode at the pipeline's default resolution.

    Values per output pixel: max(2.6 (c0 + c1), 3.8 c1) for the decoder's block_out_channels
    c0, c1: a fit to the peak of live tensor bytes (torch.profiler allocation events; torch 2.13
    CPU kernels, diffusers 0.42) over six decoder shapes, within 4% of each (reference/
    LEARNINGS.md). Half-precision decoders hold 1.25x more (GroupNorm computes in float32);
    a float16 VAE with force_upcast (SDXL's) decodes in float32. GPU backends add their own
    workspaces; the figure is what the tensors need."""
    if md.kind != "diffusion":
        return None
    from genai_common.checks.diffusion import cfg, denoiser, family

    vae = cfg(md, "vae")
    blocks = vae.get("block_out_channels")
    if not isinstance(blocks, list) or not blocks:
        return None
    channels = [positive_count(c) for c in blocks]
    if None in channels:
        return None
    factor = 2 ** (len(channels) - 1)
    den = denoiser(md)
    sample = positive_count(cfg(md, den).get("sample_size")) if den else None
    if den == "transformer" and family(md) == "flux":
        sample = FLUX_DEFAULT_SAMPLE_SIZE
    if not sample or sample * factor > 2**20:
        return None
    side = sample * factor
    stored = [t.dtype for t in tensors(md.component("vae")).values() if t.dtype in VAE_DTYPES]
    dtype = VAE_DTYPES[max(set(stored), key=stored.count)] if stored else None
    if dtype is None:
        dtype = "float32 (assumed: no VAE weights read)"
    elif dtype == "float16" and vae.get("force_upcast") is True:
        dtype = "float32 (force_upcast)"
    per_value = 4 if dtype.startswith("float32") else 2 * 1.25
    per_pixel = decode_values_per_pixel(channels) * per_value
    return VaeDecode(int(per_pixel * side * side), side, side, int(per_pixel * 1e6), dtype)


def estimate(md: ModelDir, mach: Machine) -> Iterator[Finding]:
    """The MEM findings for `md` on machine `mach` (pure: the machine is an argument)."""
    weights, unknown, largest = weight_bytes(md)
    source = ""
    if unknown and not weights:
        declared = declared_bytes(md)
        weights, source = (declared, " (index total_size)") if declared else (0, "")
    dims = text_dims(md)
    context = dims.max_positions
    kv = kv_bytes(md, context) if context else None
    parts = []
    if weights:
        parts.append(
            f"weights {gib(weights)}{source}"
            + (f" ({unknown} tensors unsized)" if unknown and not source else "")
        )
    if kv and context:
        parts.append(f"KV cache {gib(kv[0])}/token, {gib(kv[1])} at {context} tokens")
        layout = kv_layout(md)
        if layout and layout.description.startswith("MLA"):
            parts[-1] += f" ({layout.description})"
    if mach.total:
        parts.append(
            f"machine {gib(mach.total)} RAM, budget {gib(mach.budget or 0)} ({mach.budget_source})"
        )
    if parts:
        yield finding("MEM001", "; ".join(parts))
    if not mach.total:
        return
    if weights > mach.total:
        yield finding(
            "MEM010", f"weights {gib(weights)} > {gib(mach.total)} of RAM on this machine"
        )
        return
    if mach.budget and weights > mach.budget:
        yield finding(
            "MEM012", f"weights {gib(weights)} > budget {gib(mach.budget)} ({mach.budget_source})"
        )
        return
    if kv and context and mach.budget and weights + kv[1] > mach.budget:
        fits = max(0, (mach.budget - weights) // max(kv[0], 1))
        yield finding(
            "MEM011",
            (f"weights {gib(weights)} + " if weights else "")
            + f"KV {gib(kv[1])} at {context} tokens > budget "
            f"{gib(mach.budget)} ({mach.budget_source}); about {fits} tokens fit",
        )
    yield from _vae_decode(md, mach, weights)
    if mach.max_buffer:
        biggest = []
        if largest is not None and (n := tensor_bytes(largest) or 0) > mach.max_buffer:
            biggest.append(f"{largest.name} is {gib(n)}")
        if kv and kv[2] > mach.max_buffer:
            biggest.append(f"one layer's KV cache at {context} tokens is {gib(kv[2])}")
        if biggest:
            yield finding(
                "MEM020",
                f"{'; '.join(biggest)} > max buffer length {gib(mach.max_buffer)}",
            )


def _vae_decode(md: ModelDir, mach: Machine, weights: int) -> Iterator[Finding]:
    decode = vae_decode(md)
    if decode is None:
        return
    size = f"{decode.width}x{decode.height}"
    yield finding(
        "MEM030",
        f"VAE decode at {size} (the pipeline's default) needs about {gib(decode.bytes)} of "
        f"activations in {decode.dtype}; {gib(decode.per_megapixel)} per megapixel",
        file="vae/config.json",
    )
    if mach.budget and weights + decode.bytes > mach.budget:
        room = max(0, mach.budget - weights) / decode.per_megapixel
        yield finding(
            "MEM031",
            f"weights {gib(weights)} + VAE decode at {size} {gib(decode.bytes)} > budget "
            f"{gib(mach.budget)} ({mach.budget_source}); about {room:.1f} megapixels fit",
            file="vae/config.json",
        )


SUBCHECKS = (_estimate,)


def check(md: ModelDir) -> Iterator[Finding]:
    yield from run_each(md, SUBCHECKS)
