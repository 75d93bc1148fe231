"""MEM: will it fit. Weight bytes from the headers, KV cache at the configured context, the VAE
decode, against this machine.

What the model needs is md.memory (genai_common/model/memory.py); what the machine offers is
genai_common/runtime/machine.py. Each rule takes the machine as an argument (`mach`, default this
machine's), so `estimate(md, mach)` judges a model for any machine without touching this one.
"""

from __future__ import annotations

from genai_common.findings import declared, finding, rule, stamp
from genai_common.model.memory import tensor_bytes
from genai_common.model.values import gib
from genai_common.runtime.machine import Machine, machine

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from genai_common.findings import Finding
    from genai_common.model import ModelDir


def _weights(md: ModelDir) -> tuple[int, int, Any, str]:
    """(weight bytes, tensors without a size, the largest tensor, where the bytes came from):
    the headers, else the index's total_size (before a download)."""
    weights, unknown, largest = md.memory.weights
    source = ""
    if unknown and not weights:
        declared_ = md.memory.declared_bytes
        weights, source = (declared_, " (index total_size)") if declared_ else (0, "")
    return weights, unknown, largest, source


def _kv(md: ModelDir) -> tuple[int | None, tuple[int, int, int] | None]:
    """(context, KV bytes at it) from the text config's max_position_embeddings."""
    context = md.text.dims.max_positions
    return context, md.memory.kv_bytes(context) if context else None


def _within(md: ModelDir, mach: Machine) -> bool:
    """Whether the weights fit the machine's RAM and budget (the later rules judge only then)."""
    weights = _weights(md)[0]
    if not mach.total or weights > mach.total:
        return False
    return not (mach.budget and weights > mach.budget)


@rule(
    "MEM001",
    "Memory needed",
    severity="info",
    fix="Informational: weights from the headers, KV cache at the configured context.",
    compares="sum of tensor bytes; KV bytes per token and at max_position_embeddings",
)
def memory_needed(md: ModelDir, mach: Machine | None = None) -> Iterator[Finding]:
    mach = mach or machine()
    weights, unknown, _, source = _weights(md)
    context, kv = _kv(md)
    parts = []
    if weights:
        parts.append(
            f"weights {gib(weights)}{source}"
            + (f" ({unknown} tensors unsized)" if unknown and not source else "")
        )
    if kv and context:
        parts.append(f"KV cache {gib(kv[0])}/token, {gib(kv[1])} at {context} tokens")
        layout = md.memory.kv_layout
        if layout and layout.description.startswith("MLA"):
            parts[-1] += f" ({layout.description})"
    if mach.total:
        parts.append(
            f"machine {gib(mach.total)} RAM, budget {gib(mach.budget or 0)} ({mach.budget_source})"
        )
    if parts:
        yield finding("MEM001", "; ".join(parts))


@rule(
    "MEM010",
    "The weights alone exceed the machine's memory",
    severity="error",
    fix="Use a quantized variant (4-bit is about a quarter of bf16) or a machine with more memory; "
    "loading will swap heavily or abort with a Metal out-of-memory error.",
    compares="weight bytes vs total RAM",
)
@rule(
    "MEM011",
    "Weights plus the KV cache at the full context exceed the memory budget",
    severity="warning",
    fix="Run with a shorter context (max_kv_size / prompt cache limits), quantize the KV cache, or "
    "use a smaller variant.",
    compares="weight bytes + KV bytes at max_position_embeddings vs the working-set budget",
)
@rule(
    "MEM012",
    "The weights exceed the memory budget (recommended working set)",
    severity="warning",
    fix="The model fits in RAM but not in what the GPU may keep wired: expect paging and slow "
    "generation; use a quantized variant or raise the wired limit (sudo sysctl iogpu.wired_limit_mb).",
    compares="weight bytes vs the recommended working set (or 75% of RAM on macOS)",
)
def fits(md: ModelDir, mach: Machine | None = None) -> Iterator[Finding]:
    mach = mach or machine()
    if not mach.total:
        return
    weights = _weights(md)[0]
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
    context, kv = _kv(md)
    if kv and context and mach.budget and weights + kv[1] > mach.budget:
        room = max(0, (mach.budget - weights) // max(kv[0], 1))
        yield finding(
            "MEM011",
            (f"weights {gib(weights)} + " if weights else "")
            + f"KV {gib(kv[1])} at {context} tokens > budget "
            f"{gib(mach.budget)} ({mach.budget_source}); about {room} tokens fit",
        )


@rule(
    "MEM030",
    "VAE decode memory at the pipeline's default resolution",
    severity="info",
    fix="Informational: the decoder's activations grow with the pixel count (about 4x at twice the "
    "side); decoding in tiles (diffusers: pipe.vae.enable_tiling(); mflux: --vae-tiling) bounds "
    "them.",
    compares="max(2.6 (c0 + c1), 3.8 c1) values per output pixel x bytes per value "
    "(block_out_channels c0, c1; fitted to measured decoder peaks)",
)
@rule(
    "MEM031",
    "Weights plus the VAE decode at the default resolution exceed the memory budget",
    severity="warning",
    fix="Decode in tiles (diffusers: pipe.vae.enable_tiling(); mflux: --vae-tiling), generate smaller "
    "images, or quantize the denoiser to leave room: the decode is the last step, so an "
    "out-of-memory there loses the whole denoising run.",
    compares="weight bytes + VAE decode activations at the default resolution vs the budget",
)
def vae_decode(md: ModelDir, mach: Machine | None = None) -> Iterator[Finding]:
    mach = mach or machine()
    decode = md.memory.vae_decode
    if decode is None or not _within(md, mach):
        return
    weights = _weights(md)[0]
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


@rule(
    "MEM020",
    "A single buffer is larger than the device's maximum buffer length",
    severity="warning",
    fix="Metal cannot allocate one buffer that large ('[metal::malloc] Attempting to allocate ... "
    "greater than the maximum allowed buffer size'): shorten the context or split the tensor.",
    compares="largest tensor and one layer's KV cache at full context vs max_buffer_length",
)
def max_buffer(md: ModelDir, mach: Machine | None = None) -> Iterator[Finding]:
    mach = mach or machine()
    if not mach.max_buffer or not _within(md, mach):
        return
    largest = _weights(md)[2]
    context, kv = _kv(md)
    biggest = []
    if largest is not None and (n := tensor_bytes(largest) or 0) > mach.max_buffer:
        biggest.append(f"{largest.name} is {gib(n)}")
    if kv and kv[2] > mach.max_buffer:
        biggest.append(f"one layer's KV cache at {context} tokens is {gib(kv[2])}")
    if biggest:
        yield finding("MEM020", f"{'; '.join(biggest)} > max buffer length {gib(mach.max_buffer)}")


def estimate(md: ModelDir, mach: Machine) -> list[Finding]:
    """The MEM findings for `md` on machine `mach` (pure: the machine is an argument), in the
    order the doctor runs them."""
    return [
        stamp(f, declared(func))
        for func in (memory_needed, fits, vae_decode, max_buffer)
        for f in func(md, mach)
    ]
