"""The static doctor in several source trees on one checkpoint, runs interleaved (a before/after).

    python benchmarks/compare_trees.py --rounds 20 --tokenizer none \
        before=/tmp/wt-before after=/work/main

Each tree is a git worktree (`git worktree add /tmp/wt-before <commit>`) run with its own
PYTHONPATH from /tmp, so that the current directory does not put another tree first on sys.path.
The checkpoint is bench_doctor's 70B-shaped one (TOKENIZER: llama3, gemma3 or none). Printed per
tree: the codes found (they must agree), the median of `genai doctor PATH --json` as a process
(each tree keeps its own read cache, so repeated runs are measured), and the median in-process
diagnose() time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IN_PROCESS = """
import statistics, sys, time
from genai_common.doctor import diagnose
diagnose(sys.argv[1])
times = []
for _ in range(40):
    start = time.perf_counter()
    diagnose(sys.argv[1])
    times.append(time.perf_counter() - start)
print(statistics.median(times) * 1e3)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", help="NAME=PATH of a source tree")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--tokenizer", default="none", choices=["llama3", "gemma3", "none"])
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks import bench_doctor

    base = Path(tempfile.gettempdir())
    ckpt = bench_doctor.build(
        base / f"genai-compare-trees-{args.tokenizer}", tokenizer=args.tokenizer
    )
    trees = dict(t.split("=", 1) for t in args.trees)
    times: dict[str, dict[str, list[float]]] = {n: {"process": [], "in": []} for n in trees}
    for round_ in range(args.rounds):
        for name, tree in trees.items():
            cache = base / f"genai-compare-trees-cache-{name}"
            env = {**os.environ, "PYTHONPATH": tree, "GENAI_CACHE_DIR": str(cache)}
            cmd = [sys.executable, "-m", "genai_common.cli", "doctor", str(ckpt), "--json"]
            start = time.perf_counter()
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=base)
            times[name]["process"].append((time.perf_counter() - start) * 1e3)
            if round_ == 0:
                codes = sorted({f["code"] for f in json.loads(done.stdout)["findings"]})
                print(f"{name}: codes {codes}")
            if round_ % 5 == 0:
                code = [sys.executable, "-c", IN_PROCESS, str(ckpt)]
                out = subprocess.run(code, env=env, capture_output=True, text=True, cwd=base)
                times[name]["in"].append(float(out.stdout.strip()))
    for name, got in times.items():
        process, inside = statistics.median(got["process"]), statistics.median(got["in"])
        print(
            f"{name}: process {process:.1f} ms, in-process {inside:.2f} ms ({args.rounds} rounds)"
        )


if __name__ == "__main__":
    main()
