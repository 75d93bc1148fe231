"""Property tests: arbitrary bytes never make a reader raise anything but FormatError, allocate
past its cap, or run for long."""

from __future__ import annotations

import contextlib
import json
import struct
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genai_common.formats import FormatError
from genai_common.formats.gguf import read_gguf
from genai_common.formats.jsonfile import read_json
from genai_common.formats.safetensors import read_header
from genai_common.formats.tokenizer import sentencepiece_pieces

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _bounded(fn, path: Path, *, seconds: float = 1.0, peak: int = 8 << 20) -> None:
    tracemalloc.start()
    start = time.perf_counter()
    try:
        fn(path)
    except FormatError as exc:
        assert exc.code and exc.message
    finally:
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.perf_counter() - start < seconds
    assert top < peak, f"{fn.__name__} allocated {top:,} bytes"


@SETTINGS
@given(data=st.binary(max_size=2048))
def test_safetensors_arbitrary_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "x.safetensors"
    path.write_bytes(data)
    _bounded(read_header, path)


@SETTINGS
@given(length=st.integers(0, 2**64 - 1), tail=st.binary(max_size=256))
def test_safetensors_any_declared_length(tmp_path: Path, length: int, tail: bytes) -> None:
    path = tmp_path / "x.safetensors"
    path.write_bytes(struct.pack("<Q", length) + tail)
    _bounded(read_header, path)


_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=8),
)
_json = st.recursive(
    _json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)
_entry = st.fixed_dictionaries(
    {},
    optional={
        "dtype": st.sampled_from(["F16", "BF16", "U32", "F4", "F64", "X", 3]),
        "shape": st.lists(st.integers(-3, 2**70), max_size=4) | _json,
        "data_offsets": st.lists(st.integers(-(2**65), 2**65), max_size=3) | _json,
    },
)


@SETTINGS
@given(
    header=st.dictionaries(st.text(max_size=6), _entry | _json, max_size=6), pad=st.integers(0, 64)
)
def test_safetensors_structured_headers(tmp_path: Path, header: dict, pad: int) -> None:
    raw = json.dumps(header).encode()
    path = tmp_path / "x.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * pad)
    _bounded(read_header, path)


@SETTINGS
@given(data=st.binary(max_size=2048), version=st.sampled_from([2, 3]))
def test_gguf_arbitrary_bytes_after_a_valid_start(
    tmp_path: Path, data: bytes, version: int
) -> None:
    path = tmp_path / "x.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<I", version) + data)
    _bounded(read_gguf, path)


@SETTINGS
@given(
    n_tensors=st.integers(0, 2**64 - 1),
    n_kv=st.integers(0, 2**64 - 1),
    data=st.binary(max_size=512),
)
def test_gguf_any_counts(tmp_path: Path, n_tensors: int, n_kv: int, data: bytes) -> None:
    path = tmp_path / "x.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv) + data)
    _bounded(read_gguf, path)


@SETTINGS
@given(data=st.binary(max_size=2048))
def test_json_arbitrary_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(data)
    _bounded(read_json, path)


@SETTINGS
@given(data=st.binary(max_size=2048))
def test_sentencepiece_arbitrary_bytes(data: bytes) -> None:
    start = time.perf_counter()
    with contextlib.suppress(FormatError):
        sentencepiece_pieces(data)
    assert time.perf_counter() - start < 1.0


def test_gguf_huge_string_length_allocates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "x.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 2**62) + b"k" * 64)
    with pytest.raises(FormatError) as err:
        _bounded(read_gguf, path, peak=1 << 20)
        read_gguf(path)
    assert err.value.code == "GGUF005"


def test_gguf_huge_array_count_is_refused_before_the_loop(tmp_path: Path) -> None:
    key = b"tokenizer.ggml.tokens"
    body = struct.pack("<Q", len(key)) + key + struct.pack("<IIQ", 9, 8, 2**50)
    path = tmp_path / "x.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + body + b"\0" * 64)
    start = time.perf_counter()
    with pytest.raises(FormatError) as err:
        read_gguf(path)
    assert err.value.code == "GGUF003"
    assert time.perf_counter() - start < 0.1
