"""The sharded smoke test: mlx-lm's sharded_load under mlx.launch vs one process.

run(model, ranks=2) launches genai_common.distributed.worker on N local ranks (ring backend on
loopback, or a hostfile), runs the same worker alone (mlx_lm.load) as the reference, and
compares rank 0's greedy tokens and first-step logits. Findings: DST020 output differs, DST021 a
rank failed / timed out (with its last stderr lines), DST022 all_sum wrong or missing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from typing import Any

from genai_common.distributed import checks, launch
from genai_common.findings import Finding

LOGIT_TOL = 1e-2  # float16 weights: a sharded matmul sums in another order
# what mlx's ring backend prints when a peer's socket went away under a pending send / recv
_RING_ERROR = re.compile(r"\[ring\] (?:Receiving|Sending) .* failed|Too many send/recv errors")


WORKER = "genai_common.distributed.worker"


def _worker(model: str, out: str, tokens: int, *extra: str, program: str = WORKER) -> list[str]:
    """The command of one rank: `program` (a module run with -m, named as a string: the bench's
    ranks worker lives in a layer above this one) on MODEL, writing OUT/rank<r>.json."""
    return [
        sys.executable,
        "-m",
        program,
        model,
        out,
        "--tokens",
        str(tokens),
        *extra,
    ]


def _tail(text: str, n: int = 4) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-n:]) or "no output"


def _run(cmd: list[str], timeout: float) -> tuple[int | None, str]:
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        import signal

        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return None, out


def _launch(
    model: str,
    ranks: int,
    out: str,
    tokens: int,
    extra: tuple[str, ...],
    *,
    hostfile: str | None,
    backend: str,
    timeout: float,
    python: str | None,
    worker: str = WORKER,
) -> tuple[list[dict[str, Any]], list[Finding], list[str] | None]:
    """One mlx.launch of the worker: each rank's record and the DST021/DST022 findings."""
    port = launch.free_port(ranks * 2) if not hostfile else None
    program = _worker(model, out, tokens, *extra, program=worker)
    if python:  # mlx.launch puts --python in front of the program on every host
        program = program[1:]
    try:
        cmd = launch.command(
            program, ranks=ranks, hostfile=hostfile, backend=backend, port=port, python=python,
        )  # fmt: skip
    except FileNotFoundError as exc:
        return [], [checks.rank_failed(str(exc))], None
    code, text = _run(cmd, timeout)
    found: list[Finding] = []
    expected = ranks if not hostfile else None
    records = []
    for name in sorted(os.listdir(out)) if os.path.isdir(out) else []:
        if name.startswith("rank") and name.endswith(".json"):
            with open(os.path.join(out, name)) as f:
                records.append(json.load(f))
    records.sort(key=lambda r: r["rank"])
    size = records[0]["size"] if records else expected
    if code is None:
        found.append(
            checks.rank_failed(f"mlx.launch did not finish within {timeout:g} s: {_tail(text)}")
        )
    elif code != 0 or not records or (size and len(records) < size):
        done = {r["rank"] for r in records}
        missing = sorted(set(range(size or 0)) - done)
        found.append(checks.rank_failed(
            f"mlx.launch exited {code}; ranks without a result: {missing or 'all'}: {_tail(text)}"
        ))  # fmt: skip
    elif _RING_ERROR.search(text):
        found.append(checks.rank_failed(f"every rank wrote its result, then: {_tail(text)}"))
    for r in records:
        s = r.get("all_sum")
        if r["size"] > 1 and not s:
            found.append(checks.collective(f"rank {r['rank']}: no all_sum result"))
        elif s and any(abs(v - s["want"]) > 1e-6 for v in s["got"]):
            found.append(
                checks.collective(f"rank {r['rank']}: all_sum gave {s['got']}, want {s['want']}")
            )
    if records and expected and records[0]["size"] != expected:
        found.append(checks.collective(
            f"{expected} ranks launched but the group has size {records[0]['size']}: "
            "mx.distributed.init() found no backend, every rank ran alone"
        ))  # fmt: skip
    return records, found, cmd


def run(
    model: str,
    ranks: int = 2,
    *,
    hostfile: str | None = None,
    backend: str = "ring",
    tokens: int = 8,
    timeout: float = 120.0,
    bench: bool = False,
    reference: bool = True,
    worker_args: tuple[str, ...] = (),
    modes: tuple[str, ...] = ("auto",),
    python: str | None = None,
    worker: str = WORKER,
) -> tuple[dict[str, Any], list[Finding]]:
    """(results, findings): results holds "modes" (each parallel mode's rank records, in the
    order asked), "ranks" (the first mode's records) and "reference" (one process). `worker`
    is the module each rank runs (its arguments: smoke._worker; `worker_args` go after them)."""
    results: dict[str, Any] = {"ranks": [], "reference": None, "modes": {}, "commands": {}}
    found: list[Finding] = []
    with tempfile.TemporaryDirectory(prefix="genai-dst-") as tmp:
        for mode in modes:
            extra = (
                *(("--bench",) if bench else ()),
                *(("--parallel", mode) if mode != "auto" else ()),
                *worker_args,
            )
            records, problems, cmd = _launch(
                model, ranks, os.path.join(tmp, f"sharded-{mode}"), tokens, extra,
                hostfile=hostfile, backend=backend, timeout=timeout, python=python, worker=worker,
            )  # fmt: skip
            if len(modes) > 1:
                problems = [prefixed(f, f"{mode} parallel: ") for f in problems]
            found += problems
            results["modes"][mode] = records
            results["commands"][mode] = cmd
        first = results["modes"][modes[0]]
        results["ranks"] = first
        results["command"] = results["commands"][modes[0]]
        if reference and any(results["modes"].values()):
            ref_out = os.path.join(tmp, "single")
            single = _worker(model, ref_out, tokens, "--single", *worker_args, program=worker)
            code, text = _run(single, timeout)
            path = os.path.join(ref_out, "rank0.json")
            if code != 0 or not os.path.isfile(path):
                found.append(
                    checks.rank_failed(f"the single-process reference failed: {_tail(text)}")
                )
            else:
                with open(path) as f:
                    ref = json.load(f)
                results["reference"] = ref
                for mode, records in results["modes"].items():
                    if records:
                        diffs = compare(records[0], ref)
                        if len(modes) > 1:
                            diffs = [prefixed(f, f"{mode} parallel: ") for f in diffs]
                        found.extend(diffs)
    return results, found


def prefixed(f: Finding, prefix: str) -> Finding:
    """The finding with `prefix` (which run it came from) in front of its message."""
    return f._replace(message=prefix + f.message)


def compare(rank0: dict[str, Any], ref: dict[str, Any]) -> list[Finding]:
    out = []
    if rank0["tokens"] != ref["tokens"]:
        out.append(checks.differs(
            f"rank 0 generated {rank0['tokens']} ({rank0['text']!r}); one process "
            f"{ref['tokens']} ({ref['text']!r})"
        ))  # fmt: skip
    a, b = rank0["logits_first"], ref["logits_first"]
    diff = max((abs(x - y) for x, y in zip(a, b, strict=False)), default=0.0)
    if len(a) != len(b) or diff > LOGIT_TOL:
        out.append(
            checks.differs(f"first-step logits differ by up to {diff:.4g} (tolerance {LOGIT_TOL})")
        )
    rank0["max_logit_diff"] = diff
    return out
