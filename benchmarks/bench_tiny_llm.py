"""The tiny Llama on this machine: load time, TTFT and decode tokens/s, with mlx-lm's own figures.

Trials come from `genai bench`'s LLM trial (EOS disabled so each trial makes exactly GEN_TOKENS
tokens, chat prompt, warm-up apart); this module only picks the settings and the rows.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

GEN_TOKENS = 64
TRIALS = 5
LOADS = 5


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.2f} ms"


def _tps(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0f} tok/s"


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main() -> list[dict[str, Any]]:
    from genai_common.bench.llm import bench
    from genai_common.bench.runner import load_subject
    from genai_common.runtime.loading import load_llm
    from genai_common.testing.tiny import build

    with tempfile.TemporaryDirectory(prefix="genai-bench-tiny-") as tmp:
        start = time.perf_counter()
        path = build("llm", Path(tmp) / "tiny-llm")
        build_seconds = time.perf_counter() - start
        loads = [load_llm(path).record for _ in range(LOADS + 1)]
        subject = load_subject(str(path), "llm", "tiny-llama")
        (result,) = bench(
            [subject],
            prompt_tokens=0,
            gen_tokens=GEN_TOKENS,
            trials=TRIALS,
            warmup=1,
            cooldown=0.0,
            prompts="chat",
        )
    trials = result["trials"]
    lib = [t["library"] for t in trials]
    lib_ttft = [x["prompt_tokens"] / x["prompt_tps"] for x in lib if x.get("prompt_tps")]
    cold = result["cold"]
    note = f"median of {TRIALS} trials, {result['prompt_tokens']}-token chat prompt, {GEN_TOKENS} tokens, EOS off"
    first, rest = loads[0], loads[1:]
    return [
        {
            "benchmark": "tiny Llama: build (genai tiny llm)",
            "value": _ms(build_seconds),
        },
        {
            "benchmark": "tiny Llama: load_llm (mlx_lm.load)",
            "value": _ms(_median([r.seconds for r in rest])),
            "notes": f"first load {_ms(first.seconds)} (import of mlx-lm {first.import_seconds:.2f} s, "
            f"apart); median of {len(rest)} further loads; weights {first.mlx_added} B",
        },
        {
            "benchmark": "tiny Llama: TTFT (ours / mlx-lm prompt_tokens/prompt_tps)",
            "value": f"{_ms(_median([t['ttft'] for t in trials]))} / {_ms(_median(lib_ttft))}",
            "notes": f"{note}; cold first request {_ms(cold['ttft'])}",
        },
        {
            "benchmark": "tiny Llama: decode (ours (N-1)/window / mlx-lm generation_tps)",
            "value": f"{_tps(_median([t['decode_tps'] for t in trials]))} / "
            f"{_tps(_median([x.get('generation_tps') for x in lib]))}",
            "notes": f"{note}; ITL p50 {_ms(_median([t['itl_p50'] for t in trials]))}",
        },
        {
            "benchmark": "tiny Llama: scoped MLX peak during a trial",
            "value": f"{_median([t['peak_mlx'] for t in trials]) / 2**20:.2f} MiB",
            "notes": f"mlx-lm's peak_memory {_median([x.get('peak_memory') for x in lib]):.4f} GB (same counter, reset by track_memory)",
        },
    ]
