"""`genai bench` for a diffusers pipeline (the torch stack): s/step, s/image, VAE decode apart.

A trial calls the pipeline with ``output_type="latent"`` and a step callback that stamps the end
of each denoising step (after synchronizing the device, so a step's time is its computation and
not its launch), then decodes the latents with the VAE separately:

- s/step: (t_last_step - t_first_step) / (steps - 1), the same convention as decode tokens/s (the
  first step also pays text encoding and latent preparation); with one step, that step alone
- denoising loop: last step stamp - start; VAE decode: its own clock; s/image: both together
- peak memory: torch's CUDA peak scoped to the trial (`track_memory`), MPS driver memory at the
  end on a Mac, and the process RSS peak
- achieved FLOP/s: the FLOPs of the denoiser's calls in one step (counted by torch's
  FlopCounterMode on an untimed 2-step run, `count_flops`) / median s/step; the VAE decode's
  FLOPs / its median time
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


def _latents(
    pipe: Any, steps: int, height: int, width: int, guidance: float, seed: int, on_step_end: Any
) -> Any:
    """The denoising loop alone: the benchmark prompt, latents out (the VAE is timed apart)."""
    import torch

    return pipe(
        PROMPT,
        num_inference_steps=steps,
        height=height,
        width=width,
        guidance_scale=guidance,
        generator=torch.Generator("cpu").manual_seed(seed),
        output_type="latent",
        callback_on_step_end=on_step_end,
    ).images


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

    with track_memory() as mem, torch.inference_mode():
        _sync(torch, device)
        start = time.perf_counter()
        memory.append((start, read_memory()))
        latents = _latents(pipe, steps, height, width, guidance, seed, on_step_end)
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


def count_flops(
    pipe: Any, *, height: int, width: int, guidance: float, seed: int, steps: int = 2
) -> dict[str, Any] | None:
    """FLOPs of one denoiser call and of one VAE decode, counted by torch's FlopCounterMode on
    an untimed run of `steps` steps with the benchmark's size, guidance and prompt.

    Hooks on the pipeline's denoiser (UNet or transformer: whatever `pipe.unet` or
    `pipe.transformer` is) open a counter before each call and close it after, so the count is
    of the calls the pipeline really makes, with its own inputs (CFG batch, prompt length,
    latent size) and nothing of the text encoders or the scheduler. None when the pipeline has
    no denoiser we can hook or the run fails."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
    if denoiser is None or not hasattr(denoiser, "register_forward_hook"):
        return None
    open_counters: list[Any] = []
    counted = {"calls": 0, "flops": 0, "steps": 0}

    def before(_module: Any, _args: Any, _kwargs: Any) -> None:
        counter = FlopCounterMode(display=False)
        counter.__enter__()
        open_counters.append(counter)

    def after(_module: Any, _args: Any, _kwargs: Any, _out: Any) -> None:
        counter = open_counters.pop()
        counter.__exit__(None, None, None)
        counted["calls"] += 1
        counted["flops"] += counter.get_total_flops()

    def on_step_end(_pipe: Any, _step: int, _timestep: Any, kwargs: dict) -> dict:
        counted["steps"] += 1
        return kwargs

    hooks = [
        denoiser.register_forward_pre_hook(before, with_kwargs=True),
        denoiser.register_forward_hook(after, with_kwargs=True),
    ]
    try:
        with torch.inference_mode():
            latents = _latents(pipe, steps, height, width, guidance, seed, on_step_end)
            with FlopCounterMode(display=False) as vae_counter:
                _decode(pipe, latents)
    except Exception:  # a pipeline whose call we cannot make this way: no estimate
        return None
    finally:
        for hook in hooks:
            hook.remove()
        while open_counters:  # a call that raised inside the denoiser
            open_counters.pop().__exit__(None, None, None)
    if not counted["calls"] or not counted["flops"]:
        return None
    return {
        "denoiser": type(denoiser).__name__,
        "denoiser_flops_per_call": counted["flops"] / counted["calls"],
        "denoiser_calls_per_step": counted["calls"] / max(counted["steps"], 1),
        "vae_decode_flops": float(vae_counter.get_total_flops()),
    }


def achieved(counts: dict[str, Any] | None, summary: dict[str, Any]) -> dict[str, Any] | None:
    """Achieved FLOP/s of a denoising step (median s/step) and of the VAE decode."""
    if not counts:
        return None
    out = dict(counts)
    step = (summary.get("s_per_step") or {}).get("median")
    if step:
        per_step = counts["denoiser_flops_per_call"] * counts["denoiser_calls_per_step"]
        out["flops_per_s"] = per_step / step
        out["flops_note"] = (
            f"{counts['denoiser']}: {per_step / 1e9:.3g} GFLOP per step "
            f"({counts['denoiser_calls_per_step']:g} call(s), CFG branches batched in) / median "
            "s/step; torch FlopCounterMode"
        )
    vae = (summary.get("vae_decode_s") or {}).get("median")
    if vae and counts["vae_decode_flops"]:
        out["vae_flops_per_s"] = counts["vae_decode_flops"] / vae
    return out


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
