"""How `genai session start` reads to a person: plain text, or rich panels on a terminal."""

from __future__ import annotations

import sys
from typing import Any


def start_lines(report: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(section title, lines) in reading order; shared by the plain and the rich renderer."""
    out: list[tuple[str, list[str]]] = []
    if report["attention"]:
        out.append(("Needs attention", list(report["attention"])))
    todo = report["todo"]
    status = [f"[/] {t}" for t in todo["in_progress"]] + [f"[ ] {t}" for t in todo["open"]]
    if not todo["exists"]:
        status = ["TODO.md is missing"]
    out.append(("Status (TODO.md)", status or ["no open items"]))
    last = todo.get("last_session")
    if last:
        lines = [
            f"Session End: {last['title']}" + (f" at {last['commit']}" if last["commit"] else "")
        ]
        lines += [f"[/] {t}" for t in last["in_progress"]] + [f"[ ] {t}" for t in last["next"]]
        out.append(("Last session: in progress and next steps", lines))
    out.append(
        (
            "Newest learnings (reference/LEARNINGS.md)",
            [f"{e['title']}: {_first_line(e['text'])}" for e in report["learnings"]]
            or ["none written yet"],
        )
    )
    out.append(("Diagnostic tools (reference/DIAGNOSTICS.md)", report["tools"] or ["none listed"]))
    rows = [" | ".join(v for v in row.values() if v) for row in report["results"]]
    out.append(("Last results (reference/RESULTS.md)", rows or ["no results yet"]))
    env = report["environment"]
    lines = [
        f"Python {env['python']}"
        + (f" (requires {env['requires_python']})" if env["requires_python"] else "")
    ]
    mlx = env.get("mlx")
    if mlx:
        if mlx.get("installed"):
            device = (
                (mlx.get("device") or {}).get("name")
                if isinstance(mlx.get("device"), dict)
                else None
            )
            lines.append(
                f"MLX {mlx.get('version')} backend {mlx.get('backend') or '?'}"
                + (f" on {device}" if device else "")
            )
        else:
            lines.append("MLX is not installed in this environment")
    lines.append(
        f"{env['checked']} declared packages checked, {len(env['problems'])} problem(s)"
        + ("" if env["in_project_env"] else " (not the project's environment)")
    )
    out.append(("Environment", lines))
    changes = report["changes"]
    end = report["last_session_end"]
    title = "Changed since the last session end" if end else "Uncommitted changes"
    lines = [
        c["path"]
        + (" (model config)" if c["model_config"] else "")
        + (" (living doc)" if c["living_doc"] else "")
        for c in changes
    ]
    out.append((title, lines or ["nothing"]))
    doc = report["doctor"]
    if doc.get("ran"):
        lines = [f"{doc['model']}: {doc['errors']} error(s), {doc['warnings']} warning(s)"]
        lines += [f"{f['severity']} {f['code']}: {f['message']}" for f in doc["findings"][:10]]
    else:
        lines = [f"not run: {doc.get('reason')}"]
    out.append(("Doctor", lines))
    return out


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip().lstrip("-* ").strip()
    return ""


def print_start(report: dict[str, Any]) -> None:
    sections = start_lines(report)
    if not sys.stdout.isatty():
        print(f"Session start: {report['root']} ({report['kind'] or 'unknown kind'})")
        for title, lines in sections:
            print(f"\n{title}:")
            for line in lines:
                print(f"  {line}")
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.panel import Panel

    console = Console()
    console.rule(f"Session start: {report['root']} ({report['kind'] or 'unknown kind'})")
    for title, lines in sections:
        style = "red" if title == "Needs attention" else "blue"
        body = "\n".join(escape(line) for line in lines)
        console.print(Panel(body, title=title, title_align="left", border_style=style))
