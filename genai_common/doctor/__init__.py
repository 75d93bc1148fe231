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

from genai_common.findings import Report

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
    report.extend(found)
    return report


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
