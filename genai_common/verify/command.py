"""`genai verify CANDIDATE --against REFERENCE`: exit 0 pass/warn, 1 fail, 2 could not run."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("candidate", help="candidate model directory")
    parser.add_argument("--against", required=True, help="reference model directory")
    parser.add_argument("--json", action="store_true", help="print the JSON result")
    parser.add_argument("--text", help="text file to score (not supported yet)")
    parser.add_argument("--context", type=int, help="positions to score (default 4096)")
    parser.add_argument("--kv-bits", type=int, help="quantized KV cache bits (not supported yet)")
    parser.add_argument("--kv-group-size", type=int, default=64)
    parser.add_argument("--adapter", help="candidate adapter path (not supported yet)")
    parser.add_argument(  # issue 10 part 1 (verify-reference)
        "--reference-backend",
        choices=("auto", "mlx", "transformers"),
        default="auto",
        help="who scores the reference: auto (transformers for a Hugging Face checkpoint when "
        "torch is installed, and for a .gguf), mlx (mlx-lm), transformers (torch, float32)",
    )


def run(args: argparse.Namespace) -> int:
    import os

    from genai_common.verify import verify
    from genai_common.verify.reference_hf import BackendMissing

    for path in (args.candidate, args.against):
        if not os.path.exists(path):
            print(f"genai verify: {path} not found", file=sys.stderr)
            return 2
    try:
        result = verify(
            args.candidate,
            args.against,
            text=args.text,
            context=args.context,
            candidate_adapter=args.adapter,
            kv_bits=args.kv_bits,
            kv_group_size=args.kv_group_size,
            reference_backend=getattr(args, "reference_backend", None),
        )
    except BackendMissing as exc:  # verify-reference: torch / transformers / gguf not installed
        print(str(exc), file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"genai verify: needs the mlx extra ({exc.name} missing)", file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:
        print(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(f"verdict: {result.verdict} ({result.mode})")
        for key, value in result.metrics.items():
            print(f"  {key}: {value:.4g}" if isinstance(value, float) else f"  {key}: {value}")
        for f in result.findings:
            print(f"  {f.code} [{f.severity}] {f.message}")
        if result.first_bad_layer:
            print(f"first bad layer: {result.first_bad_layer}")
    return 1 if result.verdict == "fail" else 0
