"""Tiny real-format models for tests and demos, and the `genai tiny` command.

    build(kind, dest, *, variant=None, seed=0, force=False) -> Path
    project_model_path(root, kind, model) -> str    a project's model, as [tool.genai] names it

kinds and variants (the first is the default):
    llm        llama, qwen2, gemma, llama-4bit, deepseek_v3   (mlx_lm.load / mlx_lm.generate)
    vlm        qwen2_vl, paligemma               (mlx_vlm.load / mlx_vlm.generate)
    diffusion  sd, sd3                           (diffusers DiffusionPipeline.from_pretrained)
    ml         mlp                               (genai_common.testing.tiny_ml.load_tiny_ml)

The llm, vlm (text side) and ml models are trained for seconds on CPU at build time (train.py) and
cached per seed and version (tiny_cache.py: $GENAI_TINY_CACHE, `off` to build cold); the diffusion
pipelines have random weights drawn from the seed. The same seed and library versions give the same
bytes, cached or not. This module imports nothing heavy: each builder imports its libraries when
it runs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
import time
from pathlib import Path

from genai_common.testing import tiny_cache
from genai_common.testing._files import MARKER, prepare_dest

# kinds whose builds are trained, hence cached
CACHED = ("llm", "vlm", "ml")

# kind -> (builder module, variants; the first is the default)
TINY_BUILDERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "llm": (
        "genai_common.testing.tiny_llm",
        ("llama", "qwen2", "gemma", "llama-4bit", "deepseek_v3"),
    ),
    "vlm": ("genai_common.testing.tiny_vlm", ("qwen2_vl", "paligemma")),
    "diffusion": ("genai_common.testing.tiny_diffusion", ("sd", "sd3")),
    "ml": ("genai_common.testing.tiny_ml", ("mlp",)),
}


def check_kind(kind: str, variant: str | None) -> str:
    """Return the variant to build (the default when None); ValueError on an unknown pair."""
    if kind not in TINY_BUILDERS:
        raise ValueError(f"unknown kind {kind!r}; choose from {', '.join(TINY_BUILDERS)}")
    variants = TINY_BUILDERS[kind][1]
    if variant is None:
        return variants[0]
    if variant not in variants:
        raise ValueError(f"unknown {kind} variant {variant!r}; choose from {', '.join(variants)}")
    return variant


def build(
    kind: str,
    dest: str | Path,
    *,
    variant: str | None = None,
    seed: int = 0,
    force: bool = False,
) -> Path:
    """Write a tiny model of `kind` (and `variant`) into `dest` and return the directory.

    Refuses a non-empty `dest` (FileExistsError) unless `force`, which replaces its contents.
    """
    variant = check_kind(kind, variant)
    path = prepare_dest(dest, force=force)
    module_name = TINY_BUILDERS[kind][0]
    module = importlib.import_module(module_name)
    if kind not in CACHED or tiny_cache.root() is None:
        module.build(path, variant, seed)
        return _mark(path, kind, variant, seed)

    def builder(folder: Path) -> dict[str, object]:
        from genai_common.testing import train

        first = len(train.RECORDS)
        module.build(folder, variant, seed)
        return {"training": train.RECORDS[first:]}

    key = tiny_cache.key(kind, variant, seed, module_name)
    entry, _ = tiny_cache.fetch(key, builder)
    shutil.copytree(entry, path, dirs_exist_ok=True, copy_function=shutil.copyfile)
    return _mark(path, kind, variant, seed)


def _mark(path: Path, kind: str, variant: str, seed: int) -> Path:
    """The marker that says genai tiny made this folder (`--force` replaces only such folders)."""
    from genai_common.runtime.files import write_text

    # atomic: the marker means "complete", so a killed write must never leave a partial one
    write_text(path / MARKER, json.dumps({"kind": kind, "variant": variant, "seed": seed}) + "\n")
    return path


def project_model_path(root: str | Path, kind: str, model: str, *, build_tiny: bool = True) -> str:
    """Where a project's model is: a local path or the hub id as written in [tool.genai].

    An empty model means the embedded tiny model of the project's kind (models/tiny-<kind>); with
    `build_tiny` it is built on first use (seconds, no network) and left alone afterwards."""
    from genai_common.formats.pyproject import model_location

    where, is_tiny = model_location(root, kind, model)
    if is_tiny and build_tiny and not _is_built(Path(where)):
        build_in_place(kind, Path(where))
    return where


def _is_built(path: Path) -> bool:
    """Built completely: the marker is written last (a killed build leaves none)."""
    return (path / MARKER).is_file()


def build_in_place(kind: str, where: Path) -> Path:
    """Build the tiny model of `kind` at `where` so that no reader ever sees it half-built: into a
    temporary sibling, then renamed into place, under a lock on the parent folder (concurrent
    first runs build once). A folder there without the marker (a killed build, or one made before
    the marker existed) is replaced."""
    import os

    from genai_common.runtime.files import locked

    where.parent.mkdir(parents=True, exist_ok=True)
    with locked(where):
        if _is_built(where):
            return where
        partial = where.parent / f".{where.name}.building-{os.getpid()}"
        if partial.exists():
            shutil.rmtree(partial)
        build(kind, partial)
        if where.is_symlink() or where.exists():
            old = where.parent / f".{where.name}.old-{os.getpid()}"
            os.rename(where, old)
            os.rename(partial, where)
            if old.is_symlink() or not old.is_dir():
                old.unlink()
            else:
                shutil.rmtree(old)
        else:
            os.rename(partial, where)
    return where


def summary(path: Path) -> str:
    """One line: files and bytes written."""
    files = [p for p in path.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    from genai_common.model.values import gib

    return f"{len(files)} files, {gib(size)}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", help=f"one of: {', '.join(TINY_BUILDERS)}")
    parser.add_argument("dest", help="directory to write (must be empty or absent)")
    parser.add_argument(
        "--variant",
        help="; ".join(f"{k}: {', '.join(v)}" for k, (_, v) in TINY_BUILDERS.items()),
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the weights (0)")
    parser.add_argument("--force", action="store_true", help="replace a non-empty DEST")


def run(args: argparse.Namespace) -> int:
    try:
        variant = check_kind(args.kind, args.variant)
    except ValueError as exc:
        print(f"genai tiny: {exc}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        path = build(args.kind, args.dest, variant=variant, seed=args.seed, force=args.force)
    except FileExistsError as exc:
        print(f"genai tiny: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(
            f"genai tiny: {args.kind} needs {exc.name or exc}: install genai-common[{args.kind}]",
            file=sys.stderr,
        )
        return 2
    except OSError as exc:  # unwritable or missing folder, a file-size limit, a full disk
        print(f"genai tiny: {args.dest}: not written: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the build itself failed (e.g. MLX's compiler under `ulimit -f`)
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        print(
            f"genai tiny: {args.kind} not built (no marker: never taken as built): "
            f"{type(exc).__name__}: {first}",
            file=sys.stderr,
        )
        return 2
    seconds = time.perf_counter() - start
    print(path)
    print(f"{args.kind}/{variant} seed={args.seed}: {summary(path)} in {seconds:.2f} s")
    return 0
