"""One rank of the sharded smoke test and benchmark (run under mlx.launch, or alone with
--single for the reference). Each rank writes OUT/rank<r>.json:

    {"rank", "size", "parallel", "all_sum": {"got", "want"}, "active_memory", "param_bytes",
     "tokens", "text", "logits_first": [...], "ttft_s", "prompt_tps", "decode_tps",
     "all_sum_gbps"}

stream_generate runs one decode step ahead (generate_step async_evals step n+1 before it yields
token n); when the loop stops at max_tokens or EOS, that step is still in flight, and under
pipeline parallel it holds a send / recv_like / all_gather on the ring. A rank that then exits
closes its sockets under its peer ("[ring] Receiving from socket N failed with errno 9",
"Too many send/recv errors", a rank lost). So every rank drains mlx-lm's generation stream and
meets the others at a CPU barrier before it writes its record and exits.

python -m genai_common.distributed.worker MODEL OUT [--tokens N] [--single] [--bench]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

PROMPT = "What is the capital of France?"


def arguments(description: str | None = None) -> argparse.ArgumentParser:
    """The options every rank program takes (this one, and genai bench's ranks worker)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("model")
    p.add_argument("out")
    p.add_argument("--tokens", type=int, default=8)
    p.add_argument("--single", action="store_true")
    p.add_argument("--bench", action="store_true")
    p.add_argument("--load-only", action="store_true", help="stop after the load (bytes only)")
    p.add_argument("--parallel", choices=("auto", "tensor", "pipeline"), default="auto")
    return p


def main(argv: list[str] | None = None) -> int:
    a = arguments().parse_args(argv)
    rank = Rank.start(a)
    if a.load_only:
        rank.write(a.out)
        return 0
    rank.smoke(a.tokens)
    if a.bench:
        rank.collectives(rank.record.get("decode_tps"))
    rank.write(a.out)
    return 0


class Rank:
    """One rank of a launch: its group, the model as sharded_load (or load, --single) gave it,
    and the record it writes."""

    def __init__(self, mx: Any, group: Any, model: Any, tokenizer: Any, record: dict) -> None:
        self.mx, self.group, self.model, self.tokenizer, self.record = (
            mx, group, model, tokenizer, record,
        )  # fmt: skip

    @classmethod
    def start(cls, a: argparse.Namespace) -> Rank:
        """Join the group (all_sum checked), load the model, measure what the load holds."""
        import mlx.core as mx
        from mlx.utils import tree_flatten
        from mlx_lm.utils import load, sharded_load

        group = mx.distributed.init()
        rank, size = group.rank(), group.size()
        record: dict = {
            "rank": rank,
            "size": size,
            "parallel": "single" if a.single else a.parallel,
        }
        if size > 1:
            want = float(size * (size + 1) // 2)
            got = mx.distributed.all_sum(mx.full((4,), float(rank + 1)), group=group)
            mx.eval(got)
            record["all_sum"] = {"got": got.tolist(), "want": want}
        before = mx.get_active_memory()
        if a.single:
            model, tok = load(a.model)
        elif a.parallel == "pipeline":
            model, tok = sharded_load(a.model, pipeline_group=group)
        elif a.parallel == "tensor":
            model, tok = sharded_load(a.model, tensor_group=group)
        else:
            model, tok = sharded_load(a.model)
        mx.eval(model.parameters())
        record["active_memory"] = mx.get_active_memory() - before
        record["param_bytes"] = sum(v.nbytes for _, v in tree_flatten(model.parameters()))
        return cls(mx, group, model, tok, record)

    def smoke(self, tokens: int) -> None:
        """Rank 0's first-step logits and greedy tokens on a fixed chat prompt (compared with
        one process by smoke.compare), and the timings of that one generation."""
        mx, record = self.mx, self.record
        from mlx_lm import stream_generate

        messages = [{"role": "user", "content": PROMPT}]
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True)
        if isinstance(ids, dict):
            ids = ids["input_ids"]
        logits = self.model(mx.array([ids]))[0, -1].astype(mx.float32)
        record["logits_first"] = logits.tolist()
        self.barrier()
        out, text, ttft, last = [], "", None, None
        t0 = time.perf_counter()
        for r in stream_generate(self.model, self.tokenizer, ids, max_tokens=tokens):
            if ttft is None:
                ttft = time.perf_counter() - t0
            out.append(int(r.token))
            text += r.text
            last = r
        self.barrier()
        record.update(
            tokens=out,
            text=text,
            ttft_s=ttft,
            prompt_tps=last.prompt_tps if last else None,
            decode_tps=last.generation_tps if last and len(out) > 1 else None,
        )

    def collectives(self, decode_tps: float | None) -> None:
        """all_sum bandwidth on 16 MiB and the estimated communication share of decoding at
        `decode_tps` (nothing on one rank)."""
        mx, group = self.mx, self.group
        if group.size() > 1:
            x = mx.ones((4 * 1024 * 1024,), dtype=mx.float32)  # 16 MiB
            mx.eval(mx.distributed.all_sum(x, group=group))
            reps = 5
            t0 = time.perf_counter()
            for _ in range(reps):
                mx.eval(mx.distributed.all_sum(x, group=group))
            dt = time.perf_counter() - t0
            self.record["all_sum_gbps"] = reps * x.nbytes / dt / 1e9
            self.record.update(_comm_share(mx, group, self.model, decode_tps))
        self.barrier()

    def barrier(self) -> None:
        from mlx_lm.generate import generation_stream

        _barrier(self.mx, self.group, generation_stream)

    def write(self, out: str) -> None:
        _write(out, self.record["rank"], self.record)


def _comm_share(mx, group, model, decode_tps: float | None) -> dict:
    """An estimate of the share of decode time spent in communication: the collectives one
    decode step runs (tensor parallel: one all_sum of the token's hidden state per
    "sharded-to-all" projection per layer, as the model's shard() wires them; pipeline: size - 1
    hand-offs and one all_gather), each replayed at that shape and timed here."""
    from mlx.utils import tree_flatten

    from genai_common.distributed import plan

    args = getattr(model, "args", None)
    hidden = getattr(args, "hidden_size", None)
    layers = getattr(args, "num_hidden_layers", None)
    if not hidden or not layers:
        return {}
    dtype = next(v for _, v in tree_flatten(model.parameters())).dtype
    h = mx.zeros((1, 1, hidden), dtype=dtype)
    for _ in range(3):
        mx.eval(mx.distributed.all_sum(h, group=group))
    reps = 20
    t0 = time.perf_counter()
    for _ in range(reps):
        mx.eval(mx.distributed.all_sum(h, group=group))
    latency = (time.perf_counter() - t0) / reps
    if getattr(getattr(model, "model", None), "pipeline_size", 1) > 1:
        per_token = group.size()
    else:
        sup = plan.support(getattr(args, "model_type", None))
        per_layer = sum(1 for how in sup.sharded.values() if how == "sharded-to-all")
        per_token = per_layer * layers
    out = {"collective_us": latency * 1e6, "collectives_per_token": per_token}
    if decode_tps:
        out["comm_share"] = min(1.0, per_token * latency * decode_tps)
    return out


def _barrier(mx, group, stream) -> None:
    """Wait for mlx-lm's generation stream (the step stream_generate left in flight), then for
    every rank (an all_sum on the CPU stream, as sharded_load ends)."""
    mx.synchronize(stream)
    mx.synchronize()
    if group.size() > 1:
        mx.eval(mx.distributed.all_sum(mx.array(1.0), group=group, stream=mx.cpu))


def _write(out: str, rank: int, record: dict) -> None:
    from genai_common.runtime.files import write_text

    os.makedirs(out, exist_ok=True)
    write_text(os.path.join(out, f"rank{rank}.json"), json.dumps(record))


if __name__ == "__main__":
    raise SystemExit(main())
