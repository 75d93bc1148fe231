"""`genai verify CANDIDATE --against REFERENCE`: exit 0 pass/warn, 1 fail, 2 could not run."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("candidate", help="candidate: a model directory or a hub id in the cache")
    parser.add_argument(
        "--against", required=True, help="reference: a model directory or a hub id in the cache"
    )
    parser.add_argument("--json", action="store_true", help="print the JSON result")
    parser.add_argument(
        "--text",
        help="text to feed both sides: plain text, or jsonl (messages / prompt+completion / "
        "text records); default: the shipped corpus",
    )
    parser.add_argument(
        "--context",
        type=int,
        help="positions per window (default: the smaller of the model's context and 4096)",
    )
    parser.add_argument(
        "--kv-bits",
        type=int,
        help="the candidate with mlx-lm's quantized KV cache of these bits against its float cache",
    )
    parser.add_argument("--kv-group-size", type=int, default=64, help="KV quantization group")
    parser.add_argument(
        "--quantized-kv-start",
        type=int,
        default=0,
        help="position from which the KV cache is quantized (mlx_lm.generate's option)",
    )
    parser.add_argument("--adapter", help="the candidate with this LoRA adapter (mlx-lm)")
    parser.add_argument("--reference-adapter", help="the reference with this LoRA adapter")
    parser.add_argument(
        "--reference-backend",
        default="auto",
        help="how the reference is scored: auto (transformers for a Hugging Face checkpoint when "
        "torch is installed, else MLX), mlx, transformers (llm and vlm)",
    )
    parser.add_argument(
        "--isolated",
        action="store_true",
        default=None,
        help="run each side in its own child process (default: when both do not fit together)",
    )


def run(args: argparse.Namespace) -> int:
    from genai_common.verify import missing_extra, verify
    from genai_common.verify.reference_hf import BackendMissing

    try:
        result = verify(
            args.candidate,
            args.against,
            text=args.text,
            context=args.context,
            candidate_adapter=args.adapter,
            kv_bits=args.kv_bits,
            kv_group_size=args.kv_group_size,
            quantized_kv_start=args.quantized_kv_start,
            reference_adapter=args.reference_adapter,
            isolated=args.isolated,
            reference_backend=args.reference_backend,
        )
    except BackendMissing as exc:  # torch / transformers / gguf not installed: the extra named
        print(str(exc), file=sys.stderr)
        return 2
    except ImportError as exc:
        print(missing_extra(exc), file=sys.stderr)
        return 2
    except (ValueError, OSError, RuntimeError) as exc:
        print(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        from genai_common.verify.llm import curve_lines

        print(f"verdict: {result.verdict} ({result.mode})")
        for key, value in result.metrics.items():
            if key == "curve":
                print("  top-1 agreement by position:")
                for line in curve_lines(result.metrics):
                    print(line)
            elif isinstance(value, float):
                print(f"  {key}: {value:.4g}")
            else:
                print(f"  {key}: {value}")
        if result.first_bad_layer:
            print(f"  first bad layer: {result.first_bad_layer}")
        for f in result.findings:
            print(f"  {f.code} [{f.severity}] {f.message}")
        if result.first_bad_layer:
            print(f"first bad layer: {result.first_bad_layer}")
    return 1 if result.verdict == "fail" else 0
