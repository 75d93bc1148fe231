"""What a reader derived from a large file, kept between runs and keyed by the file's identity.

A tokenizer.json of a large vocabulary is tens of MB: reading it costs more than everything else
the doctor does, on every run, for the same unchanged file. An entry here stores what the reader
made of the file (small: the parts the rules read), under the file's identity:

    (size, mtime_ns, ctime_ns, inode, device, what the reader was asked)

Any change to the file changes its ctime (even one that restores size and mtime with utime), and a
file replaced by another (a copy, a rename over it) has another inode. A file modified within
RACY_NS of the moment it was read is not stored: its timestamps may not yet tell a second write in
the same clock tick from the first (git's "racy" index entries; FAT and HFS+ keep 1-2 s
timestamps).

The path is not part of the key (issue 14): the Hugging Face cache links every snapshot's
tokenizer.json to one blob, and a folder copied with hard links (or moved) holds the same file, so
each of them finds the one entry; `what` (the name findings show) is part of it.

Where: $GENAI_CACHE_DIR (empty: no cache), else $XDG_CACHE_HOME/genai-common/read-cache, else
~/.cache/genai-common/read-cache. One JSON file per entry, named by kind, device and inode, written
to a temporary name and renamed over the entry (atomic: a reader sees the old entry or the new,
never half of one). An entry that does not parse, names another version or another identity, or
has the wrong shape is ignored (and overwritten by the next store). At most MAX_ENTRIES entries
are kept: storing beyond that removes the oldest. Every failure to read or write the cache is
silent: the cache only ever saves time.
"""

from __future__ import annotations

import contextlib
import json
import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

VERSION = 2  # 2: the key no longer holds the absolute path
RACY_NS = 2_000_000_000
MAX_ENTRIES = 256
MAX_ENTRY_BYTES = 8 * 1024 * 1024


def cache_dir() -> str | None:
    """The cache folder, or None when GENAI_CACHE_DIR is set empty (no cache)."""
    chosen = os.environ.get("GENAI_CACHE_DIR")
    if chosen is not None:
        return os.path.expanduser(chosen) if chosen.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "genai-common", "read-cache")


def identity(path: str, st: os.stat_result, what: str) -> list[Any]:
    """The key an entry is stored under (a list: what JSON gives back). `path` is not part of it:
    every link to one file shares its entry."""
    return [
        st.st_size,
        st.st_mtime_ns,
        st.st_ctime_ns,
        st.st_ino,
        st.st_dev,
        what,
    ]


def _entry(folder: str, kind: str, st: os.stat_result) -> str:
    return os.path.join(folder, f"{kind}-{st.st_dev:x}-{st.st_ino:x}.json")


def load(kind: str, key: list[Any], st: os.stat_result) -> Any:
    """The payload stored for this identity, or None (no cache, no entry, stale or damaged)."""
    folder = cache_dir()
    if folder is None:
        return None
    try:
        with open(_entry(folder, kind, st), "rb") as fh:
            raw = fh.read(MAX_ENTRY_BYTES + 1)
        if len(raw) > MAX_ENTRY_BYTES:
            return None
        entry = json.loads(raw)
    except (OSError, ValueError, RecursionError):
        return None
    if (
        not isinstance(entry, dict)
        or entry.get("version") != VERSION
        or entry.get("kind") != kind
        or entry.get("key") != key
    ):
        return None
    return entry.get("payload")


def store(kind: str, key: list[Any], st: os.stat_result, payload: Any) -> bool:
    """Store payload under the identity; False when not stored (no cache, racy file, too large,
    or the folder cannot be written)."""
    folder = cache_dir()
    if folder is None or time.time_ns() - st.st_mtime_ns < RACY_NS:
        return False
    try:
        text = json.dumps({"version": VERSION, "kind": kind, "key": key, "payload": payload})
    except (TypeError, ValueError, RecursionError):
        return False
    data = text.encode("ascii")  # ensure_ascii: lone surrogates come back as they were
    if len(data) > MAX_ENTRY_BYTES:
        return False
    final = _entry(folder, kind, st)
    temp = f"{final}.{os.getpid()}.tmp"
    try:
        os.makedirs(folder, exist_ok=True)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(temp, final)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        return False
    _prune(folder)
    return True


def _prune(folder: str) -> None:
    """Keep the newest MAX_ENTRIES files (entries, and temporary files a killed writer left)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    if len(names) <= MAX_ENTRIES:
        return
    aged: list[tuple[int, str]] = []
    for name in names:
        path = os.path.join(folder, name)
        try:
            aged.append((os.stat(path).st_mtime_ns, path))
        except OSError:
            continue
    aged.sort()
    for _, path in aged[: len(aged) - MAX_ENTRIES]:
        with contextlib.suppress(OSError):
            os.unlink(path)
