"""`genai lora [PIPELINE] --adapter PATH | --demo [--scale S] [--rank R]`: a diffusion LoRA judged
against the pipeline and verified on images (issue 11 item 5; workflows/diffusion.py, DFL010-025).

Exit 0 pass or warn, 1 fail, 2 could not run (no pipeline, one that does not load). Writes one
RESULTS.md row and one TODO.md session-log line in the project."""

from __future__ import annotations

import argparse
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pipeline", nargs="?", help="diffusers folder (default: [tool.genai])")
    parser.add_argument(
        "--adapter", help=".safetensors file, or a folder with pytorch_lora_weights.safetensors"
    )
    parser.add_argument(
        "--demo",
        nargs="?",
        const="lora-demo",
        help="write a random rank-4 test LoRA for this pipeline into DIR (default lora-demo) "
        "and check it: does the pipeline take LoRAs at all",
    )
    parser.add_argument("--scale", type=float, default=1.0, help="adapter weight (default 1)")
    parser.add_argument("--rank", type=int, help="the rank the adapter should have")
    parser.add_argument("--steps", type=int, default=2, help="denoising steps per image")
    parser.add_argument("--size", type=int, default=64, help="image height and width")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from genai_common.workflows.command import _print, _project_root, project_model
    from genai_common.workflows.common import results_path, results_row, todo_line

    path = args.pipeline or project_model()
    if not path or not os.path.isdir(path):
        print(f"genai lora: pipeline {path or '(none)'} not found (give PIPELINE)", file=sys.stderr)
        return 2
    if not args.adapter and not args.demo:
        print(
            "genai lora: give --adapter PATH (a LoRA .safetensors or its folder), or --demo to "
            "check a random test LoRA",
            file=sys.stderr,
        )
        return 2
    try:
        from genai_common.runtime.loading import load_diffusion

        pipe = load_diffusion(path).pipeline
    except Exception as exc:  # the pipeline will not load: could not run
        print(f"genai lora: {path} does not load: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    # diffusers' own progress bar shows each of the five images (base twice, adapted, scale 0,
    # unloaded) being denoised
    from genai_common.workflows import diffusion

    adapter = args.adapter
    if args.demo and not adapter:
        try:
            adapter = diffusion.make_test_lora(pipe, args.demo, seed=args.seed)
        except Exception as exc:  # peft missing, a denoiser peft cannot wrap
            print(f"genai lora: --demo could not make a LoRA: {exc}", file=sys.stderr)
            return 2
        print(f"genai lora: wrote a random test LoRA to {adapter}")
    r = diffusion.verify_lora(
        pipe,
        adapter,
        rank=args.rank,
        scale=args.scale,
        steps=args.steps,
        size=args.size,
        seed=args.seed,
    )
    _print(r.findings)
    root = _project_root()
    results_row(
        results_path(root),
        f"lora scale={args.scale:g}",
        path,
        adapter,
        "",
        "",
        r.metrics,
        r.verdict,
    )
    todo_line(os.path.join(root, "TODO.md"), f"genai lora {adapter} on {path}: {r.verdict}")
    print(f"verdict: {r.verdict}")
    return 1 if r.verdict == "fail" else 0
