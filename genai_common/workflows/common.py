"""What every workflow step leaves behind: one RESULTS.md row and one TODO.md session-log line,
written through runtime/files.edit_text (atomic, locked) without touching the user's lines."""

from __future__ import annotations

import time
from typing import Any

RESULTS_HEADING = "## Workflow runs (genai convert / genai finetune)"
RESULTS_HEADER = (
    "| date (UTC) | step | model | output | size on disk | time | metrics | verdict |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
)


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime())


def results_path(root: str) -> str:
    """The project's RESULTS.md: reference/RESULTS.md in a generated project (where the template
    puts it and `genai diagnostics` writes), else RESULTS.md in the folder."""
    import os

    ref = os.path.join(root, "reference", "RESULTS.md")
    return ref if os.path.isfile(ref) else os.path.join(root, "RESULTS.md")


def _shown(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def results_row(
    path: str,
    step: str,
    model: str,
    output: str,
    size: str,
    seconds: Any,
    metrics: dict[str, Any],
    verdict: str,
) -> str:
    """Append one row to RESULTS.md's workflow table (created at the end when absent)."""
    from genai_common.runtime.files import edit_text

    shown = ", ".join(f"{k}={_shown(v)}" for k, v in metrics.items())
    row = (
        "| "
        + " | ".join(_cell(x) for x in (_now(), step, model, output, size, seconds, shown, verdict))
        + " |\n"
    )

    def change(old: str | None) -> str:
        text = old or "# RESULTS\n"
        if RESULTS_HEADING not in text:
            sep = "" if text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
            return text + sep + RESULTS_HEADING + "\n\n" + RESULTS_HEADER + row
        head, _, tail = text.partition(RESULTS_HEADING)
        # the table ends at the first line after it that is not a table row
        lines = tail.splitlines(keepends=True)
        end = 0
        seen_table = False
        for i, line in enumerate(lines):
            if line.startswith("|"):
                seen_table = True
                end = i + 1
            elif seen_table:
                break
            else:
                end = i + 1
        if lines and not lines[end - 1].endswith("\n"):
            lines[end - 1] += "\n"
        return head + RESULTS_HEADING + "".join(lines[:end]) + row + "".join(lines[end:])

    edit_text(path, change)
    return row


def todo_line(path: str, text: str) -> str:
    """Append one session-log line at the end of TODO.md (the session log is its last section)."""
    from genai_common.runtime.files import edit_text

    line = f"- {_now()} UTC {text}\n"

    def change(old: str | None) -> str:
        base = old if old is not None else "# TODO\n\n## Session log\n\n"
        if base and not base.endswith("\n"):
            base += "\n"
        return base + line

    edit_text(path, change)
    return line


def human_bytes(n: int) -> str:
    """Bytes in binary units: the one formatter (model.values.gib; this said "MB" for MiB)."""
    from genai_common.model.values import gib

    return gib(n)
