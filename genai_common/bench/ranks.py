"""`genai bench --ranks N[,M...]`: an llm's decode rate and TTFT under mlx.launch, with the same
workloads, warm-up, timed trials, statistics, JSON record, plots and RESULTS.md row as a
single-machine `genai bench`.

Per world size, every parallel mode the model's mlx-lm class implements and that fits
(preflight.infer_modes) runs once under mlx.launch (ring backend, loopback ports); each rank
runs bench/ranks_worker.py, which loads with sharded_load and times the same generations as
bench.llm, the ranks meeting after each one. One process (mlx_lm.load, the same worker with
--single) is the 1-rank baseline and the reference rank 0's greedy tokens and first-step
logits must equal (DST020). Rank 0's trials enter the record (its timings are the user's);
every rank's load and memory figures are kept under "distributed". A rank that dies or hangs
past --rank-timeout ends as DST021 with its last output lines; the record keeps what ran.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

WORKER = "genai_common.bench.ranks_worker"
SMOKE_TOKENS = 8  # the equality check's greedy tokens (the timed generations use --gen-tokens)


def worker_args(args: argparse.Namespace) -> tuple[str, ...]:
    """The single-machine bench options each rank runs with."""
    return (
        "--trials", str(args.trials), "--warmup", str(max(args.warmup, 1)),
        "--cooldown", str(args.cooldown), "--gen-tokens", str(args.gen_tokens),
        "--prompt-tokens", ",".join(map(str, args.prompt_tokens)),
        "--prompts", args.prompts, "--seed", str(args.seed),
    )  # fmt: skip


def run(args: argparse.Namespace, kind: str, record: dict[str, Any]) -> int:
    """Run every world size in args.ranks; fill `record`; write and print it. Exit 0: every
    run agreed with one process; 1: a finding (a rank failed, rank 0 differs); 2: cannot run."""
    from genai_common.distributed import preflight, smoke
    from genai_common.model import ModelDir

    sizes = args.ranks
    if kind != "llm" or min(sizes) < 2:
        print("genai bench: --ranks N needs an llm and N >= 2", file=sys.stderr)
        return 2
    try:
        md = ModelDir.open(args.path)
    except (OSError, ValueError) as exc:
        print(f"genai bench: {exc}", file=sys.stderr)
        return 2
    results: list[dict[str, Any]] = []
    per_rank: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    found: list[Any] = []
    commands: dict[str, list[str] | None] = {}
    reference: dict[str, Any] | None = None
    for n in sizes:
        modes, why, problems = preflight.infer_modes(md, n, "auto")
        skipped.update({f"{m} parallel on {n} ranks": w for m, w in why.items()})
        found += problems
        if not modes:
            continue
        out, problems = smoke.run(
            str(args.path), n, tokens=SMOKE_TOKENS, bench=True, modes=modes, worker=WORKER,
            worker_args=worker_args(args), reference=reference is None, timeout=args.rank_timeout,
        )  # fmt: skip
        if len(sizes) > 1:
            problems = [smoke.prefixed(f, f"{n} ranks: ") for f in problems]
        found += problems
        if reference is None and out["reference"]:
            reference = out["reference"]
            results += _results(reference, 1, "single")
            per_rank.append(_rank_figures(reference, 1, "single"))
        elif reference is not None:  # the reference ran with the first world size
            for mode, recs in out["modes"].items():
                if recs:
                    diffs = smoke.compare(recs[0], reference)
                    found += [smoke.prefixed(f, f"{n} ranks {mode}: ") for f in diffs]
        for mode, recs in out["modes"].items():
            commands[f"{n} ranks {mode}"] = out["commands"].get(mode)
            if recs:
                results += _results(recs[0], n, mode)
                per_rank += [_rank_figures(r, n, mode) for r in recs]
    if not results:
        why_not = "; ".join(f"{k}: {v}" for k, v in skipped.items())
        lines = [f"{f.code} {f.message}" for f in found] or [why_not or "nothing ran"]
        print("genai bench: no sharded run completed: " + "; ".join(lines), file=sys.stderr)
        return 1 if found else 2
    record["results"] = results
    record["distributed"] = {
        "backend": "ring",
        "world_sizes": sizes,
        "rows": rows(results),
        "ranks": per_rank,
        "skipped": skipped,
        "commands": commands,
        "findings": [f.to_json() for f in found],
    }
    return _report(record, args, found)


def _results(rank0: dict[str, Any], ranks: int, parallel: str) -> list[dict[str, Any]]:
    """Rank 0's bench results, labelled with the world size and mode, with its collective
    figures (all_sum bandwidth, estimated communication share) beside each."""
    out = []
    for res in rank0.get("results") or []:
        res = dict(res, ranks=ranks, parallel=parallel)
        res["collectives"] = {
            k: rank0.get(k)
            for k in ("all_sum_gbps", "comm_share", "collective_us", "collectives_per_token")
        }
        out.append(res)
    return out


def _rank_figures(rec: dict[str, Any], ranks: int, parallel: str) -> dict[str, Any]:
    """What one rank held and measured: its load's MLX bytes and its trials' peak."""
    peaks = [
        r["summary"]["peak_mlx"]["max"]
        for r in rec.get("results") or []
        if "peak_mlx" in (r.get("summary") or {})
    ]
    return {
        "world_size": ranks,
        "parallel": parallel,
        "rank": rec["rank"],
        "param_bytes": rec.get("param_bytes"),
        "active_memory": rec.get("active_memory"),
        "peak_mlx": max(peaks) if peaks else None,
    }


def rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (world size, mode, workload): medians with min-max over the timed trials."""
    out = []
    for res in results:
        summ = res.get("summary") or {}
        dec, ttft = summ.get("decode_tps") or {}, summ.get("ttft") or {}
        coll = res.get("collectives") or {}
        out.append({
            "ranks": res["ranks"],
            "parallel": res["parallel"],
            "workload": res["workload"],
            "trials": len(res.get("trials") or []),
            "gen_tokens": res.get("gen_tokens"),
            "decode_tps": dec.get("median"),
            "decode_tps_min": dec.get("min"),
            "decode_tps_max": dec.get("max"),
            "ttft_ms": ttft["median"] * 1000 if ttft.get("median") is not None else None,
            "all_sum_gbps": coll.get("all_sum_gbps"),
            "comm_share": coll.get("comm_share"),
            "collective_us": coll.get("collective_us"),
            "collectives_per_token": coll.get("collectives_per_token"),
        })  # fmt: skip
    return out


def _report(record: dict[str, Any], args: argparse.Namespace, found: list[Any]) -> int:
    from genai_common.bench.runner import write_and_print

    after = "\n".join(
        [render_rows(record["distributed"])]
        + [f"{f.severity:<7} {f.code}  {f.message}" for f in found]
    )
    code = write_and_print(record, args, after)
    return code or (1 if found else 0)


def render_rows(dist: dict[str, Any]) -> str:
    """The world-size table: rank 0's median decode rate (min-max), TTFT, the ring's all_sum
    bandwidth and the estimated communication share; then what did not run and why."""
    lines = [
        f"{'ranks':<6}{'parallel':<10}{'workload':<14}{'decode tok/s [min-max]':>26}"
        f"{'TTFT ms':>10}{'all_sum GB/s':>14}{'comm % (est.)':>15}"
    ]
    for r in dist["rows"]:
        lo, hi = _num(r["decode_tps_min"], 1), _num(r["decode_tps_max"], 1)
        spread = f"{_num(r['decode_tps'], 1)} [{lo}-{hi}]"
        share = r["comm_share"] * 100 if r["comm_share"] is not None else None
        lines.append(
            f"{r['ranks']:<6}{r['parallel']:<10}{r['workload']:<14}{spread:>26}"
            f"{_num(r['ttft_ms'], 2):>10}{_num(r['all_sum_gbps'], 3):>14}{_num(share, 1):>15}"
        )
    for what, why in dist["skipped"].items():
        lines.append(f"({what} not run: {why})")
    return "\n".join(lines)


def _num(value: float | None, digits: int) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "-"
