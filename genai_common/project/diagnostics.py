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


# How a user gets a hub model into the project (issue 16): said wherever one is not found.
GET_MODEL_HINT = (
    "to get it: `genai diagnostics --fetch-metadata` (configs and tokenizer only), "
    "`hf download ORG/NAME` (the whole model into the Hugging Face cache), or set "
    "[tool.genai] model to a local folder"
)


def _doctor(project: Project, *, metadata_only: bool, fetch_metadata: bool = False) -> Step:
    name = "config" if metadata_only else "model"
    from genai_common.doctor import diagnose

    start = time.perf_counter()
    try:
        report = diagnose(
            model_path(project),
            metadata_only=metadata_only,
            kind=project.kind,
            fetch_metadata=fetch_metadata,
        )
    except Exception as exc:  # e.g. ModelPathError: nothing at that path or hub id
        text = f"could not run: {exc}"
        if "Hugging Face cache" in text:
            text += f"; {GET_MODEL_HINT}"
        return Step(name, False, time.perf_counter() - start, text)
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


def load_test(
    project: Project, *, timeout: float = CHILD_TIMEOUT_S, trust_remote_code: bool = False
) -> Step:
    """Load the model with its kind's loader in a child process (a crash cannot take us down)."""
    return _child_step(
        "load", "genai_common.project.diagnostics:_load_child", project, timeout, trust_remote_code
    )


def inference_test(
    project: Project, *, timeout: float = CHILD_TIMEOUT_S, trust_remote_code: bool = False
) -> Step:
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
        trust_remote_code,
        (bool(tiny),),
    )


def _child_step(
    name: str,
    target: str,
    project: Project,
    timeout: float,
    trust: bool = False,
    args: tuple[Any, ...] = (),
) -> Step:
    from genai_common.runtime.isolate import run_isolated
    from genai_common.runtime.loading import CustomCodeRefused, refuse_custom_code

    path = model_path(project)
    try:  # the trust boundary: no child starts on a folder that names code (SEC001)
        refuse_custom_code(path, trust)
    except CustomCodeRefused as exc:
        return Step(name, False, 0.0, f"SEC001 {exc}")
    extra = {"trust_remote_code": True} if trust else {}
    result = run_isolated(target, project.kind, path, *args, timeout=timeout, **extra)
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


def _load_child(kind: str, path: str, **kwargs: Any) -> dict[str, Any]:
    from genai_common.runtime.loading import load_summary

    record = load_summary(kind, path, **kwargs)
    seconds = float(record["seconds"])
    from genai_common.runtime.memory import describe_peak

    peak = describe_peak(record)  # says which peak: MLX active, or process RSS (issue 16)
    memory = f", {peak}" if peak else ""
    return {"seconds": seconds, "summary": f"loaded in {seconds:.2f} s{memory}", "record": record}


QUALITY_TOKENS = 40  # the chat reply judged (the tiny tokenizers spend ~1 token a character)


def _infer_child(kind: str, path: str, tiny: bool = False, **kwargs: Any) -> dict[str, Any]:
    from genai_common.runtime import loading
    from genai_common.runtime.inference import NONFINITE, quick_inference

    loaded = loading.LOADERS[kind](path, **kwargs)
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


def run_steps(
    project: Project,
    names: tuple[str, ...] = tuple(STEPS),
    *,
    trust_remote_code: bool = False,
    fetch_metadata: bool = False,
) -> list[Step]:
    """Run the named steps in order; later steps still run after a failure (all is reported).
    The load and inference steps refuse a folder that names code unless trust_remote_code;
    `fetch_metadata`: the doctor steps download a hub model's metadata files first."""
    out = []
    for name in names:
        if fetch_metadata and name in ("config", "model"):
            out.append(_doctor(project, metadata_only=name == "config", fetch_metadata=True))
        elif name in ("load", "inference"):
            out.append(STEPS[name](project, trust_remote_code=trust_remote_code))
        else:
            out.append(STEPS[name](project))
    return out


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


def insert_results_row(
    text: str | None,
    row: list[str],
    *,
    heading: str = RESULTS_HEADING,
    columns: tuple[str, ...] = RESULTS_COLUMNS,
) -> str:
    """`text` (RESULTS.md; None when there is none) with `row` added to the table under
    `heading` ("## Diagnostics runs"). Only inserts: the row goes after the table's last row (or a new table
    is appended, with its heading when the heading is missing), and every byte the user wrote
    stays as it was: CRLF line endings, form feeds, U+2028 (split on "\n" only, never with
    str.splitlines, which breaks at those too)."""
    text = "# Results\n" if text is None else text
    cr = "\r" if "\r\n" in text else ""
    lines = text.split("\n")
    final_newline = lines[-1] == ""
    if final_newline:
        lines.pop()

    def bare(line: str) -> str:
        return line[:-1] if line.endswith("\r") else line

    title = heading
    header = table_header(columns).replace("\n", cr + "\n")
    ours = [c + cr for c in ("", header, table_row(row))]
    found = next((i for i, ln in enumerate(lines) if bare(ln).strip() == title), None)
    if found is None:
        lines += [cr, title + cr, *ours]
        final_newline = True
    else:
        end = found + 1
        while end < len(lines) and not bare(lines[end]).startswith("## "):
            end += 1
        rows = [i for i in range(found + 1, end) if bare(lines[i]).lstrip().startswith("|")]
        at = rows[-1] + 1 if rows else found + 1
        final_newline = final_newline or at == len(lines)  # our row ends the file
        lines[at:at] = ours[2:] if rows else ours
    return "\n".join(lines) + ("\n" if final_newline else "")


def record_results(
    root: Path,
    row: list[str],
    *,
    heading: str = RESULTS_HEADING,
    columns: tuple[str, ...] = RESULTS_COLUMNS,
) -> Path:
    """Add `row` to reference/RESULTS.md (see insert_results_row): a read-modify-write under the
    project's lock, written atomically (runtime/files.py), so concurrent `--record` runs keep
    every row and a kill never leaves a cut file. DocumentError when it cannot be written."""
    from genai_common.runtime import files

    path = root / RESULTS_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise files.DocumentError(path.parent, f"cannot be made: {exc.strerror or exc}") from None
    files.edit_text(
        path,
        lambda text: insert_results_row(text, row, heading=heading, columns=columns),
        root=root,
    )
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
        "--trust-remote-code",
        action="store_true",
        help="let the load and inference steps run code the model folder names (model_file, "
        "auto_map); without it such a folder is refused (SEC001)",
    )
    parser.add_argument(
        "--fetch-metadata",
        action="store_true",
        help="download a hub model's configs and tokenizer files (never weights) before the "
        "doctor steps",
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
    if args.record:  # a RESULTS.md that cannot be written is said before any step runs
        from genai_common.runtime import files

        try:
            files.read_text(project.root / RESULTS_FILE, project.root)
        except files.DocumentError as exc:
            print(f"genai diagnostics: not recorded: {exc}", file=sys.stderr)
            return 2
    print(f"Diagnostics of {project.root.name} ({project.kind}): model {project.model or 'tiny'}")
    print(f"  path: {model_path(project)}")
    steps = run_steps(
        project,
        names,
        trust_remote_code=args.trust_remote_code,
        fetch_metadata=args.fetch_metadata,
    )
    for step in steps:
        print(format_step(step))
    ok = all(s.ok for s in steps)
    if args.record:
        from genai_common.runtime.files import DocumentError

        try:
            where = record_results(project.root, results_row(project, steps))
        except DocumentError as exc:
            print(f"genai diagnostics: not recorded: {exc}", file=sys.stderr)
            return 2
        print(f"Recorded in {where.relative_to(project.root)}")
        from genai_common.project import facts  # issue 16: the documents follow the model

        try:
            for rel in facts.refresh(project):
                print(f"Facts block refreshed in {rel}")
        except DocumentError as exc:
            print(f"genai diagnostics: facts block not refreshed: {exc}", file=sys.stderr)
    print("All diagnostics passed." if ok else "Some diagnostics FAILED (see above).")
    return 0 if ok else 1
