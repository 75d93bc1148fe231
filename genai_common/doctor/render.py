"""Renderers for a Report: JSON (the contract in reference/ARCHITECTURE.md), Markdown, plain text,
rich table.

rich is imported only by `print_rich`, i.e. only when a table is drawn for a terminal; JSON,
Markdown and plain text use nothing beyond the standard library.
"""

from __future__ import annotations

import json

from genai_common.findings import SHOWN_LIMIT, Report, shown

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# A finding's message or fix is ours, with values from the files inside: longer than the value
# cap, never unbounded (a message that quoted a 20 MB value would otherwise print it whole).
MESSAGE_LIMIT = 4 * SHOWN_LIMIT
ICON = {"error": "✗", "warning": "!", "info": "i"}


def to_json(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2, default=str)


def summary(report: Report) -> str:
    counts = [(s, report.count(s)) for s in ("error", "warning", "info")]
    text = ", ".join(f"{n} {s}{'s' if n != 1 else ''}" for s, n in counts)
    return (
        f"{shown(report.path)}: {report.kind}"
        + (f" ({shown(report.model_type)})" if report.model_type else "")
        + f" — {text}"
    )


def _fact_lines(facts: dict[str, Any], limit: int = 14) -> list[tuple[str, str]]:
    rows = []
    for key, value in facts.items():
        if value is None or (key in ("dtypes", "components", "tensor_types") and not value):
            continue
        if isinstance(value, dict):
            text = ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
        else:
            text = _fmt(value, key)
        rows.append((shown(key), shown(text)))
        if len(rows) >= limit:
            break
    return rows


def _fmt(value: Any, key: str = "") -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and (key.endswith("bytes") or key == "parameters" or value >= 10**6)
        and value.bit_length() <= 200  # never a 4,300-digit conversion (int_max_str_digits)
    ):
        return f"{value:,}"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"an integer of {value.bit_length():,} bits"
    return str(value)


def to_markdown(report: Report) -> str:
    lines = [f"## genai doctor: `{_span(report.path)}`", ""]
    lines.append(
        f"kind **{report.kind}**"
        + (f", model_type `{_span(report.model_type)}`" if report.model_type else "")
        + f" — {report.count('error')} error(s), {report.count('warning')} warning(s), "
        f"{report.count('info')} info"
    )
    lines.append("")
    if report.findings:
        lines += ["| severity | code | finding | fix |", "|---|---|---|---|"]
        for f in report.ordered():
            cell = f.message + (f" (`{f.file}`)" if f.file and f.file not in f.message else "")
            lines.append(f"| {f.severity} | {f.code} | {_md(cell)} | {_md(f.hint or '')} |")
    else:
        lines.append("No findings.")
    rows = _fact_lines(report.facts, limit=40)
    if rows:
        lines += ["", "| fact | value |", "|---|---|"]
        lines += [f"| {k} | {_md(v)} |" for k, v in rows]
    return "\n".join(lines) + "\n"


def _span(text: object) -> str:
    """Inside a Markdown code span: a backtick would end it."""
    return _md(text).replace("`", "'")


def _md(text: object) -> str:
    """A table cell or code span: controls escaped, pipes escaped, length capped."""
    return shown(text, MESSAGE_LIMIT).replace("|", "\\|")


def to_plain(report: Report) -> str:
    lines = [summary(report)]
    for f in report.ordered():
        where = f" [{f.file}]" if f.file and f.file not in f.message else ""
        lines.append(f"{f.severity:<7} {f.code:<8} {shown(f.message, MESSAGE_LIMIT)}{shown(where)}")
        if f.hint:
            lines.append(f"{'':16} fix: {shown(f.hint, MESSAGE_LIMIT)}")
    rows = _fact_lines(report.facts)
    if rows:
        lines.append("facts:")
        lines += [f"  {k:<26} {v}" for k, v in rows]
    return "\n".join(lines) + "\n"


def print_rich(report: Report, file: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Every text from the model path, the files or the catalogue goes in as Text, never as markup:
    # " [config.json]" or "mlx[cpu]" would vanish and "- [/]" would raise MarkupError.
    console = Console(file=file, highlight=False)
    style = {"error": "bold red", "warning": "yellow", "info": "cyan"}
    table = Table(title=Text(summary(report)), title_justify="left", show_lines=False, expand=True)
    table.add_column("", width=1, no_wrap=True)
    table.add_column("code", no_wrap=True)
    table.add_column("finding", ratio=3)
    table.add_column("fix", ratio=2, style="dim")
    for f in report.ordered():
        where = f" [{f.file}]" if f.file and f.file not in f.message else ""
        table.add_row(
            f"[{style[f.severity]}]{ICON[f.severity]}[/]",
            f"[{style[f.severity]}]{f.code}[/]",
            Text(shown(f.message, MESSAGE_LIMIT) + shown(where)),
            Text(shown(f.hint or "", MESSAGE_LIMIT)),
        )
    if report.findings:
        console.print(table)
    else:
        console.print(Text("✓ ", style="green") + Text(summary(report)))
    rows = _fact_lines(report.facts)
    if rows:
        facts = Table(show_header=False, box=None, padding=(0, 2))
        facts.add_column(style="bold")
        facts.add_column()
        for k, v in rows:
            facts.add_row(Text(k), Text(v))
        console.print(facts)
