"""Helpers for the check-family tests: run one family on a directory, edit configs, rewrite headers.

Broken variants are made from private copies of the tiny models (tiny_model_factory) or from
small directories written inline. Tensor data is zeros of the right length: the checks read
headers only, so the values never matter, but the files are valid safetensors.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from genai_common.checks import family_module
from genai_common.model_dir import ModelDir
from genai_common.report import Finding

ITEMSIZE = {
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "U32": 4,
    "I32": 4,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "F8_E8M0": 1,
}

Spec = dict[str, tuple[str, tuple[int, ...]]]

# The plugin's tiny MLX models (fixture names): each passes every check family clean.
CLEAN_TINY = [
    "tiny_llm",
    "tiny_llm_qwen2",
    "tiny_llm_gemma",
    "tiny_llm_4bit",
    "tiny_vlm",
    "tiny_vlm_paligemma",
]


def run(path: Path, family: str, *, metadata_only: bool = False) -> list[Finding]:
    md = ModelDir.open(path, metadata_only=metadata_only)
    return list(family_module(family).check(md))


def codes(path: Path, family: str, **kw: Any) -> list[str]:
    return [f.code for f in run(path, family, **kw)]


def problems(path: Path, family: str, **kw: Any) -> list[Finding]:
    """Findings at warning or error (what a clean model must not have)."""
    return [f for f in run(path, family, **kw) if f.severity != "info"]


def messages(path: Path, family: str, code: str, **kw: Any) -> list[str]:
    return [f.message for f in run(path, family, **kw) if f.code == code]


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def edit_json(path: Path, change: Callable[[dict], Any]) -> None:
    """Apply `change` to the JSON object in `path` (in place, or by returning a new object)."""
    data = read_json(path)
    out = change(data)
    data = out if isinstance(out, dict) else data
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def without(*keys: str) -> Callable[[dict], None]:
    """A change for edit_json / rewrite_tensors that removes these keys."""

    def change(d: dict) -> None:
        for key in keys:
            d.pop(key, None)

    return change


def write_safetensors(path: Path, spec: Spec) -> Path:
    """A valid safetensors file with these names, dtypes and shapes; data is zeros."""
    header: dict[str, Any] = {"__metadata__": {"format": "mlx"}}
    offset = 0
    for name in sorted(spec):
        dtype, shape = spec[name]
        n = ITEMSIZE[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        fh.write(b"\0" * offset)
    return path


def read_spec(path: Path) -> Spec:
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
    return {k: (v["dtype"], tuple(v["shape"])) for k, v in header.items() if k != "__metadata__"}


def rewrite_tensors(
    model: Path, change: Callable[[Spec], Spec | None], file: str = "model.safetensors"
) -> None:
    """Rewrite one weight file's header through `change` (data becomes zeros)."""
    path = model / file
    spec = read_spec(path)
    out = change(spec)
    write_safetensors(path, out if out is not None else spec)
    index = model / "model.safetensors.index.json"
    if index.exists():  # keep the index naming what is stored
        final = read_spec(path)
        edit_json(index, lambda d: {**d, "weight_map": {k: file for k in final}})
