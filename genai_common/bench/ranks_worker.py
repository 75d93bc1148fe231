"""One rank of `genai bench --ranks`: the smoke worker's load and checks, then the same
workloads, warm-up and timed trials as a single-machine `genai bench` (bench.llm.bench), with
every rank meeting the others after each generation (stream_generate leaves a decode step in
flight; see distributed/worker.py). Each rank writes OUT/rank<r>.json: the smoke record
(tokens, first-step logits, memory) plus "results" (the bench results of this rank) and the
collective figures measured at the median decode rate.

python -m genai_common.bench.ranks_worker MODEL OUT [--single] [--parallel tensor|pipeline]
    [--trials N] [--warmup N] [--cooldown S] [--gen-tokens N] [--prompt-tokens 512]
    [--prompts both|random|chat] [--seed N]
"""

from __future__ import annotations

import json
import os

from genai_common.bench.cli import token_counts
from genai_common.bench.llm import Subject, bench
from genai_common.distributed.worker import Rank, arguments


def main(argv: list[str] | None = None) -> int:
    p = arguments(__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--cooldown", type=float, default=0.0)
    p.add_argument("--gen-tokens", type=int, default=128)
    p.add_argument("--prompt-tokens", type=token_counts, default=[512])
    p.add_argument("--prompts", choices=("both", "random", "chat"), default="both")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    rank = Rank.start(a)
    rank.smoke(a.tokens)
    with open(os.path.join(a.model, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    label = "1 rank" if rank.group.size() == 1 else f"{rank.group.size()} ranks {a.parallel}"
    subject = Subject(label, a.model, "llm", rank.model, rank.tokenizer, config)
    results = bench(
        [subject],
        prompt_tokens=a.prompt_tokens,
        gen_tokens=a.gen_tokens,
        trials=a.trials,
        warmup=a.warmup,
        cooldown=a.cooldown,
        prompts=a.prompts,
        seed=a.seed,
        after_run=rank.barrier,
    )
    rank.record["results"] = results
    rates = [r["summary"]["decode_tps"]["median"] for r in results if "decode_tps" in r["summary"]]
    rank.collectives(rates[0] if rates else rank.record.get("decode_tps"))
    rank.write(a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
