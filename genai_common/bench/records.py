"""Records of a benchmark run: one JSON file with every raw sample, one row in RESULTS.md.

The JSON record (``reference/bench/<stamp>-<kind>-<model>.json``) is the source of truth: plots,
`--compare` and the history are all computed from it. RESULTS.md gets one Markdown table row per
run, appended to the end of the file without rewriting a single existing byte (a user's notes in
that file are theirs). When the file does not end with a bench table, a heading and the table
header come first, so the rows always form a valid table.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from genai_common.formats.markdown import table_header, table_row

SCHEMA = 1
COLUMNS = ("date", "commit", "machine", "backend", "versions", "command", "figures", "record")
TABLE_HEADER = table_header(COLUMNS) + "\n"
TABLE_HEADING = "\n## Benchmarks (`genai bench`)\n\n"


def environment() -> dict[str, Any]:
    """What the figures depend on: `genai env`'s report (runtime.envinfo) under "runtime", the
    host's name, and a short summary of that report (platform, cpu, versions) for people."""
    from genai_common.runtime.envinfo import environment as runtime_env

    env = runtime_env(network=False)  # records are committed: no interface addresses
    installed = {name: fw["version"] for name, fw in env["frameworks"].items() if fw["version"]}
    return {
        "machine": platform.node(),
        "platform": env["os"]["platform"],
        "cpu": env["os"]["machine"],
        "versions": {
            "python": env["python"]["version"],
            "genai-common": env["genai_common"],
            **installed,
        },
        "runtime": env,
    }


def project_root(start: Path) -> Path:
    """The benchmarked project: the nearest folder from `start` up that holds pyproject.toml or
    TODO.md (the rule of continuity's Project.open, which this layer cannot import), else start."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if (candidate / "pyproject.toml").is_file() or (candidate / "TODO.md").is_file():
            return candidate
    return start


def project_commit(start: Path) -> str | None:
    """The project's own commit (short hash, '+dirty' when tracked files changed), or None when
    the project has no git repository of its own: a project folder nested inside another
    repository must not record that repository's commit."""
    from genai_common.runtime.git import commit_label

    root = project_root(start)
    if not (root / ".git").exists():  # a folder (a repository) or a file (a worktree, submodule)
        return None
    return commit_label(root)


def new_record(kind: str, model: str, settings: dict[str, Any], argv: list[str]) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "schema": SCHEMA,
        "kind": kind,
        "model": model,
        "date": now.isoformat(timespec="seconds"),
        "timestamp": time.time(),
        "commit": project_commit(Path.cwd()),
        "command": "genai bench " + " ".join(argv),
        "python": sys.executable,
        "environment": environment(),
        "settings": settings,
    }


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "model"


def record_stem(record: dict[str, Any]) -> str:
    stamp = record["date"].replace(":", "").replace("-", "").replace("+0000", "")
    return f"{stamp[:15]}-{record['kind']}-{_slug(Path(record['model']).name)}"


def write_json(record: dict[str, Any], directory: str | Path) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    from genai_common.runtime import files

    text = json.dumps(record, indent=1, default=_jsonable) + "\n"
    n = 1
    while True:
        path = directory / (
            f"{record_stem(record)}.json" if n == 1 else f"{record_stem(record)}-{n}.json"
        )
        try:  # claim the name (O_EXCL: two concurrent runs never pick the same one) ...
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            n += 1
            continue
        break
    files.write_text(path, text)  # ... then fill it atomically (a kill leaves it empty or whole)
    return path


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def read_json(path: str | Path) -> dict[str, Any]:
    record = json.loads(Path(path).read_text())
    if not isinstance(record, dict) or record.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not a genai bench record (schema {SCHEMA})")
    return record


def backend_and_device(record: dict[str, Any]) -> tuple[str, str | None]:
    """The backend the run used and the device's name, from the record's environment."""
    frameworks = (record["environment"].get("runtime") or {}).get("frameworks") or {}
    name = "torch" if record["kind"] == "diffusion" else "mlx"
    fw = frameworks.get(name) or {}
    device = fw.get("device_name") or (
        fw.get("device") if isinstance(fw.get("device"), dict) else {}
    ).get("name")
    return fw.get("backend") or fw.get("device") or "?", device


def results_row(record: dict[str, Any], headline: str, links: dict[str, str]) -> str:
    env = record["environment"]
    backend, device = backend_and_device(record)
    machine = env["machine"] + (f" ({device})" if device else "")
    versions = ", ".join(
        f"{k} {v}" for k, v in env["versions"].items() if k in ("mlx", "mlx-lm", "mlx-vlm", "torch")
    )
    link_text = " ".join(f"[{name}]({target})" for name, target in links.items())
    cells = [
        record["date"][:16].replace("T", " "),
        record.get("commit") or "-",
        machine,
        backend,
        versions or "-",
        f"`{record['command']}`",
        headline,
        link_text or "-",
    ]
    return table_row(cells) + "\n"


def _ends_with_our_table(text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return False
    last = lines[-1].strip()
    if TABLE_HEADER.splitlines()[0] not in text:
        return False
    return last.startswith("|") and last.endswith("|") and last.count(" | ") == len(COLUMNS) - 1


def append_row(results_md: str | Path, row: str) -> None:
    """Append `row` to RESULTS.md; every existing byte stays as it was (append mode only)."""
    from genai_common.runtime import files

    path = Path(results_md)
    path.parent.mkdir(parents=True, exist_ok=True)

    def add(existing: str | None) -> str:
        existing = existing or ""
        parts = [existing]
        if existing and not existing.endswith("\n"):
            parts.append("\n")
        if _ends_with_our_table(existing):
            parts.append(row)
        else:
            if not existing:
                parts.append("# Results\n")
            parts.extend([TABLE_HEADING, TABLE_HEADER, row])
        return "".join(parts)

    # read-modify-write under the folder's lock, replaced atomically: concurrent runs keep every
    # row, a kill or a file-size limit leaves the old file whole (DocumentError says why)
    files.edit_text(path, add, root=path.parent)


def history(directory: str | Path, *, kind: str, model: str) -> list[dict[str, Any]]:
    """Earlier records of the same kind and model in `directory`, oldest first."""
    out = []
    for path in sorted(Path(directory).glob("*.json")):
        try:
            record = read_json(path)
        except (OSError, ValueError):
            continue
        if record.get("kind") == kind and Path(record.get("model", "")).name == Path(model).name:
            out.append(record)
    return sorted(out, key=lambda r: r.get("timestamp", 0))
