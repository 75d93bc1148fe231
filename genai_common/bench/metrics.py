"""What a run's figures are called and their units: the names every bench module shows.

The comparison (compare.py), the plots (plots.py) and the text report (summary.py) read these;
nothing here imports another bench module.
"""

from __future__ import annotations

# kind -> (headline metric, axis label, higher is better)
HEADLINE: dict[str, tuple[str, str, bool]] = {
    "llm": ("decode_tps", "decode tokens/s", True),
    "vlm": ("decode_tps", "decode tokens/s", True),
    "diffusion": ("s_per_step", "seconds per denoising step", False),
    "ml": ("forward_s", "seconds per forward batch", False),
}

# metric -> (label, unit kind)
LABELS: dict[str, tuple[str, str]] = {
    "ttft": ("TTFT", "s"),
    "prefill_tps": ("prefill tok/s", "rate"),
    "decode_tps": ("decode tok/s", "rate"),
    "library_generation_tps": ("mlx-lm/vlm generation_tps", "rate"),
    "itl_p50": ("ITL p50", "s"),
    "itl_p90": ("ITL p90", "s"),
    "itl_p99": ("ITL p99", "s"),
    "e2e": ("end-to-end", "s"),
    "peak_mlx": ("MLX active peak", "bytes"),
    "peak_mlx_added": ("  of it added by the run", "bytes"),
    "peak_torch": ("torch device peak", "bytes"),
    "peak_rss": ("process RSS peak", "bytes"),
    "s_per_step": ("s/step", "s"),
    "s_per_image": ("s/image (denoise + VAE)", "s"),
    "denoise_s": ("denoising loop", "s"),
    "vae_decode_s": ("VAE decode", "s"),
    "forward_s": ("forward/batch", "s"),
    "train_step_s": ("train step/batch", "s"),
    "samples_per_s": ("samples/s (forward)", "rate"),
}


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        if value < 1e-3:
            return f"{value * 1e6:.1f} µs"
        if value < 1:
            return f"{value * 1e3:.2f} ms"
        return f"{value:.3f} s"
    if unit == "bytes":  # the one byte formatter (binary units), as the doctor's messages
        from genai_common.model.values import gib

        return gib(value)
    if unit == "rate":
        return f"{value:,.1f}"
    return f"{value:.4g}"


def fmt_metric(metric: str, value: float | None) -> str:
    return fmt(value, LABELS.get(metric, (metric, ""))[1])
