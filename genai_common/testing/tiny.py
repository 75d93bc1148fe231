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
import shutil
import sys
import time
from pathlib import Path

from genai_common.testing import tiny_cache

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


MARKER = ".genai-tiny"  # written last into every folder `genai tiny` makes: "this is complete"


class DestinationError(Exception):
    """A destination `genai tiny` must not write or replace; one line for the user (exit 2)."""


def _refuse_replacing(dest: Path) -> None:
    """DestinationError unless `dest` is a folder `genai tiny` made (its marker) that holds no
    project: --force never deletes a project, the current folder, a home folder or a link."""
    real = dest.resolve()
    if dest.is_symlink():
        raise DestinationError(f"{dest} is a symbolic link: not replaced (remove it yourself)")
    guarded = {Path.cwd().resolve(), Path.home().resolve(), Path(real.anchor)}
    for parent in Path.cwd().resolve().parents:
        guarded.add(parent)
    if real in guarded:
        raise DestinationError(
            f"{dest} is the current folder, one above it, the home folder or the root: "
            "not replaced (give a new folder)"
        )
    for name in (".git", "pyproject.toml", "setup.py", ".hg"):
        if (real / name).exists():
            raise DestinationError(f"{dest} holds {name} (a project?): not replaced")
    if not (real / MARKER).is_file():
        raise DestinationError(
            f"{dest} was not made by `genai tiny` (no {MARKER} in it): not replaced; "
            "give an empty or new folder"
        )


def build(
    kind: str,
    dest: str | Path,
    *,
    variant: str | None = None,
    seed: int = 0,
    force: bool = False,
) -> Path:
    """Write a tiny model of `kind` (and `variant`) into `dest` and return the directory.

    The model is built in a temporary folder beside `dest` and renamed into place when complete
    (with a `.genai-tiny` marker written last), so a killed build never leaves a half-built
    `dest` and concurrent first builds each see nothing or a whole model. Refuses a non-empty
    `dest` (FileExistsError) unless `force`, which replaces only a folder `genai tiny` made
    (DestinationError otherwise: a project, the current or home folder, a link).
    """
    import json
    import os
    import tempfile

    variant = check_kind(kind, variant)
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise FileExistsError(f"{dest} exists and is not a directory")
    replace = dest.is_dir() and any(dest.iterdir())
    if replace:
        if not force:
            raise FileExistsError(f"{dest} is not empty (use force=True / --force to overwrite)")
        _refuse_replacing(dest)
    module_name = TINY_BUILDERS[kind][0]
    module = importlib.import_module(module_name)
    parent = dest.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tiny-", dir=parent))
    try:
        if kind not in CACHED or tiny_cache.root() is None:
            module.build(tmp, variant, seed)
        else:

            def builder(folder: Path) -> dict[str, object]:
                from genai_common.testing import train

                first = len(train.RECORDS)
                module.build(folder, variant, seed)
                return {"training": train.RECORDS[first:]}

            key = tiny_cache.key(kind, variant, seed, module_name)
            entry, _ = tiny_cache.fetch(key, builder)
            shutil.copytree(entry, tmp, dirs_exist_ok=True, copy_function=shutil.copyfile)
        marker = {"kind": kind, "variant": variant, "seed": seed}
        (tmp / MARKER).write_text(json.dumps(marker) + "\n")
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        _move_into_place(tmp, dest.resolve() if dest.is_symlink() else dest, replace)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _move_into_place(tmp: Path, dest: Path, replace: bool) -> None:
    """Rename the complete build over `dest` (absent or empty; or a tiny folder when `replace`)."""
    import os

    if not replace:
        try:
            os.rename(tmp, dest)  # an empty folder is replaced atomically on POSIX
            return
        except OSError:
            if dest.is_dir() and any(dest.iterdir()) and (dest / MARKER).is_file():
                shutil.rmtree(tmp, ignore_errors=True)  # a concurrent build finished first
                return
            raise
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
    os.rename(dest, old)
    try:
        os.rename(tmp, dest)
    except OSError:
        os.rename(old, dest)
        raise
    shutil.rmtree(old, ignore_errors=True)


def project_model_path(root: str | Path, kind: str, model: str, *, build_tiny: bool = True) -> str:
    """Where a project's model is: a local path or the hub id as written in [tool.genai].

    An empty model means the embedded tiny model of the project's kind (models/tiny-<kind>); with
    `build_tiny` it is built on first use (seconds, no network) and left alone afterwards. A
    folder without the marker (a build killed by an older version) is built again."""
    from genai_common.formats.pyproject import model_location

    where, is_tiny = model_location(root, kind, model)
    if is_tiny and build_tiny and not _looks_built(Path(where)):
        path = Path(where)
        if path.is_dir() and not path.is_symlink() and any(path.iterdir()):
            for name in (".git", "pyproject.toml"):
                if (path / name).exists():
                    raise FileExistsError(f"{path} holds {name}: not replaced by the tiny model")
            (path / MARKER).write_text("{}\n")  # ours by its place: replace the partial build
            build(kind, where, force=True)
        else:
            build(kind, where)
    return where


def _looks_built(path: Path) -> bool:
    """Complete: the marker is written last, only into a whole build (never a half-built one)."""
    return path.is_dir() and (path / MARKER).is_file()


def summary(path: Path) -> str:
    """One line: files and bytes written."""
    files = [p for p in path.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    return f"{len(files)} files, {size / 1024:.0f} KiB"


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
    except (FileExistsError, DestinationError) as exc:
        print(f"genai tiny: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # unwritable or missing folder, a file-size limit, a full disk
        print(f"genai tiny: {args.dest}: not written: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the build itself failed (e.g. MLX's compiler under `ulimit -f`)
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        print(
            f"genai tiny: {args.kind} not built ({args.dest} left as it was): "
            f"{type(exc).__name__}: {first}",
            file=sys.stderr,
        )
        return 2
    except ImportError as exc:
        print(
            f"genai tiny: {args.kind} needs {exc.name or exc}: install genai-common[{args.kind}]",
            file=sys.stderr,
        )
        return 2
    seconds = time.perf_counter() - start
    print(path)
    print(f"{args.kind}/{variant} seed={args.seed}: {summary(path)} in {seconds:.2f} s")
    return 0
