"""`genai bench [PATH]`: benchmark a model of any kind; `genai bench --compare A.json B.json`.

Without PATH, the model of the project around the current folder: the one its pyproject.toml
names in [tool.genai] (the embedded tiny model, built on first use, when the model is empty).
The kind is the doctor's (ModelDir.kind), or the project's, or --kind.

Imports stay light here (argparse, json, pathlib): MLX, torch and matplotlib load only when a run
needs them, so `genai bench --help` and `--compare` start fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from genai_common.findings import PROJECT_KINDS


def token_counts(text: str) -> list[int]:
    """`--prompt-tokens 512` or a sweep `128,512,2048`: positive ints, in the order given."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give token counts such as 512 or 128,512"
        ) from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: token counts must be positive")
    return list(dict.fromkeys(counts))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "Writes a JSON record with every raw sample to OUT/bench/, PNG plots beside it, and a\n"
        "row to OUT/RESULTS.md (appended; nothing else in the file changes).\n"
        "Compare two runs: genai bench --compare A.json B.json"
    )
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="let the loader run code the model folder names (model_file, auto_map); without "
        "it such a folder is refused (SEC001)",
    )
    parser.add_argument(
        "path",
        nargs="?",
        help="model directory (or hub id in the local cache); default: the model [tool.genai] "
        "names in the pyproject.toml of the project around the current folder",
    )
    parser.add_argument("--kind", choices=PROJECT_KINDS, help="model kind (default: detected)")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"), help="compare two JSON records")
    g = parser.add_argument_group("timing")
    g.add_argument("--trials", type=int, default=5, help="timed trials (default 5)")
    g.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="warm-up runs before the trials, reported apart; the first is the cold run (min 1)",
    )
    g.add_argument("--cooldown", type=float, default=0.0, help="seconds of sleep before each trial")
    g.add_argument("--seed", type=int, default=0, help="seed of the random prompt / inputs")
    g = parser.add_argument_group("llm / vlm")
    g.add_argument(
        "--prompt-tokens",
        type=token_counts,
        default=[512],
        help="random prompt length (512), or a sweep such as 128,512,2048: one workload each, "
        "and a plot of decode rate and TTFT against the length",
    )
    g.add_argument("--gen-tokens", type=int, default=128, help="tokens generated per trial (128)")
    g.add_argument(
        "--prompts",
        choices=("both", "random", "chat"),
        default="both",
        help="fixed-seed random-token prompt, a real chat prompt, or both (default)",
    )
    g.add_argument(
        "--against", metavar="PATH2", help="a second model: trials of both interleave (ABBA)"
    )
    g.add_argument("--image-size", type=int, default=224, help="VLM test image side (224)")
    g = parser.add_argument_group("llm on several ranks")
    g.add_argument(
        "--ranks",
        type=token_counts,
        metavar="N[,M...]",
        help="the same workloads and trials under mlx.launch on N (and M...) local ranks, "
        "with mlx-lm's sharded_load (ring backend; tensor and pipeline parallel where the model "
        "has them), beside one process: decode tok/s and TTFT per world size, all_sum "
        "bandwidth, the communication share, and the check that rank 0 equals one process",
    )
    g.add_argument(
        "--rank-timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="seconds one mlx.launch may run before its ranks are killed (DST021; default 600)",
    )
    g = parser.add_argument_group("diffusion")
    g.add_argument("--steps", type=int, default=20, help="denoising steps (20)")
    g.add_argument("--size", type=int, help="image side in pixels (default: the model's)")
    g.add_argument("--guidance", type=float, default=7.5, help="guidance scale (7.5)")
    g = parser.add_argument_group("ml")
    g.add_argument("--batch-size", type=int, default=32, help="batch size (32)")
    g.add_argument("--train-step", action="store_true", help="also time a training step")
    g = parser.add_argument_group("output")
    g.add_argument("--out", default="reference", help="folder of RESULTS.md (default: reference)")
    g.add_argument("--no-record", action="store_true", help="write no JSON, row or plots")
    g.add_argument("--no-plots", action="store_true", help="write no plots")
    g.add_argument(
        "--no-roofline",
        action="store_true",
        help="skip the bandwidth probe and the diffusion FLOP count (an extra 2-step run)",
    )
    g.add_argument(
        "--refresh-peak", action="store_true", help="re-measure the cached peak bandwidth"
    )
    g.add_argument("--json", action="store_true", help="print the record as JSON")


def model_kind(path: str) -> str:
    """The kind the doctor detects (ModelDir.kind) when it is one genai bench runs; ValueError
    (saying to pass --kind) when it is not, or when nothing readable is at `path`."""
    from genai_common.model import ModelDir, ModelPathError

    try:
        md = ModelDir.open(path, metadata_only=True)
    except ModelPathError as exc:
        raise ValueError(f"{exc}; pass --kind") from None
    if md.kind in PROJECT_KINDS:
        return md.kind
    if md.config is None:
        raise ValueError(f"{path}: no readable config.json or model_index.json; pass --kind")
    raise ValueError(
        f"{path}: the doctor detects a model of kind {md.kind!r}, not one of "
        f"{', '.join(PROJECT_KINDS)}; pass --kind"
    )


def project_model() -> tuple[str, str]:
    """(model path, kind) of the project around the current folder, as its [tool.genai] names
    them; the embedded tiny model is built on first use. GenaiConfigError without the table."""
    from genai_common.formats.pyproject import find_genai
    from genai_common.testing.tiny import project_model_path

    table = find_genai()
    return project_model_path(table.root, table.kind, table.model), table.kind


def _command(args: argparse.Namespace, kind: str) -> list[str]:
    """The options that shape the figures, as a user would type them."""
    argv = [str(args.path)]
    if args.kind:
        argv += ["--kind", args.kind]
    common = [("--trials", args.trials), ("--warmup", args.warmup)]
    if args.cooldown:
        common.append(("--cooldown", args.cooldown))
    per_kind: dict[str, list[tuple[str, Any]]] = {
        "llm": [
            ("--prompt-tokens", ",".join(map(str, args.prompt_tokens))),
            ("--gen-tokens", args.gen_tokens),
            ("--prompts", args.prompts),
        ],
        "diffusion": [
            ("--steps", args.steps),
            ("--size", args.size),
            ("--guidance", args.guidance),
        ],
        "ml": [("--batch-size", args.batch_size)],
    }
    per_kind["vlm"] = per_kind["llm"]
    for flag, value in per_kind[kind] + common:
        if value is not None:
            argv += [flag, str(value)]
    if args.against:
        argv += ["--against", args.against]
    if args.ranks:
        argv += ["--ranks", ",".join(map(str, args.ranks))]
    if args.train_step:
        argv.append("--train-step")
    return argv


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    skip = {"compare", "json", "no_record", "no_plots", "out", "path"}
    return {k: v for k, v in vars(args).items() if k not in skip}


def run_compare(args: argparse.Namespace) -> int:
    from genai_common.bench import compare, records

    a, b = (records.read_json(p) for p in args.compare)
    comparisons = compare.compare_records(a, b)
    differences = compare.mismatches(a, b)
    if args.json:
        out = {"a": args.compare[0], "b": args.compare[1], "differences": differences}
        print(json.dumps({**out, "comparisons": comparisons}))
    else:
        print(compare.render(comparisons, args.compare[0], args.compare[1], differences))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.compare:
        try:
            return run_compare(args)
        except (OSError, ValueError) as exc:
            print(f"genai bench: {exc}", file=sys.stderr)
            return 2
    if args.trials < 1:
        print("genai bench: --trials must be at least 1", file=sys.stderr)
        return 2
    project_kind = None
    if not args.path:
        from genai_common.formats.pyproject import GenaiConfigError

        try:
            args.path, project_kind = project_model()
        except GenaiConfigError as exc:
            print(
                f"genai bench: give a model PATH, or --compare A.json B.json ({exc})",
                file=sys.stderr,
            )
            return 2
        except (OSError, ValueError, ImportError) as exc:  # e.g. the tiny model cannot be built
            print(f"genai bench: the project's model: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 2
    try:
        kind = args.kind or project_kind or model_kind(args.path)
    except (OSError, ValueError) as exc:
        print(f"genai bench: {exc}", file=sys.stderr)
        return 2
    from genai_common.runtime.loading import CustomCodeRefused, refuse_custom_code

    try:  # the trust boundary, before any loader is imported (SEC001)
        for where in [args.path] + ([args.against] if getattr(args, "against", None) else []):
            refuse_custom_code(where, args.trust_remote_code)
    except CustomCodeRefused as exc:
        print(f"genai bench: SEC001 {args.path}: {exc}", file=sys.stderr)
        return 2
    from genai_common.bench import records

    record = records.new_record(kind, str(args.path), _settings(args), _command(args, kind))
    if args.ranks:
        from genai_common.bench import ranks

        return ranks.run(args, kind, record)
    from genai_common.bench.progress import Progress
    from genai_common.bench.runner import run_benchmark

    try:
        with Progress(enabled=None if not args.json else False) as progress:
            run_benchmark(record, args, progress)
    except Exception as exc:  # a model that will not load or run: say so, and where to look
        print(
            f"genai bench: {args.path} ({kind}) could not be benchmarked: "
            f"{type(exc).__name__}: {exc}\n"
            f"  run `genai doctor {args.path} --infer` for the diagnosis (static checks, then the "
            "load and a few steps in a child process)",
            file=sys.stderr,
        )
        return 1
    from genai_common.bench.runner import write_and_print

    return write_and_print(record, args)
