"""Calibration of `genai verify`'s QLT thresholds (issue 10): every good and broken pair of
genai_common.testing.broken.PAIRS, built from the trained tiny llama of a few seeds, through
verify() over the shipped corpus; prints the markdown table reference/DIAGNOSTICS.md records.

    python -m benchmarks.calibrate_verify [--seeds 0 1 2] [--context 4096]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def rows(seeds: list[int], context: int) -> list[dict[str, object]]:
    from genai_common.testing.broken import PAIRS, build_pairs
    from genai_common.testing.tiny import build
    from genai_common.verify import verify

    out = []
    with tempfile.TemporaryDirectory(prefix="genai-calibrate-") as tmp:
        for seed in seeds:
            src = build("llm", Path(tmp) / f"llama-{seed}", variant="llama", seed=seed)
            pairs = build_pairs(src, Path(tmp) / f"pairs-{seed}")
            for name in PAIRS:
                cand, ref = pairs[name]
                start = time.perf_counter()
                res = verify(str(cand), str(ref), context=context)
                m = res.metrics
                out.append(
                    {
                        "pair": name,
                        "seed": seed,
                        "good": PAIRS[name][1],
                        "kl_mean": m["kl_mean"],
                        "kl_p99": m["kl_p99"],
                        "kl_max": m["kl_max"],
                        "top1": m["top1_agreement"],
                        "top5": m["top5_overlap"],
                        "ppl_delta": m["ppl_delta"],
                        "ppl_rel": m["ppl_delta"] / m["ppl_reference"],
                        "verdict": res.verdict,
                        "codes": sorted({f.code for f in res.findings}),
                        "first_bad_layer": res.first_bad_layer,
                        "seconds": time.perf_counter() - start,
                        "positions": m["positions"],
                    }
                )
    return out


def table(results: list[dict[str, object]]) -> str:
    lines = [
        "| pair | seed | expected | KL mean | KL p99 | KL max | top-1 | top-5 | ppl delta "
        "(rel) | verdict | codes | first bad layer |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['pair']} | {r['seed']} | {'pass' if r['good'] else 'fail'} "
            f"| {r['kl_mean']:.4f} | {r['kl_p99']:.3f} | {r['kl_max']:.3f} | {r['top1']:.3f} "
            f"| {r['top5']:.3f} | {r['ppl_delta']:+.2f} ({r['ppl_rel']:+.1%}) | {r['verdict']} "
            f"| {' '.join(r['codes'])} | {r['first_bad_layer'] or '-'} |"  # type: ignore[arg-type]
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--context", type=int, default=4096)
    args = parser.parse_args(argv)
    results = rows(args.seeds, args.context)
    print(table(results))
    positions = {r["positions"] for r in results}
    print(f"\n{len(results)} pairs, scored positions {sorted(positions)}, context {args.context}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
