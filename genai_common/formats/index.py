"""`*.safetensors.index.json`: the map from tensor name to shard file, and the declared total size.

Paths in the map must stay inside the model directory: an entry with `..`, an absolute path or a
drive letter is dropped and reported (IDX003), so nothing outside the directory is ever opened.
"""

from __future__ import annotations

import itertools
import os
from types import SimpleNamespace

from genai_common.formats import FormatError, Problem
from genai_common.formats.jsonfile import read_json

_INF = float("inf")


class IndexInfo(SimpleNamespace):
    """One index file (a SimpleNamespace: repr and == without the dataclasses import)."""

    path: str
    weight_map: dict[str, str]  # tensor -> shard (relative, '/')
    total_size: int | None  # metadata.total_size (bytes of tensor data)
    metadata: dict
    problems: list[Problem]

    def __init__(
        self,
        path: str,
        weight_map: dict[str, str] | None = None,
        total_size: int | None = None,
        metadata: dict | None = None,
        problems: list[Problem] | None = None,
    ) -> None:
        super().__init__(
            path=path,
            weight_map={} if weight_map is None else weight_map,
            total_size=total_size,
            metadata={} if metadata is None else metadata,
            problems=[] if problems is None else problems,
        )

    @property
    def shards(self) -> list[str]:
        return sorted(set(self.weight_map.values()))


def _show(name: str, limit: int = 120) -> str:
    """A name for a message: repr (control characters escaped), cut to `limit` characters."""
    text = repr(name)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def safe_relative(name: str) -> str | None:
    """`name` as a clean relative '/' path inside the directory, or None if it could escape."""
    if not name or "\x00" in name:
        return None
    if name[0] != "." and not any(c in name for c in "/\\:"):
        return name  # the common case, a plain file name: nothing to clean
    from pathlib import PurePosixPath, PureWindowsPath  # only for names that need cleaning

    if PureWindowsPath(name).drive or name.startswith(("/", "\\")):
        return None
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if any(p == ".." for p in parts):
        return None
    clean = [p for p in parts if p not in ("", ".")]
    return "/".join(clean) or None


def read_index(path: str | os.PathLike[str], *, what: str | None = None) -> IndexInfo:
    path = os.fspath(path)
    what = what or os.path.basename(path)
    data, problems = read_json(path, what=what)
    return index_from_json(data, path=path, what=what, problems=problems)


def index_from_json(
    data: dict, *, path: str, what: str, problems: list[Problem] | None = None
) -> IndexInfo:
    """The IndexInfo of an index file's parsed JSON object (ModelDir parses each file once)."""
    info = IndexInfo(path=path, problems=list(problems or ()))
    weight_map = data.get("weight_map")
    if not isinstance(weight_map, dict):
        raise FormatError(
            "IDX001",
            f"{what} has no weight_map object"
            + (f" (it is a {type(weight_map).__name__})" if weight_map is not None else ""),
        )
    bad_values = 0
    escaping: dict[str, None] = {}  # ordered and hashed: a list's membership was quadratic
    try:
        shards = set(weight_map.values())
    except TypeError:  # an unhashable value (a list or an object): judged entry by entry
        shards = None
    if shards is not None and all(type(s) is str and safe_relative(s) == s for s in shards):
        info.weight_map.update(weight_map)  # the common case: every value a clean shard name
    else:
        cleaned: dict[str, str | None] = {}  # a few shards serve thousands of tensors
        for name, shard in weight_map.items():
            if not isinstance(shard, str):
                bad_values += 1
                continue
            rel = cleaned.get(shard, "")
            if rel == "":
                rel = cleaned[shard] = safe_relative(shard)
            if rel is None:
                escaping[shard] = None
                continue
            info.weight_map[name] = rel
    if bad_values:
        info.problems.append(
            ("IDX002", f"{what}: {bad_values} weight_map value(s) are not file names")
        )
    if escaping:
        first = list(itertools.islice(escaping, 3))
        shown = ", ".join(_show(s) for s in first)
        more = f" and {len(escaping) - 3:,} more" if len(escaping) > 3 else ""
        info.problems.append(
            (
                "IDX003",
                f"{what} points outside the model directory ({shown}{more}); "
                "those entries are ignored",
            )
        )
    metadata = data.get("metadata")
    if isinstance(metadata, dict):
        info.metadata = metadata
        total = metadata.get("total_size")
        if total is not None:
            # a finite number >= 0 (Infinity and NaN read as floats: JSON004 names the constant)
            if (
                isinstance(total, bool)
                or not isinstance(total, (int, float))
                or not 0 <= total < _INF
            ):
                info.problems.append(
                    ("IDX004", f"{what}: metadata.total_size {total!r} is not a byte count")
                )
            else:
                info.total_size = int(total)
    elif metadata is not None:
        info.problems.append(
            ("IDX004", f"{what}: metadata is a {type(metadata).__name__}, not an object")
        )
    return info
