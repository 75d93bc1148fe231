"""`genai convert` and `genai finetune`: the workflows of issue 11 as commands.

Each prints its findings, writes one RESULTS.md row and one TODO.md session-log line in the
project (the folder holding pyproject.toml with [tool.genai], else the current folder) and exits
0 (pass or warn), 1 (fail) or 2 (could not run: one line, no traceback)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def _project_root() -> str:
    from genai_common.formats.pyproject import GenaiConfigError, find_genai

    try:
        return str(find_genai().root)
    except (GenaiConfigError, OSError, ValueError):
        return os.getcwd()


def record_convert(root: str, source: str, output: str) -> bool:
    """[tool.genai.convert] output/source in pyproject.toml (replaced when present)."""
    from genai_common.runtime.files import edit_text

    block = f'[tool.genai.convert]\noutput = "{output}"\nsource = "{source}"\n'

    def change(old: str | None) -> str | None:
        if old is None:
            return None
        lines = old.splitlines(keepends=True)
        try:
            i = next(n for n, s in enumerate(lines) if s.strip() == "[tool.genai.convert]")
        except StopIteration:
            return old + ("" if old.endswith("\n") else "\n") + "\n" + block
        j = i + 1
        while j < len(lines) and not lines[j].lstrip().startswith("["):
            j += 1
        return "".join(lines[:i]) + block + "\n" + "".join(lines[j:]).lstrip("\n")

    return edit_text(os.path.join(root, "pyproject.toml"), change)


def project_model() -> str | None:
    """The model [tool.genai] names (the embedded tiny model when it names none), or None."""
    from genai_common.formats.pyproject import GenaiConfigError, find_genai, model_location

    try:
        table = find_genai()
    except (GenaiConfigError, OSError, ValueError):
        return None
    return model_location(table.root, table.kind, table.model)[0]


def _print(findings: list[Any]) -> None:
    for f in findings:
        print(f"{f.severity:<7} {f.code} {f.message}" + (f" ({f.file})" if f.file else ""))
        if f.severity != "info" and f.hint:
            print(f"        fix: {f.hint}")


def _convert_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="?", help="model folder (default: [tool.genai] model)")
    p.add_argument("--output", "-o", help="new folder (default: SOURCE-q4, SOURCE-mixed_3_6...)")
    p.add_argument("--quantize", "-q", help="bits (2-8) or mixed_2_6|mixed_3_4|mixed_3_6|mixed_4_6")
    p.add_argument("--group-size", type=int, default=64)
    p.add_argument("--dtype", choices=("float16", "bfloat16", "float32"))
    p.add_argument(
        "--method",
        default="rtn",
        help="rtn (round to nearest, default); llm: awq, gptq or dynamic (mlx-lm's, calibrated); "
        "vlm: awq (mlx-vlm's)",
    )
    p.add_argument(
        "--target-bpw", type=float, default=5.0, help="llm dynamic: bits per weight to reach"
    )
    p.add_argument("--calibration", help="llm awq/gptq: a text file (default: the shipped corpus)")
    p.add_argument("--num-samples", type=int, default=32, help="llm awq/gptq: windows")
    p.add_argument("--sequence-length", type=int, default=256, help="llm awq/gptq: tokens each")
    p.add_argument("--no-bench", action="store_true", help="skip the before/after benchmark")


def _finetune_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="base model folder (default: [tool.genai] model)")
    p.add_argument("--data", default="data", help="folder with train.jsonl and valid.jsonl")
    p.add_argument("--adapter-path", default="adapters")
    p.add_argument("--fuse", help="also fuse into this folder and check the fused model")
    p.add_argument("--iters", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--learning-rate", type=float, default=1e-5)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--scale", type=float, default=20.0, help="llm: mlx-lm's LoRA scale")
    p.add_argument(
        "--lora-alpha", type=float, default=16.0, help="vlm: mlx-vlm's alpha (scale = alpha/rank)"
    )
    p.add_argument("--max-seq-length", type=int, default=2048)
    p.add_argument("--steps-per-report", type=int, default=10)
    p.add_argument("--check-only", action="store_true", help="data diagnostics only")


def run_convert(args: argparse.Namespace) -> int:
    from genai_common.workflows.common import human_bytes, results_path, results_row, todo_line
    from genai_common.workflows.convert import convert

    args.source = args.source or project_model()
    if not args.source or not os.path.exists(args.source):
        print(
            f"genai convert: model {args.source or '(none)'} not found (give SOURCE, or build the "
            "project's model first: nox -s diagnostics)",
            file=sys.stderr,
        )
        return 2
    if not args.output:
        tag = f"q{args.quantize}" if (args.quantize or "").isdigit() else args.quantize
        method = getattr(args, "method", "rtn")
        tag = f"{tag}-{method}" if tag and method != "rtn" else tag  # SOURCE-q4-awq
        args.output = (
            f"{args.source.rstrip('/').removesuffix('.gguf')}-{tag or args.dtype or 'mlx'}"
        )
    r = convert(
        args.source,
        args.output,
        quantize=args.quantize,
        group_size=args.group_size,
        dtype=args.dtype,
        measure=not args.no_bench,
        method=getattr(args, "method", "rtn"),
        calibration=getattr(args, "calibration", None),
        num_samples=getattr(args, "num_samples", 32),
        sequence_length=getattr(args, "sequence_length", 256),
        target_bpw=getattr(args, "target_bpw", 5.0),
    )
    _print(r.findings)
    root = _project_root()
    m = dict(r.metrics)
    size = f"{human_bytes(m.pop('source_bytes', 0))} -> {human_bytes(m.pop('output_bytes', 0))}"
    kind = m.pop("kind", "llm")
    step = f"convert q={args.quantize or 'none'} g={args.group_size}"
    if kind != "llm":
        step = f"convert {kind} q={args.quantize or 'none'} g={args.group_size}"
    if m.get("method"):
        step += f" {m.pop('method')}"
    results_row(
        results_path(root),
        step,
        args.source,
        args.output,
        size,
        m.pop("convert_s", ""),
        m,
        r.verdict,
    )
    todo_line(
        os.path.join(root, "TODO.md"), f"genai {step} {args.source} -> {args.output}: {r.verdict}"
    )
    if r.verdict != "fail":
        record_convert(root, args.source, args.output)
    print(f"verdict: {r.verdict}")
    return 1 if r.verdict == "fail" else 0


def run_finetune(args: argparse.Namespace) -> int:
    from genai_common.workflows import finetune as ft
    from genai_common.workflows.common import results_path, results_row, todo_line

    args.model = args.model or project_model()
    if not args.model or not os.path.exists(args.model):
        print(
            f"genai finetune: model {args.model or '(none)'} not found (give MODEL, or build the "
            "project's model first: nox -s diagnostics)",
            file=sys.stderr,
        )
        return 2
    root = _project_root()
    if _kind(args.model) == "vlm":
        return run_finetune_vlm(args, root)
    if args.check_only:
        from pathlib import Path

        from mlx_lm.utils import load_tokenizer

        from genai_common.workflows.data import diagnose

        report, facts = diagnose(
            args.data, load_tokenizer(Path(args.model)), args.max_seq_length, args.batch_size
        )
        _print(report.ordered())
        print(facts)
        return 1 if report.count("error") else 0
    r = ft.train(
        args.model,
        args.data,
        args.adapter_path,
        iters=args.iters,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        rank=args.rank,
        scale=args.scale,
        max_seq_length=args.max_seq_length,
        steps_per_report=args.steps_per_report,
        plot=os.path.join(os.path.dirname(results_path(root)), "finetune_loss.png"),
    )
    found, metrics, verdict = list(r.findings), dict(r.metrics), r.verdict
    if verdict != "fail":
        found += ft.judge_adapter(args.adapter_path, args.model)
        if args.fuse:
            found += ft.fuse(args.model, args.adapter_path, args.fuse)
            if not any(f.severity == "error" for f in found):
                more, diffs = ft.check_fused(
                    args.fuse, args.model, args.adapter_path, "The capital of France is"
                )
                found += more
                metrics.update({k: round(v, 4) for k, v in diffs.items()})
                # check_fused runs genai verify: fused vs base + adapter (--reference-adapter)
        verdict = "fail" if any(f.severity == "error" for f in found) else "pass"
    _print(found)
    results_row(
        results_path(root),
        f"finetune lora r={args.rank}",
        args.model,
        args.fuse or args.adapter_path,
        "",
        metrics.pop("train_s", ""),
        metrics,
        verdict,
    )
    todo_line(
        os.path.join(root, "TODO.md"),
        f"genai finetune {args.model} ({args.iters} iters) -> {args.adapter_path}: {verdict}",
    )
    print(f"verdict: {verdict}")
    return 1 if verdict == "fail" else 0


def _kind(path: str) -> str:
    from genai_common.model import ModelDir

    try:
        return str(ModelDir.open(path).kind)
    except Exception:  # an unreadable folder: the llm path reports it as a finding
        return "llm"


def run_finetune_vlm(args: argparse.Namespace, root: str) -> int:
    """A vlm project: VDT data checks, mlx-vlm's LoRA trainer, the adapter judged (no fuse:
    mlx-vlm 0.7.10 has none; serve base + adapter with mlx_vlm.load(adapter_path=...))."""
    from genai_common.workflows import vlm
    from genai_common.workflows.common import results_path, results_row, todo_line

    if args.check_only:
        found = vlm.check_training_data(args.data, args.model)
        _print(found)
        print(f"{len(found)} finding(s) in {args.data}")
        return 1 if any(f.severity == "error" for f in found) else 0
    if args.fuse:
        print("genai finetune: --fuse is llm only (mlx-vlm has no fuse); the adapter is kept")
    r = vlm.train_vlm(
        args.model,
        args.data,
        args.adapter_path,
        iters=args.iters,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        rank=args.rank,
        alpha=args.lora_alpha,
        max_seq_length=args.max_seq_length,
        steps_per_report=args.steps_per_report,
        plot=os.path.join(os.path.dirname(results_path(root)), "finetune_loss.png"),
    )
    _print(r.findings)
    metrics = dict(r.metrics)
    results_row(
        results_path(root),
        f"finetune vlm lora r={args.rank}",
        args.model,
        args.adapter_path,
        "",
        metrics.pop("train_s", ""),
        metrics,
        r.verdict,
    )
    todo_line(
        os.path.join(root, "TODO.md"),
        f"genai finetune (vlm) {args.model} ({args.iters} iters) -> {args.adapter_path}: "
        f"{r.verdict}",
    )
    print(f"verdict: {r.verdict}")
    return 1 if r.verdict == "fail" else 0
