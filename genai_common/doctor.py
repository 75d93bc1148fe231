"""`genai doctor`: diagnose a model path before loading it, without reading weights.

    diagnose(path, *, metadata_only=False, kind=None, fetch_metadata=False) -> Report

path -> ModelDir (reads metadata lazily, once) -> the check families of its kind -> Report ->
renderer. `--load` / `--infer` then run the load test / a quick inference in a child process
(genai_common.runtime.isolate) and map the loader's error back to the static finding that
explains it (checks/load.py).

Exit codes (DESIGN.md): 0 no finding at or above --fail-on (default error); 1 at least one; 2 the
doctor could not run (bad arguments, path not found). A malformed model file is a finding.
This module imports only the standard library at the top: the static path stays fast.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys

from genai_common.report import KINDS, Report

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

    from genai_common.model_dir import ModelDir


def diagnose_dir(md: ModelDir) -> Report:
    """Run the static families on an opened ModelDir."""
    from genai_common.checks import finding, run_checks

    report = Report(path=md.display, kind=md.kind, model_type=md.model_type)
    found = run_checks(md)
    try:
        from genai_common.facts import facts

        report.facts = facts(md)
    except Exception as exc:  # facts are best effort: a damaged file is already a finding
        found.append(finding("DOC001", f"facts could not be gathered: {type(exc).__name__}: {exc}"))
    seen = {(f.code, f.message, f.file) for f in found}
    for f in md.read_findings:  # problems met while reading, in the order they were met
        if (f.code, f.message, f.file) not in seen:
            seen.add((f.code, f.message, f.file))
            found.append(f)
    report.extend(found)
    return report


def diagnose(
    path: str | Path,
    *,
    metadata_only: bool = False,
    kind: str | None = None,
    fetch_metadata: bool = False,
) -> Report:
    """Diagnose a model directory, .safetensors/.gguf file or cached hub id.

    Raises ModelPathError (exit code 2) only when there is nothing to diagnose."""
    from genai_common.model_dir import ModelDir

    md = ModelDir.open(path, metadata_only=metadata_only, fetch_metadata=fetch_metadata, kind=kind)
    return diagnose_dir(md)


# ---------------------------------------------------------------------------------------------
# the command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        nargs="?",
        help="model directory, a .safetensors or .gguf file, or a hub id in the local HF cache",
    )
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON object (schema 1)")
    out.add_argument("--markdown", action="store_true", help="print a Markdown report")
    parser.add_argument(
        "--metadata-only",
        action="store_true",
        help="judge configs, tokenizer and index files without the weight files",
    )
    parser.add_argument(
        "--fetch-metadata",
        action="store_true",
        help="for a hub id: download only configs, tokenizer and index files (huggingface_hub)",
    )
    parser.add_argument("--kind", choices=KINDS, help="override the detected kind")
    parser.add_argument(
        "--fail-on",
        choices=("error", "warning"),
        default="error",
        help="lowest severity that makes the exit code 1 (default: error)",
    )
    parser.add_argument(
        "--load", action="store_true", help="also load the model in a child process"
    )
    parser.add_argument(
        "--infer", action="store_true", help="also run a quick inference (implies --load)"
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds allowed for --load/--infer (600)"
    )
    parser.add_argument(
        "--list-checks",
        action="store_true",
        help="print the check catalogue as a plain table (--markdown: as reference/CHECKS.md; "
        "--json: a list of objects) and exit",
    )


def _emit(report: Report, args: argparse.Namespace) -> None:
    from genai_common import render

    if args.json:
        sys.stdout.write(render.to_json(report) + "\n")
    elif args.markdown:
        sys.stdout.write(render.to_markdown(report))
    elif sys.stdout.isatty():
        render.print_rich(report)
    else:
        sys.stdout.write(render.to_plain(report))


def run(args: argparse.Namespace) -> int:
    from genai_common.model_dir import ModelDir, ModelPathError

    if args.list_checks:
        from genai_common.catalogue import catalogue_json, catalogue_markdown, catalogue_plain

        if args.json:
            sys.stdout.write(json.dumps(catalogue_json(), indent=2) + "\n")
        elif args.markdown:
            sys.stdout.write(catalogue_markdown())
        else:
            sys.stdout.write(catalogue_plain())
        return 0
    if not args.path:
        print("genai doctor: give a model PATH (or --list-checks)", file=sys.stderr)
        return 2
    if args.fetch_metadata and os.path.exists(os.path.expanduser(args.path)):
        print("genai doctor: --fetch-metadata is for hub ids; PATH is local", file=sys.stderr)
        return 2
    try:
        md = ModelDir.open(
            args.path,
            metadata_only=args.metadata_only,
            fetch_metadata=args.fetch_metadata,
            kind=args.kind,
        )
    except ModelPathError as exc:
        print(f"genai doctor: {exc}", file=sys.stderr)
        return 2
    # The static run allocates a bounded amount (the readers cap every file) and makes almost no
    # reference cycles: without the collector's passes it is 1-2 ms faster on a 70B checkpoint.
    gc.disable()
    try:
        report = diagnose_dir(md)
    finally:
        gc.enable()
    if args.load or args.infer:
        from genai_common.checks.load import runtime_findings

        report.extend(runtime_findings(report, md, infer=args.infer, timeout=args.timeout))
    _emit(report, args)
    return report.exit_code(args.fail_on)
