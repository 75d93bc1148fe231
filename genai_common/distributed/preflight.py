"""`genai doctor --hosts HOSTFILE | --ranks N [PATH]`: preflight, plan and (with --infer) the
sharded smoke test. Returns findings and facts for the doctor's Report."""

from __future__ import annotations

import os
from typing import Any

from genai_common.findings import Finding
from genai_common.model.values import gib

SMOKE_TOKENS = 20  # the tiny models answer "The capital of France is Paris." in 19 tokens


def preflight(
    md: Any | None,
    *,
    hostfile: str | None = None,
    ranks: int | None = None,
    backend: str | None = None,
    context: int = 4096,
    mode: str = "auto",
    connect_timeout: int = 5,
    timeout: float = 120.0,
    infer: bool = False,
    python: str | None = None,
) -> tuple[list[Finding], dict[str, Any]]:
    from genai_common.distributed import hostfile as hf_mod
    from genai_common.distributed import hosts as hosts_mod
    from genai_common.distributed import interfaces as if_mod
    from genai_common.distributed import plan as plan_mod

    found: list[Finding] = []
    facts: dict[str, Any] = {}
    budgets: list[int] = []
    wired: list[dict[str, Any]] = []  # per rank: its host's wired-limit facts and share
    if hostfile:
        hf, problems = hf_mod.parse(hostfile, backend)
        found += problems
        if hf is None:
            return found, facts
        ranks = len(hf.hosts)
        facts["hosts"] = [h.ssh for h in hf.hosts]
        envs, problems = hosts_mod.probe(
            hf.hosts, connect_timeout, timeout=min(timeout, 60.0), python=python
        )
        found += problems
        facts["host_versions"] = {h: hosts_mod.versions_of(e) for h, e in envs.items()}
        per_host = {h: hosts_mod.budget(e) for h, e in envs.items()}
        if all(per_host.get(h.ssh) for h in hf.hosts):
            budgets = [per_host[h.ssh] for h in hf.hosts]
            # ranks on one machine share it
            count = {h.ssh: sum(1 for g in hf.hosts if g.ssh == h.ssh) for h in hf.hosts}
            budgets = [b // count[h.ssh] for b, h in zip(budgets, hf.hosts, strict=True)]
        facts["host_memory"] = {h: if_mod.limits(e) for h, e in envs.items()}
        if all(h.ssh in envs for h in hf.hosts):
            share = {h.ssh: sum(1 for g in hf.hosts if g.ssh == h.ssh) for h in hf.hosts}
            wired = [facts["host_memory"][h.ssh] | {"share": share[h.ssh]} for h in hf.hosts]
        if (backend or hf.backend or "ring") == "ring":
            facts["thunderbolt"] = {
                h: [f"{i['name']} {' '.join(i['ipv4']) or '(no IPv4)'}"
                    for i in if_mod.thunderbolt(e.get("network"))]
                for h, e in envs.items()
            }  # fmt: skip
            for h in hf.hosts:
                if h.ssh in envs:
                    for f in if_mod.ring_findings(h, envs[h.ssh].get("network"), hostfile):
                        if f not in found:
                            found.append(f)
    elif ranks:
        from genai_common.runtime.envinfo import environment

        env = environment(network=False)  # local ranks: no interface check
        b = hosts_mod.budget(env)
        if b:
            budgets = [b // ranks] * ranks
        facts["host_memory"] = {"localhost": if_mod.limits(env)}
        wired = [facts["host_memory"]["localhost"] | {"share": ranks}] * ranks
    ranks = ranks or 1
    facts["ranks"] = ranks
    if md is not None and md.kind in ("llm", "vlm"):
        p, problems = plan_mod.plan(md, ranks, mode, context)
        found += problems
        if p is not None:
            facts["plan"] = p.to_json()
            if budgets:
                facts["rank_budgets"] = budgets
                misfit = plan_mod.fits(p, budgets)
                if misfit:
                    n = plan_mod.smallest_fit(md, min(budgets), mode, context)
                    hint = (
                        f"the smallest count of such hosts that fits is {n}"
                        if n
                        else "no count of such hosts fits"
                    )
                    from genai_common.distributed import checks

                    found += [checks.does_not_fit(f_rank.rank, f_rank.total, budgets[f_rank.rank % len(budgets)], hint)
                              for f_rank in p.ranks if f_rank.total > budgets[f_rank.rank % len(budgets)]]  # fmt: skip
            if wired:
                over = {
                    r.rank for r in p.ranks if budgets and r.total > budgets[r.rank % len(budgets)]
                }
                found += if_mod.wired_findings(p, wired, skip=over)
        if infer and not any(f.severity == "error" for f in found):
            from genai_common.distributed import smoke

            modes, skipped, problems = infer_modes(md, ranks, mode)
            found += problems
            if skipped:
                facts["smoke_skipped"] = skipped
            if modes:
                results, problems = smoke.run(
                    md.root_str, ranks, hostfile=hostfile, backend=backend or "ring",
                    timeout=timeout, modes=modes, python=python, tokens=SMOKE_TOKENS,
                )  # fmt: skip
                found += problems
                ref = results.get("reference") or {}
                facts["smoke"] = {
                    m: {
                        "tokens": recs[0].get("tokens"), "text": recs[0].get("text"),
                        "reference_text": ref.get("text"),
                        "max_logit_diff": recs[0].get("max_logit_diff"),
                        "param_bytes": [r.get("param_bytes") for r in recs],
                    }
                    for m, recs in results["modes"].items() if recs
                }  # fmt: skip
    return found, facts


def exists(path: str) -> bool:
    return os.path.exists(path)


def infer_modes(md: Any, ranks: int, mode: str) -> tuple[tuple[str, ...], dict[str, str], list]:
    """The parallel modes the smoke test runs: the one asked for, or with auto every mode the
    model's mlx-lm class implements and that fits `ranks` (tensor: heads divisible; pipeline: a
    layer per rank and the model.safetensors.index.json sharded_load's pipeline path opens).
    Returns (modes, {skipped mode: why}, findings: DST032 when pipeline was asked for and the
    checkpoint has no index)."""
    from genai_common.distributed import checks
    from genai_common.distributed import plan as plan_mod

    sup = plan_mod.support(md.model_type)
    wanted = ("tensor", "pipeline") if mode == "auto" else (mode,)
    modes, skipped, found = [], {}, []
    for m in wanted:
        if not (sup.tensor if m == "tensor" else sup.pipeline):
            skipped[m] = f"mlx-lm's {md.model_type} does not implement it"
            continue
        p, problems = plan_mod.plan(md, ranks, m)
        if p is None or any(f.severity == "error" for f in problems):
            skipped[m] = "; ".join(f.message for f in problems) or "no plan"
            continue
        if m == "pipeline" and not os.path.isfile(
            os.path.join(md.root_str, "model.safetensors.index.json")
        ):
            skipped[m] = "no model.safetensors.index.json (sharded_load's pipeline path opens it)"
            if mode == "pipeline":
                found.append(checks.no_index(md.root_str))
            continue
        modes.append(m)
    return tuple(modes), skipped, found


def render_hosts(facts: dict[str, Any]) -> str:
    """One plain line per host: versions, wired limit, Thunderbolt interfaces ("" without)."""
    versions = facts.get("host_versions") or {}
    memory = facts.get("host_memory") or {}
    tb = facts.get("thunderbolt") or {}
    lines = []
    for host in dict.fromkeys([*versions, *memory]):
        v = versions.get(host) or {}
        parts = (
            [", ".join(f"{k} {v.get(k) or '?'}" for k in ("python", "mlx", "mlx-lm"))] if v else []
        )
        m = memory.get(host) or {}
        if m.get("note"):
            parts.append(m["note"])
        elif m:
            mb = m.get("wired_limit_mb")
            rec = m.get("recommended_working_set")
            limit = "system default" if mb == 0 else (f"{mb} MB" if mb else "unknown")
            rec_s = f", Metal working set {gib(rec)}" if rec else ""
            parts.append(f"wired limit {limit}{rec_s}")
        if host in tb:
            parts.append(f"Thunderbolt: {', '.join(tb[host]) or 'none up'}")
        lines.append(f"  {host}: " + "; ".join(parts))
    return "hosts:\n" + "\n".join(lines) if lines else ""
