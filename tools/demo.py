"""The main job on the embedded tiny model: build it, load it, chat, and report.

    python -m tools.demo [--max-tokens N] [--prompt TEXT] [--dest DIR] [--json]

Builds the tiny Llama (trained for seconds on the package corpus: it answers the chat prompts it
was taught, e.g. the default one; the numbers are real), loads it
with ``load_llm``, runs a chat request twice (cold, then warm) through ``measure_stream``, and
prints the environment, the timing (load, TTFT, decode tokens/s, with mlx-lm's own figures
beside ours) and the memory (load, scoped generation peak, cache, RSS).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _mib(value: int | float | None) -> str:
    from genai_common.model.values import gib  # the one byte formatter (issue 16)

    return "-" if value is None else gib(value)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1e3:.1f} ms"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} tok/s"


def generate_once(loaded: Any, prompt: str, max_tokens: int) -> dict[str, Any]:
    """One chat request: stream it, time the arrivals, track memory. Returns plain figures."""
    import mlx_lm

    from genai_common.runtime.memory import track_memory
    from genai_common.runtime.stream import measure_stream

    tokenizer = loaded.tokenizer
    messages = [{"role": "user", "content": prompt}]
    with track_memory() as tracked:
        start = time.perf_counter()  # the request starts before the chat template is applied
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
        stream = mlx_lm.stream_generate(loaded.model, tokenizer, ids, max_tokens=max_tokens)
        metrics = measure_stream(stream, start=start)
    lib = metrics.library
    lib_ttft = lib["prompt_tokens"] / lib["prompt_tps"] if lib.get("prompt_tps") else None
    return {
        "prompt_tokens": len(ids),
        "n_tokens": metrics.n_tokens,
        "finish_reason": metrics.finish_reason,
        "ttft": metrics.ttft,
        "decode_tps": metrics.decode_tps,
        "itl_p50": metrics.itl_p50,
        "itl_p99": metrics.itl_p99,
        "e2e": metrics.e2e,
        "mlx_lm_ttft": lib_ttft,
        "mlx_lm_prompt_tps": lib.get("prompt_tps"),
        "mlx_lm_generation_tps": lib.get("generation_tps"),
        "mlx_lm_peak_memory_gb": lib.get("peak_memory"),
        "mlx_peak": tracked.mlx_peak,
        "mlx_peak_delta": tracked.mlx_peak_delta,
        "rss_peak": tracked.rss_peak,
        "text": metrics.text,
    }


def run_demo(dest: Path, prompt: str, max_tokens: int) -> dict[str, Any]:
    from genai_common.runtime.envinfo import environment
    from genai_common.runtime.loading import load_llm
    from genai_common.runtime.memory import clear_cache, memory_snapshot
    from genai_common.testing.tiny import build

    start = time.perf_counter()
    path = build("llm", dest)
    build_seconds = time.perf_counter() - start
    clear_cache()
    loaded = load_llm(path)
    cold = generate_once(loaded, prompt, max_tokens)
    warm = generate_once(loaded, prompt, max_tokens)
    after = memory_snapshot()
    released = clear_cache()
    return {
        "environment": environment(),
        "model": {"path": str(path), "build_seconds": build_seconds, "config": loaded.config},
        "load": loaded.record.to_json(),
        "cold": cold,
        "warm": warm,
        "memory_after": after.to_json(),
        "cache_released": released,
    }


def render(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from genai_common.runtime.envinfo import framework_rows, gib, summary_rows

    console = Console()
    console.rule("[bold]genai-common demo: tiny Llama on MLX")
    env = result["environment"]
    machine = Table(show_header=False, box=None)
    for label, value in summary_rows(env):
        machine.add_row(f"[bold]{label}[/]", escape(value))
    console.print(machine)
    frameworks = Table("framework", "version", "backend", "detail", title="Frameworks")
    for row in framework_rows(env):
        if row[1] != "-":
            frameworks.add_row(*map(escape, row))
    console.print(frameworks)

    load, model = result["load"], result["model"]
    config = model["config"] or {}
    console.print(
        f"Model: {config.get('model_type')} ({config.get('num_hidden_layers')} layers, "
        f"hidden {config.get('hidden_size')}, vocab {config.get('vocab_size')}) built in "
        f"{model['build_seconds']:.2f} s at {model['path']}",
        markup=False,
    )
    console.print(
        f"Load: {load['seconds'] * 1e3:.0f} ms (import of mlx-lm {load['import_seconds']:.2f} s, "
        f"timed apart); weights {_mib(load['mlx_added'])}, MLX active peak above them {_mib(load['mlx_peak_delta'])}"
    )

    timing = Table("", "cold: ours", "cold: mlx-lm", "warm: ours", "warm: mlx-lm", title="Timing")
    cold, warm = result["cold"], result["warm"]
    rows = [
        ("TTFT", "ttft", "mlx_lm_ttft", _ms),
        ("decode", "decode_tps", "mlx_lm_generation_tps", _rate),
    ]
    for label, ours, theirs, fmt in rows:
        timing.add_row(
            label, fmt(cold[ours]), fmt(cold[theirs]), fmt(warm[ours]), fmt(warm[theirs])
        )
    for label, key in (("ITL p50", "itl_p50"), ("ITL p99", "itl_p99")):
        timing.add_row(label, _ms(cold[key]), "", _ms(warm[key]), "")
    timing.add_row(
        "tokens in/out",
        f"{cold['prompt_tokens']}/{cold['n_tokens']}",
        "",
        f"{warm['prompt_tokens']}/{warm['n_tokens']}",
        "",
    )
    console.print(timing)
    console.print(
        "[dim]ours: TTFT from before the chat template to the first token; decode = (N-1) / "
        "(t_last - t_first). mlx-lm: TTFT = prompt_tokens / prompt_tps (starts after "
        "tokenization); generation_tps = N / window (biased high by N/(N-1)).[/]"
    )

    memory = Table(
        "",
        "value",
        title="Memory (MLX backend: " + str(result["memory_after"]["mlx_backend"]) + ")",
    )
    after = result["memory_after"]
    memory.add_row("generation peak, scoped (MLX active)", _mib(warm["mlx_peak"]))
    memory.add_row("generation peak above the weights", _mib(warm["mlx_peak_delta"]))
    gb = warm["mlx_lm_peak_memory_gb"]
    memory.add_row(
        "mlx-lm peak_memory (reads the same counter)",
        "-" if gb is None else _mib(gb * 1e9),
    )
    memory.add_row(
        "MLX active / cache after", f"{_mib(after['mlx_active'])} / {_mib(after['mlx_cache'])}"
    )
    memory.add_row("MLX cache released by clear_cache()", _mib(result["cache_released"]))
    memory.add_row(
        "process RSS (peak during warm request)", f"{_mib(after['rss'])} ({_mib(warm['rss_peak'])})"
    )
    memory.add_row(
        "system available / total",
        f"{gib(after['system_available'])} / {gib(after['system_total'])}",
    )
    memory.add_row("memory pressure", str(after["pressure"] or "-"))
    console.print(memory)
    console.print(f"Reply (trained tiny model): {warm['text'][:120]!r}", markup=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--prompt", default="Hello! Who are you?")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--dest", type=Path, help="keep the tiny model here (default: a temp dir)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="genai-demo-") as scratch:
        dest = args.dest or Path(scratch) / "tiny-llm"
        result = run_demo(dest, args.prompt, args.max_tokens)
        if args.json:
            print(json.dumps(result, indent=2, default=str))
        else:
            render(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
