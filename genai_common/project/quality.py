"""A generated project's quality check: `genai quality` (`nox -s verify`, test/check_quality.py).

Issue 10 part 8. Two parts, each in a child process:

    reply      llm and vlm: the greedy reply to the chat prompt is the trained tiny model's known
               answer (embedded tiny model) or looks like text (any other model)
    verify     when there is a reference (`--against PATH_OR_ID`, else `[tool.genai] source`, the
               model this project's model was converted, quantized or fine-tuned from):
               `genai_common.verify.verify(candidate, reference, kind=...)`, relative metrics

`--record` adds one row per run under "## Verify runs" in reference/RESULTS.md. Run it after
every conversion, quantization, fuse and library upgrade.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from genai_common.project.core import Project, ProjectError, find_project
from genai_common.project.diagnostics import (
    CHILD_TIMEOUT_S,
    Step,
    format_step,
    model_path,
    record_results,
)

RESULTS_HEADING = "## Verify runs"
RESULTS_COLUMNS = ("Date", "Model", "Reference", "Reply", "Verdict", "Metrics", "genai-common")


def reference_for(project: Project, against: str | None = None) -> str | None:
    """The reference model: `against`, else [tool.genai] source; a path relative to the project
    when it names one, else a hub id as written; None when there is none."""
    from genai_common.formats.pyproject import model_location

    ref = (against or str(project.genai.get("source") or "")).strip()
    if not ref:
        return None
    return model_location(project.root, project.kind or "llm", ref)[0]


def reply_step(project: Project, *, timeout: float = CHILD_TIMEOUT_S) -> Step | None:
    """The chat-reply check of an llm or vlm in a child process (None for other kinds)."""
    if project.kind not in ("llm", "vlm"):
        return None
    from genai_common.runtime.isolate import run_isolated

    result = run_isolated(
        "genai_common.project.quality:_reply_child",
        project.kind,
        model_path(project),
        project.uses_tiny,
        timeout=timeout,
    )
    if not result.ok:
        why = result.error or f"exit {result.returncode}"
        return Step("reply", False, result.duration, f"failed: {why}")
    problem = (result.value or {}).get("problem", "")
    return Step("reply", not problem, result.duration, problem or "the reply is text")


def _reply_child(kind: str, path: str, tiny: bool) -> dict[str, Any]:
    from genai_common.project.diagnostics import reply_problem

    return {"problem": reply_problem(kind, path, tiny)}


def verify_step(project: Project, reference: str) -> Step:
    """`genai verify` of the project's model against `reference` (relative metrics)."""
    start = time.perf_counter()
    from genai_common.verify import verify

    try:
        result = verify(model_path(project), reference, kind=project.kind)
    except Exception as exc:  # a reference that cannot be read is this step's failure
        return Step("verify", False, time.perf_counter() - start, f"failed: {exc}")
    metrics = getattr(result, "metrics", {}) or {}
    shown = ", ".join(
        f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
        for k, v in list(metrics.items())[:4]
        if isinstance(v, (int, float, str))
    )
    verdict = getattr(result, "verdict", "fail")
    where = getattr(result, "first_bad_layer", None)
    summary = f"{verdict}" + (f" (first bad layer {where})" if where else "") + f": {shown}"
    return Step("verify", verdict != "fail", time.perf_counter() - start, summary, value=result)


def check_quality(project: Project, against: str | None = None) -> list[Step]:
    """The reply check (llm, vlm) and, with a reference, verify; each a Step."""
    steps = [s for s in (reply_step(project),) if s is not None]
    reference = reference_for(project, against)
    if reference is not None:
        steps.append(verify_step(project, reference))
    return steps


def results_row(project: Project, steps: list[Step], reference: str | None) -> list[str]:
    from datetime import datetime

    from genai_common.runtime.envinfo import versions

    by_name = {s.name: s for s in steps}
    reply, ver = by_name.get("reply"), by_name.get("verify")
    return [
        datetime.now().strftime("%Y-%m-%d %H:%M"),
        project.model or f"tiny-{project.kind}",
        reference or "-",
        ("ok" if reply.ok else "FAIL: " + reply.summary) if reply else "-",
        ver.summary.partition(":")[0] if ver else "-",
        ver.summary.partition(":")[2].strip() if ver else "-",
        versions(("genai-common",)).get("genai-common", "?"),
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--project", default=".", help="project folder (default: the one holding the cwd)"
    )
    parser.add_argument(
        "--against",
        metavar="PATH_OR_ID",
        help="reference model (default: [tool.genai] source, when the project records one)",
    )
    parser.add_argument(
        "--record", action="store_true", help=f"add a row under {RESULTS_HEADING!r} to RESULTS.md"
    )


def run(args: argparse.Namespace) -> int:
    try:
        project = find_project(Path(args.project))
        if project.kind is None:
            raise ProjectError(f"{project.root}: no [tool.genai] kind in pyproject.toml")
    except ProjectError as exc:
        print(f"genai quality: {exc}", file=sys.stderr)
        return 2
    reference = reference_for(project, args.against)
    steps = check_quality(project, args.against)
    if not steps:
        print(
            f"genai quality: nothing to check for a {project.kind} model without a reference: "
            "give --against PATH_OR_ID or set [tool.genai] source",
            file=sys.stderr,
        )
        return 2
    for step in steps:
        print(format_step(step))
    if args.record:
        path = record_results(
            project.root,
            results_row(project, steps, reference),
            heading=RESULTS_HEADING,
            columns=RESULTS_COLUMNS,
        )
        print(f"recorded in {path}")
    return 0 if all(s.ok for s in steps) else 1
