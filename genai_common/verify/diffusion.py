"""Diffusion output parity (issue 10 part 6): VAE decode and one denoiser step, candidate vs
reference (two pipelines, or one pipeline in two dtypes).

Both sides get the same fixed latents (seeded), the same timestep and the same conditioning; the
outputs are compared in float32. An fp16 VAE whose activations overflow (SDXL's VAE in float16:
±65504 exceeded inside the decoder) decodes to NaN/Inf: QLT301. Codes QLT300-QLT339.
"""

from __future__ import annotations

from types import SimpleNamespace

from genai_common.findings import Finding, finding, rule, run_rule

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

# relative error (max |Δ| over the reference's value range) above which outputs differ;
# float32 reference vs float16 candidate on the tiny sd pipeline: 1.5e-3 decode, 1.1e-3 step;
# bfloat16: 1.3e-2 and 1.1e-2 (reference/DIAGNOSTICS.md)
DECODE_REL_TOL = 0.03
DENOISE_REL_TOL = 0.03
DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "float16": "float16",
    "fp16": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}


class DiffusionParity(SimpleNamespace):
    """The subject of the QLT3xx diffusion rules: the numbers of one comparison."""


def _rel(cand: Any, ref: Any) -> float:
    span = float(ref.max() - ref.min()) or 1.0
    return float((cand - ref).abs().max()) / span


def _load(path: str, dtype: str | None) -> Any:
    import torch
    from diffusers import DiffusionPipeline

    torch_dtype = getattr(torch, DTYPES.get(dtype or "float32", "float32"))
    return DiffusionPipeline.from_pretrained(path, dtype=torch_dtype)


def _latents(vae: Any, seed: int, size: int) -> Any:
    import torch

    channels = int(vae.config.latent_channels)
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    g = torch.Generator().manual_seed(seed)
    return torch.randn((1, channels, size // factor, size // factor), generator=g)


def _decode(pipe: Any, latents: Any) -> Any:
    import torch

    vae = pipe.vae
    dtype = next(vae.parameters()).dtype
    scale = float(getattr(vae.config, "scaling_factor", 1.0) or 1.0)
    with torch.no_grad():
        out = vae.decode((latents / scale).to(dtype)).sample
    return out.float()


def _denoise(pipe: Any, latents: Any, seed: int) -> Any | None:
    """One UNet step on fixed latents, timestep and conditioning; None without a UNet."""
    import torch

    unet = getattr(pipe, "unet", None)
    if unet is None:
        return None
    dtype = next(unet.parameters()).dtype
    g = torch.Generator().manual_seed(seed + 1)
    dim = int(unet.config.cross_attention_dim)
    cond = torch.randn((1, 8, dim), generator=g)
    t = torch.tensor([500])
    with torch.no_grad():
        out = unet(latents.to(dtype), t, encoder_hidden_states=cond.to(dtype)).sample
    return out.float()


@rule(
    "QLT301",
    "Diffusion output holds NaN or Inf",
    severity="error",
    fix="Overflow in reduced precision (the SDXL VAE in float16 is the classic case): run the "
    "VAE in float32 (pipe.vae.to(torch.float32), or upcast_vae) or use a VAE fine-tuned to stay "
    "in float16 range (madebyollin/sdxl-vae-fp16-fix); the reference side is finite.",
    compares="candidate VAE decode / denoiser output: NaN and Inf counts (reference finite)",
)
def non_finite(p: DiffusionParity) -> Iterator[Finding]:
    for what, bad, ref_bad in (
        ("VAE decode", p.decode_nonfinite, p.ref_decode_nonfinite),
        ("denoiser step", p.denoise_nonfinite, p.ref_denoise_nonfinite),
    ):
        if bad and not ref_bad:
            yield finding(
                "QLT301",
                f"candidate {what} ({p.candidate_dtype}) has {bad:,} NaN/Inf values; the "
                f"reference ({p.reference_dtype}) has none",
            )


@rule(
    "QLT302",
    "VAE decode differs from the reference",
    severity="error",
    fix="The VAE weights or config differ (scaling_factor, a conversion that transposed or "
    "dropped a conv, NCHW vs NHWC layout): compare the vae/ folder with the reference's.",
    compares=f"max |Δ| / reference range of the decoded image, tolerance {DECODE_REL_TOL:g}",
)
def decode_parity(p: DiffusionParity) -> Iterator[Finding]:
    if p.decode_rel is not None and p.decode_rel > DECODE_REL_TOL:
        yield finding(
            "QLT302",
            f"VAE decode relative error {p.decode_rel:.3g} > {DECODE_REL_TOL:g} on fixed latents",
        )


@rule(
    "QLT303",
    "Denoiser step differs from the reference",
    severity="error",
    fix="The UNet weights or config differ (a converted attention, a swapped projection, a "
    "scheduler-specific input scaling): compare unet/ with the reference's.",
    compares=f"max |Δ| / reference range of one UNet step's output, tolerance {DENOISE_REL_TOL:g}",
)
def denoise_parity(p: DiffusionParity) -> Iterator[Finding]:
    if p.denoise_rel is not None and p.denoise_rel > DENOISE_REL_TOL:
        yield finding(
            "QLT303",
            f"denoiser step relative error {p.denoise_rel:.3g} > {DENOISE_REL_TOL:g} "
            "(fixed latents, t=500, fixed conditioning)",
        )


RULES = (non_finite, decode_parity, denoise_parity)


def verify_diffusion(
    candidate: str,
    reference: str,
    *,
    candidate_dtype: str | None = None,
    reference_dtype: str | None = None,
    seed: int = 0,
    size: int = 64,
) -> tuple[list[Finding], dict[str, Any]]:
    """Compare two diffusers pipelines (or one in two dtypes): (findings, metrics)."""
    import torch

    cand, ref = _load(candidate, candidate_dtype), _load(reference, reference_dtype)
    latents = _latents(ref.vae, seed, size)
    dec_c, dec_r = _decode(cand, latents), _decode(ref, latents)
    den_c, den_r = _denoise(cand, latents, seed), _denoise(ref, latents, seed)

    def nonfinite(x: Any) -> int:
        return 0 if x is None else int((~torch.isfinite(x)).sum())

    def rel(c: Any, r: Any) -> float | None:
        if c is None or r is None or nonfinite(c) or nonfinite(r) or c.shape != r.shape:
            return None
        return _rel(c, r)

    p = DiffusionParity(
        candidate_dtype=candidate_dtype or "float32",
        reference_dtype=reference_dtype or "float32",
        decode_nonfinite=nonfinite(dec_c),
        ref_decode_nonfinite=nonfinite(dec_r),
        denoise_nonfinite=nonfinite(den_c),
        ref_denoise_nonfinite=nonfinite(den_r),
        decode_rel=rel(dec_c, dec_r),
        denoise_rel=rel(den_c, den_r),
    )
    found: list[Finding] = []
    for func in RULES:
        found.extend(run_rule(func, p))
    metrics = {k: v for k, v in vars(p).items()}
    return found, metrics
