"""Deterministic writers shared by the tiny-model builders: JSON, random weights, safetensors.

Weights are drawn with numpy from a generator seeded by (seed, name), so a tensor's values depend
only on the seed and its own name, and files are written with sorted keys: the same seed and the
same library versions give the same bytes.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# Tensors whose name ends like this are norm weights (ones, or zeros for offset norms like Gemma's).
NORM_SUFFIXES = ("norm.weight", "layernorm.weight", "layer_norm.weight", "ln.weight")


def write_json(path: Path, data: Mapping[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def rng_for(seed: int, name: str) -> Any:
    """A numpy Generator that depends only on the seed and a name."""
    import numpy as np

    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def random_weights(
    shapes: Mapping[str, tuple[int, ...]],
    seed: int,
    *,
    dtype: str = "float32",
    std: float = 0.02,
    norm_value: float = 1.0,
) -> dict[str, Any]:
    """Normal(0, std) tensors for every name; norm weights are constant ``norm_value``."""
    import numpy as np

    out: dict[str, Any] = {}
    for name in sorted(shapes):
        shape = shapes[name]
        if name.endswith(NORM_SUFFIXES):
            arr = np.full(shape, norm_value, dtype=np.float32)
        else:
            arr = rng_for(seed, name).normal(0.0, std, size=shape).astype(np.float32)
        out[name] = arr.astype(dtype)
    return out


def zero_rows(array: Any, rows: Iterable[int], scale: float = 0.0) -> Any:
    """Scale the given rows of a 2-D array (used to keep special/padding ids out of greedy picks)."""
    array = array.copy()
    for row in rows:
        if 0 <= row < array.shape[0]:
            array[row] *= scale
    return array


def save_safetensors(path: Path, tensors: Mapping[str, Any], *, fmt: str = "pt") -> Path:
    """Write numpy arrays to a .safetensors file with metadata {'format': fmt}, names sorted."""
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: tensors[k] for k in sorted(tensors)}, str(path), metadata={"format": fmt})
    return path


# Written last into every folder `genai tiny` builds: `--force` replaces only such folders.
MARKER = ".genai-tiny"


def prepare_dest(dest: str | Path, *, force: bool = False) -> Path:
    """Create DEST; refuse a non-empty one unless ``force``, which replaces only what `genai tiny`
    made itself (its MARKER file is there): never a project (a .git or a pyproject.toml), the
    current directory or one above it, the home directory, or a symlink (FileExistsError)."""
    import os
    import shutil

    dest = Path(dest)
    if dest.is_symlink():
        raise FileExistsError(f"{dest} is a symlink: give the real folder")
    if dest.exists() and not dest.is_dir():
        raise FileExistsError(f"{dest} exists and is not a directory")
    if dest.is_dir() and any(dest.iterdir()):
        if not force:
            raise FileExistsError(f"{dest} is not empty (use force=True / --force to overwrite)")
        real = dest.resolve()
        cwd = Path(os.getcwd()).resolve()
        protected = {Path.home().resolve(), Path(real.anchor)}
        if real in protected or real == cwd or real in cwd.parents:
            raise FileExistsError(f"{dest} is the current, home or root folder: --force refused")
        for name in (".git", "pyproject.toml"):
            if (real / name).exists():
                raise FileExistsError(f"{dest} holds {name} (a project): --force refused")
        if not (real / MARKER).is_file():
            raise FileExistsError(
                f"{dest} was not made by genai tiny (no {MARKER}): --force replaces only those; "
                "empty or delete it yourself"
            )
        shutil.rmtree(real)
    dest.mkdir(parents=True, exist_ok=True)
    return dest
