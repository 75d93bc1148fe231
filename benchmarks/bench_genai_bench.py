"""`genai bench` on the tiny models of the MLX stack (llm, vlm, ml), as a user runs it.

Each run is the command itself (`genai bench PATH ... --json --out TMP`, in process), so the
rows come from the JSON record it prints: the headline figure with its spread, TTFT, the roofline
fraction or the achieved FLOP/s, and whether the record, the RESULTS row and the plots were
written. The diffusion pipelines run in the torch stack (bench_genai_bench_diffusion.py).
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path
from typing import Any

# kind -> (tiny variant, genai bench options)
RUNS = {
    "llm": ("llama", ["--prompt-tokens", "128", "--gen-tokens", "64", "--trials", "5"]),
    "vlm": ("qwen2_vl", ["--prompt-tokens", "64", "--gen-tokens", "32", "--trials", "3"]),
    "ml": ("mlp", ["--train-step", "--trials", "10"]),
}


def genai_bench(argv: list[str]) -> dict[str, Any]:
    """Run `genai bench ARGV --json` in this process; its record."""
    from genai_common.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["bench", *argv, "--json"])
    if code != 0:
        raise RuntimeError(f"genai bench {' '.join(argv)} exited {code}")
    return json.loads(out.getvalue())


def spread(summary: dict[str, Any], fmt: str) -> str:
    return (
        f"{fmt.format(summary['median'])} [{fmt.format(summary['min'])}-"
        f"{fmt.format(summary['max'])}, n={summary['n']}]"
    )


def written(record: dict[str, Any]) -> str:
    files = record.get("written", {})
    plots = sorted(k[5:] for k in files if k.startswith("plot "))
    ok = all(Path(p).exists() for p in files.values())
    return f"record, RESULTS row, plots: {', '.join(plots)}" + ("" if ok else " (MISSING FILES)")


def rows_for(kind: str, record: dict[str, Any], options: list[str]) -> list[dict[str, Any]]:
    rows = []
    for res in record["results"]:
        s, roof = res["summary"], res.get("roofline") or {}
        name = f"genai bench tiny {kind}: {res['workload']}"
        if kind in ("llm", "vlm"):
            notes = f"TTFT {s['ttft']['median'] * 1e3:.2f} ms"
            if roof.get("fraction_of_peak") is not None:
                notes += f", {roof['fraction_of_peak']:.1%} of the measured peak bandwidth"
            value = spread(s["decode_tps"], "{:.0f}") + " tok/s"
        else:
            metric = "forward_s" if "forward_s" in s else "train_step_s"
            value = (
                spread(
                    {
                        k: v * 1e6 if k != "n" else v
                        for k, v in s[metric].items()
                        if k in ("median", "min", "max", "n")
                    },
                    "{:.0f}",
                )
                + " µs/batch"
            )
            notes = f"{roof['flops_per_s'] / 1e9:.2f} GFLOP/s" if roof.get("flops_per_s") else ""
        rows.append({
            "benchmark": name,
            "value": value,
            "notes": "; ".join(x for x in (notes, " ".join(options), written(record)) if x),
        })  # fmt: skip
    return rows


def main() -> list[dict[str, Any]]:
    from genai_common.testing.tiny import build

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="genai-bench-bench-") as tmp:
        for kind, (variant, options) in RUNS.items():
            model = build(kind, Path(tmp) / f"tiny-{kind}", variant=variant)
            out = Path(tmp) / f"out-{kind}"
            record = genai_bench([str(model), *options, "--out", str(out)])
            rows += rows_for(kind, record, options)
    return rows
