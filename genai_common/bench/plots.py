"""PNG plots of a benchmark record (matplotlib's object API, no pyplot: no display needed).

- latency: per-token latency over the generation (LLM/VLM), per-step time (diffusion) or
  per-batch time (ml), one line per trial; the cold run is drawn apart. The y range leaves out
  outliers (a cold spike would flatten every trial) and marks each clipped point, with its value.
- rate: the headline figure of every run in this record (cold, warm-up, trials) and, beside it,
  the median with min-max of each earlier run of the same model over time.
- memory: MLX active and active+cache memory over each trial (LLM/VLM), sampled per token.
- context: decode rate and TTFT against the prompt length, when a run swept several
  (`--prompt-tokens 128,512,2048`).
- ranks: decode rate and TTFT against the world size, per parallel mode (`--ranks 2,3`).
"""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path
from typing import Any

from genai_common.bench.compare import comparable
from genai_common.bench.metrics import HEADLINE


def new_figure(**kwargs: Any) -> Any:
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


def latency_figure(record: dict[str, Any]) -> Any:
    """The latency figure: one axis per workload, its y range robust to outliers (clip_outliers)."""
    kind = record["kind"]
    results = record["results"]
    fig = new_figure(figsize=(9, 3.2 * len(results)))
    axes = fig.subplots(len(results), 1, squeeze=False)
    unit = _XLABEL.get(kind, "item")
    for ax, res in zip(axes[:, 0], results, strict=True):
        drawn: list[tuple[str, list[int], list[float], str]] = []
        for name, ys in _trial_lines(kind, res):
            xs = _xs(kind, ys)
            (line,) = ax.plot(xs, ys, lw=0.9, alpha=0.8, label=name)
            drawn.append((name, xs, ys, line.get_color()))
        if res.get("cold") and kind != "ml":
            ys = _series(kind, res["cold"])
            xs = _xs(kind, ys)
            ax.plot(xs, ys, lw=1.2, ls="--", color="grey", label="cold")
            drawn.append(("cold", xs, ys, "grey"))
        ax.set_title(f"{res['subject']} · {res['workload']}", fontsize=10)
        ax.set_xlabel(unit)
        ax.set_ylabel("latency (ms)")
        ax.grid(alpha=0.3)
        clip_outliers(ax, drawn, unit)
        ax.legend(fontsize=7, ncol=4, loc="best")
    fig.suptitle(f"{Path(record['model']).name}: latency per {unit}")
    fig.tight_layout()
    return fig


def plot_latency(record: dict[str, Any], path: str | Path) -> Path:
    return save_png(latency_figure(record), path)


OUTLIER_IQRS = 4.0  # beyond Tukey's far fence (3 IQR): one cold spike, not the trials' jitter
OUTLIER_SHARE = 0.02  # never clip more than 2% of the points (at least one): those are outliers


def robust_top(values: list[float]) -> float | None:
    """The top of a y range that leaves out outliers: q3 + 4 IQR, raised so that at most 2% of
    the points (at least one) lie above it; None when none does (nothing needs clipping)."""
    from genai_common.bench.stats import quantile

    if len(values) < 8:
        return None
    ordered = sorted(values)
    q1, q3 = quantile(ordered, 0.25), quantile(ordered, 0.75)
    keep = len(ordered) - 1 - max(1, int(OUTLIER_SHARE * len(ordered)))
    top = max(q3 + OUTLIER_IQRS * (q3 - q1), ordered[keep])
    return top if ordered[-1] > top else None


def clip_outliers(ax: Any, drawn: list[tuple[str, list[int], list[float], str]], unit: str) -> None:
    """Limit the y axis to the bulk of the points (a 470 ms cold spike among 3 ms tokens would
    flatten every trial) and mark what lies above: a triangle at the top edge for each clipped
    point, and per line an arrow to its largest clipped value with the value written out."""
    values = [y for _, _, ys, _ in drawn for y in ys]
    top = robust_top(values)
    if top is None:
        return
    low = min(values)
    pad = 0.08 * (top - low) if top > low else 0.05 * abs(top) or 1.0
    bottom, edge = low - pad, top + pad
    ax.set_ylim(bottom, edge)
    xmin, xmax = (
        min(x for _, xs, _, _ in drawn for x in xs),
        max(x for _, xs, _, _ in drawn for x in xs),
    )
    for name, xs, ys, colour in drawn:
        above = [(x, y) for x, y in zip(xs, ys, strict=True) if y > edge]
        if not above:
            continue
        ax.plot(
            [x for x, _ in above],
            [edge] * len(above),
            ls="none",
            marker="^",
            ms=6,
            color=colour,
            clip_on=False,
            zorder=5,
        )
        x, y = max(above, key=lambda p: p[1])
        more = f" ({len(above)} above the axis)" if len(above) > 1 else ""
        ax.annotate(
            f"{name}: {y:.3g} ms at {unit} {x}{more}",
            xy=(x, edge),
            xytext=(0, -30),
            textcoords="offset points",
            ha="right" if x > (xmin + xmax) / 2 else "left",
            fontsize=7,
            color=colour if colour != "grey" else "dimgrey",
            arrowprops={"arrowstyle": "->", "color": colour, "lw": 0.8},
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85},
        )


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


RATE_COLOURS = {"cold": ("tab:red", "red cold"), "warm-up": ("tab:orange", "orange warm-up")}
TIMED = ("tab:blue", "blue timed")


def plot_rate(record: dict[str, Any], history: list[dict[str, Any]], path: str | Path) -> Path:
    return save_png(rate_figure(record, history), path)


def rate_figure(record: dict[str, Any], history: list[dict[str, Any]]) -> Any:
    """This run's points (the title names only the kinds drawn) and the history beside them."""
    metric, label, _ = HEADLINE[record["kind"]]
    fig = new_figure(figsize=(11, 3.8))
    left, right = fig.subplots(1, 2)
    x = 0
    shown: set[str] = set()
    for res in record["results"]:
        runs = [("cold", res.get("cold"))] + [("warm-up", t) for t in res.get("warmup", [])]
        runs += [("trial", t) for t in res["trials"]]
        xs, ys, colors = [], [], []
        for tag, trial in runs:
            if trial and trial.get(metric) is not None:
                xs.append(x)
                ys.append(trial[metric])
                colors.append(RATE_COLOURS.get(tag, TIMED)[0])
                shown.add(tag)
                x += 1
        left.scatter(xs, ys, c=colors, s=18)
        left.plot(xs, ys, lw=0.6, color="grey", alpha=0.5)
        x += 1
    said = [RATE_COLOURS.get(tag, TIMED)[1] for tag in ("cold", "warm-up", "trial") if tag in shown]
    left.set_title("this run: " + (", ".join(said) or "no figure"), fontsize=9)
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
    return fig


def plot_memory(record: dict[str, Any], path: str | Path) -> Path | None:
    trials = [(res, t) for res in record["results"] for t in res["trials"] if t.get("memory")]
    if not trials:
        return None
    fig = new_figure(figsize=(9, 3.8))
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
    return save_png(fig, path)


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
    lines = {
        names.get(subject, subject): [(r["prompt_tokens"], r["summary"]) for r in results]
        for subject, results in sorted(series.items())
    }
    fig = sweep_figure(lines, "prompt tokens", log2=True)
    fig.axes[0].set_title("decode rate against context: median, min-max", fontsize=9)
    fig.axes[1].set_title("time to first token (prefill) against context", fontsize=9)
    fig.suptitle(f"{Path(record['model']).name}: context sweep")
    fig.tight_layout()
    return save_png(fig, path)


def ranks_series(record: dict[str, Any]) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """`genai bench --ranks`: per (workload, parallel mode) the summaries by world size; the
    one-process run starts every line of its workload. Empty for a single-machine record."""
    runs = [r for r in record["results"] if r.get("ranks")]
    single = {r["workload"]: r for r in runs if r["ranks"] == 1}
    lines: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for r in runs:
        if r["ranks"] > 1:
            line = lines.setdefault(f"{r['workload']}, {r['parallel']} parallel", [])
            if not line and r["workload"] in single:
                line.append((1, single[r["workload"]]["summary"]))
            line.append((r["ranks"], r["summary"]))
    return {k: sorted(v, key=lambda p: p[0]) for k, v in lines.items()}


def plot_ranks(record: dict[str, Any], path: str | Path) -> Path | None:
    """Decode rate and TTFT against the world size (mlx.launch ranks), per parallel mode."""
    lines = ranks_series(record)
    if not lines:
        return None
    fig = sweep_figure(lines, "ranks (mlx.launch world size)", log2=False)
    backend = (record.get("distributed") or {}).get("backend", "ring")
    fig.axes[0].set_title(f"decode rate against ranks ({backend}): median, min-max", fontsize=9)
    fig.axes[1].set_title("time to first token against ranks", fontsize=9)
    fig.suptitle(f"{Path(record['model']).name}: sharded runs (rank 0's timings)")
    fig.tight_layout()
    return save_png(fig, path)


def sweep_figure(
    lines: dict[str, list[tuple[int, dict[str, Any]]]], xlabel: str, *, log2: bool
) -> Any:
    """Two panels, decode tok/s and TTFT (ms), median with min-max bars against a swept quantity
    (prompt length, world size): one line per label, points (x, a result's summary)."""
    fig = new_figure(figsize=(11, 3.8))
    axes = fig.subplots(1, 2)
    panels = (("decode_tps", "decode tokens/s", 1.0), ("ttft", "TTFT (ms)", 1e3))
    xs_all = sorted({x for points in lines.values() for x, _ in points})
    for ax, (metric, label, scale) in zip(axes, panels, strict=True):
        for n, (name, points) in enumerate(lines.items()):
            drawn = [(x, summ[metric]) for x, summ in points if summ.get(metric)]
            if not drawn:
                continue
            ax.errorbar(
                [x for x, _ in drawn],
                [s["median"] * scale for _, s in drawn],
                yerr=[
                    [(s["median"] - s["min"]) * scale for _, s in drawn],
                    [(s["max"] - s["median"]) * scale for _, s in drawn],
                ],
                fmt="o-",
                capsize=3,
                color=f"C{n % 10}",
                label=name,
            )
        if log2:
            ax.set_xscale("log", base=2)
        ax.set_xticks(xs_all, [str(x) for x in xs_all])
        ax.minorticks_off()
        ax.set_xlabel(xlabel)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def save_png(fig: Any, path: str | Path) -> Path:
    """Write the figure as a PNG atomically (a temporary file in the same folder, renamed over the
    old one): a killed run never leaves a cut plot beside RESULTS.md."""
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, dpi=100, format="png")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
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
    ranks = plot_ranks(record, directory / f"{stem}-ranks.png")
    if ranks is not None:
        out["ranks"] = ranks
    return out
