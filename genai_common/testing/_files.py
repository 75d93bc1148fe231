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


def prepare_dest(dest: str | Path, *, force: bool = False) -> Path:
    """Create DEST; refuse a non-empty one unless ``force`` (then its contents are removed)."""
    import shutil

    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise FileExistsError(f"{dest} exists and is not a directory")
    if dest.is_dir() and any(dest.iterdir()):
        if not force:
            raise FileExistsError(f"{dest} is not empty (use force=True / --force to overwrite)")
        shutil.rmtree(dest)
    dest.mkdir(parents=True, exist_ok=True)
    return dest
