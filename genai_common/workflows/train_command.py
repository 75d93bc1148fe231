"""`genai train [MODEL] [--data FILE] [--steps N] [--resume]`: train an ml project's own MLX module
(workflows/train_ml.py), print its findings, write one RESULTS.md row and one TODO.md
session-log line; exit 0 (pass or warn), 1 (fail), 2 (could not run: one line)."""

from __future__ import annotations

import argparse
import os
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    from genai_common.workflows.train_ml import OPTIMIZERS

    p.add_argument(
        "model",
        nargs="?",
        help="model folder whose config.json builds the module (default: [tool.genai] model)",
    )
    p.add_argument(
        "--data",
        help="x/y arrays: .npz or .safetensors (default: data/train.npz or data/train.safetensors "
        "of the project, else a synthetic task)",
    )
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-dir", default="checkpoints")
    p.add_argument("--checkpoint-every", type=int, default=50)
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument(
        "--init",
        choices=("fresh", "weights"),
        default="fresh",
        help="fresh weights from the seed (default) or the model folder's weights",
    )
    p.add_argument("--output", help="write the trained module here (config.json + safetensors)")
    p.add_argument("--no-record", action="store_true", help="no RESULTS.md row / TODO.md line")


def run(args: argparse.Namespace) -> int:
    from genai_common.runtime.loading import ModuleLoadError
    from genai_common.workflows.command import _print, _project_root
    from genai_common.workflows.common import results_path, results_row, todo_line
    from genai_common.workflows.train_ml import TrainError, train

    root = _project_root()
    if not args.model:
        from genai_common.formats.pyproject import GenaiConfigError, find_genai
        from genai_common.testing.tiny import project_model_path

        try:
            table = find_genai()
            args.model = project_model_path(table.root, table.kind, table.model)
        except (GenaiConfigError, OSError, ValueError):
            args.model = None
    if not args.model or not os.path.isfile(os.path.join(args.model, "config.json")):
        print(
            f"genai train: no config.json in {args.model or '(no model)'}: give MODEL (a folder "
            "with the module's config.json) or run it in an ml project",
            file=sys.stderr,
        )
        return 2
    if args.steps < 1 or args.batch_size < 1 or args.checkpoint_every < 1:
        print(
            "genai train: --steps, --batch-size and --checkpoint-every must be >= 1",
            file=sys.stderr,
        )
        return 2
    if args.data is None:  # the project's data/train.npz or data/train.safetensors when there
        for name in ("train.npz", "train.safetensors"):
            if os.path.isfile(os.path.join(root, "data", name)):
                args.data = os.path.join(root, "data", name)
                break
    print(f"data: {args.data or 'a synthetic classification task (no data/train.npz)'}")
    try:
        r = train(
            args.model,
            data=args.data,
            steps=args.steps,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            optimizer=args.optimizer,
            seed=args.seed,
            checkpoint_dir=args.checkpoint_dir,
            checkpoint_every=args.checkpoint_every,
            resume=args.resume,
            output=args.output,
            init=args.init,
            progress=True,
        )
    except ModuleLoadError as exc:  # the module does not build or load: its LOAD05x lines
        print(f"genai train: the module did not load: {exc}", file=sys.stderr)
        print(
            f"  run `genai doctor {args.model} --load` for the findings and fixes", file=sys.stderr
        )
        return 2
    except TrainError as exc:
        _print([exc.finding])
        return 1
    _print(r.findings)
    print(f"verdict: {r.verdict}")
    if r.checkpoint:
        print(f"checkpoint: {r.checkpoint}")
    if r.output:
        print(f"model: {r.output}")
    if r.history and not args.no_record:
        from genai_common.workflows.train_ml import loss_plot

        plot = os.path.join(os.path.dirname(results_path(root)), "train_loss.png")
        print(f"loss plot: {loss_plot(r.history, plot)}")
    if not args.no_record:
        m = dict(r.metrics)
        step = f"train {args.optimizer} lr={args.learning_rate} bs={args.batch_size}"
        if args.resume:
            step += " (resumed)"
        results_row(
            results_path(root),
            step,
            args.model,
            r.output or r.checkpoint or "",
            "",
            m.pop("train_s", ""),
            m,
            r.verdict,
        )
        todo_line(
            os.path.join(root, "TODO.md"),
            f"genai train {args.model} ({r.metrics.get('steps', 0)} steps, loss "
            f"{r.metrics.get('first_loss')} -> {r.metrics.get('last_loss')}): {r.verdict}",
        )
    return 1 if r.verdict == "fail" else 0
