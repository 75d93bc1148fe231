"""GGUF header reader (our own, bounded): version, metadata key/values, tensor infos.

Layout (ggml docs/gguf.md): magic "GGUF", u32 version, u64 tensor count, u64 metadata count, the
metadata (string key, u32 value type, value), the tensor infos (string name, u32 n_dims, u64 dims,
u32 ggml type, u64 offset), then padding to `general.alignment` (default 32) and the data. Strings
are u64 length + UTF-8 bytes. Versions 2 and 3 use these 64-bit lengths; version 1 is not read.

Every count and length is checked against the bytes that remain in the file before it is used,
so a hostile header cannot make the reader allocate or loop past the file size. The file is
memory-mapped, never read whole. Large arrays (the tokenizer's token list) are summarised by
type and length, not kept.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections import namedtuple
from itertools import pairwise
from types import SimpleNamespace

from genai_common.formats import FormatError, Problem

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
MAX_STRING_BYTES = 16 * 1024 * 1024  # a single key or value; chat templates are KBs
MAX_DIMS = 8  # ggml's GGML_MAX_DIMS is 4
KEEP_ARRAY_ITEMS = 64  # arrays longer than this are summarised
MAX_METADATA_KEYS = 4096  # llama.cpp writes tens; more are parsed but not kept (SEC011)
# Items a header may declare before the reader stops (SEC021: the rest is not read). Each string
# or nested array of a long array is walked in Python to find where the next entry starts, and
# each tensor info becomes an object: real files hold a 262,144-token list (Gemma 3), 514,906
# merges, a few thousand tensors (issue 15: every input judged in bounded time and memory).
MAX_ARRAY_WALK = 1 << 21  # items of long string or nested arrays, all arrays together
MAX_TENSORS = 1 << 16  # tensor infos: 65,536
MAX_ENTRIES = 1 << 16  # metadata entries parsed (MAX_METADATA_KEYS of them kept)

# ggml type id -> (name, elements per block, bytes per block)
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 40),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36),
    41: ("Q1_0", 128, 18),
}

# metadata value type -> (name, struct format or None, size)
_SCALARS: dict[int, tuple[str, str, int]] = {
    0: ("u8", "B", 1),
    1: ("i8", "b", 1),
    2: ("u16", "H", 2),
    3: ("i16", "h", 2),
    4: ("u32", "I", 4),
    5: ("i32", "i", 4),
    6: ("f32", "f", 4),
    7: ("bool", "?", 1),
    10: ("u64", "Q", 8),
    11: ("i64", "q", 8),
    12: ("f64", "d", 8),
}
STRING, ARRAY = 8, 9


class ArraySummary(namedtuple("ArraySummary", "item_type length")):
    """A metadata array too long to keep: its item type and length."""

    __slots__ = ()
    item_type: str
    length: int


class GGUFTensor(namedtuple("GGUFTensor", "name shape type_id offset nbytes")):
    """One tensor info of a GGUF header."""

    __slots__ = ()
    name: str
    shape: tuple[int, ...]  # as stored (ggml order: fastest-varying first)
    type_id: int
    offset: int  # relative to the data section
    nbytes: int | None  # None when the type is unknown

    @property
    def type_name(self) -> str:
        entry = GGML_TYPES.get(self.type_id)
        return entry[0] if entry else f"type{self.type_id}"


class GGUFInfo(SimpleNamespace):
    """A GGUF header (a SimpleNamespace: repr and == without the dataclasses import)."""

    path: str
    version: int
    file_size: int
    byte_order: str
    metadata: dict[str, Any]
    tensors: dict[str, GGUFTensor]
    alignment: int
    data_offset: int
    problems: list[Problem]

    def __init__(
        self,
        path: str,
        version: int,
        file_size: int,
        byte_order: str = "little",
        metadata: dict[str, Any] | None = None,
        tensors: dict[str, GGUFTensor] | None = None,
        alignment: int = DEFAULT_ALIGNMENT,
        data_offset: int = 0,
        problems: list[Problem] | None = None,
    ) -> None:
        super().__init__(
            path=path,
            version=version,
            file_size=file_size,
            byte_order=byte_order,
            metadata={} if metadata is None else metadata,
            tensors={} if tensors is None else tensors,
            alignment=alignment,
            data_offset=data_offset,
            problems=[] if problems is None else problems,
        )

    @property
    def architecture(self) -> str | None:
        arch = self.metadata.get("general.architecture")
        return arch if isinstance(arch, str) else None

    def type_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.tensors.values():
            out[t.type_name] = out.get(t.type_name, 0) + 1
        return out


class _Cursor:
    def __init__(self, buf: Any, size: int, what: str, order: str) -> None:
        self.buf, self.size, self.what, self.pos = buf, size, what, 0
        self.walked = 0  # items of long string or nested arrays walked so far (MAX_ARRAY_WALK)
        self.order = "<" if order == "little" else ">"

    def need(self, n: int, for_what: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise FormatError(
                "GGUF004",
                f"{self.what} ends inside its header (needs {n:,} bytes for {for_what} at offset "
                f"{self.pos:,}, file is {self.size:,} bytes)",
            )

    def scalar(self, fmt: str, size: int, for_what: str) -> Any:
        self.need(size, for_what)
        (value,) = struct.unpack_from(self.order + fmt, self.buf, self.pos)
        self.pos += size
        return value

    def u32(self, for_what: str) -> int:
        return self.scalar("I", 4, for_what)

    def u64(self, for_what: str) -> int:
        return self.scalar("Q", 8, for_what)

    def string(self, for_what: str, *, keep: bool = True) -> str:
        n = self.u64(for_what)
        if n > MAX_STRING_BYTES:
            raise FormatError(
                "GGUF005",
                f"{self.what}: {for_what} declares a {n:,}-byte string (cap {MAX_STRING_BYTES:,})",
            )
        self.need(n, for_what)
        start = self.pos
        self.pos += n
        if not keep:
            return ""
        try:
            return bytes(self.buf[start : start + n]).decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError("GGUF005", f"{self.what}: {for_what} is not UTF-8") from None


def read_gguf(path: str | os.PathLike[str], *, what: str | None = None) -> GGUFInfo:
    path = os.fspath(path)
    what = what or os.path.basename(path)
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < 24:
                head = fh.read(4)
                if size == 0:
                    raise FormatError("GGUF004", f"{what} is empty (0 bytes)")
                if head != MAGIC[: len(head)]:
                    raise FormatError(
                        "GGUF001", f"{what} does not start with the GGUF magic (found {head!r})"
                    )
                raise FormatError("GGUF004", f"{what} is {size} bytes, shorter than a GGUF header")
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _parse(buf, size, what, path)
    except OSError as exc:
        raise FormatError("GGUF004", f"{what} cannot be read: {exc.strerror or exc}") from None


def _parse(buf: Any, size: int, what: str, path: str) -> GGUFInfo:
    if buf[:4] != MAGIC:
        raise FormatError(
            "GGUF001", f"{what} does not start with the GGUF magic (found {bytes(buf[:4])!r})"
        )
    (version,) = struct.unpack_from("<I", buf, 4)
    order = "little"
    if version & 0xFFFF == 0 and version:  # written on a big-endian host
        (version,) = struct.unpack_from(">I", buf, 4)
        order = "big"
    if version not in (2, 3):
        raise FormatError(
            "GGUF002",
            f"{what} is GGUF version {version}; versions 2 and 3 are read (1 is obsolete)",
        )
    cur = _Cursor(buf, size, what, order)
    cur.pos = 8
    n_tensors = cur.u64("the tensor count")
    n_kv = cur.u64("the metadata count")
    remaining = size - cur.pos
    # smallest possible entries: a KV is 8 (key len) + 4 (type) + 1; a tensor info 8 + 4 + 4 + 8
    if n_kv * 13 > remaining or n_tensors * 24 > remaining:
        raise FormatError(
            "GGUF003",
            f"{what} declares {n_tensors:,} tensors and {n_kv:,} metadata entries, more than "
            f"its {size:,} bytes can hold",
        )
    if n_tensors > MAX_TENSORS or n_kv > MAX_ENTRIES:
        many, cap = (
            (f"{n_tensors:,} tensors", MAX_TENSORS)
            if n_tensors > MAX_TENSORS
            else (f"{n_kv:,} metadata entries", MAX_ENTRIES)
        )
        raise FormatError(
            "SEC021",
            f"{what} declares {many}; the reader stops at {cap:,} (real GGUF files hold a few "
            "thousand tensors and tens of entries): its header was not read",
        )
    info = GGUFInfo(path=path, version=version, file_size=size, byte_order=order)
    if order == "big":
        info.problems.append(
            ("GGUF010", f"{what} is a big-endian GGUF; MLX and most tools read little-endian only")
        )
    duplicates: list[str] = []
    skipped = 0
    for i in range(n_kv):
        key = cur.string(f"metadata key #{i}")
        value_type = cur.u32(f"the type of {key!r}")
        value = _value(cur, value_type, key)
        if key in info.metadata:
            if len(duplicates) < 5 and key not in duplicates:
                duplicates.append(key)
        elif len(info.metadata) >= MAX_METADATA_KEYS:
            skipped += 1  # parsed (the layout is still checked), not kept: memory stays bounded
            continue
        info.metadata[key] = value
    if skipped:
        info.problems.append(
            (
                "SEC011",
                f"{what} holds {n_kv:,} metadata entries; the first {MAX_METADATA_KEYS:,} were "
                f"kept and {skipped:,} skipped (real files hold tens)",
            )
        )
    if duplicates:
        info.problems.append(
            (
                "GGUF006",
                f"{what} repeats metadata key(s) {', '.join(repr(d)[:80] for d in duplicates)}",
            )
        )
    alignment = info.metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if (
        not isinstance(alignment, int)
        or isinstance(alignment, bool)
        or alignment <= 0
        or alignment & (alignment - 1)
    ):
        info.problems.append(
            (
                "GGUF007",
                f"{what}: general.alignment {alignment!r} is not a positive power of two; using 32",
            )
        )
        alignment = DEFAULT_ALIGNMENT
    info.alignment = alignment
    dup_tensors: list[str] = []
    for i in range(n_tensors):
        name = cur.string(f"tensor name #{i}")
        n_dims = cur.u32(f"the dimension count of {name!r}")
        if n_dims > MAX_DIMS:
            raise FormatError(
                "GGUF008", f"{what}: tensor {name!r} declares {n_dims} dimensions (max {MAX_DIMS})"
            )
        dims = tuple(cur.u64(f"the shape of {name!r}") for _ in range(n_dims))
        type_id = cur.u32(f"the type of {name!r}")
        offset = cur.u64(f"the offset of {name!r}")
        nbytes = _nbytes(dims, type_id)
        if name in info.tensors and len(dup_tensors) < 5:
            dup_tensors.append(name)
        info.tensors[name] = GGUFTensor(name, dims, type_id, offset, nbytes)
    if dup_tensors:
        info.problems.append(
            ("GGUF006", f"{what} repeats tensor name(s) {', '.join(map(repr, dup_tensors))}")
        )
    info.data_offset = -(-cur.pos // alignment) * alignment
    _check_tensors(info, what)
    return info


def _value(cur: _Cursor, value_type: int, key: str, depth: int = 0, keep: bool = True) -> Any:
    """One metadata value at the cursor. keep=False walks it without building it (an item of an
    array too long to keep): memory stays bounded whatever the array holds."""
    scalar = _SCALARS.get(value_type)
    if scalar is not None:
        if not keep:
            cur.need(scalar[2], f"the value of {key!r}")
            cur.pos += scalar[2]
            return None
        return cur.scalar(scalar[1], scalar[2], f"the value of {key!r}")
    if value_type == STRING:
        return cur.string(f"the value of {key!r}", keep=keep)
    if value_type != ARRAY:
        raise FormatError(
            "GGUF009", f"{cur.what}: metadata {key!r} has unknown value type {value_type}"
        )
    if depth > 2:
        raise FormatError("GGUF009", f"{cur.what}: metadata {key!r} nests arrays too deeply")
    item_type = cur.u32(f"the item type of {key!r}")
    count = cur.u64(f"the length of {key!r}")
    item_scalar = _SCALARS.get(item_type)
    min_item = item_scalar[2] if item_scalar else 8 if item_type == STRING else 12
    if item_type not in _SCALARS and item_type not in (STRING, ARRAY):
        raise FormatError("GGUF009", f"{cur.what}: array {key!r} has unknown item type {item_type}")
    if count * min_item > cur.size - cur.pos:
        raise FormatError(
            "GGUF003",
            f"{cur.what}: array {key!r} declares {count:,} items, more than the file holds",
        )
    keep = keep and count <= KEEP_ARRAY_ITEMS
    if item_scalar is not None and not keep:
        cur.pos += count * item_scalar[2]  # fixed-size items: skip without reading
        return ArraySummary(item_scalar[0], count)
    if not keep:
        cur.walked += count
        if cur.walked > MAX_ARRAY_WALK:
            kind = "strings" if item_type == STRING else "arrays"
            raise FormatError(
                "SEC021",
                f"{cur.what}: array {key!r} declares {count:,} {kind}; the reader walks at most "
                f"{MAX_ARRAY_WALK:,} items of long arrays in all (the largest token lists hold "
                "262,144, merge lists 514,906): the header after it was not read",
            )
    if item_type == STRING and not keep:  # the tokenizer's token list: walk the lengths only
        _skip_strings(cur, count, key)
        return ArraySummary("string", count)
    if not keep:  # arrays of arrays: each walked, none built
        for _ in range(count):
            _value(cur, item_type, key, depth + 1, keep=False)
        return ArraySummary("array", count)
    items = []
    for _ in range(count):
        if item_type == STRING:
            items.append(cur.string(f"an item of {key!r}"))
        else:
            items.append(_value(cur, item_type, key, depth + 1))
    return items


def _skip_strings(cur: _Cursor, count: int, key: str) -> None:
    unpack = struct.Struct(cur.order + "Q").unpack_from
    buf, size, pos = cur.buf, cur.size, cur.pos
    for _ in range(count):
        if pos + 8 > size:
            cur.pos = pos
            cur.need(8, f"an item of {key!r}")
        (n,) = unpack(buf, pos)
        pos += 8 + n
        if n > MAX_STRING_BYTES or pos > size:
            cur.pos = pos - n
            if n > MAX_STRING_BYTES:
                raise FormatError("GGUF005", f"{cur.what}: an item of {key!r} declares {n:,} bytes")
            cur.need(n, f"an item of {key!r}")
    cur.pos = pos


def _nbytes(dims: tuple[int, ...], type_id: int) -> int | None:
    entry = GGML_TYPES.get(type_id)
    if entry is None:
        return None
    _, block, size = entry
    if dims and dims[0] % block:
        return None
    n = 1
    for d in dims:
        n *= d
    return n // block * size


def _check_tensors(info: GGUFInfo, what: str) -> None:
    data_size = info.file_size - info.data_offset
    unknown = sorted({t.type_id for t in info.tensors.values() if t.type_id not in GGML_TYPES})
    if unknown:
        info.problems.append(("GGUF011", f"{what}: unknown ggml tensor type id(s) {unknown}"))
    spans = []
    for t in info.tensors.values():
        entry = GGML_TYPES.get(t.type_id)
        if entry is not None and t.nbytes is None:
            info.problems.append(
                (
                    "GGUF012",
                    f"{what}: tensor {t.name!r} {entry[0]} {t.shape}: first dimension is not a whole number of {entry[1]}-element blocks",
                )
            )
            continue
        if t.offset % info.alignment:
            info.problems.append(
                (
                    "GGUF012",
                    f"{what}: tensor {t.name!r} offset {t.offset:,} is not a multiple of the alignment {info.alignment}",
                )
            )
        if t.nbytes is not None:
            spans.append((t.offset, t.offset + t.nbytes, t.name))
    past = [s for s in spans if s[1] > data_size]
    if past:
        worst = max(past)
        info.problems.append(
            (
                "GGUF013",
                f"{what} is {worst[1] - data_size:,} bytes shorter than its tensor infos say "
                f"({len(past)} tensor(s) end past the file, e.g. {worst[2]!r}): truncated or unfinished download",
            )
        )
    spans.sort()
    for (b0, e0, n0), (b1, _e1, n1) in pairwise(spans):
        if b1 < e0 and b0 != e0:  # empty tensors overlap nothing
            info.problems.append(("GGUF014", f"{what}: tensors {n0!r} and {n1!r} overlap"))
            break
