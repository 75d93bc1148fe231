"""Strict JSON: the file must be UTF-8, at most `max_bytes`, and one JSON object.

Python's json module accepts NaN/Infinity and keeps the last of duplicate keys; other readers
(Rust serde, JavaScript, transformers' own tagged floats) reject or differ. So both are reported as
problems while the data is still returned as Python would read it.
"""

from __future__ import annotations

import json
import os
import re

from genai_common.formats import FormatError, Problem

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_JSON_BYTES = 64 * 1024 * 1024  # configs and indexes are KBs to a few MB; tokenizer.json ~30 MB


class _Hooks:
    """object_pairs_hook/parse_constant that record duplicates and non-finite numbers."""

    SHOWN = 5  # duplicate keys named in the message; the rest are counted

    def __init__(self) -> None:
        self.duplicates: list[str] = []
        self.more = 0  # duplicate keys past the first SHOWN
        self.constants: list[str] = []

    def pairs(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(pairs)
        lost = len(pairs) - len(out)
        if lost:
            if len(self.duplicates) < self.SHOWN:  # name a few (one linear pass, sets only)
                seen: set[str] = set()
                named = set(self.duplicates)
                for key, _ in pairs:
                    if key in seen and key not in named:
                        self.duplicates.append(key)
                        named.add(key)
                        lost -= 1
                        if len(self.duplicates) >= self.SHOWN:
                            break
                    seen.add(key)
            self.more += max(lost, 0)
        return out

    def constant(self, name: str) -> float:
        if name not in self.constants:
            self.constants.append(name)
        return float(name.replace("Infinity", "inf"))


FAST_PATH_CHARS = 1 << 20  # above this (tokenizer.json) the proof costs more than it saves
_SPACED_KEY = re.compile(r'"\s+:')
_NOTHING = object()


def spaced_key(text: str) -> bool:
    """Whether some key may be followed by whitespace before its colon (substring tests first:
    writers put none there)."""
    if " " not in text and "\n" not in text and "\t" not in text and "\r" not in text:
        return False  # compact JSON (safetensors headers): memchr-fast single-character tests
    return _SPACED_KEY.search(text) is not None


def count_keys(value: Any) -> int:
    """Keys of every object inside value (iterative: no recursion limit). A container whose
    items hold no container (an index's weight_map: 700+ strings) is passed over in one C-level
    `set(map(type, ...))` instead of a Python-level test per item."""
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            total += len(item)
            item = item.values()
        elif type(item) is not list:
            continue
        kinds = set(map(type, item))
        if dict in kinds or list in kinds:
            stack += [v for v in item if type(v) is dict or type(v) is list]
    return total


def no_lost_keys(text: str, keys: int) -> bool:
    """Whether the JSON text `text`, which parsed to objects holding `keys` keys in all, provably
    wrote no key twice (a duplicate would have been lost). Every key is followed by its `:`
    separator, so the count of `:` is at least the number of keys written (a `:` inside a string
    only over-counts); equal to the keys parsed means none was overwritten. When strings hold
    colons (URLs, chat templates), the count of `":` serves the same way, provided no key has
    whitespace before its colon. False: no proof, use the strict reader."""
    return keys == text.count(":") or (keys == text.count('":') and not spaced_key(text))


def _no_constant(name: str) -> float:
    raise ValueError(name)  # NaN/Infinity: only the strict path reads (and reports) them


# json.loads with a keyword builds a JSONDecoder per call; the fast paths share this one.
FAST_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def _fast(text: str) -> Any:
    """json.loads without hooks, when it provably lost no duplicate key (no_lost_keys) and met no
    NaN. None: use the strict path."""
    try:
        value = FAST_DECODER.decode(text)
    except (ValueError, RecursionError):  # not JSON, or NaN/Infinity
        return None
    if value is None or not no_lost_keys(text, count_keys(value)):
        return None
    return value


def parse_json_bytes(
    raw: bytes,
    *,
    what: str = "file",
    max_bytes: int = MAX_JSON_BYTES,
    fast_limit: int = FAST_PATH_CHARS,
) -> tuple[Any, list[Problem]]:
    """Parse bytes strictly; returns (value, problems). Any JSON value is accepted here.
    `fast_limit`: texts up to this many characters try json.loads without hooks first, kept when
    the colon proof shows no key was lost (configs, indexes and vocab.json pass any size: their
    proof is a few C-level calls, while the hooks cost ~17x the file in memory)."""
    if len(raw) > max_bytes:
        raise FormatError("JSON006", f"{what} is {len(raw):,} bytes, over the {max_bytes:,} cap")
    if not raw.strip():
        raise FormatError("JSON007", f"{what} is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(
            "JSON001", f"{what} is not UTF-8 (byte {exc.start}: {raw[exc.start : exc.start + 1]!r})"
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if len(text) <= fast_limit:
        fast = _fast(text)
        if fast is not None:
            return fast, []
    hooks = _Hooks()
    try:
        value = json.loads(text, object_pairs_hook=hooks.pairs, parse_constant=hooks.constant)
    except json.JSONDecodeError as exc:
        raise FormatError(
            "JSON002",
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
        ) from None
    except RecursionError:
        raise FormatError("JSON002", f"{what} nests too deeply to be read") from None
    except ValueError as exc:  # an integer over Python's 4,300-digit limit (int_max_str_digits)
        raise FormatError("JSON002", f"{what} cannot be read: {str(exc)[:200]}") from None
    problems: list[Problem] = []
    if hooks.duplicates:
        problems.append(
            (
                "JSON005",
                f"{what} repeats key(s) {', '.join(_short(k) for k in hooks.duplicates)}"
                + (f" and {hooks.more:,} more" if hooks.more else "")
                + "; "
                "Python keeps the last value, other readers may keep the first or refuse",
            )
        )
    if hooks.constants:
        problems.append(
            (
                "JSON004",
                f"{what} contains {', '.join(hooks.constants)}, which is not JSON; "
                "Python reads it, strict readers refuse it",
            )
        )
    return value, problems


def _short(key: str, limit: int = 80) -> str:
    """A key for a message: repr (control characters escaped), cut to `limit` characters."""
    text = repr(key)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def read_bytes(path: str, *, max_bytes: int, what: str) -> tuple[bytes, os.stat_result]:
    """The bytes of a file of at most max_bytes (JSON006 over it, JSON008 unreadable) and the
    stat it was read under."""
    try:
        st = os.stat(path)
        if st.st_size > max_bytes:
            raise FormatError(
                "JSON006", f"{what} is {st.st_size:,} bytes, over the {max_bytes:,} cap"
            )
        with open(path, "rb") as fh:
            raw = fh.read(st.st_size + 1)  # read(n) allocates n up front: never the cap
    except OSError as exc:
        raise FormatError("JSON008", f"{what} cannot be read: {exc.strerror or exc}") from None
    return raw, st


def require_object(value: Any, what: str) -> dict[str, Any]:
    """value when it is a JSON object, else JSON003."""
    if not isinstance(value, dict):
        raise FormatError("JSON003", f"{what} holds a JSON {_json_type(value)}, not an object")
    return value


def read_json(
    path: str | os.PathLike[str],
    *,
    max_bytes: int = MAX_JSON_BYTES,
    what: str | None = None,
    fast_limit: int = FAST_PATH_CHARS,
) -> tuple[dict[str, Any], list[Problem]]:
    """Read a JSON object file strictly; returns (object, problems) or raises FormatError."""
    path = os.fspath(path)
    what = what or os.path.basename(path)
    raw, _ = read_bytes(path, max_bytes=max_bytes, what=what)
    value, problems = parse_json_bytes(raw, what=what, max_bytes=max_bytes, fast_limit=fast_limit)
    return require_object(value, what), problems


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"
