"""A corpus of malformed model directories, built in a temp dir (no weight file is committed).

Each case is (name, builder, expected code). A builder writes a small, otherwise valid llm
directory (`base_llm`) and breaks one thing. Also: the writers the tests share (safetensors with
data, GGUF headers by hand) so every byte of a malformed file is explicit here.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from genai_common.formats.safetensors import DTYPE_BITS, encode_header

# ---------------------------------------------------------------------------------------------
# writers

VOCAB, HIDDEN, HEADS, KV, INTER, LAYERS = 32, 8, 2, 1, 16, 2
HEAD_DIM = HIDDEN // HEADS

CONFIG: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": VOCAB,
    "hidden_size": HIDDEN,
    "intermediate_size": INTER,
    "num_hidden_layers": LAYERS,
    "num_attention_heads": HEADS,
    "num_key_value_heads": KV,
    "max_position_embeddings": 128,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": True,
    "bos_token_id": 1,
    "eos_token_id": 2,
}


def llm_tensors(layers: int = LAYERS) -> dict[str, tuple[str, tuple[int, ...]]]:
    t: dict[str, tuple[str, tuple[int, ...]]] = {
        "model.embed_tokens.weight": ("F16", (VOCAB, HIDDEN))
    }
    for i in range(layers):
        p = f"model.layers.{i}."
        t[p + "self_attn.q_proj.weight"] = ("F16", (HEADS * HEAD_DIM, HIDDEN))
        t[p + "self_attn.k_proj.weight"] = ("F16", (KV * HEAD_DIM, HIDDEN))
        t[p + "self_attn.v_proj.weight"] = ("F16", (KV * HEAD_DIM, HIDDEN))
        t[p + "self_attn.o_proj.weight"] = ("F16", (HIDDEN, HEADS * HEAD_DIM))
        t[p + "mlp.gate_proj.weight"] = ("F16", (INTER, HIDDEN))
        t[p + "mlp.up_proj.weight"] = ("F16", (INTER, HIDDEN))
        t[p + "mlp.down_proj.weight"] = ("F16", (HIDDEN, INTER))
        t[p + "input_layernorm.weight"] = ("F16", (HIDDEN,))
        t[p + "post_attention_layernorm.weight"] = ("F16", (HIDDEN,))
    t["model.norm.weight"] = ("F16", (HIDDEN,))
    return t


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


def write_st(
    path: Path,
    tensors: dict[str, tuple[str, tuple[int, ...]]],
    metadata: dict[str, str] | None = None,
) -> int:
    """A valid safetensors file with zero data; returns the data size."""
    head, size = encode_header(tensors, metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(head + b"\0" * size)
    return size


def write_raw_header(
    path: Path, header: Any, data: bytes = b"", *, length: int | None = None
) -> None:
    """A safetensors file whose header is exactly `header` (dict -> JSON, bytes as they are)."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(raw) if length is None else length
    path.write_bytes(struct.pack("<Q", n) + raw + data)


def entry(dtype: str, shape: list[Any], begin: int, end: int | None = None) -> dict[str, Any]:
    if end is None:
        numel = 1
        for d in shape:
            numel *= d
        end = begin + numel * DTYPE_BITS[dtype] // 8
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def base_llm(d: Path, *, weights: bool = True) -> Path:
    write_json(d / "config.json", CONFIG)
    if weights:
        write_st(d / "model.safetensors", llm_tensors(), {"format": "mlx"})
    return d


def vae_component(d: Path) -> Path:
    """A diffusers VAE folder on its own, with its fp16 variant beside the main weights."""
    write_json(d / "config.json", {"_class_name": "AutoencoderKL", "_diffusers_version": "0.30.0"})
    for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"):
        write_st(d / name, {"decoder.conv_in.weight": ("F16", (4, 4))})
    return d


def sharded_llm(d: Path) -> dict[str, str]:
    """Two shards and a correct index; returns the weight_map."""
    write_json(d / "config.json", CONFIG)
    tensors = llm_tensors()
    names = list(tensors)
    half = len(names) // 2
    shards = {
        "model-00001-of-00002.safetensors": {n: tensors[n] for n in names[:half]},
        "model-00002-of-00002.safetensors": {n: tensors[n] for n in names[half:]},
    }
    weight_map: dict[str, str] = {}
    total = 0
    for shard, part in shards.items():
        total += write_st(d / shard, part)
        weight_map.update(dict.fromkeys(part, shard))
    write_json(
        d / "model.safetensors.index.json",
        {"metadata": {"total_size": total}, "weight_map": weight_map},
    )
    return weight_map


# GGUF, written by hand: (key, type id, value) metadata and (name, dims, type, offset) tensors.
GGUF_U32, GGUF_STRING, GGUF_ARRAY = 4, 8, 9


def gguf_string(s: str | bytes) -> bytes:
    raw = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(raw)) + raw


def gguf_value(vtype: int, value: Any) -> bytes:
    if vtype == GGUF_STRING:
        return gguf_string(value)
    if vtype == GGUF_U32:
        return struct.pack("<I", value)
    if vtype == GGUF_ARRAY:
        item_type, items = value
        return struct.pack("<IQ", item_type, len(items)) + b"".join(
            gguf_value(item_type, i) for i in items
        )
    if vtype == 6:
        return struct.pack("<f", value)
    raise ValueError(vtype)


def write_gguf(
    path: Path,
    kvs: list[tuple[str, int, Any]] | None = None,
    tensors: list[tuple[str, tuple[int, ...], int, int]] | None = None,
    *,
    magic: bytes = b"GGUF",
    version: int = 3,
    n_tensors: int | None = None,
    n_kv: int | None = None,
    data: int | None = None,
    alignment: int = 32,
    cut: int | None = None,
) -> None:
    """Write a GGUF header; data bytes (zeros) are sized from the tensors unless `data` is given."""
    from genai_common.formats.gguf import GGML_TYPES

    kvs = [("general.architecture", GGUF_STRING, "llama")] if kvs is None else kvs
    tensors = [("token_embd.weight", (32, 4), 0, 0)] if tensors is None else tensors
    out = bytearray(magic + struct.pack("<I", version))
    out += struct.pack(
        "<QQ", len(tensors) if n_tensors is None else n_tensors, len(kvs) if n_kv is None else n_kv
    )
    for key, vtype, value in kvs:
        out += gguf_string(key) + struct.pack("<I", vtype) + gguf_value(vtype, value)
    need = 0
    for name, dims, ttype, offset in tensors:
        out += (
            gguf_string(name)
            + struct.pack("<I", len(dims))
            + b"".join(struct.pack("<Q", x) for x in dims)
        )
        out += struct.pack("<IQ", ttype, offset)
        if ttype in GGML_TYPES:
            _, block, size = GGML_TYPES[ttype]
            n = 1
            for x in dims:
                n *= x
            need = max(need, offset + n // block * size)
    out += b"\0" * (-len(out) % alignment)
    out += b"\0" * (need if data is None else data)
    path.write_bytes(bytes(out[:cut]) if cut is not None else bytes(out))


# ---------------------------------------------------------------------------------------------
# the cases: each builds a directory (or a file inside it) and names the code it must produce

Builder = Callable[[Path], Path]
CASES: list[tuple[str, Builder, str]] = []


def case(code: str) -> Callable[[Builder], Builder]:
    def register(fn: Builder) -> Builder:
        CASES.append((fn.__name__, fn, code))
        return fn

    return register


def _config_bytes(d: Path, raw: bytes) -> Path:
    base_llm(d)
    (d / "config.json").write_bytes(raw)
    return d


@case("JSON001")
def config_not_utf8(d: Path) -> Path:
    return _config_bytes(d, b'{"model_type": "ll\xff\xfeama"}')


@case("JSON002")
def config_not_json(d: Path) -> Path:
    return _config_bytes(d, b'{"model_type": "llama",, }')


@case("JSON003")
def config_is_array(d: Path) -> Path:
    return _config_bytes(d, b"[1, 2, 3]")


@case("JSON004")
def config_with_nan(d: Path) -> Path:
    return _config_bytes(d, json.dumps({**CONFIG, "rms_norm_eps": float("nan")}).encode())


@case("JSON005")
def config_duplicate_keys(d: Path) -> Path:
    text = json.dumps(CONFIG)[:-1] + ', "vocab_size": 64}'
    return _config_bytes(d, text.encode())


@case("JSON007")
def config_empty(d: Path) -> Path:
    return _config_bytes(d, b"")


@case("JSON002")
def generation_config_truncated(d: Path) -> Path:
    base_llm(d)
    (d / "generation_config.json").write_bytes(b'{"eos_token_id": [1, 2')
    return d


@case("JSON002")
def tokenizer_config_not_json(d: Path) -> Path:
    base_llm(d)
    (d / "tokenizer_config.json").write_bytes(b"<html>rate limited</html>")
    return d


@case("JSON006")
def config_over_cap(d: Path) -> Path:
    base_llm(d)
    with open(d / "config.json", "r+b") as fh:  # sparse: costs no disk
        fh.truncate(65 * 1024 * 1024)
    return d


def _weights(d: Path, fill: Callable[[Path], None]) -> Path:
    base_llm(d, weights=False)
    fill(d / "model.safetensors")
    return d


@case("HDR001")
def weights_empty(d: Path) -> Path:
    return _weights(d, lambda p: p.write_bytes(b""))


@case("HDR001")
def weights_five_bytes(d: Path) -> Path:
    return _weights(d, lambda p: p.write_bytes(b"\x10\0\0\0\0"))


@case("HDR002")
def header_length_absurd(d: Path) -> Path:
    return _weights(d, lambda p: p.write_bytes(struct.pack("<Q", 1 << 60) + b"{}"))


@case("HDR002")
def header_length_zero(d: Path) -> Path:
    return _weights(d, lambda p: p.write_bytes(struct.pack("<Q", 0) + b"{}"))


@case("HDR003")
def header_length_past_end(d: Path) -> Path:
    return _weights(d, lambda p: write_raw_header(p, {"a": entry("F16", [2], 0)}, length=4096))


@case("HDR004")
def header_not_json(d: Path) -> Path:
    return _weights(d, lambda p: write_raw_header(p, b"{not json at all}"))


@case("HDR004")
def header_not_utf8(d: Path) -> Path:
    return _weights(d, lambda p: write_raw_header(p, b'{"a\xff": 1}'))


@case("HDR005")
def header_is_array(d: Path) -> Path:
    return _weights(d, lambda p: write_raw_header(p, [1, 2]))


@case("HDR006")
def header_duplicate_tensor(d: Path) -> Path:
    raw = b'{"a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}, "a": {"dtype": "F16", "shape": [2], "data_offsets": [4, 8]}}'
    return _weights(d, lambda p: write_raw_header(p, raw, b"\0" * 8))


@case("HDR007")
def header_metadata_is_a_list(d: Path) -> Path:
    """safe_open refuses it, mx.load reads it (safetensors 0.8, mlx 0.32.4)."""
    return _weights(
        d,
        lambda p: write_raw_header(
            p, {"__metadata__": ["format", "mlx"], "a": entry("F16", [2], 0)}, b"\0" * 4
        ),
    )


@case("HDR008")
def header_metadata_not_strings(d: Path) -> Path:
    return _weights(
        d,
        lambda p: write_raw_header(
            p, {"__metadata__": {"format": 1}, "a": entry("F16", [2], 0)}, b"\0" * 4
        ),
    )


@case("HDR010")
def header_entry_not_object(d: Path) -> Path:
    return _weights(d, lambda p: write_raw_header(p, {"a": [1, 2, 3]}))


@case("HDR010")
def header_entry_missing_dtype(d: Path) -> Path:
    return _weights(
        d, lambda p: write_raw_header(p, {"a": {"shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4)
    )


@case("HDR010")
def header_offsets_three_ints(d: Path) -> Path:
    return _weights(
        d,
        lambda p: write_raw_header(
            p, {"a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 2, 4]}}, b"\0" * 4
        ),
    )


@case("HDR011")
def header_unknown_dtype(d: Path) -> Path:
    return _weights(
        d,
        lambda p: write_raw_header(
            p, {"a": {"dtype": "F17", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4
        ),
    )


@case("HDR012")
def header_negative_shape(d: Path) -> Path:
    return _weights(
        d,
        lambda p: write_raw_header(
            p, {"a": {"dtype": "F16", "shape": [-2, 2], "data_offsets": [0, 8]}}, b"\0" * 8
        ),
    )


@case("HDR012")
def header_float_shape(d: Path) -> Path:
    return _weights(
        d,
        lambda p: write_raw_header(
            p, {"a": {"dtype": "F16", "shape": [2.5], "data_offsets": [0, 4]}}, b"\0" * 4
        ),
    )


@case("HDR013")
def header_span_mismatch(d: Path) -> Path:
    return _weights(d, lambda p: write_raw_header(p, {"a": entry("F32", [4], 0, 8)}, b"\0" * 8))


@case("HDR013")
def header_shape_impossibly_large(d: Path) -> Path:
    return _weights(
        d,
        lambda p: write_raw_header(
            p, {"a": {"dtype": "F16", "shape": [2**40, 2**40], "data_offsets": [0, 4]}}, b"\0" * 4
        ),
    )


@case("HDR014")
def header_begin_after_end(d: Path) -> Path:
    return _weights(
        d,
        lambda p: write_raw_header(
            p, {"a": {"dtype": "F16", "shape": [0], "data_offsets": [8, 4]}}, b"\0" * 8
        ),
    )


@case("HDR015")
def weights_truncated(d: Path) -> Path:
    def fill(p: Path) -> None:
        write_st(p, llm_tensors())
        with open(p, "r+b") as fh:
            fh.truncate(p.stat().st_size - 100)

    return _weights(d, fill)


@case("HDR016")
def header_overlap(d: Path) -> Path:
    return _weights(
        d,
        lambda p: write_raw_header(
            p, {"a": entry("F16", [4], 0), "b": entry("F16", [4], 4)}, b"\0" * 12
        ),
    )


@case("HDR017")
def header_gap(d: Path) -> Path:
    return _weights(
        d,
        lambda p: write_raw_header(
            p, {"a": entry("F16", [2], 0), "b": entry("F16", [2], 8)}, b"\0" * 12
        ),
    )


@case("HDR020")
def weights_float64(d: Path) -> Path:
    base_llm(d)
    tensors = llm_tensors()
    tensors["model.norm.weight"] = ("F64", (HIDDEN,))
    write_st(d / "model.safetensors", tensors)
    return d


def _index(d: Path, data: Any) -> Path:
    sharded_llm(d)
    write_json(d / "model.safetensors.index.json", data)
    return d


@case("IDX001")
def index_without_weight_map(d: Path) -> Path:
    return _index(d, {"metadata": {"total_size": 10}})


@case("IDX002")
def index_values_not_names(d: Path) -> Path:
    return _index(d, {"weight_map": {"model.norm.weight": 3}})


@case("IDX003")
def index_points_outside(d: Path) -> Path:
    weight_map = sharded_llm(d)
    weight_map["model.norm.weight"] = "../../etc/passwd"
    return _index(d, {"weight_map": weight_map})


@case("IDX003")
def index_absolute_path(d: Path) -> Path:
    weight_map = sharded_llm(d)
    weight_map["model.norm.weight"] = "/etc/passwd"
    return _index(d, {"weight_map": weight_map})


@case("IDX004")
def index_total_size_string(d: Path) -> Path:
    weight_map = sharded_llm(d)
    return _index(d, {"metadata": {"total_size": "big"}, "weight_map": weight_map})


@case("FILE010")
def weights_lfs_pointer(d: Path) -> Path:
    base_llm(d, weights=False)
    (d / "model.safetensors").write_text(
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
        "size 4920734400\n"
    )
    return d


@case("FILE004")
def shard_missing(d: Path) -> Path:
    sharded_llm(d)
    (d / "model-00002-of-00002.safetensors").unlink()
    return d


@case("FILE006")
def index_stale(d: Path) -> Path:
    base_llm(d)
    weight_map = {
        n: f"model-0000{i % 3 + 1}-of-00003.safetensors" for i, n in enumerate(llm_tensors())
    }
    write_json(
        d / "model.safetensors.index.json",
        {"metadata": {"total_size": 10**9}, "weight_map": weight_map},
    )
    return d


@case("FILE007")
def index_total_size_from_source(d: Path) -> Path:
    weight_map = sharded_llm(d)
    return _index(d, {"metadata": {"total_size": 8_900_000_000}, "weight_map": weight_map})


@case("FILE008")
def index_lists_missing_tensor(d: Path) -> Path:
    weight_map = sharded_llm(d)
    weight_map["lm_head.weight"] = "model-00001-of-00002.safetensors"
    return _index(d, {"weight_map": weight_map})


@case("FILE009")
def tensor_in_two_files(d: Path) -> Path:
    sharded_llm(d)
    write_st(d / "model.safetensors", {"model.norm.weight": ("F16", (HIDDEN,))})
    return d


@case("FILE013")
def pickle_only(d: Path) -> Path:
    base_llm(d, weights=False)
    (d / "pytorch_model.bin").write_bytes(b"\x80\x04\x95never unpickled")
    return d


@case("FILE002")
def weights_misnamed(d: Path) -> Path:
    base_llm(d, weights=False)
    write_st(d / "embed_tokens.safetensors", llm_tensors())
    return d


@case("FILE003")
def stray_weights_outside_glob(d: Path) -> Path:
    base_llm(d)
    write_st(d / "consolidated.safetensors", {"tok_embeddings.weight": ("F16", (VOCAB, HIDDEN))})
    return d


@case("FILE011")
def unfinished_download(d: Path) -> Path:
    base_llm(d)
    (d / "model-00002-of-00002.safetensors.incomplete").write_bytes(b"\0" * 64)
    return d


@case("FILE001")
def config_missing(d: Path) -> Path:
    write_st(d / "model.safetensors", llm_tensors())
    (d / "tokenizer_config.json").write_text("{}")
    write_json(d / "generation_config.json", {"eos_token_id": 2})
    return d


@case("FILE014")
def broken_link(d: Path) -> Path:
    base_llm(d)
    os.symlink(d / "blobs-gone" / "abc", d / "model-00002.safetensors")
    return d


@case("FILE012")
def tokenizer_zero_bytes(d: Path) -> Path:
    base_llm(d)
    (d / "tokenizer.json").write_bytes(b"")
    return d


def _gguf(d: Path, **kw: Any) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    write_gguf(d / "model.gguf", **kw)
    return d / "model.gguf"


@case("GGUF001")
def gguf_bad_magic(d: Path) -> Path:
    return _gguf(d, magic=b"GGML")


@case("GGUF002")
def gguf_version_one(d: Path) -> Path:
    return _gguf(d, version=1)


@case("GGUF003")
def gguf_absurd_counts(d: Path) -> Path:
    return _gguf(d, n_tensors=2**60)


@case("GGUF004")
def gguf_truncated_header(d: Path) -> Path:
    return _gguf(d, cut=60)


@case("GGUF005")
def gguf_string_too_long(d: Path) -> Path:
    path = _gguf(d)
    raw = bytearray(path.read_bytes())
    raw[24:32] = struct.pack("<Q", 2**40)  # the first key's length
    path.write_bytes(bytes(raw))
    return path


@case("GGUF006")
def gguf_duplicate_key(d: Path) -> Path:
    arch = ("general.architecture", GGUF_STRING, "llama")
    return _gguf(d, kvs=[arch, arch])


@case("GGUF006")
def gguf_duplicate_tensor(d: Path) -> Path:
    t = ("token_embd.weight", (32, 4), 0, 0)
    return _gguf(d, tensors=[t, t])


@case("GGUF007")
def gguf_alignment_not_power_of_two(d: Path) -> Path:
    return _gguf(
        d, kvs=[("general.architecture", GGUF_STRING, "llama"), ("general.alignment", GGUF_U32, 24)]
    )


@case("GGUF009")
def gguf_unknown_value_type(d: Path) -> Path:
    path = _gguf(d)
    raw = bytearray(path.read_bytes())
    key_end = 24 + 8 + len("general.architecture")
    raw[key_end : key_end + 4] = struct.pack("<I", 99)
    path.write_bytes(bytes(raw))
    return path


@case("GGUF011")
def gguf_unknown_tensor_type(d: Path) -> Path:
    return _gguf(d, tensors=[("token_embd.weight", (32, 4), 77, 0)], data=256)


@case("GGUF012")
def gguf_offset_not_aligned(d: Path) -> Path:
    return _gguf(d, tensors=[("a", (32, 4), 0, 0), ("b", (32, 4), 0, 516)])


@case("GGUF013")
def gguf_data_past_end(d: Path) -> Path:
    return _gguf(d, tensors=[("token_embd.weight", (4096, 4096), 1, 0)], data=1024)


@case("GGUF014")
def gguf_overlapping_tensors(d: Path) -> Path:
    return _gguf(d, tensors=[("a", (32, 4), 0, 0), ("b", (32, 4), 0, 256)])


@case("GGUF020")
def gguf_no_architecture(d: Path) -> Path:
    return _gguf(d, kvs=[("general.name", GGUF_STRING, "x")])


@case("GGUF021")
def gguf_q4_k(d: Path) -> Path:
    return _gguf(d, tensors=[("blk.0.attn_q.weight", (256, 4), 12, 0)])


@case("GGUF022")
def gguf_q5_k(d: Path) -> Path:
    return _gguf(d, tensors=[("blk.0.attn_q.weight", (256, 4), 13, 0)])


@case("GGUF023")
def gguf_mxfp4(d: Path) -> Path:
    return _gguf(d, tensors=[("blk.0.ffn_up_exps.weight", (256, 4), 39, 0)])


@case("TOK901")
def sentencepiece_garbage(d: Path) -> Path:
    base_llm(d)
    (d / "tokenizer.model").write_bytes(b"\xff" * 64)
    return d


@case("TOK900")
def tokenizer_json_without_model(d: Path) -> Path:
    base_llm(d)
    write_json(d / "tokenizer.json", {"version": "1.0", "model": [1, 2], "added_tokens": []})
    return d


@case("CFG001")
def config_missing_layers(d: Path) -> Path:
    base_llm(d)
    write_json(d / "config.json", {k: v for k, v in CONFIG.items() if k != "num_hidden_layers"})
    return d


@case("CFG001")
def config_hidden_size_string(d: Path) -> Path:
    base_llm(d)
    write_json(d / "config.json", {**CONFIG, "hidden_size": "8"})
    return d


@case("CMP001")
def config_model_type_not_a_string(d: Path) -> Path:
    base_llm(d)
    write_json(d / "config.json", {**CONFIG, "model_type": ["llama"]})
    return d


@case("CMP001")
def config_without_model_type(d: Path) -> Path:
    base_llm(d)
    write_json(d / "config.json", {k: v for k, v in CONFIG.items() if k != "model_type"})
    return d


@case("FILE021")
def weights_path_is_a_directory(d: Path) -> Path:
    """model.safetensors is a folder (a copy that went wrong): 'no weight files' must name it."""
    base_llm(d, weights=False)
    write_st(d / "model.safetensors" / "part0.safetensors", llm_tensors())
    return d


@case("FILE021")
def path_given_is_a_directory_named_like_weights(d: Path) -> Path:
    base_llm(d, weights=False)
    (d / "model.safetensors").mkdir()
    return d / "model.safetensors"


@case("FILE020")
def index_shards_outside_the_glob(d: Path) -> Path:
    """mlx-lm globs model*.safetensors and never reads the index."""
    weight_map = sharded_llm(d)
    for shard in sorted(set(weight_map.values())):
        (d / shard).rename(d / shard.replace("model-", "weights-"))
    write_json(
        d / "model.safetensors.index.json",
        {"weight_map": {k: v.replace("model-", "weights-") for k, v in weight_map.items()}},
    )
    return d


@case("FILE013")
def only_a_pickle_index(d: Path) -> Path:
    base_llm(d, weights=False)
    write_json(
        d / "pytorch_model.bin.index.json",
        {"weight_map": {"model.embed_tokens.weight": "pytorch_model-00001-of-00001.bin"}},
    )
    return d


def _pipeline(d: Path) -> Path:
    """A small SD-shaped diffusers pipeline: configs as diffusers writes them, VAE weights."""
    write_json(
        d / "model_index.json",
        {
            "_class_name": "StableDiffusionPipeline",
            "_diffusers_version": "0.32.0",
            "scheduler": ["diffusers", "PNDMScheduler"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        },
    )
    version = {"_diffusers_version": "0.32.0"}
    write_json(
        d / "unet/config.json",
        {"_class_name": "UNet2DConditionModel", **version, "in_channels": 4, "out_channels": 4},
    )
    write_json(
        d / "vae/config.json",
        {
            "_class_name": "AutoencoderKL",
            **version,
            "latent_channels": 4,
            "scaling_factor": 0.18215,
        },
    )
    write_st(
        d / "vae/diffusion_pytorch_model.safetensors",
        {"decoder.conv_in.weight": ("F16", (8, 4, 3, 3))},
    )
    write_json(d / "scheduler/scheduler_config.json", {"_class_name": "PNDMScheduler", **version})
    return d


@case("DIF007")
def diffusers_config_value_of_the_wrong_type(d: Path) -> Path:
    _pipeline(d)
    config = json.loads((d / "unet/config.json").read_text(encoding="utf-8"))
    write_json(d / "unet/config.json", {**config, "in_channels": "four"})
    return d


@case("DIF004")
def diffusers_components_without_model_index(d: Path) -> Path:
    _pipeline(d)
    (d / "model_index.json").unlink()
    return d


@case("TOK002")
def tokenizer_json_deleted(d: Path) -> Path:
    """Only tokenizer_config.json left (its class is built from tokenizer.json)."""
    base_llm(d)
    write_json(
        d / "tokenizer_config.json",
        {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>"},
    )
    return d
