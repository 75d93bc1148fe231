"""The metadata readers: strict JSON, safetensors headers, index files, LFS pointers, tokenizers."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from malformed_corpus import entry, llm_tensors, write_raw_header, write_st

from genai_common.formats import FormatError
from genai_common.formats.files import is_partial_name, is_pickle_name, lfs_pointer
from genai_common.formats.index import read_index, safe_relative
from genai_common.formats.jsonfile import _Hooks, parse_json_bytes, read_json
from genai_common.formats.safetensors import (
    _check_offsets,
    _entry,
    parse_header,
    read_header,
    write_sparse,
)
from genai_common.formats.tokenizer import read_tokenizer, sentencepiece_pieces

# --- strict JSON ---------------------------------------------------------------------------


def test_json_object_reads_without_problems(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text('{"a": 1, "b": [1, 2], "c": {"d": null}}')
    data, problems = read_json(tmp_path / "c.json")
    assert data == {"a": 1, "b": [1, 2], "c": {"d": None}}
    assert problems == []


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"\xff\xfe{}", "JSON001"),
        (b"{'a': 1}", "JSON002"),
        (b"[]", "JSON003"),
        (b'"text"', "JSON003"),
        (b"   \n", "JSON007"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON002"),  # nesting past the recursion limit
    ],
)
def test_json_errors_have_codes(tmp_path: Path, raw: bytes, code: str) -> None:
    (tmp_path / "c.json").write_bytes(raw)
    with pytest.raises(FormatError) as err:
        read_json(tmp_path / "c.json")
    assert err.value.code == code


def test_json_nan_and_duplicates_are_problems_not_errors() -> None:
    value, problems = parse_json_bytes(b'{"a": NaN, "b": Infinity, "a": 2}')
    assert value["a"] == 2 and value["b"] == float("inf")
    codes = [c for c, _ in problems]
    assert codes == ["JSON005", "JSON004"]
    assert "'a'" in problems[0][1] and "NaN" in problems[1][1]


@pytest.mark.parametrize(
    "text",
    [
        '{"a": "x:y", "a": 1}',  # a colon in a string: the `:` count proves nothing
        '{"u": "http://x", "v": {"w": 1, "w": 2}}',  # ... and the `":` count finds the nested pair
        '{"a" : 1, "a": 2}',  # whitespace before a colon
        '{"a": {"b": [{"c": 1, "c": 2}]}}',  # inside a list
        '{"a": {"x": 1}, "a": {"y": 2}}',  # a lost object's keys
        '{"u": "http://x", "v": 1}',
        '{"a": [1, {"b": "c:d"}], "e": {}}',
        '{"a" : 1, "b": 2}',
    ],
)
def test_json_fast_duplicate_proof_agrees_with_the_strict_reader(text: str) -> None:
    """The fast path (plain decode + a count of separators) answers as the hooked reader does."""
    value, problems = parse_json_bytes(text.encode())
    hooks = _Hooks()
    expected = json.loads(text, object_pairs_hook=hooks.pairs)
    assert value == expected
    assert [c for c, _ in problems] == (["JSON005"] if hooks.duplicates else [])


def test_json_utf8_bom_is_accepted() -> None:
    value, problems = parse_json_bytes(b'\xef\xbb\xbf{"a": 1}')
    assert value == {"a": 1} and problems == []


def test_json_size_cap_is_checked_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    with open(path, "wb") as fh:
        fh.truncate(10_000_000)  # sparse
    with pytest.raises(FormatError) as err:
        read_json(path, max_bytes=1_000_000)
    assert err.value.code == "JSON006"
    assert "10,000,000" in err.value.message


def test_json_missing_file_is_a_coded_error(tmp_path: Path) -> None:
    with pytest.raises(FormatError) as err:
        read_json(tmp_path / "absent.json")
    assert err.value.code == "JSON008"


# --- safetensors headers ---------------------------------------------------------------------


def test_header_matches_the_safetensors_library(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy", reason="numpy is needed to write reference files")
    st = pytest.importorskip("safetensors.numpy", reason="safetensors is needed as the reference")
    arrays = {
        "a": np.zeros((3, 5), dtype=np.float16),
        "b": np.ones((7,), dtype=np.int32),
        "c": np.zeros((0, 4), dtype=np.float32),
        "d": np.zeros((), dtype=np.uint8),
    }
    st.save_file(arrays, str(tmp_path / "x.safetensors"), metadata={"format": "np"})
    header = read_header(tmp_path / "x.safetensors")
    assert header.problems == []
    assert header.metadata == {"format": "np"}
    from safetensors import safe_open

    with safe_open(str(tmp_path / "x.safetensors"), "np") as f:
        for name in f.keys():  # noqa: SIM118 (safe_open has no __iter__)
            assert tuple(f.get_slice(name).get_shape()) == header.tensors[name].shape
    assert header.tensors["a"].dtype == "F16" and header.tensors["a"].nbytes == 30
    assert header.tensors["b"].dtype == "I32" and header.tensors["b"].numel == 7
    assert header.data_end == header.data_size


def test_write_sparse_is_read_by_safetensors_and_costs_no_disk(tmp_path: Path) -> None:
    path = tmp_path / "big.safetensors"
    size = write_sparse(path, {"w": ("BF16", (8192, 8192)), "b": ("F32", (8192,))})
    assert path.stat().st_size == size
    assert path.stat().st_blocks * 512 < 1_000_000  # a hole, not 128 MiB of zeros
    header = read_header(path)
    assert header.problems == []
    assert header.tensors["w"].nbytes == 8192 * 8192 * 2
    safetensors = pytest.importorskip("safetensors", reason="safetensors is the reference reader")
    with safetensors.safe_open(str(path), "np") as f:
        assert f.get_slice("w").get_shape() == [8192, 8192]


def test_sub_byte_dtypes_count_bits(tmp_path: Path) -> None:
    write_raw_header(tmp_path / "f4.safetensors", {"q": entry("F4", [4, 8], 0, 16)}, b"\0" * 16)
    header = read_header(tmp_path / "f4.safetensors")
    assert header.tensors["q"].nbytes == 16 and header.problems == []


def test_header_problem_messages_name_the_numbers(tmp_path: Path) -> None:
    write_raw_header(tmp_path / "m.safetensors", {"a": entry("F32", [4], 0, 8)}, b"\0" * 8)
    (code, message), *_ = read_header(tmp_path / "m.safetensors").problems
    assert code == "HDR013"
    assert "16" in message and "[0, 8)" in message and "'a'" in message


def test_truncated_data_is_reported_once_with_the_shortfall(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    write_st(path, llm_tensors())
    full = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(full - 1000)
    problems = read_header(path).problems
    assert [c for c, _ in problems] == ["HDR015"]
    assert "1,000 bytes shorter" in problems[0][1]


def test_header_length_is_capped_before_allocation(tmp_path: Path) -> None:
    path = tmp_path / "x.safetensors"
    path.write_bytes(struct.pack("<Q", 200_000_000) + b"{}")
    with pytest.raises(FormatError) as err:
        read_header(path)
    assert err.value.code == "HDR002"
    with pytest.raises(FormatError) as err:
        read_header(path, max_header=1 << 40)  # under a raised cap, the file size still bounds it
    assert err.value.code == "HDR003"


ODD_ENTRIES = {
    "ok": entry("F32", [2, 2], 0),
    "extra_field": {**entry("F16", [4], 16), "note": "x"},
    "offsets_text": {"dtype": "U8", "shape": [2], "data_offsets": "ab"},
    "offsets_object": {"dtype": "U8", "shape": [2], "data_offsets": {"a": 1, "b": 3}},
    "offsets_three": {"dtype": "U8", "shape": [2], "data_offsets": [24, 26, 28]},
    "offsets_float": {"dtype": "U8", "shape": [2], "data_offsets": [24.0, 26]},
    "dtype_list": {"dtype": ["U8"], "shape": [2], "data_offsets": [24, 26]},
    "dtype_number": {"dtype": 8, "shape": [2], "data_offsets": [24, 26]},
    "dtype_unknown": {"dtype": "X9", "shape": [2], "data_offsets": [24, 26]},
    "shape_object": {"dtype": "U8", "shape": {}, "data_offsets": [24, 25]},
    "shape_text": {"dtype": "U8", "shape": "", "data_offsets": [24, 25]},
    "shape_bool": {"dtype": "U8", "shape": [True, 2], "data_offsets": [24, 26]},
    "shape_negative": {"dtype": "U8", "shape": [-1, -2], "data_offsets": [24, 26]},
    "shape_huge": {"dtype": "U8", "shape": [0, 2**64], "data_offsets": [24, 24]},
    "shape_float": {"dtype": "U8", "shape": [2.0], "data_offsets": [24, 26]},
    "numel_huge": {"dtype": "U8", "shape": [2**40, 2**40], "data_offsets": [24, 26]},
    "half_byte": {"dtype": "F4", "shape": [3], "data_offsets": [24, 26]},
    "wrong_bytes": {"dtype": "F32", "shape": [3], "data_offsets": [26, 30]},
    "begin_negative": {"dtype": "U8", "shape": [2], "data_offsets": [-2, 0]},
    "end_first": {"dtype": "U8", "shape": [0], "data_offsets": [30, 28]},
    "not_object": [1, 2],
    "no_dtype": {"shape": [2], "data_offsets": [24, 26]},
    "scalar": entry("U8", [], 40),
}


@pytest.mark.parametrize("name", sorted(ODD_ENTRIES))
def test_header_fast_path_accepts_exactly_what_the_entry_checks_accept(name: str) -> None:
    """parse_header's inline path gives, entry by entry, what _entry (the path that names each
    problem) gives: the same TensorInfo and the same problems."""
    raw = json.dumps({"__metadata__": {"format": "pt"}, name: ODD_ENTRIES[name]}).encode()
    header = parse_header(raw, file_size=8 + len(raw) + 41, what="h")
    expected = parse_header(raw, file_size=8 + len(raw) + 41, what="h")  # the offsets problems
    expected.tensors.clear()
    expected.problems.clear()
    tensor = _entry(name, ODD_ENTRIES[name], "h", "h", expected.problems)
    if tensor is not None:
        expected.tensors[name] = tensor
    _check_offsets(expected, "h")
    assert header.tensors == expected.tensors
    assert header.problems == expected.problems


def test_header_of_a_folder_is_a_coded_error(tmp_path: Path) -> None:
    with pytest.raises(FormatError) as err:
        read_header(tmp_path)
    assert err.value.code == "HDR001"
    assert "directory" in err.value.message.lower()


# --- index files -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "clean"),
    [
        ("model-00001-of-00002.safetensors", "model-00001-of-00002.safetensors"),
        ("./sub/model.safetensors", "sub/model.safetensors"),
        ("../model.safetensors", None),
        ("sub/../../x", None),
        ("/etc/passwd", None),
        ("C:\\weights\\model.safetensors", None),
        ("..\\model.safetensors", None),
        ("", None),
        ("a\x00b", None),
    ],
)
def test_index_paths_stay_inside(name: str, clean: str | None) -> None:
    assert safe_relative(name) == clean


def test_index_reads_weight_map_and_total_size(tmp_path: Path) -> None:
    data = {
        "metadata": {"total_size": 1234},
        "weight_map": {"a": "s1.safetensors", "b": "s2.safetensors", "c": "../x"},
    }
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(data))
    info = read_index(tmp_path / "model.safetensors.index.json")
    assert info.total_size == 1234
    assert info.shards == ["s1.safetensors", "s2.safetensors"]
    assert "c" not in info.weight_map
    assert [c for c, _ in info.problems] == ["IDX003"]


@pytest.mark.parametrize("total", ["Infinity", "-Infinity", "NaN", "-1", '"12"'])
def test_index_total_size_that_is_no_byte_count(tmp_path: Path, total: str) -> None:
    path = tmp_path / "model.safetensors.index.json"
    weight_map = '"weight_map": {"a": "s.safetensors"}'
    path.write_text(f'{{"metadata": {{"total_size": {total}}}, {weight_map}}}')
    info = read_index(path)
    assert info.total_size is None
    assert "IDX004" in [c for c, _ in info.problems]


# --- files -----------------------------------------------------------------------------------


def test_lfs_pointer_is_recognised(tmp_path: Path) -> None:
    pointer = tmp_path / "model.safetensors"
    pointer.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n")
    assert lfs_pointer(pointer) == {
        "version": "https://git-lfs.github.com/spec/v1",
        "oid": "sha256:abc",
        "size": "123",
    }
    (tmp_path / "config.json").write_text("{}")
    assert lfs_pointer(tmp_path / "config.json") is None


def test_partial_and_pickle_names() -> None:
    assert is_partial_name("model.safetensors.incomplete") and not is_partial_name(
        "model.safetensors"
    )
    assert is_pickle_name("pytorch_model.bin") and is_pickle_name("model.ckpt")
    assert not is_pickle_name("pytorch_model.bin.index.json")


# --- tokenizer files -------------------------------------------------------------------------


def _tok(tmp_path: Path, files: dict[str, object]) -> tuple:
    for name, content in files.items():
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())

    def json_of(rel: str):
        try:
            return read_json(tmp_path / rel)[0]
        except FormatError:
            return None

    def text_of(rel: str):
        return (tmp_path / rel).read_text() if (tmp_path / rel).exists() else None

    def bytes_of(rel: str):
        return (tmp_path / rel).read_bytes() if (tmp_path / rel).exists() else None

    return read_tokenizer(json_of, text_of, bytes_of, set(files))


def test_tokenizer_json_and_config_merge(tmp_path: Path) -> None:
    info, problems = _tok(
        tmp_path,
        {
            "tokenizer.json": {
                "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "<s>": 2}},
                "added_tokens": [{"id": 5, "content": "<|im_end|>", "special": True}],
            },
            "tokenizer_config.json": {
                "bos_token": "<s>",
                "eos_token": {"content": "<|im_end|>"},
                "added_tokens_decoder": {"6": {"content": "<image>", "special": True}},
                "chat_template": [{"name": "default", "template": "{{ x }}"}],
                "model_max_length": 1e30,
            },
            "chat_template.jinja": b"{{ messages }}",
        },
    )
    assert problems == []
    assert info.vocab_size == 3 and info.size == 7
    assert info.added_tokens == {5: "<|im_end|>", 6: "<image>"}
    assert info.special_tokens == {"bos": "<s>", "eos": "<|im_end|>"}
    assert info.token_to_id["<s>"] == 2 and info.id_of("b") == 1 and info.token_of(6) == "<image>"
    assert (
        info.chat_template == "{{ messages }}"
        and info.chat_template_source == "chat_template.jinja"
    )
    assert info.model_max_length is None  # 1e30 means "no limit"
    assert info.special_added == {5, 6}


def _pb_piece(piece: str) -> bytes:
    raw = piece.encode()
    inner = b"\x0a" + bytes([len(raw)]) + raw + b"\x15" + struct.pack("<f", -1.0) + b"\x18\x01"
    return b"\x0a" + bytes([len(inner)]) + inner


def test_sentencepiece_pieces_are_counted() -> None:
    model = b"".join(_pb_piece(p) for p in ["<unk>", "<s>", "</s>", "▁a"]) + b"\x12\x02\x08\x01"
    assert sentencepiece_pieces(model) == ["<unk>", "<s>", "</s>", "▁a"]
    with pytest.raises(FormatError) as err:
        sentencepiece_pieces(b"\x0a\xff\x01")  # length runs past the end
    assert err.value.code == "TOK901"


def test_tokenizer_from_sentencepiece_only(tmp_path: Path) -> None:
    model = b"".join(_pb_piece(p) for p in ["<unk>", "<s>", "</s>", "x"])
    info, problems = _tok(
        tmp_path, {"tokenizer.model": model, "special_tokens_map.json": {"eos_token": "</s>"}}
    )
    assert problems == []
    assert info.vocab_size == 4 and info.source == "tokenizer.model"
    assert info.token_to_id == {"</s>": 2}


# --- __metadata__ as MLX writes it, and as the libraries refuse it ------------------------------


def _metadata_file(path: Path, metadata: object) -> Path:
    write_raw_header(path, {"__metadata__": metadata, "a": entry("F32", [2], 0)}, b"\0" * 8)
    return path


@pytest.mark.parametrize(
    ("metadata", "code", "safe_open_reads", "mx_load_reads"),
    [
        (None, None, True, True),  # what mx.save_safetensors writes without metadata
        ({"format": "mlx"}, None, True, True),
        ({}, None, True, True),
        (["format", "mlx"], "HDR007", False, True),
        ("mlx", "HDR007", False, True),
        ({"step": 3}, "HDR008", False, False),
        ({"nested": {"a": "b"}}, "HDR008", False, False),
        ({"flag": None}, "HDR008", False, False),
    ],
)
def test_metadata_codes_follow_what_the_libraries_read(
    tmp_path: Path, metadata: object, code: str | None, safe_open_reads: bool, mx_load_reads: bool
) -> None:
    """HDR007 (a warning: mx.load reads the file, safe_open refuses it) and HDR008 (an error:
    both refuse) are what safetensors 0.8 and mlx 0.32.4 do with the file, measured here."""
    import mlx.core as mx
    from safetensors import safe_open

    path = _metadata_file(tmp_path / "w.safetensors", metadata)
    try:
        with safe_open(str(path), "np") as fh:
            fh.metadata()
        read_by_safe_open = True
    except Exception:
        read_by_safe_open = False
    try:
        mx.load(str(path))
        read_by_mx = True
    except Exception:
        read_by_mx = False
    assert (read_by_safe_open, read_by_mx) == (safe_open_reads, mx_load_reads)
    codes = [c for c, _ in read_header(path).problems]
    assert codes == ([code] if code else [])


def test_files_mlx_writes_raise_no_header_finding(tmp_path: Path) -> None:
    """mx.save_safetensors writes "__metadata__": null when given no metadata: no finding."""
    import mlx.core as mx

    from genai_common.doctor import diagnose

    path = tmp_path / "weights.safetensors"
    mx.save_safetensors(str(path), {"w": mx.zeros((4, 4))})
    assert b'"__metadata__":null' in path.read_bytes()[:200]
    report = diagnose(path)
    assert [f.code for f in report.findings if f.code.startswith("HDR")] == []


def test_an_mlx_lm_lora_adapter_raises_no_header_finding(tiny_llm: Path, tmp_path: Path) -> None:
    """An adapter written by mlx-lm's own trainer (one LoRA step on the tiny Llama): its
    adapters.safetensors carries "__metadata__": null and must pass the header checks."""
    import mlx.optimizers as optim
    from mlx_lm import load
    from mlx_lm.tuner.datasets import CacheDataset, TextDataset
    from mlx_lm.tuner.trainer import TrainingArgs, train
    from mlx_lm.tuner.utils import linear_to_lora_layers

    from genai_common.doctor import diagnose

    model, tokenizer = load(str(tiny_llm))
    model.freeze()
    lora = {"rank": 4, "scale": 10.0, "dropout": 0.0}
    linear_to_lora_layers(model, 2, lora)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    data = CacheDataset(TextDataset([{"text": "the cat sat on the mat"}] * 4, tokenizer))
    args = TrainingArgs(
        batch_size=2,
        iters=1,
        steps_per_eval=100,
        adapter_file=str(adapter / "adapters.safetensors"),
        max_seq_length=32,
    )
    train(model, optim.Adam(learning_rate=1e-4), data, data, args)
    (adapter / "adapter_config.json").write_text(
        json.dumps({"fine_tune_type": "lora", "num_layers": 2, "lora_parameters": lora}),
        encoding="utf-8",
    )
    assert b'"__metadata__":null' in (adapter / "adapters.safetensors").read_bytes()[:100]
    report = diagnose(adapter)
    assert report.kind == "adapter"
    assert [f"{f.code}: {f.message}" for f in report.findings if f.severity != "info"] == []
