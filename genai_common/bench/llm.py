"""`genai bench` for language models (mlx-lm) and vision-language models (mlx-vlm).

What a trial is: one generation of exactly `gen_tokens` tokens (end-of-sequence disabled) from
a fixed prompt, greedy, with the KV cache built from scratch. The runtime's `measure_stream`
stamps each token as it comes out of the library's stream; every figure is derived from those
arrival times (`trial_figures`), and the record keeps them, so it can always be recomputed:

- TTFT: first arrival - start (start = just before the stream is created, after tokenization)
- prefill tok/s: prompt tokens / TTFT (an approximation: TTFT also holds one decode step)
- decode tok/s: (N - 1) / (t_last - t_first): N - 1 intervals over the arrival window; mlx-lm's
  own `generation_tps` counts N over that window and is biased high by N/(N-1)
- ITL p50/p90/p99 over the N - 1 inter-arrival gaps; end-to-end: last arrival - start
- peak memory scoped to the trial (`track_memory` resets MLX's peak at entry; mlx-lm's own
  `peak_memory` is the process-lifetime high-water mark and is kept beside ours); the peak holds
  the weights, `peak_mlx_added` is what the run added on top (KV cache, activations)

The first run of a process pays kernel compilation and lazy initialisation: it is kept as
`cold`, further warm-up runs as `warmup`, and only `trials` enter the statistics. With a second
model (`--against`), trials alternate in an ABBA pattern so that drift (thermal, other load)
falls on both sides equally.
"""

from __future__ import annotations

import contextlib
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHAT_TEXT = (
    "You are reviewing a pull request that changes how a training loop clears the memory cache. "
    "Explain in a few sentences what could go wrong, what you would measure before merging, and "
    "how you would report the result to the team."
)

METRICS = (
    "ttft",
    "prefill_tps",
    "decode_tps",
    "itl_p50",
    "itl_p90",
    "itl_p99",
    "e2e",
    "peak_mlx",
    "peak_mlx_added",
    "peak_rss",
)


def trial_figures(metrics: Any, prompt_tokens: int) -> dict[str, Any]:
    """The figures of one generation from its token arrivals (a runtime `StreamMetrics`).

    decode tok/s = (N - 1) / (t_last - t_first) and the ITL quantiles come from `StreamMetrics`;
    prefill tok/s = prompt tokens / TTFT is added here.
    """
    if not metrics.n_tokens:
        raise ValueError("no token arrived")
    ttft = metrics.ttft
    return {
        "n_tokens": metrics.n_tokens,
        "prompt_tokens": prompt_tokens,
        "ttft": ttft,
        "prefill_tps": prompt_tokens / ttft if ttft and prompt_tokens else None,
        "decode_tps": metrics.decode_tps,
        "e2e": metrics.e2e,
        "itl_p50": metrics.itl_p50,
        "itl_p90": metrics.itl_p90,
        "itl_p99": metrics.itl_p99,
        "arrivals": list(metrics.arrivals),
    }


@dataclass
class Workload:
    name: str
    prompt: Any  # list[int] for mlx-lm; str for mlx-vlm
    gen_tokens: int
    prompt_tokens: int | None = None  # known up front for token prompts
    image: str | None = None


@dataclass
class Subject:
    """One configuration under test: a loaded model and what it needs to run."""

    label: str
    path: str
    kind: str  # llm | vlm
    model: Any
    tokenizer: Any  # mlx-lm TokenizerWrapper, or mlx-vlm processor
    config: dict[str, Any]
    load: dict[str, Any] = field(default_factory=dict)


def random_prompt(vocab_size: int, n_tokens: int, seed: int = 0) -> list[int]:
    """A fixed-seed random-token prompt (the same ids on every machine and Python version)."""
    rng = random.Random(seed)
    return [rng.randrange(vocab_size) for _ in range(n_tokens)]


def vocab_size(config: dict[str, Any]) -> int:
    cfg = config.get("text_config") or config
    value = cfg.get("vocab_size") or config.get("vocab_size")
    if not value:
        raise ValueError("config.json has no vocab_size: cannot build a random-token prompt")
    return int(value)


def _tokenizer_of(subject: Subject) -> Any:
    tok = subject.tokenizer
    return getattr(tok, "tokenizer", tok) if subject.kind == "vlm" else tok


def chat_prompt_ids(tokenizer: Any, text: str = CHAT_TEXT) -> list[int]:
    """The chat template applied to one user message when there is one, else the plain text."""
    messages = [{"role": "user", "content": text}]
    if getattr(tokenizer, "chat_template", None):
        rendered = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )
        return list(tokenizer.encode(rendered, add_special_tokens=False))
    return list(tokenizer.encode(text))


def write_test_image(directory: str | Path, size: int = 224) -> str:
    """A deterministic RGB gradient image for VLM runs (no file from the network)."""
    from PIL import Image

    img = Image.new("RGB", (size, size))
    img.putdata([(x * 255 // size, y * 255 // size, 128) for y in range(size) for x in range(size)])
    path = Path(directory) / f"bench-{size}.png"
    img.save(path)
    return str(path)


def workloads(
    subject: Subject,
    *,
    prompt_tokens: int | list[int],
    gen_tokens: int,
    prompts: str,
    seed: int,
    image: str | None,
) -> list[Workload]:
    out = []
    lengths = [prompt_tokens] if isinstance(prompt_tokens, int) else list(prompt_tokens)
    if subject.kind == "llm":
        if prompts in ("random", "both"):
            for n in lengths:
                ids = random_prompt(vocab_size(subject.config), n, seed)
                out.append(Workload(f"random-{n}", ids, gen_tokens, n))
        if prompts in ("chat", "both"):
            ids = chat_prompt_ids(subject.tokenizer)
            out.append(Workload("chat", ids, gen_tokens, len(ids)))
        return out
    from mlx_vlm.prompt_utils import apply_chat_template

    tok = _tokenizer_of(subject)
    if prompts in ("random", "both"):
        # mlx-vlm takes text: random ids decoded to text; the library counts the tokens it sees.
        for n in lengths:
            text = tok.decode(random_prompt(vocab_size(subject.config), n, seed))
            formatted = apply_chat_template(subject.tokenizer, subject.config, text, num_images=1)
            out.append(Workload(f"random-{n}+image", formatted, gen_tokens, None, image))
    if prompts in ("chat", "both"):
        formatted = apply_chat_template(subject.tokenizer, subject.config, CHAT_TEXT, num_images=1)
        out.append(Workload("chat+image", formatted, gen_tokens, None, image))
    return out


@contextlib.contextmanager
def eos_disabled(subject: Subject) -> Iterator[None]:
    """Let every trial run to `gen_tokens`: empty the stop set, restore it afterwards.

    mlx-lm stops when a token is in `TokenizerWrapper.eos_token_ids` (a property with a setter);
    mlx-vlm asks `tokenizer.stopping_criteria(token)`, which may be any callable.
    """
    if subject.kind == "llm":
        tok = subject.tokenizer
        saved = set(tok.eos_token_ids)
        tok.eos_token_ids = set()
        try:
            yield
        finally:
            tok.eos_token_ids = saved
        return
    tok = _tokenizer_of(subject)
    saved_criteria = getattr(tok, "stopping_criteria", None)
    tok.stopping_criteria = lambda _token: False
    try:
        yield
    finally:
        tok.stopping_criteria = saved_criteria


def _stream(subject: Subject, work: Workload) -> Iterator[Any]:
    if subject.kind == "llm":
        import mlx.core as mx
        from mlx_lm import stream_generate

        return stream_generate(
            subject.model, subject.tokenizer, mx.array(work.prompt), max_tokens=work.gen_tokens
        )
    from mlx_vlm import stream_generate as vlm_stream_generate

    return vlm_stream_generate(
        subject.model,
        subject.tokenizer,
        work.prompt,
        image=[work.image] if work.image else None,
        max_tokens=work.gen_tokens,
        temperature=0.0,
    )


def _memory_readers() -> tuple[Any, Any]:
    import mlx.core as mx

    from genai_common.runtime.mlx_compat import memory_fn

    return (
        memory_fn(mx, "get_active_memory") or (lambda: 0),
        memory_fn(mx, "get_cache_memory") or (lambda: 0),
    )


def _timed(stream: Iterator[Any], log: list[tuple[float, int, int]]) -> Iterator[Any]:
    """Pass every item through, logging (arrival time, MLX active bytes, MLX cache bytes) per
    new token. An item whose `generation_tokens` did not grow (mlx-vlm's closing item with the
    rest of the text and the finish reason) is passed on unlogged: `measure_stream` applies the
    same rule to its arrivals and keeps that item's text and library figures."""
    active, cache = _memory_readers()
    seen = 0
    for item in stream:
        now = time.perf_counter()
        count = getattr(item, "generation_tokens", None)
        if count is None or count > seen:
            seen = count if count is not None else seen + 1
            log.append((now, active(), cache()))
        yield item


def run_trial(subject: Subject, work: Workload) -> dict[str, Any]:
    """One generation; figures from arrivals, scoped peak memory, the library's own figures."""
    from genai_common.runtime.memory import clear_cache, track_memory
    from genai_common.runtime.stream import measure_stream

    clear_cache()
    started_at = time.time()
    active, cache = _memory_readers()
    log: list[tuple[float, int, int]] = []
    with eos_disabled(subject), track_memory() as mem:
        start = time.perf_counter()
        log.append((start, active(), cache()))
        metrics = measure_stream(_timed(_stream(subject, work), log), start=start)
    library = dict(metrics.library)
    prompt_tokens = work.prompt_tokens or int(library.get("prompt_tokens") or 0)
    figures = trial_figures(metrics, prompt_tokens)
    figures.update(
        {
            "memory": [[t - start, active, cache] for t, active, cache in log],
            "peak_mlx": mem.mlx_peak,
            "peak_mlx_added": mem.mlx_peak_delta,
            "peak_rss": mem.rss_peak,
            "library": library,
            "started_at": started_at,
        }
    )
    return figures


def summarize_trials(trials: list[dict[str, Any]]) -> dict[str, Any]:
    from genai_common.bench.stats import summarize

    out = {}
    for metric in METRICS:
        values = [t[metric] for t in trials if t.get(metric) is not None]
        if values:
            out[metric] = summarize(values).to_json()
    lib = [t["library"].get("generation_tps") for t in trials if t.get("library")]
    lib = [v for v in lib if v is not None]
    if lib:
        out["library_generation_tps"] = summarize(lib).to_json()
    return out


def abba(n_trials: int, labels: list[str]) -> list[str]:
    """Trial order: A B B A A B ... for two labels (drift cancels); plain repetition for one."""
    if len(labels) == 1:
        return labels * n_trials
    order: list[str] = []
    for i in range(n_trials):
        order.extend(labels if i % 2 == 0 else labels[::-1])
    return order


def bench(
    subjects: list[Subject],
    *,
    prompt_tokens: int | list[int],
    gen_tokens: int,
    trials: int,
    warmup: int,
    cooldown: float,
    prompts: str = "both",
    seed: int = 0,
    image_size: int = 224,
    progress: Any = None,
    after_run: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every workload on every subject; returns one result per (subject, workload).
    `after_run` is called after every generation (the ranks of a sharded run meet there)."""
    with tempfile.TemporaryDirectory(prefix="genai-bench-") as tmp:
        image = None
        if any(s.kind == "vlm" for s in subjects):
            image = write_test_image(tmp, image_size)
        plans = {
            s.label: workloads(
                s,
                prompt_tokens=prompt_tokens,
                gen_tokens=gen_tokens,
                prompts=prompts,
                seed=seed,
                image=image,
            )
            for s in subjects
        }
        by_label = {s.label: s for s in subjects}
        results: dict[tuple[str, str], dict[str, Any]] = {}
        n_work = len(next(iter(plans.values())))
        total = n_work * len(subjects) * (max(warmup, 1) + trials)
        if progress is not None:
            progress.start("benchmark", total)
        for w in range(n_work):
            for s in subjects:
                work = plans[s.label][w]
                res = results.setdefault(
                    (s.label, work.name),
                    {
                        "subject": s.label,
                        "model": s.path,
                        "workload": work.name,
                        "gen_tokens": work.gen_tokens,
                        "prompt_tokens": work.prompt_tokens,
                        "warmup_runs": max(warmup, 1),
                        "cold": None,
                        "warmup": [],
                        "trials": [],
                    },
                )
                for i in range(max(warmup, 1)):
                    trial = run_trial(s, work)
                    if after_run is not None:
                        after_run()
                    if i == 0:
                        res["cold"] = trial
                    else:
                        res["warmup"].append(trial)
                    if progress is not None:
                        progress.advance(f"{s.label} {work.name} warm-up")
            for label in abba(trials, [s.label for s in subjects]):
                s = by_label[label]
                work = plans[label][w]
                if cooldown > 0:
                    time.sleep(cooldown)
                results[(label, work.name)]["trials"].append(run_trial(s, work))
                if after_run is not None:
                    after_run()
                if progress is not None:
                    progress.advance(f"{label} {work.name}")
        out = []
        for res in results.values():
            res["prompt_tokens"] = res["prompt_tokens"] or res["trials"][0]["prompt_tokens"]
            res["summary"] = summarize_trials(res["trials"])
            out.append(res)
        return out
