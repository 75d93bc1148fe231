"""`genai bench --compare A.json B.json`: is the difference between two runs real, and is it fair?

Each workload present in both records (same subject label and workload name) is compared metric
by metric on the raw per-trial values (never on two medians): a Mann-Whitney U test and a
bootstrap interval of the median ratio (`stats.compare`). A verdict of "different" also says
which way is better (rates: higher; times and memory: lower).

Before the verdicts, `mismatches` lists what differs between the two runs beyond the code under
test, so that a reader does not credit a change with what the settings did:

- workload settings (prompt and generation length, image size, steps, batch size, seed): the
  runs did not do the same work, and totals such as end-to-end time and memory are not
  comparable (per-token rates may still be);
- the model, the machine, the backend and the library versions: often the point of the
  comparison (an mlx upgrade, a quantized model), so shown as information.
"""

from __future__ import annotations

from typing import Any

from genai_common.bench.metrics import HEADLINE, LABELS
from genai_common.bench.stats import compare

# Fields of one result that define the work it did.
WORKLOAD_FIELDS = ("prompt_tokens", "gen_tokens", "height", "width", "steps", "batch_size")
# Record settings that change the work for a kind (the rest, e.g. trials, change only the power).
SETTING_FIELDS = {
    "llm": ("seed",),
    "vlm": ("seed", "image_size"),
    "diffusion": ("seed", "guidance"),
    "ml": ("seed", "train_step"),
}
# Versions worth naming when they differ (the figures depend on them).
VERSIONED = ("mlx", "mlx-lm", "mlx-vlm", "torch", "diffusers", "transformers", "python")


def trial_values(result: dict[str, Any], metric: str) -> list[float]:
    values = []
    for trial in result.get("trials", []):
        value = trial.get(metric)
        if metric == "library_generation_tps":
            value = (trial.get("library") or {}).get("generation_tps")
        if value is not None:
            values.append(float(value))
    return values


def result_key(result: dict[str, Any]) -> tuple[str, str]:
    """What pairs two results: the subject (A, or B under --against) and the workload's name."""
    return (result.get("subject", "A"), result["workload"])


def higher_is_better(metric: str) -> bool:
    return LABELS.get(metric, (metric, ""))[1] == "rate"


def _settings_differ(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    sa, sb = a.get("settings") or {}, b.get("settings") or {}
    fields = SETTING_FIELDS.get(a["kind"], ())
    return [f for f in fields if f in sa and f in sb and sa[f] != sb[f]]


def _work_differs(res_a: dict[str, Any], res_b: dict[str, Any]) -> list[str]:
    """The fields in which two results did different work. Two models given the same text may
    count its tokens differently (their tokenizers): prompt_tokens counts only for one model."""
    fields = [f for f in WORKLOAD_FIELDS if f in res_a and f in res_b and res_a[f] != res_b[f]]
    if res_a.get("model") != res_b.get("model"):
        fields = [f for f in fields if f != "prompt_tokens"]
    return fields


def comparable(
    rec_a: dict[str, Any], res_a: dict[str, Any], rec_b: dict[str, Any], res_b: dict[str, Any]
) -> bool:
    """Do two results measure the same work on the same machine and backend (a history point)?"""
    env_a, env_b = _environment(rec_a), _environment(rec_b)
    return (
        result_key(res_a) == result_key(res_b)
        and not _settings_differ(rec_a, rec_b)
        and not _work_differs(res_a, res_b)
        and all(env_a[f] == env_b[f] for f in ("machine", "backend", "device"))
    )


def compare_records(
    a: dict[str, Any], b: dict[str, Any], *, match_subject: bool = True
) -> list[dict[str, Any]]:
    """One entry per (subject, workload, metric) that both records measured. `same_work` is
    False where the two runs of that workload did different work (see `mismatches`); then no
    side is called better. `match_subject=False` pairs by workload alone (--against: subject A
    of one run with subject B of the same run)."""

    def key(res: dict[str, Any]) -> Any:
        return result_key(res) if match_subject else res["workload"]

    if a["kind"] != b["kind"]:
        raise ValueError(f"cannot compare a {a['kind']} run with a {b['kind']} run")
    headline_metric = HEADLINE[a["kind"]][0]
    settings_differ = bool(_settings_differ(a, b))
    by_key_b: dict[Any, dict[str, Any]] = {}
    for res in b["results"]:
        by_key_b.setdefault(key(res), res)
    out = []
    for res_a in a["results"]:
        res_b = by_key_b.get(key(res_a))
        if res_b is None:
            continue
        same_work = not settings_differ and not _work_differs(res_a, res_b)
        metrics = [m for m in res_a.get("summary", {}) if m in res_b.get("summary", {})]
        for metric in metrics:
            va, vb = trial_values(res_a, metric), trial_values(res_b, metric)
            if not va or not vb:
                continue
            c = compare(va, vb, metric=metric).to_json()
            c["subject"] = res_a.get("subject", "A")
            c["workload"] = res_a["workload"]
            c["label"] = LABELS.get(metric, (metric, ""))[0]
            c["headline"] = metric == headline_metric
            c["same_work"] = same_work
            better = (c["ratio"] > 1) == higher_is_better(metric)
            c["b_better"] = better if c["different"] and same_work else None
            out.append(c)
    return out


def _environment(record: dict[str, Any]) -> dict[str, Any]:
    env = record.get("environment") or {}
    mlx = ((env.get("runtime") or {}).get("frameworks") or {}).get("mlx") or {}
    device = mlx.get("device") or {}
    out = {
        "machine": env.get("machine"),
        "backend": mlx.get("backend"),
        "device": device.get("name") or device.get("device_name"),
        "commit": record.get("commit"),
    }
    versions = env.get("versions") or {}
    out.update({name: versions.get(name) for name in VERSIONED})
    return out


def _subject_paths(record: dict[str, Any]) -> dict[str, str]:
    paths = {s["label"]: s["path"] for s in record.get("subjects", []) if "label" in s}
    return paths or {"A": record.get("model", "")}


def mismatches(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """What differs between the two runs besides the figures: [{what, a, b, scope}], where
    scope is "workload" (the runs did different work), "unmatched" (a workload only one run
    has) or "context" (model, machine, backend, versions, commit)."""
    out: list[dict[str, Any]] = []

    def add(what: str, va: Any, vb: Any, scope: str) -> None:
        if va != vb:
            out.append({"what": what, "a": va, "b": vb, "scope": scope})

    sa, sb = a.get("settings") or {}, b.get("settings") or {}
    for field in _settings_differ(a, b):
        add(field, sa[field], sb[field], "workload")
    results_a = {result_key(r): r for r in a["results"]}
    results_b = {result_key(r): r for r in b["results"]}
    labelled = any(key[0] != "A" for key in results_a.keys() | results_b.keys())

    def name(key: tuple[str, str]) -> str:
        return f"{key[1]} [{key[0]}]" if labelled else key[1]

    for key, res_a in results_a.items():
        res_b = results_b.get(key)
        if res_b is None:
            add(f"workload {name(key)}", "measured", "absent", "unmatched")
            continue
        for field in _work_differs(res_a, res_b):
            add(f"{name(key)}: {field}", res_a[field], res_b[field], "workload")
    for key in sorted(results_b.keys() - results_a.keys()):
        add(f"workload {name(key)}", "absent", "measured", "unmatched")
    paths_a, paths_b = _subject_paths(a), _subject_paths(b)
    for label in sorted(paths_a.keys() & paths_b.keys()):
        add(
            f"model {label}" if len(paths_a) > 1 else "model",
            paths_a[label],
            paths_b[label],
            "context",
        )
    env_a, env_b = _environment(a), _environment(b)
    for field in env_a:
        if env_a[field] is not None and env_b.get(field) is not None:
            add(field, env_a[field], env_b[field], "context")
    return out


def render(
    comparisons: list[dict[str, Any]],
    a_name: str,
    b_name: str,
    differences: list[dict[str, Any]] | None = None,
) -> str:
    lines = [f"A = {a_name}", f"B = {b_name}"]
    differences = differences or []
    unfair = [d for d in differences if d["scope"] == "workload"]
    if unfair:
        lines.append("\nnot like for like: the runs did different work")
        lines += [f"  ! {d['what']}: {d['a']} vs {d['b']}" for d in unfair]
        lines.append(
            "  totals (end-to-end, TTFT, s/image, memory) are not comparable; rates may be"
        )
    unmatched = [d for d in differences if d["scope"] == "unmatched"]
    for d in unmatched:
        side = "A" if d["a"] == "measured" else "B"
        lines.append(f"  {d['what']} only in {side}: not compared")
    context = [d for d in differences if d["scope"] == "context"]
    if context:
        lines.append("\nthe runs also differ in (often the point of the comparison):")
        lines += [f"  {d['what']}: {d['a']} vs {d['b']}" for d in context]
    key = None
    for c in comparisons:
        if (c.get("subject", "A"), c["workload"]) != key:
            key = (c.get("subject", "A"), c["workload"])
            lines.append(f"\n{c['workload']}" + (f" [{key[0]}]" if key[0] != "A" else ""))
        mark = "*" if c["headline"] else " "
        note = {True: " -> B better", False: " -> B worse"}.get(c.get("b_better"), "")
        if c.get("same_work") is False:
            note = " [different work]"
        lines.append(f" {mark}{c['label']:<26} {c['verdict']}{note}")
    if not comparisons:
        lines.append("\nno workload in common: nothing to compare")
    return "\n".join(lines)
