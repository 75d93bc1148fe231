"""`genai bench` for a diffusers pipeline (the torch stack): s/step, s/image, VAE decode apart.

A trial calls the pipeline with ``output_type="latent"`` and a step callback that stamps the end
of each denoising step (after synchronizing the device, so a step's time is its computation and
not its launch), then decodes the latents with the VAE separately:

- s/step: (t_last_step - t_first_step) / (steps - 1), the same convention as decode tokens/s (the
  first step also pays text encoding and latent preparation); with one step, that step alone
- denoising loop: last step stamp - start; VAE decode: its own clock; s/image: both together
- peak memory: torch's CUDA peak scoped to the trial (`track_memory`), MPS driver memory at the
  end on a Mac, and the process RSS peak
- achieved FLOP/s: the FLOPs of one denoiser call counted by torch's FlopCounterMode (once, not
  timed) x steps x CFG branches / denoising time
"""

from __future__ import annotations

import time
from typing import Any

PROMPT = "a watercolor painting of a lighthouse on a cliff at dawn, soft light"


def _sync(torch: Any, device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    elif device.startswith("mps"):
        torch.mps.synchronize()


def _mps_memory(torch: Any, device: str) -> int | None:
    return int(torch.mps.driver_allocated_memory()) if device.startswith("mps") else None


def _memory_reader(torch: Any, device: str) -> Any:
    """Bytes in use now: the CUDA allocator's on a GPU, else the process RSS."""
    if device.startswith("cuda"):
        return lambda: int(torch.cuda.memory_allocated())
    import psutil

    process = psutil.Process()
    return lambda: int(process.memory_info().rss)


def _decode(pipe: Any, latents: Any) -> Any:
    vae = pipe.vae
    scaled = latents / vae.config.scaling_factor
    shift = getattr(vae.config, "shift_factor", None)
    if shift:
        scaled = scaled + shift
    return vae.decode(scaled.to(vae.dtype), return_dict=False)[0]


def run_trial(
    pipe: Any, *, steps: int, height: int, width: int, guidance: float, seed: int
) -> dict[str, Any]:
    import torch

    from genai_common.runtime.memory import track_memory

    device = str(pipe.device)
    stamps: list[float] = []
    memory: list[tuple[float, int]] = []
    read_memory = _memory_reader(torch, device)

    def on_step_end(_pipe: Any, _step: int, _timestep: Any, kwargs: dict) -> dict:
        _sync(torch, device)
        stamps.append(time.perf_counter())
        memory.append((stamps[-1], read_memory()))
        return kwargs

    generator = torch.Generator("cpu").manual_seed(seed)
    with track_memory() as mem, torch.inference_mode():
        _sync(torch, device)
        start = time.perf_counter()
        memory.append((start, read_memory()))
        latents = pipe(
            PROMPT,
            num_inference_steps=steps,
            height=height,
            width=width,
            guidance_scale=guidance,
            generator=generator,
            output_type="latent",
            callback_on_step_end=on_step_end,
        ).images
        _sync(torch, device)
        loop_end = time.perf_counter()
        image = _decode(pipe, latents)
        _sync(torch, device)
        end = time.perf_counter()
    del image
    denoise = (stamps[-1] if stamps else loop_end) - start
    series = [b - a for a, b in zip([start, *stamps], stamps, strict=False)]
    per_step = (stamps[-1] - stamps[0]) / (len(stamps) - 1) if len(stamps) > 1 else denoise
    return {
        "steps": len(stamps),
        "s_per_step": per_step,
        "denoise_s": denoise,
        "pipeline_s": loop_end - start,
        "vae_decode_s": end - loop_end,
        "s_per_image": end - start,
        "series": series,
        "memory": [[t - start, used, 0] for t, used in memory],
        "peak_torch": mem.torch_cuda_peak or _mps_memory(torch, device),
        "peak_rss": mem.rss_peak,
    }


def denoiser_flops(pipe: Any, *, height: int, width: int) -> float | None:
    """FLOPs of one call of the pipeline's denoiser (UNet or transformer), counted by torch."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
    if denoiser is None or getattr(pipe, "unet", None) is None:
        return None  # the transformer families take inputs we do not build here
    cfg = denoiser.config
    factor = getattr(pipe, "vae_scale_factor", 8)
    sample = torch.zeros(
        1,
        cfg.in_channels,
        height // factor,
        width // factor,
        dtype=denoiser.dtype,
        device=denoiser.device,
    )
    hidden = torch.zeros(
        1, 77, cfg.cross_attention_dim, dtype=denoiser.dtype, device=denoiser.device
    )
    try:
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            denoiser(sample, torch.tensor(1, device=denoiser.device), encoder_hidden_states=hidden)
        return float(counter.get_total_flops())
    except Exception:  # an architecture whose call we did not anticipate: no estimate
        return None


def bench(
    pipe: Any,
    *,
    steps: int,
    height: int,
    width: int,
    guidance: float,
    trials: int,
    warmup: int,
    cooldown: float,
    seed: int = 0,
    progress: Any = None,
) -> list[dict[str, Any]]:
    from genai_common.bench.stats import summarize

    pipe.set_progress_bar_config(disable=True)
    if progress is not None:
        progress.start("diffusion", max(warmup, 1) + trials)
    kwargs = dict(steps=steps, height=height, width=width, guidance=guidance, seed=seed)
    runs = []
    for _ in range(max(warmup, 1)):
        runs.append(run_trial(pipe, **kwargs))
        if progress is not None:
            progress.advance("warm-up")
    timed = []
    for _ in range(trials):
        if cooldown > 0:
            time.sleep(cooldown)
        timed.append(run_trial(pipe, **kwargs))
        if progress is not None:
            progress.advance("trial")
    summary = {}
    for metric in (
        "s_per_step",
        "s_per_image",
        "denoise_s",
        "vae_decode_s",
        "peak_torch",
        "peak_rss",
    ):
        values = [t[metric] for t in timed if t.get(metric) is not None]
        if values:
            summary[metric] = summarize(values).to_json()
    return [
        {
            "subject": "A",
            "workload": f"{height}x{width}, {steps} steps, guidance {guidance}",
            "height": height,
            "width": width,
            "steps": steps,
            "warmup_runs": len(runs),
            "cold": runs[0],
            "warmup": runs[1:],
            "trials": timed,
            "summary": summary,
        }
    ]
