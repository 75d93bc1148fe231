"""The VAE decode memory model behind MEM030/MEM031, measured: `python benchmarks/vae_decode_memory.py`.

Needs the torch stack (diffusers, torch): run it with `.nox/tests-stack-torch/bin/python`, not in
`nox -s bench` (the MLX environment). For each decoder shape (random weights: memory does not
depend on the values) it decodes a zero latent on the CPU and takes the exact peak of live tensor
bytes (`torch_cpu_peak`), then prints a Markdown table of measured values per output pixel beside
the model's `decode_values_per_pixel`, for reference/RESULTS.md.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# name -> (block_out_channels, layers_per_block, latent_channels, norm groups, dtype, side px)
SHAPES = {
    "SD/SDXL/SD3/Flux decoder, 256 px": ((128, 256, 512, 512), 2, 4, 32, "float32", 256),
    "same, 512 px": ((128, 256, 512, 512), 2, 4, 32, "float32", 512),
    "same, bfloat16": ((128, 256, 512, 512), 2, 4, 32, "bfloat16", 256),
    "same, 16 latent channels (SD3, Flux)": ((128, 256, 512, 512), 2, 16, 32, "float32", 256),
    "3 resnets per block": ((128, 256, 512, 512), 3, 4, 32, "float32", 256),
    "3 levels (128/256/512)": ((128, 256, 512), 2, 4, 32, "float32", 256),
    "64/256/512/512": ((64, 256, 512, 512), 2, 4, 32, "float32", 256),
    "128/128/256/256": ((128, 128, 256, 256), 2, 4, 32, "float32", 256),
    "tiny sd (8/16/16/16)": ((8, 16, 16, 16), 1, 4, 8, "float32", 128),
}


def measure(blocks: tuple[int, ...], layers: int, latent: int, groups: int, dtype: str, side: int):
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


def main() -> int:
    import diffusers
    import torch
    from diffusers.utils import logging

    from genai_common.checks.memory import decode_values_per_pixel

    logging.set_verbosity_error()  # casting a random decoder with .to() warns about float32 modules
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    print(
        f"VAE decode peak, torch {torch.__version__} CPU, diffusers {diffusers.__version__}, {date}"
    )
    print()
    print("| decoder | dtype | px | measured values/px | model | model / measured |")
    print("|---|---|---|---|---|---|")
    for name, (blocks, layers, latent, groups, dtype, side) in SHAPES.items():
        measured = measure(blocks, layers, latent, groups, dtype, side)
        model = decode_values_per_pixel(list(blocks)) * (1.25 if dtype != "float32" else 1.0)
        print(
            f"| {name} | {dtype} | {side} | {measured:.1f} | {model:.1f} | {model / measured:.3f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
