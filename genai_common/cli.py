"""The `genai` command.

Start-up time is a feature: `genai doctor` runs in pre-commit hooks, CI and agent loops. So this
module imports nothing but os and sys, lists the commands from a table, and imports only the
module of the command that runs. Each command module provides ``add_arguments(parser)`` and
``run(args) -> int``; it may provide ``fast_args(argv)``, the arguments of its most common call
as argparse would give them (None: use argparse), so that call never imports argparse (with
gettext and locale: 3-4 ms of `genai doctor PATH --json`, issue 14). A command that sets
``args.exit_now`` has written everything and holds nothing to clean up: the process ends at once
after flushing, without the interpreter's teardown (1-2 ms).
"""

from __future__ import annotations

import gc
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

# name -> (module implementing add_arguments/run, one-line help). Keep modules light at import.
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": (
        "genai_common.doctor.command",
        "Diagnose a model directory, file or cached hub id without loading weights.",
    ),
    "inspect": (
        "genai_common.doctor.inspect",
        "Facts about a model: architecture, parameters, dtypes, bytes, memory.",
    ),
    "env": ("genai_common.runtime.envinfo", "Frameworks, versions, backend, device and memory."),
    "tiny": (
        "genai_common.testing.tiny",
        "Write a tiny real-format model (llm, vlm, diffusion, ml).",
    ),
    "verify": (
        "genai_common.verify.command",
        "Compare a model's outputs with a reference, teacher-forced (llm).",
    ),
    "bench": (
        "genai_common.bench.cli",
        "Benchmark a model: figures with spread, roofline, records, plots.",
    ),
    "diagnostics": (
        "genai_common.project.diagnostics",
        "A generated project's diagnostics: doctor, load, inference.",
    ),
    "quality": (
        "genai_common.project.quality",
        "A generated project's quality check: chat reply, verify against its source model.",
    ),
    "update": (
        "genai_common.project.update",
        "copier update, then fail on conflict markers, unmerged paths, .rej.",
    ),
    "session": (
        "genai_common.project.session",
        "Start or end a working session: status, changes, environment; log to TODO.md.",
    ),
    "review": (
        "genai_common.project.review",
        "Methodology review: living documents, tests, environment, results, agent files.",
    ),
    "convert": (
        "genai_common.workflows.convert_command",
        "Convert / quantize an LLM (mlx-lm) or VLM (mlx-vlm): doctor before, verify after, RESULTS row.",
    ),
    "finetune": (
        "genai_common.workflows.finetune_command",
        "LoRA fine-tune (mlx-lm; vlm: mlx-vlm's trainer): data checks, NaN guard, adapter check, RESULTS.",
    ),
    "lora": (
        "genai_common.workflows.lora_command",
        "Diffusion LoRA: judged against the pipeline, loaded, verified on same-seed images.",
    ),
    "train": (
        "genai_common.workflows.train_command",
        "Train an ml project's MLX module: checkpoints, --resume, NaN guard, RESULTS row.",
    ),
    "port": (
        "genai_common.workflows.port_command",
        "Port a PyTorch state dict to the project's MLX module, then verify it layer by layer.",
    ),
}


_FORMATTERS: dict[str, type] = {}


def _formatters() -> dict[str, type]:
    """argparse's formatters with the width taken from os, not shutil: argparse builds a
    formatter for every add_argument, and its default imports shutil (with bz2, lzma, zlib: ~1.5
    ms). Made on first use: argparse is imported only when a parser is needed."""
    if not _FORMATTERS:
        import argparse

        class _HelpFormatter(argparse.HelpFormatter):
            def __init__(self, prog: str, **kwargs: int) -> None:
                if kwargs.get("width") is None:
                    try:
                        columns = (
                            int(os.environ.get("COLUMNS", "")) or os.get_terminal_size().columns
                        )
                    except (ValueError, OSError):
                        columns = 80
                    kwargs["width"] = columns - 2
                super().__init__(prog, **kwargs)

        class _RawDescriptionHelpFormatter(_HelpFormatter, argparse.RawDescriptionHelpFormatter):
            pass

        _FORMATTERS.update(help=_HelpFormatter, raw=_RawDescriptionHelpFormatter)
    return _FORMATTERS


def _top_parser() -> argparse.ArgumentParser:
    import argparse

    width = max(map(len, COMMANDS))
    parser = argparse.ArgumentParser(
        prog="genai",
        description="genai-common: diagnostics, runtime and session tools for GenAI projects on MLX.",
        formatter_class=_formatters()["raw"],
        epilog="commands:\n"
        + "\n".join(f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items())
        + "\n\nRun `genai COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument(
        "command",
        nargs="?",
        choices=sorted(COMMANDS),
        metavar="COMMAND",
        help="one of the commands below",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """The `genai` command. Ctrl-C at any moment (start-up included) ends it with one line and
    exit code 130, never a traceback."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("genai: interrupted", file=sys.stderr)
        return 130


def _main(argv: list[str] | None = None) -> int:
    from_entry_point = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        top = _top_parser()
        args = top.parse_args(argv)
        if args.version:
            from importlib.metadata import version

            print(version("genai-common"))
            return 0
        top.print_help()
        return 0 if "-h" in argv or "--help" in argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        _top_parser().parse_args([name])  # prints the usage error, exits 2
    module_name, help_ = COMMANDS[name]
    # Importing a command and parsing its arguments makes thousands of objects and no garbage:
    # the collector's passes there only cost start-up time (about 1 ms of `genai doctor`).
    gc.disable()
    try:
        __import__(module_name)
        module = sys.modules[module_name]
        fast = getattr(module, "fast_args", None)
        args = fast(rest) if fast is not None else None
        if args is None:
            import argparse

            parser = argparse.ArgumentParser(
                prog=f"genai {name}", description=help_, formatter_class=_formatters()["help"]
            )
            module.add_arguments(parser)
            args = parser.parse_args(rest)
    finally:
        gc.enable()
    try:
        code = int(module.run(args) or 0)
    except BrokenPipeError:
        return 0
    if from_entry_point and getattr(args, "exit_now", False):
        _exit_now(code)
    return code


def _exit_now(code: int) -> None:
    """End the process with `code` once stdout and stderr are flushed, skipping the interpreter's
    teardown (module and object finalisation): only for a command that said it holds nothing to
    clean up (``args.exit_now``), and only when `genai` itself is the process (main() with no
    argv): a caller in the same process (tests) gets the code back."""
    import contextlib

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
