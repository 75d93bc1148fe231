"""safetensors header reader: names, dtypes, shapes and offsets, never the data.

Layout (huggingface/safetensors): 8-byte little-endian u64 N, then N bytes of UTF-8 JSON
``{name: {"dtype": str, "shape": [int...], "data_offsets": [begin, end]}, "__metadata__": {str: str}}``,
then the byte buffer; offsets are relative to the buffer and must not overlap. The length N is
checked against the cap and the file size before the header is read.

Fatal problems raise FormatError (HDR001-HDR005); problems with single entries are returned with
the header (the bad entry is left out, or kept without a byte count) so a check can still judge the
rest.
"""

from __future__ import annotations

import json
import os
from collections import namedtuple
from operator import itemgetter
from stat import S_ISDIR
from types import SimpleNamespace

from genai_common.formats import FormatError, Problem
from genai_common.formats.jsonfile import FAST_DECODER, no_lost_keys, parse_json_bytes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_HEADER_BYTES = 100_000_000  # the format's own limit (safetensors README)
# Header bytes a checkpoint's files may hold in all before the rest are not read (SEC020). Real
# headers cost about 150 bytes a tensor: a Llama-3-70B's 30 shards 0.1 MB, DeepSeek-V3 (91k
# tensors) about 14 MB, a 200,000-tensor int4 MoE about 25 MB. Reading and judging a header costs
# about 0.1 s a MB here, so a 92 MB header of a million tensors took 15 s (issue 15).
MAX_HEADERS_TOTAL = 48 * 1024 * 1024
MAX_DIMS = 64  # numpy's NPY_MAXDIMS; mlx and torch make no tensor with more either

# dtype -> bits per element (safetensors 0.8 names)
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "F64": 64,
    "I64": 64,
    "U64": 64,
    "C64": 64,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
}
# mx.load (mlx 0.32.4, measured) refuses these: "[safetensor] unsupported dtype F64". It reads
# F8_E4M3 and F8_E8M0 as raw uint8.
MLX_UNSUPPORTED_DTYPES = frozenset({"F8_E5M2", "F64", "F4", "F6_E2M3", "F6_E3M2"})
_BIG = 1 << 64
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)


class TensorInfo(
    namedtuple("TensorInfo", "name dtype shape file nbytes begin end", defaults=(None, None, None))
):
    """One tensor as the loader will see it, from a header (a named tuple: cheap by the thousand).

    Re-exported as genai_common.model.TensorInfo; `begin`/`end` are the data offsets
    (None when the tensor is known only from an index)."""

    __slots__ = ()
    name: str
    dtype: str | None  # safetensors dtype string: F32, F16, BF16, U32, I8, ...
    shape: tuple[int, ...] | None
    file: str  # relative path of the file holding it
    nbytes: int | None  # prod(shape) * bits / 8; None when unknown
    begin: int | None
    end: int | None

    @property
    def numel(self) -> int | None:
        if self.shape is None:
            return None
        n = 1
        for d in self.shape:
            n *= d
        return n


HeaderTensor = TensorInfo  # the reader's name for it


class SafetensorsHeader(SimpleNamespace):
    """One file's header (a SimpleNamespace: repr and == without the dataclasses import)."""

    path: str
    file_size: int
    header_len: int
    tensors: dict[str, HeaderTensor]
    metadata: dict[str, str] | None
    problems: list[Problem]

    def __init__(
        self,
        path: str,
        file_size: int,
        header_len: int,
        tensors: dict[str, HeaderTensor] | None = None,
        metadata: dict[str, str] | None = None,
        problems: list[Problem] | None = None,
    ) -> None:
        super().__init__(
            path=path,
            file_size=file_size,
            header_len=header_len,
            tensors={} if tensors is None else tensors,
            metadata=metadata,
            problems=[] if problems is None else problems,
        )

    @property
    def data_size(self) -> int:
        """Bytes after the header: the buffer the offsets index."""
        return self.file_size - 8 - self.header_len

    @property
    def data_end(self) -> int:
        """The largest end offset any entry names."""
        return max((t.end for t in self.tensors.values()), default=0)


def read_header(
    path: str | os.PathLike[str],
    *,
    max_header: int = MAX_HEADER_BYTES,
    what: str | None = None,
    budget: int | None = None,
) -> SafetensorsHeader:
    """The file's header, judged. `budget`: the header bytes the caller still reads (SEC020 over
    it: the header is not read)."""
    path = os.fspath(path)
    what = what or os.path.basename(path)
    try:
        fd = os.open(path, _READ_FLAGS)  # a bare descriptor and two exact reads: no file object
        try:
            st = os.fstat(fd)
            if S_ISDIR(st.st_mode):
                open(path, "rb").close()  # raises what open() raises for a folder (EISDIR)
            size = st.st_size
            if size == 0:
                raise FormatError("HDR001", f"{what} is empty (0 bytes)")
            if size < 8:
                raise FormatError(
                    "HDR001", f"{what} is {size} bytes, shorter than the 8-byte header length"
                )
            head = os.read(fd, 8)
            if len(head) != 8:
                raise FormatError("HDR001", f"{what} ended before its 8-byte header length")
            n = int.from_bytes(head, "little")  # struct.unpack("<Q"): no struct import
            if n == 0:
                raise FormatError("HDR002", f"{what} declares an empty (0-byte) header")
            if n > max_header:
                raise FormatError(
                    "HDR002", f"{what} declares a {n:,}-byte header, over the {max_header:,} cap"
                )
            if n > size - 8:
                raise FormatError(
                    "HDR003",
                    f"{what} declares a {n:,}-byte header but only {size - 8:,} bytes follow "
                    "(truncated or unfinished download)",
                )
            if budget is not None and n > budget:
                raise FormatError(
                    "SEC020",
                    f"{what} declares a {n:,}-byte header, past the {MAX_HEADERS_TOTAL:,} bytes "
                    f"of headers read per checkpoint ({max(budget, 0):,} left): its tensors were "
                    "not read",
                )
            raw = os.read(fd, n)
            if len(raw) != n:  # the file shrank while we read it
                raise FormatError("HDR003", f"{what} ended before its {n:,}-byte header")
        finally:
            os.close(fd)
    except OSError as exc:
        raise FormatError("HDR001", f"{what} cannot be read: {exc.strerror or exc}") from None
    return parse_header(raw, file_size=size, what=what, path=path)


def _loads(raw: bytes, what: str) -> tuple[Any, list[Problem]]:
    """Parse the header. Fast path: plain json.loads, then prove there were no duplicate keys
    (jsonfile.no_lost_keys: the `:` separators counted against the keys parsed; a header's keys
    are the tensor names and their entries' fields). On any doubt, parse again with the strict
    reader that names the duplicates."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError("HDR004", f"{what} header is not UTF-8 (byte {exc.start})") from None
    try:
        value = FAST_DECODER.decode(text)
    except (ValueError, RecursionError):  # not JSON, or NaN/Infinity (_no_constant)
        value = None  # let the strict reader say why
    if type(value) is dict:
        keys = len(value) + sum(map(len, [v for v in value.values() if type(v) is dict]))
        if no_lost_keys(text, keys):
            return value, []
    try:
        return parse_json_bytes(raw, what=f"{what} header")
    except FormatError as exc:
        raise FormatError("HDR004", exc.message) from None


def parse_header(
    raw: bytes, *, file_size: int, what: str, path: str = "", file: str | None = None
) -> SafetensorsHeader:
    """Judge the header JSON `raw` of a file of `file_size` bytes. `file` labels the tensors
    (default: `what`)."""
    file = what if file is None else file
    value, json_problems = _loads(raw.rstrip(b" \x00"), what)
    if not isinstance(value, dict):
        raise FormatError(
            "HDR005", f"{what} header is a JSON {type(value).__name__}, not an object"
        )
    header = SafetensorsHeader(path=path, file_size=file_size, header_len=len(raw))
    problems = header.problems
    for code, message in json_problems:
        # duplicate keys in a header are duplicate tensor names: the format forbids them
        problems.append(("HDR006" if code == "JSON005" else "HDR004", message))
    tensors = header.tensors
    bits_of = DTYPE_BITS.get
    new = tuple.__new__  # TensorInfo(...) without the named tuple's Python-level __new__
    for name, entry in value.items():
        # fast path: a well-formed entry of a known dtype, checked inline; anything else (a
        # missing field, a non-object, an unhashable dtype, offsets not two items) goes to _entry,
        # which accepts exactly what this accepts and says what is wrong with the rest
        try:
            dtype, shape, (begin, end) = _FIELDS(entry)
            bits = bits_of(dtype)  # only a str can equal a DTYPE_BITS key
        except (TypeError, KeyError, ValueError):
            bits = None
        if (
            bits
            and type(shape) is list
            and len(shape) <= MAX_DIMS
            and type(begin) is int
            and type(end) is int
            and 0 <= begin <= end
        ):
            numel = 1
            for d in shape:
                if type(d) is not int or not 0 <= d < _BIG:
                    break
                numel *= d
                if numel >= _BIG:  # stop: the product of many dims grows without bound
                    break
            else:
                # (end - begin) * 8 == numel * bits: a whole number of bytes, and that many
                if numel < _BIG and (end - begin) * 8 == numel * bits:
                    tensors[name] = new(
                        TensorInfo, (name, dtype, tuple(shape), file, end - begin, begin, end)
                    )
                    continue
        if name == "__metadata__":
            # mx.save_safetensors writes null: safe_open and mx.load both accept it (0.8, 0.32.4)
            if entry is None:
                continue
            if not isinstance(entry, dict):
                # safe_open refuses it; mx.load reads the file (measured)
                problems.append(
                    (
                        "HDR007",
                        f"{what}: __metadata__ is a JSON {_json_kind(entry)}, not a map of strings",
                    )
                )
            elif not all(isinstance(v, str) for v in entry.values()):
                bad = next(k for k, v in entry.items() if not isinstance(v, str))
                problems.append(
                    (
                        "HDR008",
                        f"{what}: __metadata__[{bad!r}] is a JSON {_json_kind(entry[bad])}, not a "
                        "string: safe_open and mx.load both refuse the file",
                    )
                )
            else:
                header.metadata = entry
            continue
        tensor = _entry(name, entry, what, file, problems)
        if tensor is not None:
            tensors[name] = tensor
    _check_offsets(header, what)
    return header


def _json_kind(value: Any) -> str:
    """The JSON name of a parsed value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {dict: "object", list: "array", str: "string"}.get(type(value), type(value).__name__)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _entry(
    name: str, entry: Any, what: str, file: str, problems: list[Problem]
) -> TensorInfo | None:
    if not isinstance(entry, dict):
        problems.append(("HDR010", f"{what}: entry {name!r} is not an object"))
        return None
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(dtype, str) or not isinstance(shape, list) or not isinstance(offsets, list):
        missing = [k for k in ("dtype", "shape", "data_offsets") if k not in entry]
        why = f"lacks {', '.join(missing)}" if missing else "has a field of the wrong type"
        problems.append(("HDR010", f"{what}: tensor {name!r} {why}"))
        return None
    if len(offsets) != 2 or not all(_is_int(o) for o in offsets):
        problems.append(
            ("HDR010", f"{what}: tensor {name!r} data_offsets {offsets!r} are not two integers")
        )
        return None
    if len(shape) > MAX_DIMS:
        problems.append(
            (
                "HDR012",
                f"{what}: tensor {_name(name)} has {len(shape):,} dimensions; no framework makes "
                f"a tensor of more than {MAX_DIMS} (numpy's limit)",
            )
        )
        return None
    if not all(_is_int(d) and 0 <= d < _BIG for d in shape):
        problems.append(
            (
                "HDR012",
                f"{what}: tensor {name!r} has shape {_short(shape)}: dimensions must be non-negative integers",
            )
        )
        return None
    begin, end = offsets
    numel = 1
    for d in shape:
        numel *= d
        if numel >= _BIG:  # no buffer is this large: stop before the product grows without bound
            break
    bits = DTYPE_BITS.get(dtype)
    nbytes: int | None = None
    if bits is None:
        problems.append(("HDR011", f"{what}: tensor {name!r} has unknown dtype {dtype!r}"))
    elif numel >= _BIG:
        problems.append(
            ("HDR013", f"{what}: tensor {name!r} shape {_short(shape)} is impossibly large")
        )
        return None  # never kept: every later product over its shape would be unbounded
    else:
        nbytes = (numel * bits + 7) // 8
        if numel * bits % 8:
            problems.append(
                (
                    "HDR013",
                    f"{what}: tensor {name!r} {dtype} {tuple(shape)} is not a whole number of bytes",
                )
            )
        elif end - begin != nbytes:
            problems.append(
                (
                    "HDR013",
                    f"{what}: tensor {name!r} {dtype} {tuple(shape)} needs {nbytes:,} bytes "
                    f"but its offsets [{begin}, {end}) span {end - begin:,}",
                )
            )
    if begin < 0 or end < begin:
        problems.append(
            ("HDR014", f"{what}: tensor {name!r} has invalid data_offsets [{begin}, {end})")
        )
        return None
    return TensorInfo(name, dtype, tuple(shape), file, nbytes, begin, end)


def _short(shape: list[Any]) -> str:
    text = repr(shape[:12])  # never the repr of a whole 10-million-entry list
    return text if len(text) <= 60 and len(shape) <= 12 else text[:57] + "...]"


def _name(name: str, limit: int = 120) -> str:
    text = repr(name)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _check_offsets(header: SafetensorsHeader, what: str) -> None:
    problems = header.problems
    data_size = header.data_size
    # fast path: one pass over the tensors in begin order proves a contiguous, non-overlapping
    # layout (ties in begin cannot pass it, so their order does not matter here) that ends
    # within the data (`position` is then the largest end)
    position = 0
    for begin, end in sorted(map(_SPAN, header.tensors.values())):
        if begin != position and begin != end:
            break
        if end > position:
            position = end
    else:
        if position <= data_size:
            if position != data_size:
                _report_gaps(problems, what, 0, data_size - position)
            return
    past = [t for t in header.tensors.values() if t.end > data_size]
    if past:
        worst = max(past, key=lambda t: t.end)
        problems.append(
            (
                "HDR015",
                f"{what} is {worst.end - data_size:,} bytes shorter than its header says "
                f"({len(past)} tensor(s) end past the data, e.g. {worst.name!r} at {worst.end:,} > "
                f"{data_size:,}): truncated or unfinished download",
            )
        )
    ordered = sorted(header.tensors.values(), key=_SPAN)
    previous: HeaderTensor | None = None
    position = 0
    overlaps = 0
    gaps = 0
    for t in ordered:
        if t.begin == t.end:  # empty tensors take no bytes and cannot overlap
            continue
        if previous is not None and t.begin < position:
            overlaps += 1
            if overlaps <= 3:
                problems.append(
                    (
                        "HDR016",
                        f"{what}: tensor {t.name!r} [{t.begin:,}, {t.end:,}) overlaps "
                        f"{previous.name!r} [{previous.begin:,}, {previous.end:,})",
                    )
                )
        elif t.begin > position:
            gaps += 1
        if t.end >= position:
            position, previous = t.end, t
    if overlaps > 3:
        problems.append(("HDR016", f"{what}: {overlaps} overlapping tensors in all"))
    trailing = data_size - position if not past else 0
    _report_gaps(problems, what, gaps, trailing)


_SPAN = itemgetter(5, 6)  # (begin, end) of a TensorInfo
_FIELDS = itemgetter("dtype", "shape", "data_offsets")  # of a header entry


def _report_gaps(problems: list[Problem], what: str, gaps: int, trailing: int) -> None:
    if gaps or trailing > 0:
        parts = []
        if gaps:
            parts.append(f"{gaps} gap(s) between tensors")
        if trailing > 0:
            parts.append(f"{trailing:,} unused bytes after the last tensor")
        problems.append(
            (
                "HDR017",
                f"{what}: {' and '.join(parts)}; the safetensors library refuses "
                "buffers that are not contiguous",
            )
        )


def encode_header(
    tensors: dict[str, tuple[str, tuple[int, ...]]], metadata: dict[str, str] | None = None
) -> tuple[bytes, int]:
    """A valid header for tensors laid out contiguously in the given order; returns (the 8-byte
    length + header JSON padded to 8 bytes, the data size)."""
    entries: dict[str, Any] = {}
    if metadata is not None:
        entries["__metadata__"] = metadata
    offset = 0
    for name, (dtype, shape) in tensors.items():
        numel = 1
        for d in shape:
            numel *= d
        nbytes = (numel * DTYPE_BITS[dtype] + 7) // 8
        entries[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    raw = json.dumps(entries, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw, offset


def write_sparse(
    path: str | os.PathLike[str],
    tensors: dict[str, tuple[str, tuple[int, ...]]],
    metadata: dict[str, str] | None = None,
) -> int:
    """Write a real safetensors header and leave the data region as a sparse hole (zeros that
    take no disk): a full-size checkpoint for header-only tools and benchmarks. Returns the size."""
    head, data = encode_header(tensors, metadata)
    with open(path, "wb") as fh:
        fh.write(head)
        fh.truncate(len(head) + data)
    return len(head) + data
