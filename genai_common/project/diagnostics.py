"""A generated project's diagnostics: what `test/check_*.py` and `genai diagnostics` run.

A project rendered from the genai-templates family names its model in one place, the
`[tool.genai]` table of its pyproject.toml:

    [tool.genai]
    kind = "llm"        # llm | vlm | diffusion | ml
    model = ""          # hub id, or a path relative to pyproject.toml; empty = embedded tiny model

The diagnostic steps, cheapest first (each one a function here, so that an update of
genai-common improves every project without touching its files):

    check_config     the doctor on the metadata only (configs, tokenizer files, index)
    check_model      the doctor with the safetensors headers: shapes, dtypes, quantization
    load_test        load the model with the kind's loader, in a child process
    inference_test   a few tokens / one tiny image / one forward pass, in a child process

`genai diagnostics [--record]` runs them all, prints a report and, with --record, adds one row
to reference/RESULTS.md (date, versions, machine, figures).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genai_common.formats.markdown import table_header, table_row
from genai_common.project.core import Project, ProjectError, find_project

RESULTS_FILE = "reference/RESULTS.md"
RESULTS_HEADING = "## Diagnostics runs"
RESULTS_COLUMNS = (
    "Date",
    "Model",
    "Doctor",
    "Load s",
    "Inference s",
    "Output",
    "genai-common",
    "Frameworks",
    "Machine",
)
CHILD_TIMEOUT_S = 600.0


def model_path(project: Project, *, build: bool = True) -> str:
    """Where the model is: a local path (str) or the hub id as written.

    An empty model means the embedded tiny model of the project's kind; it is built with
    `genai_common.testing.tiny.build` on first use (seconds, no network).
    """
    from genai_common.testing.tiny import project_model_path

    if project.kind is None:
        raise ProjectError(f"{project.root}: no [tool.genai] kind in pyproject.toml")
    return project_model_path(project.root, project.kind, project.model, build_tiny=build)


# -- the steps -------------------------------------------------------------------------------


@dataclass
class Step:
    name: str
    ok: bool
    seconds: float
    summary: str  # one line
    details: list[str] = field(default_factory=list)  # findings, stderr tail, ...
    value: Any = None


def _doctor(project: Project, *, metadata_only: bool) -> Step:
    name = "config" if metadata_only else "model"
    from genai_common.doctor import diagnose

    start = time.perf_counter()
    try:
        report = diagnose(model_path(project), metadata_only=metadata_only, kind=project.kind)
    except Exception as exc:  # e.g. ModelPathError: nothing at that path or hub id
        return Step(name, False, time.perf_counter() - start, f"could not run: {exc}")
    seconds = time.perf_counter() - start
    counts = {s: sum(f.severity == s for f in report.findings) for s in ("error", "warning")}
    details = [
        f"{f.severity.upper():7} {f.code} {f.message}" + (f"  (fix: {f.hint})" if f.hint else "")
        for f in report.findings
        if f.severity != "info"
    ]
    summary = f"{counts['error']} error(s), {counts['warning']} warning(s)"
    return Step(name, counts["error"] == 0, seconds, summary, details, report)


def check_config(project: Project) -> Step:
    """The static doctor on configs, tokenizer files and index files (no weight files read)."""
    return _doctor(project, metadata_only=True)


def check_model(project: Project) -> Step:
    """The static doctor including safetensors headers: tensor shapes against the config."""
    return _doctor(project, metadata_only=False)


def load_test(project: Project, *, timeout: float = CHILD_TIMEOUT_S) -> Step:
    """Load the model with its kind's loader in a child process (a crash cannot take us down)."""
    return _child_step("load", "genai_common.project.diagnostics:_load_child", project, timeout)


def inference_test(project: Project, *, timeout: float = CHILD_TIMEOUT_S) -> Step:
    """A quick inference in a child process: a few tokens, one tiny image or one forward pass.

    It can fail on garbage (issue 10 part 8): an llm or vlm reply to the chat prompt must be the
    trained tiny model's known answer when the project runs its embedded tiny model, and must
    look like text (runtime.inference.garbage_reasons) for any other model."""
    from genai_common.formats.pyproject import model_location

    tiny = project.kind is not None and model_location(project.root, project.kind, project.model)[1]
    return _child_step(
        "inference",
        "genai_common.project.diagnostics:_infer_child",
        project,
        timeout,
        bool(tiny),
    )


def _child_step(name: str, target: str, project: Project, timeout: float, *extra: Any) -> Step:
    from genai_common.runtime.isolate import run_isolated

    path = model_path(project)
    result = run_isolated(target, project.kind, path, *extra, timeout=timeout)
    if result.ok:
        value = result.value or {}
        return Step(
            name,
            not value.get("failed"),
            float(value.get("seconds", result.duration)),
            value.get("summary", "ok"),
            value=value,
        )
    why = result.error or (
        f"signal {result.signal}" if result.signal else f"exit {result.returncode}"
    )
    tail = [line for line in (result.stderr_tail or "").splitlines() if line.strip()][-15:]
    return Step(name, False, result.duration, f"failed: {why}", tail)


# Child-process bodies: top-level functions, resolved by name in the child.


def _load_child(kind: str, path: str) -> dict[str, Any]:
    from genai_common.runtime.loading import load_summary

    record = load_summary(kind, path)
    seconds = float(record["seconds"])
    peak = record.get("mlx_peak") or record.get("rss_peak")
    memory = f", peak {peak / 2**20:.1f} MiB" if peak else ""  # a tiny model is under 1 MiB
    return {"seconds": seconds, "summary": f"loaded in {seconds:.2f} s{memory}", "record": record}


QUALITY_TOKENS = 40  # the chat reply judged (the tiny tokenizers spend ~1 token a character)


def _infer_child(kind: str, path: str, tiny: bool = False) -> dict[str, Any]:
    from genai_common.runtime import loading
    from genai_common.runtime.inference import NONFINITE, quick_inference

    loaded = loading.LOADERS[kind](path)
    start = time.perf_counter()
    _, output = quick_inference(kind, loaded)
    seconds = time.perf_counter() - start
    out = {"seconds": seconds, "summary": f"{output} in {seconds:.2f} s", "output": output}
    if kind == "diffusion" and NONFINITE in output:
        out.update(failed=True, summary=f"{output}: the image is not a picture (overflow?)")
    if kind in ("llm", "vlm"):
        problem = reply_problem(kind, path, tiny)
        if problem:
            out.update(failed=True, summary=f"{output} in {seconds:.2f} s; {problem}")
    return out


def reply_problem(kind: str, path: str, tiny: bool) -> str:
    """Why the greedy reply to the chat prompt is wrong ("" when it is fine): for the embedded
    trained tiny model, not its known answer; for any other model, garbage."""
    from genai_common.runtime.inference import garbage_reasons
    from genai_common.testing.quality import CAPITAL_ANSWER, CAPITAL_PROMPT, greedy_chat

    reply = greedy_chat(path, CAPITAL_PROMPT, kind, max_tokens=QUALITY_TOKENS)
    if tiny:
        if reply.strip().startswith(CAPITAL_ANSWER):
            return ""
        return f"the tiny model answered {reply!a}, expected {CAPITAL_ANSWER!a}"
    reasons = garbage_reasons(reply)
    return f"garbage reply {reply!a}: {'; '.join(reasons)}" if reasons else ""


STEPS: dict[str, Callable[[Project], Step]] = {
    "config": check_config,
    "model": check_model,
    "load": load_test,
    "inference": inference_test,
}


# -- running and recording -------------------------------------------------------------------


def run_steps(project: Project, names: tuple[str, ...] = tuple(STEPS)) -> list[Step]:
    """Run the named steps in order; later steps still run after a failure (all is reported)."""
    return [STEPS[name](project) for name in names]


def format_step(step: Step) -> str:
    mark = "PASS" if step.ok else "FAIL"
    lines = [f"[{mark}] {step.name:<10} {step.summary} ({step.seconds:.2f} s)"]
    lines += [f"         {line}" for line in step.details]
    return "\n".join(lines)


def results_row(project: Project, steps: list[Step]) -> list[str]:
    """One RESULTS.md row: date, model, doctor verdict, figures, versions, machine."""
    import platform
    from datetime import datetime

    from genai_common.runtime.envinfo import versions

    by_name = {s.name: s for s in steps}

    def seconds(name: str) -> str:
        step = by_name.get(name)
        if step is None:
            return "-"
        return f"{step.seconds:.2f}" if step.ok else "FAIL"

    frameworks = {
        "llm": ("mlx", "mlx-lm"),
        "vlm": ("mlx", "mlx-vlm"),
        "diffusion": ("torch", "diffusers"),
        "ml": ("mlx",),
    }[project.kind]
    found = versions(("genai-common", *frameworks))
    doctor = by_name.get("model") or by_name.get("config")
    output = by_name.get("inference")
    return [
        datetime.now().strftime("%Y-%m-%d %H:%M"),
        project.model or f"tiny-{project.kind}",
        ("ok: " if doctor.ok else "FAIL: ") + doctor.summary if doctor else "-",
        seconds("load"),
        seconds("inference"),
        (output.value or {}).get("output", "-") if output and output.ok else "-",
        found.pop("genai-common", "?"),
        ", ".join(f"{d} {v}" for d, v in found.items()),
        f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
    ]


def record_results(
    root: Path,
    row: list[str],
    *,
    heading: str = RESULTS_HEADING,
    columns: tuple[str, ...] = RESULTS_COLUMNS,
) -> Path:
    """Add `row` to the table under `heading` ("## Diagnostics runs") in reference/RESULTS.md.

    Only inserts: the row goes after the table's last row (or a new table is appended, with its
    heading when the heading is missing), so every line the user wrote stays where it was.
    """
    path = root / RESULTS_FILE
    text = path.read_text(encoding="utf-8") if path.exists() else "# Results\n"
    new_row = table_row(row)
    header = table_header(columns)
    lines = text.splitlines()
    title = heading
    heading = next((i for i, line in enumerate(lines) if line.strip() == title), None)
    if heading is None:
        lines += ["", title, "", header, new_row]
    else:
        end = heading + 1
        while end < len(lines) and not lines[end].startswith("## "):
            end += 1
        table_rows = [i for i in range(heading + 1, end) if lines[i].lstrip().startswith("|")]
        if table_rows:
            lines.insert(table_rows[-1] + 1, new_row)
        else:
            lines[heading + 1 : heading + 1] = ["", header, new_row]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- entry points: `genai diagnostics` and the standalone test/check_*.py scripts ------------


def standalone(test: Callable[[], Any]) -> None:
    """Run one pytest-style check function as a script: exit 0 when it passes, 1 when not."""
    try:
        test()
    except AssertionError as exc:
        print(f"FAIL {test.__name__}\n{exc}")
        sys.exit(1)
    print(f"PASS {test.__name__}")
    sys.exit(0)


def assert_step(step: Step) -> Step:
    """pytest helper: fail with the step's full report when it did not pass."""
    assert step.ok, format_step(step)
    return step


def assert_findings_clear(step: Step, prefixes: tuple[str, ...]) -> Step:
    """pytest helper: no error finding whose code starts with one of `prefixes` (e.g. "TOK")."""
    assert step.value is not None, format_step(step)
    errors = [
        f"{f.code} {f.message}" + (f" (fix: {f.hint})" if f.hint else "")
        for f in step.value.findings
        if f.severity == "error" and f.code.startswith(prefixes)
    ]
    assert not errors, "\n".join(errors)
    return step


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--project", default=".", help="project folder (default: the one holding the cwd)"
    )
    parser.add_argument(
        "--steps",
        default=",".join(STEPS),
        help=f"comma-separated steps to run, in order (default: {','.join(STEPS)})",
    )
    parser.add_argument(
        "--record", action="store_true", help=f"add a row to {RESULTS_FILE} with the figures"
    )
    parser.add_argument(
        "--model-path",
        action="store_true",
        help="print the model's path (building the tiny model when none is named) and exit",
    )


def run(args: argparse.Namespace) -> int:
    try:
        project = find_project(args.project)
    except ProjectError as exc:
        print(f"genai diagnostics: {exc}", file=sys.stderr)
        return 2
    if args.model_path:
        print(model_path(project))
        return 0
    names = tuple(n.strip() for n in args.steps.split(",") if n.strip())
    unknown = [n for n in names if n not in STEPS]
    if unknown:
        print(
            f"genai diagnostics: unknown step(s) {unknown}; known: {list(STEPS)}", file=sys.stderr
        )
        return 2
    print(f"Diagnostics of {project.root.name} ({project.kind}): model {project.model or 'tiny'}")
    print(f"  path: {model_path(project)}")
    steps = run_steps(project, names)
    for step in steps:
        print(format_step(step))
    ok = all(s.ok for s in steps)
    if args.record:
        where = record_results(project.root, results_row(project, steps))
        print(f"Recorded in {where.relative_to(project.root)}")
    print("All diagnostics passed." if ok else "Some diagnostics FAILED (see above).")
    return 0 if ok else 1
