"""`genai bench` on the tiny diffusion pipelines (torch stack): SD's UNet and SD3's transformer.

s/step with its spread, the VAE decode time, and the achieved FLOP/s of the denoiser and of the
VAE decode (FLOPs counted by hooks on the calls the pipeline makes).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

STACK = "torch"
OPTIONS = ["--steps", "4", "--size", "64", "--trials", "5"]


def main() -> list[dict[str, Any]]:
    from benchmarks.bench_genai_bench import genai_bench, spread, written
    from genai_common.testing.tiny import build

    rows = []
    with tempfile.TemporaryDirectory(prefix="genai-bench-diffusion-") as tmp:
        for variant in ("sd", "sd3"):
            model = build("diffusion", Path(tmp) / variant, variant=variant)
            record = genai_bench([str(model), *OPTIONS, "--out", str(Path(tmp) / f"out-{variant}")])
            for res in record["results"]:
                s, roof = res["summary"], res.get("roofline") or {}
                ms = {k: v * 1e3 if k != "n" else v for k, v in s["s_per_step"].items()
                      if k in ("median", "min", "max", "n")}  # fmt: skip
                notes = [f"VAE decode {s['vae_decode_s']['median'] * 1e3:.2f} ms"]
                if roof.get("flops_per_s"):
                    notes.append(f"{roof['denoiser']} {roof['flops_per_s'] / 1e9:.1f} GFLOP/s")
                if roof.get("vae_flops_per_s"):
                    notes.append(f"VAE {roof['vae_flops_per_s'] / 1e9:.1f} GFLOP/s")
                rows.append({
                    "benchmark": f"genai bench tiny {variant}: {res['workload']}",
                    "value": spread(ms, "{:.2f}") + " ms/step",
                    "notes": "; ".join([*notes, " ".join(OPTIONS), written(record)]),
                })  # fmt: skip
    return rows
