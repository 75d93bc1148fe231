"""Our GGUF reader against gguf-py's, and the MLX behaviour table against the installed mlx."""

from __future__ import annotations

from pathlib import Path

import pytest
from malformed_corpus import write_gguf

from genai_common.doctor import diagnose
from genai_common.doctor.rules.gguf import (
    MLX_GGUF_AS_IS,
    MLX_GGUF_DROPPED,
    MLX_GGUF_QUANTIZED,
    MLX_GGUF_TO_F16,
)
from genai_common.formats.gguf import GGML_TYPES, ArraySummary, read_gguf


def _write_reference(path: Path, types: list[str]) -> None:
    gguf = pytest.importorskip("gguf", reason="gguf-py writes the reference files")
    np = pytest.importorskip("numpy", reason="gguf-py needs numpy")
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(2)
    w.add_context_length(4096)
    w.add_embedding_length(256)
    w.add_name("tiny")
    w.add_token_list([f"tok{i}" for i in range(1000)])
    w.add_array("tiny.small_list", [1, 2, 3])
    for i, name in enumerate(types):
        qt = gguf.GGMLQuantizationType[name]
        block, size = gguf.GGML_QUANT_SIZES[qt]
        if block == 1:
            w.add_tensor(
                f"t{i}", np.zeros((3, 256), dtype=np.float32 if name == "F32" else np.float16)
            )
        else:
            w.add_tensor(f"t{i}", np.zeros((3, 256 // block * size), dtype=np.uint8), raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_reader_agrees_with_gguf_py(tmp_path: Path) -> None:
    gguf = pytest.importorskip("gguf", reason="gguf-py is the reference reader")
    path = tmp_path / "m.gguf"
    _write_reference(path, ["F32", "F16", "Q4_0", "Q8_0", "Q4_K", "Q6_K"])
    ours = read_gguf(path)
    ref = gguf.GGUFReader(str(path))
    assert ours.problems == []
    assert ours.version == 3 and ours.architecture == "llama"
    assert ours.metadata["llama.block_count"] == 2 and ours.metadata["llama.context_length"] == 4096
    assert ours.metadata["tiny.small_list"] == [1, 2, 3]
    assert ours.metadata["tokenizer.ggml.tokens"] == ArraySummary("string", 1000)
    assert set(ours.metadata) == {
        f.name for f in ref.fields.values() if not f.name.startswith("GGUF.")
    }
    assert ours.data_offset == ref.data_offset
    for t in ref.tensors:
        mine = ours.tensors[t.name]
        assert list(mine.shape) == [int(x) for x in t.shape]
        assert mine.type_name == t.tensor_type.name
        assert mine.nbytes == int(t.n_bytes)
        assert ours.data_offset + mine.offset == int(t.data_offset)


def test_type_table_matches_gguf_py() -> None:
    gguf = pytest.importorskip("gguf", reason="gguf-py holds the reference table")
    for qt, (block, size) in gguf.GGML_QUANT_SIZES.items():
        assert GGML_TYPES[int(qt)] == (qt.name, block, size)


def test_mlx_table_matches_the_installed_mlx(tmp_path: Path) -> None:
    """The GGUF021-023 claims are measured, not remembered: re-measure them on this mlx."""
    mx = pytest.importorskip("mlx.core", reason="the table describes mx.load")
    pytest.importorskip("gguf", reason="gguf-py writes the probe files")
    probes = {
        "Q4_0": "quantized",
        "Q8_0": "quantized",
        "F16": "as-is",
        "BF16": "to-f16",
        "Q4_K": "to-f16",
        "Q6_K": "to-f16",
        "Q5_K": "fails",
        "MXFP4": "dropped",
    }
    for name, expected in probes.items():
        path = tmp_path / f"{name}.gguf"
        _write_reference(path, [name])
        try:
            out = mx.load(str(path))
        except Exception:
            seen = "fails"
        else:
            if "t0" not in out:
                seen = "dropped"
            elif "t0.scales" in out:
                seen = "quantized"
            elif name != "F16" and out["t0"].dtype == mx.float16:
                seen = "to-f16"
            else:
                seen = "as-is"
        assert seen == expected, name
        table = (
            "quantized"
            if name in MLX_GGUF_QUANTIZED
            else "as-is"
            if name in MLX_GGUF_AS_IS
            else "to-f16"
            if name in MLX_GGUF_TO_F16
            else "dropped"
            if name in MLX_GGUF_DROPPED
            else "fails"
        )
        assert table == expected, name


def test_doctor_on_a_gguf_file(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    write_gguf(path, tensors=[("a", (256, 4), 2, 0), ("b", (256, 4), 14, 1024)])
    report = diagnose(path)
    assert report.kind == "gguf"
    assert report.codes() == ["GGUF021"]
    assert report.facts["tensor_types"] == {"Q4_0": 1, "Q6_K": 1}
    assert report.facts["architecture"] == "llama"


def test_split_gguf_is_flagged(tmp_path: Path) -> None:
    write_gguf(tmp_path / "m-00001-of-00002.gguf")
    write_gguf(tmp_path / "m-00002-of-00002.gguf")
    assert "GGUF024" in diagnose(tmp_path).codes()


def test_clean_q4_0_gguf_has_no_findings(tmp_path: Path) -> None:
    write_gguf(tmp_path / "m.gguf", tensors=[("a", (256, 4), 2, 0)])
    assert diagnose(tmp_path / "m.gguf").findings == []


def test_alternative_quantizations_are_not_a_split(tmp_path: Path) -> None:
    write_gguf(tmp_path / "model-Q4_0.gguf")
    write_gguf(tmp_path / "model-Q8_0.gguf")
    codes = diagnose(tmp_path).codes()
    assert "GGUF025" in codes and "GGUF024" not in codes


def test_vocabulary_and_block_count_against_the_tensors(tmp_path: Path) -> None:
    from malformed_corpus import GGUF_ARRAY, GGUF_STRING, GGUF_U32

    def build(name: str, n_tokens: int, blocks: int) -> Path:
        kvs = [
            ("general.architecture", GGUF_STRING, "llama"),
            ("llama.block_count", GGUF_U32, blocks),
            (
                "tokenizer.ggml.tokens",
                GGUF_ARRAY,
                (GGUF_STRING, [f"t{i}" for i in range(n_tokens)]),
            ),
        ]
        tensors = [
            ("token_embd.weight", (32, 100), 0, 0),
            ("blk.0.attn_q.weight", (32, 32), 0, 12800),
            ("blk.1.attn_q.weight", (32, 32), 0, 16896),
        ]
        write_gguf(tmp_path / name, kvs=kvs, tensors=tensors)
        return tmp_path / name

    assert diagnose(build("ok.gguf", 100, 2)).codes() == []
    assert diagnose(build("vocab.gguf", 101, 2)).codes() == ["GGUF030"]
    assert diagnose(build("blocks.gguf", 100, 3)).codes() == ["GGUF031"]
