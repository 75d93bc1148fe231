"""`genai session start|end`: the methodology's session protocol as two commands.

start  reads TODO.md (open and in-progress items, the last Session End block), the newest
       LEARNINGS entries, the tools DIAGNOSTICS.md lists and the last RESULTS rows; checks the
       environment against the project's declaration; lists the files changed since the last
       `session end` (model configs and living documents flagged); runs the static doctor on the
       project's model. Rich text for people, `--json` for agents.
end    appends a dated "Session End" block to TODO.md (Completed / In Progress / Next Steps and
       the commit), or adds to the block this session already wrote; reminds which living
       documents were not touched in the session. It only ever inserts text.

State between the two lives in `.genai/session.json` (ignored by git through its own
`.genai/.gitignore`): when the session started, at which commit, and the block it wrote. The
commit of each session end is also written into its block, so a fresh clone still knows it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from genai_common.findings import shown
from genai_common.formats import markdown
from genai_common.project import docs, todo
from genai_common.project.core import STATE_DIR, Project
from genai_common.runtime import git

STATE_FILE = "session.json"
SCHEMA_VERSION = 1
N_LEARNINGS = 3
N_RESULTS = 3


# -- state ---------------------------------------------------------------------------------------


def load_state(project: Project) -> dict[str, Any]:
    from genai_common.runtime import files

    try:
        text = files.read_text(project.root / STATE_DIR / STATE_FILE, project.root, cap=1 << 20)
        data = json.loads(text) if text else {}
    except (files.DocumentError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_state(project: Project, state: dict[str, Any]) -> None:
    """Write the state atomically (runtime/files.py); DocumentError when it cannot be."""
    from genai_common.runtime import files

    folder = project.root / STATE_DIR
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise files.DocumentError(folder, f"cannot be made: {exc.strerror or exc}") from None
    ignore = folder / ".gitignore"
    if not ignore.exists():
        files.write_text(ignore, "# machine state of `genai session`; never committed\n*\n")
    files.write_text(folder / STATE_FILE, json.dumps(state, indent=2) + "\n", project.root)


# -- the last session end ----------------------------------------------------------------------


def last_end(
    project: Project, state: dict[str, Any], text: str | None = None
) -> dict[str, Any] | None:
    """The newest session end: its commit (if git knows it) and its time (epoch seconds)."""
    if text is None:
        text = project.text("TODO.md") or ""
    blocks = todo.blocks(text)
    commit, when = None, None
    if blocks:
        block = blocks[-1]
        commit = block.commit
        found = markdown.parse_date(block.title)
        when = found[0].timestamp() if found else None
    files: dict[str, str | None] = {}
    if state.get("ended_at") and (when is None or state["ended_at"] >= when):
        when = state["ended_at"]
        commit = state.get("end_commit") or commit
        files = state.get("end_files") or {}
    if commit and project.is_git and not git.commit_exists(project.root, commit):
        commit = None
    if commit is None and when is None:
        return None
    title = blocks[-1].title if blocks else None
    return {"commit": commit, "time": when, "title": title, "files": files}


def changes_since(project: Project, end: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Files changed since the last session end, flagged as model config or living document.

    Git answers for tracked and untracked files; model config files outside git's view (the
    models/ folder is ignored) count when modified after the session end's time.
    """
    changed: set[str] = set()
    if project.is_git:
        if end and end.get("commit"):
            since = git.changed_since(project.root, end["commit"])
            # the last session's own work, uncommitted when it ended and committed after it
            # (issue 16): a file whose content is what it was at the session end is not news
            recorded = end.get("files") or {}
            known = [p for p in since if p in recorded]
            now = git.blob_hashes(project.root, known) if known else {}
            changed.update(p for p in since if p not in recorded or now[p] != recorded[p])
        elif end is None:
            changed.update(git.dirty_files(project.root))
            changed.update(git.untracked_files(project.root))
    if end and end.get("time"):
        for path in project.model_config_files():
            try:
                if path.stat().st_mtime > end["time"]:
                    changed.add(path.relative_to(project.root).as_posix())
            except (OSError, ValueError):
                continue
    return [
        {
            "path": rel,
            "model_config": project.is_model_config(rel) or rel == "pyproject.toml",
            "living_doc": project.is_living_doc(rel),
        }
        for rel in sorted(changed)
        if not rel.startswith(STATE_DIR + "/")
    ]


# -- start ---------------------------------------------------------------------------------------


def _todo_status(project: Project) -> dict[str, Any]:
    text = project.text("TODO.md")
    if text is None:
        return {"exists": False, "open": [], "in_progress": [], "last_session": None}
    blocks = todo.blocks(text)
    inside = set()  # the lines of every block, for a linear membership test
    for b in blocks:
        inside.update(range(b.start, b.end))
    items = [i for i in markdown.checklist(text) if i.line not in inside]
    last = None
    if blocks:
        b = blocks[-1]
        last = {
            "title": b.title,
            "completed": b.items.get("completed", []),
            "in_progress": b.items.get("in_progress", []),
            "next": b.items.get("next", []),
            "commit": b.commit,
        }
    return {
        "exists": True,
        "open": [i.text for i in items if i.state == " "],
        "in_progress": [i.text for i in items if i.state == "/"],
        "last_session": last,
    }


def _doctor(project: Project) -> dict[str, Any]:
    model = project.model_path
    if model is None:
        return {"ran": False, "reason": "no [tool.genai] kind in pyproject.toml"}
    if project.model_is_local and not Path(model).exists():
        return {
            "ran": False,
            "model": model,
            "reason": "the model is not there yet (`nox -s diagnostics` builds the tiny one)",
        }
    from genai_common.doctor import diagnose

    try:
        report = diagnose(model, kind=project.kind)
    except Exception as exc:  # a doctor that cannot run is reported, never fatal here
        return {"ran": False, "model": model, "reason": f"{type(exc).__name__}: {exc}"}
    findings = [f.to_json() for f in report.findings if f.severity != "info"]
    return {
        "ran": True,
        "model": model,
        "errors": report.count("error"),
        "warnings": report.count("warning"),
        "findings": findings,
    }


def start(path: str | Path = ".", *, doctor: bool = True, record: bool = True) -> dict[str, Any]:
    """Everything `genai session start` reports, as one JSON-ready dict."""
    from genai_common.findings import Skip, run_rule
    from genai_common.project import checks, envcheck

    project = Project.open(path)
    state = load_state(project)
    end = last_end(project, state)
    learn_text = project.text("reference/LEARNINGS.md") or ""
    diag_text = project.text("reference/DIAGNOSTICS.md") or ""
    results_text = project.text("reference/RESULTS.md") or ""
    env = envcheck.check(project)
    changes = changes_since(project, end)
    report: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "root": str(project.root),
        "kind": project.kind,
        "model": project.model_path,
        "git": {"repo": project.is_git, "head": git.head(project.root) if project.is_git else None},
        "last_session_end": end,
        "todo": _todo_status(project),
        "learnings": [
            {"title": e.title, "text": e.body} for e in docs.learnings(learn_text)[-N_LEARNINGS:]
        ],
        "tools": docs.tools(diag_text),
        "results": markdown.result_rows(results_text)[-N_RESULTS:],
        "environment": env.to_json(),
        "changes": changes,
        "doctor": _doctor(project) if doctor else {"ran": False, "reason": "--no-doctor"},
    }
    if project.kind in {"llm", "vlm", "ml"}:
        from genai_common.runtime.envinfo import mlx_entry

        report["environment"]["mlx"] = mlx_entry()
    attention = []
    if end is None:
        attention.append("No session end recorded yet: this is the first session.")
    for c in changes:
        if c["model_config"]:
            attention.append(f"Model configuration changed since the last session: {c['path']}")
    for problem in env.problems:
        attention.append(f"Environment: {problem}")
    if not env.in_project_env and env.missing:
        attention.append(
            "Not running in the project's environment (missing: "
            + ", ".join(env.missing[:5])
            + "); `nox -s tests` and `nox -s diagnostics` build it."
        )
    mlx = report["environment"].get("mlx")
    if mlx and mlx.get("installed") and not mlx.get("usable", True):
        attention.append(f"MLX is installed but not usable: {mlx.get('error')}")
    for code in ("GR101", "GD101", "GD200", "GD203", "GU101", "GU102", "GU103"):
        try:
            found = run_rule(checks.FUNCTIONS[code], project)
        except Skip:
            continue
        attention += [f"{code} {f.message} (fix: {f.hint})" for f in found]
    doc = report["doctor"]
    if doc.get("ran") and doc.get("errors"):
        attention.append(f"The doctor found {doc['errors']} error(s) in the model: run it first.")
    report["attention"] = attention
    if record:
        from genai_common.runtime import files

        try:  # read-modify-write under the lock `session end` takes: no update is lost
            with files.locked(project.root / "TODO.md"):
                save_state(
                    project,
                    {
                        **load_state(project),
                        "started_at": time.time(),
                        "start_commit": report["git"]["head"],
                        "block": None,
                    },
                )
        except files.DocumentError as exc:
            attention.append(f"The session state was not saved: {exc}")
        # Issue 16: the documents' facts block follows the model (only the marked lines)
        from genai_common.project import facts

        try:
            report["facts_refreshed"] = facts.refresh(project)
        except files.DocumentError as exc:
            attention.append(f"The facts block was not refreshed: {exc}")
    return report


# -- end -----------------------------------------------------------------------------------------


class SessionError(Exception):
    """`session end` cannot write (no TODO.md, undecodable TODO.md): exit code 2."""


def _untouched_docs(
    project: Project, state: dict[str, Any], end: dict[str, Any] | None
) -> list[str]:
    """Living documents not changed since the session started (or since the last end)."""
    since_commit = state.get("start_commit") or (end or {}).get("commit")
    since_time = state.get("started_at") or (end or {}).get("time")
    if since_commit is None and since_time is None:
        return []
    changed: set[str] = set()
    if project.is_git and since_commit and git.commit_exists(project.root, since_commit):
        changed.update(git.changed_since(project.root, since_commit))
    out = []
    for rel in docs.LIVING_DOCS:
        if rel in changed:
            continue
        try:
            mtime = (project.root / rel).stat().st_mtime
        except OSError:
            out.append(rel)
            continue
        if since_time is None or mtime <= since_time:
            out.append(rel)
    return out


def end(
    path: str | Path = ".",
    *,
    completed: list[str] | None = None,
    in_progress: list[str] | None = None,
    next_steps: list[str] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Write (or extend) this session's Session End block in TODO.md; return what was done."""
    from genai_common.runtime import files

    project = Project.open(path)
    todo_path = project.root / "TODO.md"
    entries = {
        "completed": list(completed or []),
        "in_progress": list(in_progress or []),
        "next": list(next_steps or []),
    }
    head = git.head(project.root) if project.is_git else None
    commit = git.short(project.root, head) if head else None
    now = now or datetime.now()
    try:
        # read-modify-write of TODO.md and the state under the project's lock: two concurrent
        # `session end` runs serialise (the second extends the first's block), none is lost
        with files.locked(todo_path):
            text = files.read_text(todo_path, project.root)
            if text is None:
                raise SessionError(f"{todo_path} cannot be read: it does not exist")
            state = load_state(project)
            previous = last_end(project, state, text)
            untouched = _untouched_docs(project, state, previous)
            block = state.get("block")
            existing = [b for b in todo.blocks(text) if block and b.title == block]
            if existing:
                new_text = todo.extend_block(text, existing[-1], entries, commit)
                action, title = "extended", existing[-1].title
            else:
                title = todo.stamp(now)
                new_text = todo.append_block(text, title, entries, commit)
                action = "appended"
            if new_text != text:
                files.write_text(todo_path, new_text, project.root)
            # the state after the session's work: what differs from HEAD now, by content
            # (issue 16): the next start does not flag this session's own work once committed
            end_files = {}
            if head:
                pending = [
                    p
                    for p in git.changed_since(project.root, head)
                    if not p.startswith(STATE_DIR + "/")
                ]
                end_files = git.blob_hashes(project.root, pending)
            save_state(
                project,
                {
                    **state,
                    "block": title,
                    "ended_at": now.timestamp(),
                    "end_commit": head,
                    "end_files": end_files,
                },
            )
    except files.DocumentError as exc:
        raise SessionError(f"{exc}; TODO.md is left as it was") from None
    return {
        "schema": SCHEMA_VERSION,
        "todo": str(todo_path),
        "action": action,
        "block": title,
        "commit": commit,
        "untouched_docs": [d for d in untouched if d != "TODO.md"],
        "missing_docs": [d for d in docs.LIVING_DOCS if not project.exists(d)],
    }


# -- how `session start` reads to a person: plain text, or rich panels on a terminal ---------


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
    if report.get("facts_refreshed"):  # issue 16: the documents followed the model
        out.append(("Facts block rewritten", list(report["facts_refreshed"])))
    return out


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip().lstrip("-* ").strip()
    return ""


def print_start(report: dict[str, Any]) -> None:
    sections = start_lines(report)
    if not sys.stdout.isatty():
        print(f"Session start: {shown(report['root'])} ({report['kind'] or 'unknown kind'})")
        for title, lines in sections:
            print(f"\n{title}:")
            for line in lines:
                print(f"  {shown(line)}")
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.panel import Panel

    console = Console()
    console.rule(
        f"Session start: {escape(shown(report['root']))} ({report['kind'] or 'unknown kind'})"
    )
    for title, lines in sections:
        style = "red" if title == "Needs attention" else "blue"
        body = "\n".join(escape(shown(line)) for line in lines)
        console.print(Panel(body, title=title, title_align="left", border_style=style))


# -- command line --------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="{start,end}")
    p_start = sub.add_parser("start", help="status, next steps, environment, changes, doctor")
    p_start.add_argument("path", nargs="?", default=".", help="project folder (default: .)")
    p_start.add_argument("--json", action="store_true", help="print one JSON object")
    p_start.add_argument("--no-doctor", action="store_true", help="skip the static doctor")
    p_end = sub.add_parser("end", help="append this session's block to TODO.md")
    p_end.add_argument("path", nargs="?", default=".", help="project folder (default: .)")
    p_end.add_argument("--completed", action="append", default=[], metavar="TEXT")
    p_end.add_argument("--in-progress", action="append", default=[], metavar="TEXT")
    p_end.add_argument("--next", action="append", default=[], metavar="TEXT")
    p_end.add_argument("--json", action="store_true", help="print one JSON object")


def _prompt(label: str) -> list[str]:
    print(f"{label} (one per line, empty line to finish):")
    out = []
    while True:
        try:
            line = input("  - ").strip()
        except EOFError:
            break
        if not line:
            break
        out.append(line)
    return out


def run(args: argparse.Namespace) -> int:
    if not Path(args.path).exists():
        print(f"genai session: {args.path} does not exist", file=sys.stderr)
        return 2
    if args.action == "start":
        report = start(args.path, doctor=not args.no_doctor)
        if args.json:
            print(json.dumps(report, indent=2, default=str))
        else:
            print_start(report)
        return 0
    completed, in_progress, next_steps = args.completed, args.in_progress, args.next
    if not (completed or in_progress or next_steps) and sys.stdin.isatty() and not args.json:
        completed = _prompt("Completed")
        in_progress = _prompt("In progress")
        next_steps = _prompt("Next steps")
    try:
        result = end(args.path, completed=completed, in_progress=in_progress, next_steps=next_steps)
    except SessionError as exc:
        print(f"genai session end: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    verb = "Added to" if result["action"] == "extended" else "Wrote"
    print(f"{verb} `Session End: {result['block']}` in TODO.md (commit {result['commit']}).")
    if result["untouched_docs"]:
        print("Not touched this session (update them if anything changed):")
        for rel in result["untouched_docs"]:
            print(f"  - {rel}")
    for rel in result["missing_docs"]:
        print(f"Missing living document: {rel}")
    return 0
