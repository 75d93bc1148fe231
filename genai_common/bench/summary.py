"""The text a person reads about a run: the RESULTS.md headline and the terminal report.

The metric names and units are in bench/metrics.py (shared with compare.py and plots.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genai_common.bench.metrics import HEADLINE, LABELS, fmt, fmt_metric


def headline(record: dict[str, Any]) -> str:
    """One line for the RESULTS.md row: the headline figure of each workload, spread, roofline."""
    metric, label, _ = HEADLINE[record["kind"]]
    parts = []
    for res in record["results"]:
        summ = res.get("summary", {})
        head = summ.get(metric)
        if not head:
            continue
        subject = res.get("subject", "A")  # B under --against; "2 ranks tensor" under --ranks
        text = (
            ("" if subject == "A" else f"[{subject}] ")
            + f"{res['workload']}: {label} {fmt_metric(metric, head['median'])} "
            f"[{fmt_metric(metric, head['min'])}–{fmt_metric(metric, head['max'])}, n={head['n']}]"
        )
        extras = []
        if "ttft" in summ:
            extras.append(f"TTFT {fmt_metric('ttft', summ['ttft']['median'])}")
        # one peak per kind, named (MLX active for MLX kinds; torch device, else process RSS,
        # for diffusion), never a bare "peak" (issue 16)
        for mem in ("peak_mlx", "peak_torch", "peak_rss"):
            if summ.get(mem) and summ[mem].get("median"):
                extras.append(f"{LABELS[mem][0]} {fmt_metric(mem, summ[mem]['median'])}")
                break
        roof = res.get("roofline") or {}
        if roof.get("fraction_of_peak") is not None:
            extras.append(f"{roof['fraction_of_peak']:.0%} of peak bandwidth")
        if head.get("noisy"):
            extras.append("NOISY")
        parts.append(text + (" (" + ", ".join(extras) + ")" if extras else ""))
    return "; ".join(parts) or "-"


def render_text(record: dict[str, Any], written: dict[str, Any] | None = None) -> str:
    """The terminal report: per workload a table of median, min-max, spread, cold run apart."""
    lines = [f"{record['model']} ({record['kind']})"]
    for sub in record.get("subjects", []):
        load = sub.get("load") or {}
        if load.get("seconds") is not None:
            lines.append(f"  {sub['label']}: loaded in {load['seconds']:.2f} s")
    for res in record["results"]:
        s = record["settings"]
        lines.append("")
        desc = f"[{res['subject']}] {res['workload']}"
        if record["kind"] in ("llm", "vlm"):
            desc += (
                f": {res.get('prompt_tokens')} prompt tokens -> {res.get('gen_tokens')} generated"
            )
        lines.append(
            f"{desc}; {len(res['trials'])} trials after {res.get('warmup_runs', 1)} warm-up"
            f" run(s){'; cool-down ' + str(s.get('cooldown')) + ' s' if s.get('cooldown') else ''}"
        )
        lines.append(
            f"  {'figure':<28}{'median':>14}{'min':>14}{'max':>14}{'IQR/med':>9}{'cold':>14}"
        )
        cold = res.get("cold") or {}
        for metric, summ in res.get("summary", {}).items():
            label = LABELS.get(metric, (metric, ""))[0]
            cold_value = cold.get(metric)
            if metric == "library_generation_tps":
                cold_value = (cold.get("library") or {}).get("generation_tps")
            lines.append(
                f"  {label:<28}{fmt_metric(metric, summ['median']):>14}"
                f"{fmt_metric(metric, summ['min']):>14}{fmt_metric(metric, summ['max']):>14}"
                f"{summ['rel_iqr']:>8.1%} {fmt_metric(metric, cold_value):>14}"
            )
        noisy = [
            f"{LABELS.get(metric, (metric, ''))[0]} (IQR {summ['rel_iqr']:.0%}"
            + (", an extreme sample" if "extreme" in (summ["noise"] or "") else "")
            + ")"
            for metric, summ in res.get("summary", {}).items()
            if summ.get("noisy")
        ]
        if noisy:
            lines.append(
                "  noise warning (IQR > 10% of the median or a sample > 50% off it): "
                + ", ".join(noisy)
                + "; take more trials, add --cooldown, or quiet the machine"
            )
        roof = res.get("roofline") or {}
        if roof.get("achieved_bytes_per_s"):
            text = (
                f"  roofline: {fmt(roof['weight_bytes'], 'bytes')} of weights read per token "
                f"({roof.get('weight_source', '?')}) x decode rate = "
                f"{roof['achieved_bytes_per_s'] / 1e9:.2f} GB/s"
            )
            if roof.get("fraction_of_peak") is not None:
                text += (
                    f" = {roof['fraction_of_peak']:.1%} of the {roof['peak_bytes_per_s'] / 1e9:.1f}"
                    f" GB/s measured here ({roof.get('peak_probe')})"
                )
            lines.append(text)
        if roof.get("prefill_flops_per_s"):
            lines.append(
                f"  prefill: {roof['prefill_flops_per_s'] / 1e9:.2f} GFLOP/s achieved "
                f"(estimated {roof['prefill_flops'] / 1e9:.3g} GFLOP from config.json)"
            )
        if roof.get("flops_per_s"):
            lines.append(
                f"  compute: {roof['flops_per_s'] / 1e9:.2f} GFLOP/s achieved ({roof.get('flops_note')})"
            )
        if roof.get("vae_flops_per_s"):
            lines.append(
                f"  VAE decode: {roof['vae_flops_per_s'] / 1e9:.2f} GFLOP/s achieved "
                f"({roof['vae_decode_flops'] / 1e9:.3g} GFLOP per image)"
            )
    if record.get("comparison"):
        from genai_common.bench.compare import render

        lines.append("")
        lines.append("interleaved A/B comparison (raw trials):")
        paths = {s["label"]: s["path"] for s in record.get("subjects", [])}
        lines.append(render(record["comparison"], paths.get("A", "A"), paths.get("B", "B")))
    if written:
        lines.append("")
        for name, path in written.items():
            lines.append(f"{name}: {Path(path)}")
    return "\n".join(lines)
