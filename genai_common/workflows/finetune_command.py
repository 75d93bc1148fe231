"""`genai finetune MODEL [--data data] [--adapter-path adapters] [--fuse DIR] [--check-only]`."""

from __future__ import annotations

import argparse

from genai_common.workflows.command import _finetune_args, run_finetune


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _finetune_args(parser)


def run(args: argparse.Namespace) -> int:
    return run_finetune(args)
