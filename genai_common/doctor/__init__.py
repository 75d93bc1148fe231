"""The doctor: diagnose a model path before loading it, without reading weights.

    diagnose(path, *, metadata_only=False, kind=None, fetch_metadata=False,
             select=(), ignore=()) -> Report
    diagnose_dir(md, *, select=(), ignore=()) -> Report

The flow is one way: path -> ModelDir (genai_common.model) -> md.read_all(): every file the
loader would read is read once and every problem recorded -> the rules of md.kind judge what was
read (registry.run_rules) -> facts (inspect.facts, numbers without judgement) -> Report -> a
renderer (render.py). The command is command.py; `--load`/`--infer` then run the loader in a child
process (rules/load.py). Only the standard library is imported here: the static path stays fast.
"""

from __future__ import annotations

from genai_common.findings import Finding, Report

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from genai_common.model import ModelDir


def diagnose_dir(md: ModelDir, *, select: Iterable[str] = (), ignore: Iterable[str] = ()) -> Report:
    """Read everything once, run the static rules of md.kind, gather the facts."""
    from genai_common.doctor.registry import run_rules, stopped

    md.read_all()
    report = Report(path=md.display, kind=md.kind, model_type=md.model_type)
    found = run_rules(md, select=select, ignore=ignore)
    try:
        from genai_common.doctor.inspect import facts

        report.facts = facts(md)
    except Exception as exc:  # facts are best effort: a damaged file is already a finding
        found.append(stopped("facts", exc))
    report.extend(bounded(found))
    return report


MAX_PER_CODE = 50  # findings kept per code; the rest are counted in one more finding
MAX_MESSAGE = 2000  # characters of a message (names and values from files can be megabytes)


def bounded(found: list[Finding]) -> list[Finding]:
    """At most MAX_PER_CODE findings per code (plus one that counts the rest), each message at
    most MAX_MESSAGE characters: a hostile header with a million bad entries gives a report of
    KBs, not hundreds of MB (issue 15)."""
    per_code: dict[str, int] = {}
    out: list[Finding] = []
    dropped: dict[str, list] = {}  # code -> [count, worst severity, hint]
    rank = {"info": 0, "warning": 1, "error": 2}
    for f in found:
        n = per_code[f.code] = per_code.get(f.code, 0) + 1
        if n > MAX_PER_CODE:
            d = dropped.setdefault(f.code, [0, f.severity, f.hint])
            d[0] += 1
            if rank.get(f.severity, 0) > rank.get(d[1], 0):
                d[1] = f.severity
            continue
        if len(f.message) > MAX_MESSAGE:
            cut = len(f.message) - MAX_MESSAGE
            f = f._replace(message=f"{f.message[:MAX_MESSAGE]}... ({cut:,} characters more)")
        out.append(f)
    for code, (count, severity, hint) in dropped.items():
        out.append(
            Finding(
                code,
                severity,
                f"... and {count:,} more {code} findings (the first {MAX_PER_CODE} are shown)",
                hint,
                None,
            )
        )
    return out


def diagnose(
    path: str | Path,
    *,
    metadata_only: bool = False,
    kind: str | None = None,
    fetch_metadata: bool = False,
    select: Iterable[str] = (),
    ignore: Iterable[str] = (),
) -> Report:
    """Diagnose a model directory, .safetensors/.gguf file or cached hub id.

    Raises ModelPathError (exit code 2) only when there is nothing to diagnose."""
    from genai_common.model import ModelDir

    md = ModelDir.open(path, metadata_only=metadata_only, fetch_metadata=fetch_metadata, kind=kind)
    return diagnose_dir(md, select=select, ignore=ignore)
