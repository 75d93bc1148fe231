"""PNG plots of a benchmark record (matplotlib's object API, no pyplot: no display needed).

- latency: per-token latency over the generation (LLM/VLM), per-step time (diffusion) or
  per-batch time (ml), one line per trial; the cold run is drawn apart.
- rate: the headline figure of every run in this record (cold, warm-up, trials) and, beside it,
  the median with min-max of each earlier run of the same model over time.
- memory: MLX active and active+cache memory over each trial (LLM/VLM), sampled per token.
- context: decode rate and TTFT against the prompt length, when a run swept several
  (`--prompt-tokens 128,512,2048`).
"""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path
from typing import Any

from genai_common.bench.compare import comparable
from genai_common.bench.metrics import HEADLINE


def _figure(**kwargs: Any) -> Any:
    """A matplotlib Figure without pyplot (no global state, no GUI backend, a faster import)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _trial_lines(kind: str, res: dict[str, Any]) -> list[tuple[str, list[float]]]:
    """(label, per-item latency in ms) to draw: one line per trial; ml: one line over trials."""
    if kind == "ml":
        metric = next(iter(res.get("summary", {})), None)
        values = [t[metric] * 1e3 for t in res["trials"] if metric and t.get(metric) is not None]
        return [("timed samples", values)]
    return [(f"trial {i + 1}", _series(kind, t)) for i, t in enumerate(res["trials"])]


def _series(kind: str, trial: dict[str, Any]) -> list[float]:
    """Per-item latency in milliseconds: inter-token gaps, step times or batch times."""
    if kind in ("llm", "vlm"):
        arr = trial.get("arrivals") or []
        return [(b - a) * 1e3 for a, b in itertools.pairwise(arr)]
    return [s * 1e3 for s in trial.get("series") or []]


def _xs(kind: str, ys: list[float]) -> list[int]:
    """Token gaps are numbered by the token that ends them (2..N); steps and batches from 1."""
    first = 2 if kind in ("llm", "vlm") else 1
    return list(range(first, first + len(ys)))


_XLABEL = {"llm": "token", "vlm": "token", "diffusion": "denoising step", "ml": "timed sample"}


def _series_label(kind: str, res: dict[str, Any]) -> str:
    label = res["workload"] + (f" [{res['subject']}]" if res.get("subject", "A") != "A" else "")
    if kind in ("llm", "vlm") and res.get("gen_tokens"):
        label += f", {res.get('prompt_tokens')}->{res['gen_tokens']} tokens"
    return label


def plot_latency(record: dict[str, Any], path: str | Path) -> Path:
    kind = record["kind"]
    results = record["results"]
    fig = _figure(figsize=(9, 3.2 * len(results)))
    axes = fig.subplots(len(results), 1, squeeze=False)
    for ax, res in zip(axes[:, 0], results, strict=True):
        for name, ys in _trial_lines(kind, res):
            ax.plot(_xs(kind, ys), ys, lw=0.9, alpha=0.8, label=name)
        if res.get("cold") and kind != "ml":
            ys = _series(kind, res["cold"])
            ax.plot(_xs(kind, ys), ys, lw=1.2, ls="--", color="grey", label="cold")
        ax.set_title(f"{res['subject']} · {res['workload']}", fontsize=10)
        ax.set_xlabel(_XLABEL.get(kind, "item"))
        ax.set_ylabel("latency (ms)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=4)
    fig.suptitle(f"{Path(record['model']).name}: latency per {_XLABEL.get(kind, 'item')}")
    fig.tight_layout()
    return _save(fig, path)


def history_series(
    record: dict[str, Any], history: list[dict[str, Any]], metric: str
) -> list[tuple[dict[str, Any], dict[int, tuple[dict[str, Any], dict[str, Any]]]]]:
    """One series per workload of `record`: {index in [*history, record]: (run, summary of
    metric)} over the runs that did the same work on the same machine and backend."""
    series = []
    for res in record["results"]:
        points = {}
        for run_index, rec in enumerate([*history, record]):
            match = [r for r in rec.get("results", []) if comparable(rec, r, record, res)]
            summ = match[0].get("summary", {}).get(metric) if match else None
            if summ:
                points[run_index] = (rec, summ)
        series.append((res, points))
    return series


def plot_rate(record: dict[str, Any], history: list[dict[str, Any]], path: str | Path) -> Path:
    metric, label, _ = HEADLINE[record["kind"]]
    fig = _figure(figsize=(11, 3.8))
    left, right = fig.subplots(1, 2)
    x = 0
    for res in record["results"]:
        runs = [("cold", res.get("cold"))] + [("warm-up", t) for t in res.get("warmup", [])]
        runs += [("trial", t) for t in res["trials"]]
        xs, ys, colors = [], [], []
        for tag, trial in runs:
            if trial and trial.get(metric) is not None:
                xs.append(x)
                ys.append(trial[metric])
                colors.append({"cold": "tab:red", "warm-up": "tab:orange"}.get(tag, "tab:blue"))
                x += 1
        left.scatter(xs, ys, c=colors, s=18)
        left.plot(xs, ys, lw=0.6, color="grey", alpha=0.5)
        x += 1
    left.set_title("this run: red cold, orange warm-up, blue timed", fontsize=9)
    left.set_xlabel("run order")
    left.set_ylabel(label)
    left.grid(alpha=0.3)
    series = history_series(record, history, metric)
    used = sorted({i for _, points in series for i in points})
    place = {run_index: x for x, run_index in enumerate(used)}
    runs = [next(p[i][0] for _, p in series if i in p) for i in used]
    for res_index, (res, points) in enumerate(series):
        if not points:
            continue
        summs = [summ for _, summ in points.values()]
        right.errorbar(
            [place[i] for i in points],
            [s["median"] for s in summs],
            yerr=[[s["median"] - s["min"] for s in summs], [s["max"] - s["median"] for s in summs]],
            fmt="o-",
            capsize=3,
            label=_series_label(record["kind"], res),
            color=f"C{res_index}",
        )
    right.set_xticks(range(len(runs)))
    right.set_xticklabels(
        [datetime.fromtimestamp(r.get("timestamp", 0)).strftime("%m-%d %H:%M") for r in runs],
        rotation=30,
        ha="right",
        fontsize=7,
    )
    right.set_xlim(-0.5, len(runs) - 0.5)
    right.set_title("runs over time (same work, machine, backend): median, min-max", fontsize=9)
    right.set_ylabel(label)
    right.grid(alpha=0.3)
    right.legend(fontsize=7)
    fig.suptitle(f"{Path(record['model']).name}: {label}")
    fig.tight_layout()
    return _save(fig, path)


def plot_memory(record: dict[str, Any], path: str | Path) -> Path | None:
    trials = [(res, t) for res in record["results"] for t in res["trials"] if t.get("memory")]
    if not trials:
        return None
    fig = _figure(figsize=(9, 3.8))
    ax = fig.subplots()
    colours: dict[tuple[str, str], str] = {}
    for res, trial in trials:
        key = (res.get("subject", "A"), res["workload"])
        first = key not in colours
        colour = colours.setdefault(key, f"C{len(colours) % 10}")
        ts = [m[0] for m in trial["memory"]]
        active = [m[1] / 2**20 for m in trial["memory"]]
        total = [(m[1] + m[2]) / 2**20 for m in trial["memory"]]
        label = f"{_series_label(record['kind'], res)} ({len(res['trials'])} trials)"
        ax.plot(ts, active, lw=1, alpha=0.7, color=colour, label=label if first else None)
        ax.plot(ts, total, lw=0.8, alpha=0.7, ls=":", color=colour)
        if trial.get("peak_mlx"):
            ax.axhline(trial["peak_mlx"] / 2**20, lw=0.5, ls="--", color=colour)
    ax.set_xlabel("seconds since the start of the trial")
    if record["kind"] == "diffusion":
        ax.set_ylabel("memory in use (MiB): CUDA allocator, else RSS")
        ax.set_title("sampled at the start and after each denoising step", fontsize=9)
    else:
        ax.set_ylabel("MLX memory (MiB)")
        ax.set_title("active (solid), active + cache (dotted), scoped peak (dashed)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.suptitle(f"{Path(record['model']).name}: memory over each trial")
    fig.tight_layout()
    return _save(fig, path)


def context_series(record: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per subject, the random-prompt results ordered by prompt length, where a run swept two or
    more lengths (`--prompt-tokens 128,512,2048`); empty otherwise."""
    by_subject: dict[str, list[dict[str, Any]]] = {}
    for res in record["results"]:
        if res["workload"].startswith("random-") and res.get("prompt_tokens"):
            by_subject.setdefault(res.get("subject", "A"), []).append(res)
    return {
        label: sorted(results, key=lambda r: r["prompt_tokens"])
        for label, results in by_subject.items()
        if len({r["prompt_tokens"] for r in results}) >= 2
    }


def plot_context(record: dict[str, Any], path: str | Path) -> Path | None:
    """Decode rate and TTFT against the prompt length: how the model slows as its context grows."""
    series = context_series(record)
    if not series:
        return None
    names = {x["label"]: Path(x["path"]).name for x in record.get("subjects", []) if "label" in x}
    fig = _figure(figsize=(11, 3.8))
    axes = fig.subplots(1, 2)
    panels = (("decode_tps", "decode tokens/s", 1.0), ("ttft", "TTFT (ms)", 1e3))
    for ax, (metric, label, scale) in zip(axes, panels, strict=True):
        for n, (subject, results) in enumerate(sorted(series.items())):
            points = [(r["prompt_tokens"], r["summary"].get(metric)) for r in results]
            points = [(x, s) for x, s in points if s]
            if not points:
                continue
            ax.errorbar(
                [x for x, _ in points],
                [s["median"] * scale for _, s in points],
                yerr=[
                    [(s["median"] - s["min"]) * scale for _, s in points],
                    [(s["max"] - s["median"]) * scale for _, s in points],
                ],
                fmt="o-",
                capsize=3,
                color=f"C{n}",
                label=names.get(subject, subject),
            )
        lengths = sorted({r["prompt_tokens"] for results in series.values() for r in results})
        ax.set_xscale("log", base=2)
        ax.set_xticks(lengths, [str(n) for n in lengths])
        ax.minorticks_off()
        ax.set_xlabel("prompt tokens")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_title("decode rate against context: median, min-max", fontsize=9)
    axes[1].set_title("time to first token (prefill) against context", fontsize=9)
    fig.suptitle(f"{Path(record['model']).name}: context sweep")
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, format="png")
    return path


def write_plots(
    record: dict[str, Any], history: list[dict[str, Any]], directory: str | Path, stem: str
) -> dict[str, Path]:
    directory = Path(directory)
    out = {
        "latency": plot_latency(record, directory / f"{stem}-latency.png"),
        "rate": plot_rate(record, history, directory / f"{stem}-rate.png"),
    }
    mem = plot_memory(record, directory / f"{stem}-memory.png")
    if mem is not None:
        out["memory"] = mem
    context = plot_context(record, directory / f"{stem}-context.png")
    if context is not None:
        out["context"] = context
    return out
