"""`genai bench --compare A.json B.json`: is the difference between two runs real?

Each workload present in both records is compared metric by metric on the raw per-trial values
(never on two medians): a Mann-Whitney U test and a bootstrap interval of the median ratio
(`stats.compare`).
"""

from __future__ import annotations

from typing import Any

from genai_common.bench.stats import compare
from genai_common.bench.summary import HEADLINE, LABELS


def trial_values(result: dict[str, Any], metric: str) -> list[float]:
    values = []
    for trial in result.get("trials", []):
        value = trial.get(metric)
        if metric == "library_generation_tps":
            value = (trial.get("library") or {}).get("generation_tps")
        if value is not None:
            values.append(float(value))
    return values


def _key(result: dict[str, Any]) -> str:
    return result["workload"]


def compare_records(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per (workload, metric) that both records measured."""
    if a["kind"] != b["kind"]:
        raise ValueError(f"cannot compare a {a['kind']} run with a {b['kind']} run")
    headline_metric = HEADLINE[a["kind"]][0]
    by_key_b = {}
    for res in b["results"]:
        by_key_b.setdefault(_key(res), res)
    out = []
    for res_a in a["results"]:
        res_b = by_key_b.get(_key(res_a))
        if res_b is None:
            continue
        metrics = [m for m in res_a.get("summary", {}) if m in res_b.get("summary", {})]
        for metric in metrics:
            va, vb = trial_values(res_a, metric), trial_values(res_b, metric)
            if not va or not vb:
                continue
            c = compare(va, vb, metric=metric).to_json()
            c["workload"] = res_a["workload"]
            c["label"] = LABELS.get(metric, (metric, ""))[0]
            c["headline"] = metric == headline_metric
            out.append(c)
    return out


def render(comparisons: list[dict[str, Any]], a_name: str, b_name: str) -> str:
    lines = [f"A = {a_name}", f"B = {b_name}"]
    workload = None
    for c in comparisons:
        if c["workload"] != workload:
            workload = c["workload"]
            lines.append(f"\n{workload}")
        mark = "*" if c["headline"] else " "
        lines.append(f" {mark}{c['label']:<26} {c['verdict']}")
    if not comparisons:
        lines.append("no workload in common: nothing to compare")
    return "\n".join(lines)
