"""`genai doctor PATH [--json|--markdown] [--metadata-only] [--load|--infer] [--select/--ignore]`.

Diagnoses a model path with genai_common.doctor.diagnose_dir and renders the report; `--load` /
`--infer` then run the load test / a quick inference in a child process and map the loader's
error back to the static finding that explains it (rules/load.py).

Selection follows repo-review: `--select CODES` keeps only the named codes or families (CFG,
QNT031, "*"), `--ignore CODES` drops them; both take comma-separated lists and may repeat. A
project sets its defaults in pyproject.toml, `[tool.genai.doctor] select = [...]`, `ignore =
[...]` (the nearest pyproject.toml above the working directory; the command line wins).

Exit codes (reference/CONTRACTS.md): 0 no finding at or above --fail-on (default error); 1 at
least one; 2 the doctor could not run (bad arguments, path not found). A malformed model file is
a finding. Only the standard library is imported at the top: the static path stays fast.
"""

from __future__ import annotations

import gc
import json
import os
import sys

from genai_common.findings import KINDS

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from genai_common.findings import Report
    from genai_common.model import ModelDir


def _codes(values: list[str] | None) -> list[str]:
    """CODES from repeated, comma-separated flags: ["CFG,QNT031", "TOK"] -> 3 selectors."""
    return [c.strip() for v in values or () for c in v.split(",") if c.strip()]


def configured(start: str | None = None) -> dict[str, list[str]]:
    """[tool.genai.doctor] select / ignore from the nearest pyproject.toml above `start` (the
    working directory). The file is parsed only when it names the table: most never do."""
    here = os.path.abspath(start or os.getcwd())
    while True:
        candidate = os.path.join(here, "pyproject.toml")
        if os.path.isfile(candidate):
            try:
                with open(candidate, "rb") as fh:
                    raw = fh.read(1 << 20)
            except OSError:
                return {}
            if b"[tool.genai.doctor]" not in raw:
                return {}
            import tomllib

            try:
                table = tomllib.loads(raw.decode("utf-8"))["tool"]["genai"]["doctor"]
            except (tomllib.TOMLDecodeError, UnicodeDecodeError, KeyError, TypeError):
                return {}
            return {
                key: [str(c) for c in table.get(key, ()) if isinstance(c, str)]
                for key in ("select", "ignore")
                if isinstance(table.get(key), list)
            }
        parent = os.path.dirname(here)
        if parent == here:
            return {}
        here = parent


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from genai_common.distributed.hostfile import BACKENDS  # not on fast_args' static path

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
        "--trust-remote-code",
        action="store_true",
        help="let --load/--infer run Python code the model folder names (model_file, auto_map); "
        "without it such a folder is refused (SEC001)",
    )
    parser.add_argument(
        "--weights",
        action="store_true",
        help="also read every tensor's values (streaming, one tensor at a time): NaN/Inf, "
        "zero or constant tensors, zero quantization scales, layer-norm outliers (WGT)",
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds allowed for --load/--infer (600)"
    )
    parser.add_argument(
        "--select",
        action="append",
        metavar="CODES",
        help="keep only these codes or families (comma-separated; repo-review semantics)",
    )
    parser.add_argument(
        "--ignore",
        action="append",
        metavar="CODES",
        help="drop these codes or families (comma-separated)",
    )
    dist = parser.add_argument_group("distributed (mlx.launch)")
    dist.add_argument(
        "--hosts",
        metavar="HOSTFILE",
        help="preflight a hostfile (mlx.launch / mlx.distributed_config JSON, or one host per "
        "line): reachability, versions, memory plan per rank; --infer adds the sharded smoke test",
    )
    dist.add_argument(
        "--ranks", type=int, metavar="N", help="plan (and with --infer, smoke-test) N local ranks"
    )
    dist.add_argument(
        "--backend", choices=BACKENDS, help="mlx.launch backend (default: the hostfile's, or ring)"
    )
    dist.add_argument(
        "--parallel",
        choices=("auto", "tensor", "pipeline"),
        default="auto",
        help="parallel mode of the plan (auto: as sharded_load picks)",
    )
    dist.add_argument(
        "--context", type=int, default=4096, help="context length of the KV-cache plan (4096)"
    )
    dist.add_argument(
        "--connect-timeout", type=int, default=5, help="ssh ConnectTimeout in seconds (5)"
    )
    dist.add_argument(
        "--python",
        metavar="PY",
        help="the Python interpreter on the remote hosts (mlx.launch --python), when their venv "
        "is at another path; the probe runs `PY -m genai_common.cli env --json` there",
    )
    parser.add_argument(
        "--list-checks",
        action="store_true",
        help="print the check catalogue as a plain table (--markdown: as reference/CHECKS.md; "
        "--json: a list of objects) and exit",
    )


# `genai doctor PATH [--json|--markdown] [--metadata-only]`, the call pre-commit hooks and CI
# make, as add_arguments' parser gives it (tests/test_doctor_cli.py compares the two on every
# such call): cli.py then never imports argparse (3-4 ms with gettext and locale, issue 14).
FAST_DEFAULTS: dict[str, object] = {
    "path": None,
    "json": False,
    "markdown": False,
    "metadata_only": False,
    "fetch_metadata": False,
    "kind": None,
    "fail_on": "error",
    "load": False,
    "infer": False,
    "trust_remote_code": False,
    "weights": False,
    "timeout": 600.0,
    "select": None,
    "ignore": None,
    "hosts": None,
    "ranks": None,
    "backend": None,
    "parallel": "auto",
    "context": 4096,
    "connect_timeout": 5,
    "python": None,
    "list_checks": False,
}
FAST_FLAGS = {"--json": "json", "--markdown": "markdown", "--metadata-only": "metadata_only"}


def fast_args(argv: list[str]) -> argparse.Namespace | None:
    """The parsed arguments of one PATH (not starting with "-") and at most one each of --json
    or --markdown (not both) and --metadata-only, exactly as argparse parses them; None for any
    other command line (argparse then parses it, errors and --help included)."""
    paths = [a for a in argv if not a.startswith("-")]
    flags = [a for a in argv if a.startswith("-")]
    if (
        len(paths) != 1
        or not paths[0]
        or len(set(flags)) != len(flags)
        or not all(f in FAST_FLAGS for f in flags)
        or ("--json" in flags and "--markdown" in flags)
    ):
        return None
    from types import SimpleNamespace

    values = dict(FAST_DEFAULTS, path=paths[0])
    values.update((FAST_FLAGS[f], True) for f in flags)
    return SimpleNamespace(**values)  # type: ignore[return-value]


def _emit(report: Report, args: argparse.Namespace) -> None:
    from genai_common.doctor import render

    if args.json:
        sys.stdout.write(render.to_json(report) + "\n")
    elif args.markdown:
        sys.stdout.write(render.to_markdown(report))
    elif sys.stdout.isatty():
        render.print_rich(report)
    else:
        sys.stdout.write(render.to_plain(report))


def run(args: argparse.Namespace) -> int:
    from genai_common.model import ModelDir, ModelPathError

    if args.list_checks:
        from genai_common.doctor.catalogue import (
            catalogue_json,
            catalogue_markdown,
            catalogue_plain,
        )

        if args.json:
            sys.stdout.write(json.dumps(catalogue_json(), indent=2) + "\n")
        elif args.markdown:
            sys.stdout.write(catalogue_markdown())
        else:
            sys.stdout.write(catalogue_plain())
        return 0
    distributed = bool(getattr(args, "hosts", None) or getattr(args, "ranks", None))
    if distributed and (args.ranks is not None and args.ranks < 1):
        print("genai doctor: --ranks must be at least 1", file=sys.stderr)
        return 2
    if distributed and not args.path:
        from genai_common.findings import Report

        return _distributed(None, args, Report(args.hosts or f"{args.ranks} local ranks"))
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
    from genai_common.doctor import diagnose_dir

    config = configured()
    select = _codes(args.select) or config.get("select", [])
    ignore = _codes(args.ignore) or config.get("ignore", [])
    gc.disable()
    try:
        report = diagnose_dir(md, select=select, ignore=ignore)
    finally:
        gc.enable()
    if distributed:
        return _distributed(md, args, report)
    if args.load or args.infer:
        from genai_common.doctor.rules.load import runtime_findings
        from genai_common.findings import selected

        report.extend(
            f
            for f in runtime_findings(
                report,
                md,
                infer=args.infer,
                timeout=args.timeout,
                trust_remote_code=args.trust_remote_code,
            )
            if selected(f.code, select, ignore)
        )
    if args.weights:
        from genai_common.doctor.rules.weights import weight_findings
        from genai_common.findings import selected

        report.extend(f for f in weight_findings(md) if selected(f.code, select, ignore))
    _emit(report, args)
    # the static run started no child and holds no temporary file: cli.py may end the process
    # without the interpreter's teardown
    args.exit_now = not (args.load or args.infer or args.weights)
    return report.exit_code(args.fail_on)


def _distributed(md: ModelDir | None, args: argparse.Namespace, report: Report) -> int:
    """--hosts / --ranks: the distributed preflight, plan and (--infer) smoke test (DST codes)."""
    from genai_common.distributed.preflight import preflight
    from genai_common.findings import selected

    select, ignore = _codes(args.select), _codes(args.ignore)
    found, facts = preflight(
        md,
        hostfile=args.hosts,
        ranks=args.ranks,
        backend=args.backend,
        context=args.context,
        mode=args.parallel,
        connect_timeout=args.connect_timeout,
        timeout=args.timeout,
        infer=args.infer,
        python=args.python,
    )
    report.extend(f for f in found if selected(f.code, select, ignore))
    report.facts["distributed"] = facts
    _emit(report, args)
    if not args.json and not args.markdown:
        from genai_common.distributed.preflight import render_hosts

        if text := render_hosts(facts):
            sys.stdout.write(text + "\n")
    if "plan" in facts and not args.json and not args.markdown:
        from genai_common.distributed.plan import render_json

        sys.stdout.write(render_json(facts["plan"]) + "\n")
    return report.exit_code(args.fail_on)
