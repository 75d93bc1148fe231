"""JSON, HDR, IDX (and the tokenizer-file readers' TOK9xx): files that do not read as what they claim.

The readers in genai_common/formats raise or return these codes; ModelDir turns them into
md.read_findings. `check(md)` makes sure every metadata file and every weight header the loader
will read has been read once (so its problems are reported even when no other family needed
it), and judges the dtypes the loader cannot take.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from genai_common.checks import finding, register
from genai_common.report import Finding

TYPE_CHECKING = False
if TYPE_CHECKING:
    from genai_common.model_dir import ModelDir

MLX_LOADERS = ("mlx-lm", "mlx-vlm", "mlx")
_J = "Re-save the file with a JSON writer (json.dump with allow_nan=False), or re-download it."
_H = (
    "The file is damaged or not a safetensors file: re-download it (compare its size and sha256 "
    "with the hub) or re-save it with safetensors.save_file / mx.save_safetensors."
)

register("JSON001", "A JSON file is not UTF-8", "error", _J, compares="file bytes decode as UTF-8")
register("JSON002", "A JSON file does not parse", "error", _J, compares="json.loads of the file")
register(
    "JSON003",
    "A JSON file holds something other than an object",
    "error",
    "Configs, indexes and tokenizer files are JSON objects ({...}): the file is the wrong one or damaged.",
    compares="type of the top-level JSON value",
)
register(
    "JSON004",
    "A JSON file contains NaN or Infinity",
    "warning",
    "Python reads these, strict readers (Rust, JavaScript, transformers' tagged floats) refuse them: "
    'write a number, null, or {"__float__": "Infinity"} as transformers does.',
    compares="non-standard constants NaN, Infinity, -Infinity",
)
register(
    "JSON005",
    "A JSON file repeats a key",
    "warning",
    "Remove the duplicate: Python keeps the last value, other readers may keep the first.",
    compares="keys of every JSON object",
)
register(
    "JSON006",
    "A metadata file is larger than the reader's cap",
    "error",
    "A config or index is KBs; a file this large is not what its name says (or is hostile).",
    compares="file size vs cap (64 MiB for JSON, 256 MiB for tokenizer.json, 4 MiB for templates)",
)
register("JSON007", "A JSON file is empty", "error", _J, compares="file has non-blank content")
register(
    "JSON008",
    "A metadata file cannot be read",
    "error",
    "Check the file's permissions, or whether it is a broken link into the Hugging Face cache.",
    compares="open() and read() succeed",
)
register(
    "HDR001",
    "A safetensors file is empty or shorter than its 8-byte header length",
    "error",
    _H,
    compares="file size >= 8",
)
register(
    "HDR002",
    "A safetensors header length is zero or absurd",
    "error",
    _H,
    compares="8-byte little-endian header length vs the format's 100 MB cap",
)
register(
    "HDR003",
    "A safetensors header length runs past the end of the file",
    "error",
    "The file is truncated (an unfinished download): download it again.",
    compares="header length vs file size - 8",
)
register(
    "HDR004",
    "A safetensors header is not valid UTF-8 JSON",
    "error",
    _H,
    compares="json.loads of the header bytes",
)
register(
    "HDR005", "A safetensors header is not a JSON object", "error", _H, compares="header JSON type"
)
register(
    "HDR006",
    "A safetensors header names a tensor twice",
    "error",
    "The format forbids duplicate names; the safetensors library refuses the file and mx.load "
    "silently keeps the last one. Re-save the weights.",
    compares="keys of the header object",
)
register(
    "HDR007",
    "A safetensors __metadata__ entry is not a map of strings",
    "warning",
    "__metadata__ must map strings to strings (e.g. {'format': 'mlx'}); re-save the file.",
    compares="type of __metadata__ and its values",
)
register(
    "HDR010",
    "A safetensors header entry is malformed",
    "error",
    _H,
    compares="each entry has dtype (str), shape (list), data_offsets (two ints)",
)
register(
    "HDR011",
    "A tensor has a dtype the safetensors format does not define",
    "error",
    "Known dtypes: BOOL, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, I16, U16, F16, BF16, I32, U32, F32, "
    "F64, I64, U64, C64, F4, F6_E2M3, F6_E3M2. Re-save the tensor in one of them.",
    compares="entry dtype vs the safetensors dtype table",
)
register(
    "HDR012",
    "A tensor shape has negative or non-integer dimensions",
    "error",
    _H,
    compares="every shape dimension is an integer >= 0",
)
register(
    "HDR013",
    "A tensor's byte span does not match its dtype and shape",
    "error",
    "The header disagrees with itself: the file was written wrongly or edited by hand. Re-save it.",
    compares="data_offsets end - begin == prod(shape) * dtype bits / 8",
)
register(
    "HDR014",
    "A tensor's data_offsets are invalid",
    "error",
    _H,
    compares="0 <= begin <= end",
)
register(
    "HDR015",
    "A safetensors file is shorter than its header says",
    "error",
    "Truncated or unfinished download: download the file again and compare its size with the hub.",
    compares="largest end offset vs file size - 8 - header length",
)
register(
    "HDR016",
    "Two tensors share bytes in a safetensors file",
    "error",
    "Overlapping tensors alias each other's data (mx.load accepts it silently; safetensors refuses "
    "it). Re-save the weights.",
    compares="sorted [begin, end) spans do not overlap",
)
register(
    "HDR017",
    "A safetensors buffer has gaps or unused bytes",
    "warning",
    "mx.load reads it, but the safetensors library (transformers, diffusers) refuses non-contiguous "
    "buffers ('invalid offset'). Re-save with safetensors.save_file or mx.save_safetensors.",
    compares="tensors cover the data buffer contiguously, end to end",
)
register(
    "HDR020",
    "A tensor has a dtype MLX cannot load",
    "error",
    "mx.load refuses F64, F4 and F6 (mlx 0.32.4; F8 and F4 dtypes: see QNT070): convert those tensors "
    "(e.g. to F32/BF16) before loading with MLX.",
    compares="safetensors dtypes vs what mx.load reads (measured with mlx 0.32.4)",
)
register(
    "IDX001",
    "A safetensors index has no weight_map",
    "error",
    "An index must hold {'weight_map': {tensor: shard}}; regenerate it, or delete it if there is "
    "one weights file.",
    compares="index JSON has a weight_map object",
)
register(
    "IDX002",
    "A safetensors index maps tensors to things that are not file names",
    "error",
    "Every weight_map value must be a shard file name; regenerate the index.",
    compares="weight_map values are strings",
)
register(
    "IDX003",
    "A safetensors index points outside the model directory",
    "error",
    "Shard names must be plain relative names (no '..', no absolute paths): such entries are "
    "ignored here and are a path-traversal risk for loaders that follow them.",
    compares="weight_map values resolve inside the directory",
)
register(
    "IDX004",
    "A safetensors index has a malformed metadata.total_size",
    "warning",
    "metadata.total_size should be the bytes of tensor data; regenerate the index.",
    compares="metadata is an object and total_size a non-negative number",
)
register(
    "TOK900",
    "A tokenizer file has the wrong structure",
    "error",
    "tokenizer.json / tokenizer_config.json do not have the fields the tokenizers library "
    "expects; re-save the tokenizer with tokenizer.save_pretrained().",
    compares="model.vocab, added_tokens, added_tokens_decoder, chat_template field types",
    family="formats",
)
register(
    "TOK901",
    "tokenizer.model is not a SentencePiece model",
    "error",
    "The file does not parse as a SentencePiece protobuf (it may be an LFS pointer, truncated, or "
    "a tiktoken file under the wrong name): re-download it.",
    compares="protobuf structure of tokenizer.model, pieces counted",
    family="formats",
)


def _touch(md: ModelDir) -> None:
    """Read every metadata file and every header the loader will read (findings are recorded)."""
    for rel in md.files:
        if rel.endswith(".json") and rel.count("/") <= 1:
            md.json(rel)
    _ = md.tokenizer, md.indexes
    if md.kind == "gguf":
        _ = md.gguf
    if not md.metadata_only:
        _ = md.tensors
    if md.kind == "diffusion":
        index = md.json("model_index.json") or {}
        for name, value in index.items():
            if (
                not name.startswith("_")
                and isinstance(value, list)
                and os.path.isdir(md.fspath(name))
            ):
                comp = md.component(name)
                _ = comp.indexes
                if not comp.metadata_only:
                    _ = comp.tensors


def check(md: ModelDir) -> Iterator[Finding]:
    from genai_common.formats.safetensors import MLX_UNSUPPORTED_DTYPES

    _touch(md)
    if md.loader in MLX_LOADERS and not md.metadata_only:
        bad: dict[str, list[str]] = {}
        for t in md.tensors.values():
            # F8 dtypes are the quant family's (QNT070): they are a quantization format
            if t.dtype in MLX_UNSUPPORTED_DTYPES and not t.dtype.startswith("F8"):
                bad.setdefault(t.dtype, []).append(t.name)
        for dtype, names in sorted(bad.items()):
            yield finding(
                "HDR020",
                f"{len(names)} tensor(s) are {dtype}, which mx.load refuses "
                f"(e.g. {names[0]!r}); {md.loader} cannot load this checkpoint",
                file=md.tensors[names[0]].file,
            )
