"""`genai review [PATH] [--json] [--fail-on error|warning] [--select ...] [--ignore ...]`.

Runs the methodology checks of `genai_common.project.checks` on a project and prints, for each
failure, its code, title, what is wrong, the fix and the section that explains the rule.
Exit codes: 0 nothing at or above --fail-on failed; 1 something did; 2 the path is not there.
Selection follows repo-review: --select/--ignore (and `[tool.repo-review]` select/ignore in the
project's pyproject.toml) name codes or family letters ("*" selects all); an ignore written as a
mapping of code -> reason shows those checks as skipped with the reason.
The same checks run under `repo-review .` (see `genai_common.project.repo_review_plugin`).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genai_common.findings import shown

SCHEMA_VERSION = 1
_RANK = {"warning": 1, "error": 2}


@dataclass
class Result:
    code: str
    family: str
    title: str
    status: str  # "pass" | "fail" | "skip"
    severity: str
    fix: str
    url: str
    problems: list[str] = field(default_factory=list)
    reason: str = ""  # why a check was skipped

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def review(
    path: str | Path = ".", *, select: set[str] | None = None, ignore: set[str] | None = None
) -> list[Result]:
    """Run every check (or the selected codes/families) on the project at `path`."""
    from genai_common.findings import Skip, name_matches, run_rule, selected
    from genai_common.project.checks import CHECKS, FUNCTIONS
    from genai_common.project.core import Project

    project = Project.open(path)
    # The project's own choices, in repo-review's table: select, and ignore (a list, or a
    # mapping of code -> reason: those show as skipped with the reason).
    config = project.pyproject.get("tool", {}).get("repo-review", {})
    select = select or {str(c) for c in config.get("select", [])}
    configured = config.get("ignore", [])
    reasons = (
        {str(k): str(v) for k, v in configured.items()} if isinstance(configured, dict) else {}
    )
    ignore = (ignore or set()) | {str(c) for c in configured}
    results = []
    for code, chk in CHECKS.items():
        if not selected(code, select):
            continue
        result = Result(code, chk.prefix, chk.title, "pass", chk.severity, chk.fix, chk.url)
        if name_matches(code, ignore):
            why = reasons.get(code) or reasons.get(chk.prefix)
            if why:
                result.status, result.reason = "skip", f"ignored in pyproject.toml: {why}"
                results.append(result)
            continue
        try:
            result.problems = [found.message for found in run_rule(FUNCTIONS[code], project)]
        except Skip as why:
            result.status, result.reason = "skip", str(why)
        else:
            result.status = "fail" if result.problems else "pass"
        results.append(result)
    return results


def exit_code(results: list[Result], fail_on: str = "error") -> int:
    threshold = _RANK[fail_on]
    return int(any(r.status == "fail" and _RANK[r.severity] >= threshold for r in results))


def _counts(results: list[Result], fail_on: str = "error") -> dict[str, int]:
    """pass / fail / warn / skip, where "fail" is exactly what makes the exit code 1 at
    `fail_on` and "warn" a failed check below it (issue 16: the summary and the exit code agree)."""
    counts = {s: sum(r.status == s for r in results) for s in ("pass", "skip")}
    failed = [r for r in results if r.status == "fail"]
    counts["fail"] = sum(_RANK[r.severity] >= _RANK[fail_on] for r in failed)
    counts["warn"] = len(failed) - counts["fail"]
    return counts


def summary_line(results: list[Result], fail_on: str = "error") -> str:
    counts = _counts(results, fail_on)
    parts = [f"{counts['pass']} passed"]
    if counts["warn"]:
        parts.append(f"{counts['warn']} warning{'s' if counts['warn'] != 1 else ''}")
    parts.append(f"{counts['fail']} failed")
    parts.append(f"{counts['skip']} skipped")
    verdict = "exit 1" if counts["fail"] else "exit 0"
    return f"{', '.join(parts)} ({len(results)} checks; --fail-on {fail_on}: {verdict})"


def to_json(path: str | Path, results: list[Result], fail_on: str = "error") -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "path": str(path),
        "summary": _counts(results, fail_on),
        "checks": [r.to_json() for r in results],
    }


def format_plain(results: list[Result], *, verbose: bool = False, fail_on: str = "error") -> str:
    lines = []
    for r in results:
        if r.status == "pass" and not verbose:
            continue
        mark = {"pass": "PASS", "fail": "FAIL" if r.severity == "error" else "WARN", "skip": "SKIP"}
        lines.append(f"{mark[r.status]} {r.code} {r.title}")
        if r.status == "skip":
            lines.append(f"     skipped: {r.reason}")
        for problem in r.problems:
            lines.append(f"     - {shown(problem)}")
        if r.status == "fail":
            lines.append(f"     fix: {r.fix}")
            lines.append(f"     see: {r.url}")
    lines.append(summary_line(results, fail_on))
    return "\n".join(lines)


def _print_rich(results: list[Result], verbose: bool, fail_on: str = "error") -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_lines=True, title="genai review")
    table.add_column("Code", no_wrap=True)
    table.add_column("Check")
    table.add_column("Result", no_wrap=True)
    style = {"pass": "green", "fail": "red", "skip": "yellow"}
    for r in results:
        if r.status == "pass" and not verbose:
            continue
        # check texts hold brackets (`- [/]` items, [tool.genai]): text, not rich markup
        body = escape(r.title)
        if r.problems:
            body += "\n" + "\n".join(f"• {escape(shown(p))}" for p in r.problems)
        if r.status == "fail":
            body += f"\n[bold]fix:[/bold] {escape(r.fix)}\n[dim]see {escape(r.url)}[/dim]"
        if r.reason:
            body += f"\n[dim]{escape(r.reason)}[/dim]"
        label = r.status if r.status != "fail" or r.severity == "error" else "warn"
        table.add_row(r.code, body, f"[{style[r.status]}]{label}[/]")
    console = Console()
    if table.rows:
        console.print(table)
    console.print(summary_line(results, fail_on))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=".", help="project folder (default: .)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--fail-on",
        choices=("error", "warning"),
        default="error",
        help="exit 1 when a check of this severity or worse fails (default: error)",
    )
    parser.add_argument(
        "--select", default="", help="comma-separated codes or families to run (e.g. GD,GR101)"
    )
    parser.add_argument("--ignore", default="", help="comma-separated codes or families to skip")
    parser.add_argument("-v", "--verbose", action="store_true", help="show passing checks too")
    parser.add_argument("--list", action="store_true", help="list the checks and exit")


def _codes(text: str) -> set[str]:
    return {c.strip().upper() for c in text.split(",") if c.strip()}


def run(args: argparse.Namespace) -> int:
    if args.list:
        from genai_common.project.checks import CHECKS

        for chk in CHECKS.values():
            print(f"{chk.code}  {chk.severity:<7}  {chk.title}  ({chk.url})")
        return 0
    path = Path(args.path)
    if not path.exists():
        print(f"genai review: {path} does not exist", file=sys.stderr)
        return 2
    results = review(path, select=_codes(args.select), ignore=_codes(args.ignore))
    if args.json:
        print(json.dumps(to_json(path, results, args.fail_on), indent=2))
    elif sys.stdout.isatty():
        _print_rich(results, args.verbose, args.fail_on)
    else:
        print(format_plain(results, verbose=args.verbose, fail_on=args.fail_on))
    return exit_code(results, args.fail_on)
