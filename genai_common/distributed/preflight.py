"""`genai doctor --hosts HOSTFILE | --ranks N [PATH]`: preflight, plan and (with --infer) the
sharded smoke test. Returns findings and facts for the doctor's Report."""

from __future__ import annotations

import os
from typing import Any

from genai_common.findings import Finding


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
) -> tuple[list[Finding], dict[str, Any]]:
    from genai_common.distributed import hostfile as hf_mod
    from genai_common.distributed import hosts as hosts_mod
    from genai_common.distributed import plan as plan_mod

    found: list[Finding] = []
    facts: dict[str, Any] = {}
    budgets: list[int] = []
    if hostfile:
        hf, problems = hf_mod.parse(hostfile, backend)
        found += problems
        if hf is None:
            return found, facts
        ranks = len(hf.hosts)
        facts["hosts"] = [h.ssh for h in hf.hosts]
        envs, problems = hosts_mod.probe(hf.hosts, connect_timeout, timeout=min(timeout, 60.0))
        found += problems
        facts["host_versions"] = {h: hosts_mod.versions_of(e) for h, e in envs.items()}
        per_host = {h: hosts_mod.budget(e) for h, e in envs.items()}
        if all(per_host.get(h.ssh) for h in hf.hosts):
            budgets = [per_host[h.ssh] for h in hf.hosts]
            # ranks on one machine share it
            count = {h.ssh: sum(1 for g in hf.hosts if g.ssh == h.ssh) for h in hf.hosts}
            budgets = [b // count[h.ssh] for b, h in zip(budgets, hf.hosts, strict=True)]
    elif ranks:
        from genai_common.runtime.envinfo import environment

        b = hosts_mod.budget(environment())
        if b:
            budgets = [b // ranks] * ranks
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
        if infer and not any(f.severity == "error" for f in found):
            from genai_common.distributed import smoke

            results, problems = smoke.run(
                md.root_str, ranks,
                hostfile=hostfile, backend=backend or "ring", timeout=timeout,
            )  # fmt: skip
            found += problems
            if results["ranks"]:
                r0 = results["ranks"][0]
                facts["smoke"] = {
                    "tokens": r0.get("tokens"), "text": r0.get("text"),
                    "max_logit_diff": r0.get("max_logit_diff"),
                    "param_bytes": [r.get("param_bytes") for r in results["ranks"]],
                }  # fmt: skip
    return found, facts


def exists(path: str) -> bool:
    return os.path.exists(path)
