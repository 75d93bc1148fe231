"""`genai port [MODEL] [--torch pkg.mod:Class] [--state-dict FILE] [--output DIR]`: port a PyTorch
module's state dict to the project's MLX module (workflows/port.py layout rules), write the MLX
model folder, then `genai verify` it against the PyTorch original (verify/ml.py); one RESULTS.md
row and one TODO.md line. Exit 0 (pass or warn), 1 (findings), 2 (could not run: one line).

Without --state-dict the PyTorch class is built from MODEL's config.json with weights drawn from
--seed and its state dict saved to models/torch-reference/ (the demo the ml template ships:
its src/<package>/torch_reference.py mirrors src/<package>/model.py)."""

from __future__ import annotations

import argparse
import json
import os
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="folder with config.json (default: [tool.genai] model)")
    p.add_argument(
        "--torch", help="PyTorch class pkg.mod:Class (default: [tool.genai] torch_module)"
    )
    p.add_argument("--state-dict", help=".pt/.pth/.bin/.safetensors (default: a seeded init)")
    p.add_argument("--output", default="models/ported", help="the MLX model folder to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-record", action="store_true", help="no RESULTS.md row / TODO.md line")


def _fail(message: str) -> int:
    print(f"genai port: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from genai_common.runtime.loading import ModuleLoadError
    from genai_common.workflows.command import _print, _project_root

    root = _project_root()
    if not args.model:
        from genai_common.formats.pyproject import GenaiConfigError, find_genai
        from genai_common.testing.tiny import project_model_path

        try:
            table = find_genai()
            args.model = project_model_path(table.root, table.kind, table.model)
        except (GenaiConfigError, OSError, ValueError):
            args.model = None
    config_path = Path(args.model or ".") / "config.json"
    if not args.model or not config_path.is_file():
        return _fail(f"no config.json in {args.model or '(no model)'}: give MODEL")
    try:
        import mlx.core as mx
        import numpy as np
        import torch
    except ImportError as exc:
        return _fail(f"needs torch and mlx ({exc.name} missing): install genai-common[port]")
    from genai_common.runtime.files import write_text
    from genai_common.runtime.loading import (
        build_module,
        import_module_class,
        module_class_for,
        project_module,
    )
    from genai_common.verify.ml import _torch_class, read_state_dict
    from genai_common.workflows import port

    try:
        config = json.loads(config_path.read_text())
        mlx_model = build_module(module_class_for(config, None, Path(args.model)), config)
        if args.torch:
            named = project_module(args.model)
            torch_cls = import_module_class(args.torch, named[1] if named else root)
        else:
            torch_cls = _torch_class(None, args.model)
        if args.state_dict:
            if not os.path.isfile(args.state_dict):
                return _fail(f"{args.state_dict}: no such file")
            state = read_state_dict(args.state_dict)
            reference = args.state_dict
        else:
            torch.manual_seed(args.seed)
            torch_model = build_module(torch_cls, config)
            reference = os.path.join(root, "models", "torch-reference")
            os.makedirs(reference, exist_ok=True)
            torch.save(torch_model.state_dict(), os.path.join(reference, "model.pt"))
            write_text(os.path.join(reference, "config.json"), json.dumps(config, indent=2) + "\n")
            state = {k: v.numpy() for k, v in torch_model.state_dict().items()}
    except ModuleLoadError as exc:
        return _fail(f"the module did not load: {exc}")
    except (ValueError, OSError) as exc:  # invalid config.json, unreadable state dict
        return _fail(str(exc).removeprefix("genai verify: "))
    weights, found = port.port_state_dict(state, mlx_model)
    _print(found)
    verdict = "fail" if any(f.severity == "error" for f in found) else "pass"
    metrics: dict = {"tensors": len(weights)}
    if verdict == "pass":
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        arrays = {k: mx.array(np.ascontiguousarray(v)) for k, v in sorted(weights.items())}
        tmp = out / f".tmp-{os.getpid()}-model.safetensors"
        try:
            mx.save_safetensors(str(tmp), arrays, metadata={"format": "mlx"})
            os.replace(tmp, out / "model.safetensors")
        finally:
            tmp.unlink(missing_ok=True)
        from genai_common.verify.ml import verify_ml

        write_text(out / "config.json", json.dumps(config, indent=2) + "\n")
        torch_module = args.torch if args.torch else None
        try:
            more, m = verify_ml(str(out), reference, torch_module=torch_module, seed=args.seed)
        except (ValueError, ModuleLoadError) as exc:
            return _fail(f"verify: {str(exc).removeprefix('genai verify: ')}")
        _print(more)
        found += more
        metrics.update(
            output_max_rel=f"{m['output_max_rel']:.3g}",
            layers=m["layers_compared"],
            first_bad_layer=m["first_bad_layer"],
        )
        verdict = (
            "fail"
            if any(f.severity == "error" for f in more)
            else "warn"
            if any(f.severity == "warning" for f in more)
            else "pass"
        )
        print(f"wrote {out} (config.json, model.safetensors); reference {reference}")
    print(f"verdict: {verdict}")
    if not args.no_record:
        from genai_common.workflows.common import results_path, results_row, todo_line

        results_row(
            results_path(root),
            f"port {getattr(torch_cls, '__name__', 'torch')} -> {type(mlx_model).__name__}",
            reference,
            args.output if verdict != "fail" or metrics.get("layers") else "",
            "",
            "",
            metrics,
            verdict,
        )
        todo_line(
            os.path.join(root, "TODO.md"),
            f"genai port {reference} -> {args.output}: {verdict}",
        )
    return 1 if verdict == "fail" else 0
