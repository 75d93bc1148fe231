"""File-level facts: Git-LFS pointer files, unfinished downloads, pickled checkpoints."""

from __future__ import annotations

import os

LFS_PREFIX = b"version https://git-lfs.github.com/spec/"
LFS_MAX_BYTES = 1024  # pointers are ~130 bytes; a real weight file is never this small
PARTIAL_SUFFIXES = (".incomplete", ".part", ".partial", ".tmp", ".download", ".crdownload", ".lock")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
WEIGHT_SUFFIXES = (".safetensors", ".gguf", ".npz", *PICKLE_SUFFIXES)


def lfs_pointer(path: str | os.PathLike[str], size: int | None = None) -> dict[str, str] | None:
    """The pointer's fields (oid, size) when `path` is a Git-LFS pointer, else None."""
    try:
        if size is None:
            size = os.stat(path).st_size
        if size > LFS_MAX_BYTES:
            return None
        with open(path, "rb") as fh:
            raw = fh.read(LFS_MAX_BYTES)
    except OSError:
        return None
    if not raw.startswith(LFS_PREFIX):
        return None
    fields: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(" ")
        if key:
            fields[key] = value.strip()
    return fields


def is_partial_name(name: str) -> bool:
    return name.endswith(PARTIAL_SUFFIXES)


def is_pickle_name(name: str) -> bool:
    """Weights stored with pickle (torch.save): reported, never loaded."""
    return name.endswith(PICKLE_SUFFIXES) and not name.endswith(".index.json")
