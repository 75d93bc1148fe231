"""`genai convert SOURCE --output DIR [--quantize 4|8|mixed_3_6] [--group-size N] [--dtype D]`."""

from __future__ import annotations

import argparse

from genai_common.workflows.command import _convert_args, run_convert


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _convert_args(parser)


def run(args: argparse.Namespace) -> int:
    return run_convert(args)
