"""The VAE decode memory model behind MEM030/MEM031, measured (torch stack:
`nox -s "bench(stack='torch')"`, or `python -m benchmarks -k vae --stack torch`).

For each decoder shape (random weights: memory does not depend on the values) it decodes a zero
latent on the CPU and takes the exact peak of live tensor bytes (`torch_cpu_peak`); each row
gives the measured values per output pixel beside the doctor's `decode_values_per_pixel`.
"""

from __future__ import annotations

from typing import Any

STACK = "torch"

# name -> (block_out_channels, layers_per_block, latent_channels, norm groups, dtype, side px)
SHAPES = {
    "SD/SDXL/SD3/Flux decoder (128/256/512/512)": ((128, 256, 512, 512), 2, 4, 32, "float32", 256),
    "same, a larger image": ((128, 256, 512, 512), 2, 4, 32, "float32", 512),
    "same, half precision": ((128, 256, 512, 512), 2, 4, 32, "bfloat16", 256),
    "same, 16 latent channels (SD3, Flux)": ((128, 256, 512, 512), 2, 16, 32, "float32", 256),
    "3 resnets per block": ((128, 256, 512, 512), 3, 4, 32, "float32", 256),
    "3 levels (128/256/512)": ((128, 256, 512), 2, 4, 32, "float32", 256),
    "64/256/512/512": ((64, 256, 512, 512), 2, 4, 32, "float32", 256),
    "128/128/256/256": ((128, 128, 256, 256), 2, 4, 32, "float32", 256),
    "tiny sd (8/16/16/16)": ((8, 16, 16, 16), 1, 4, 8, "float32", 128),
}


def measure(
    blocks: tuple[int, ...], layers: int, latent: int, groups: int, dtype: str, side: int
) -> float:
    import torch
    from diffusers import AutoencoderKL

    from genai_common.runtime.memory import torch_cpu_peak

    torch.manual_seed(0)
    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * len(blocks),
        up_block_types=("UpDecoderBlock2D",) * len(blocks),
        block_out_channels=blocks,
        layers_per_block=layers,
        latent_channels=latent,
        norm_num_groups=groups,
    ).eval()
    vae = vae.to(getattr(torch, dtype))
    factor = 2 ** (len(blocks) - 1)
    z = torch.zeros(1, latent, side // factor, side // factor, dtype=getattr(torch, dtype))
    with torch.inference_mode():
        _, peak = torch_cpu_peak(vae.decode, z)
    return peak / (side * side) / z.element_size()


def main() -> list[dict[str, Any]]:
    from diffusers.utils import logging

    from genai_common.model.memory import decode_values_per_pixel

    logging.set_verbosity_error()  # casting a random decoder with .to() warns about float32 modules
    rows = []
    for name, (blocks, layers, latent, groups, dtype, side) in SHAPES.items():
        measured = measure(blocks, layers, latent, groups, dtype, side)
        model = decode_values_per_pixel(list(blocks)) * (1.25 if dtype != "float32" else 1.0)
        rows.append(
            {
                "benchmark": f"VAE decode peak: {name} ({dtype}, {side} px)",
                "value": f"{measured:.1f} values/px",
                "target": "model within 10%",
                "ok": abs(model / measured - 1) <= 0.10,
                "notes": f"model {model:.1f} ({model / measured:.3f}x); exact peak of live "
                "tensor bytes (torch_cpu_peak)",
            }
        )
    return rows
