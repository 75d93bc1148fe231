"""GGUF: header validity (from the reader), architecture, and what MLX does with each tensor type.

What `mx.load` does with a GGUF file (mlx 0.32.4, measured on every ggml type with files written
by gguf-py 0.19.0): Q4_0, Q4_1 and Q8_0 stay quantized (uint32 weights + scales + biases, group
32); F32, F16, I8, I16, I32 load as they are; BF16, Q2_K, Q4_K and Q6_K are dequantized to float16;
Q5_0, Q5_1, Q8_1, Q3_K, Q5_K, Q8_K, the IQ types, I64 and F64 fail with
"[load_gguf] gguf_tensor_to_f16 failed"; TQ1_0, TQ2_0, MXFP4, NVFP4 and Q1_0 are silently dropped
(the tensor is missing from the result).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from genai_common.checks import finding, register
from genai_common.report import Finding

TYPE_CHECKING = False
if TYPE_CHECKING:
    from genai_common.model_dir import ModelDir


MLX_GGUF_QUANTIZED = frozenset({"Q4_0", "Q4_1", "Q8_0"})
MLX_GGUF_AS_IS = frozenset({"F32", "F16", "I8", "I16", "I32"})
MLX_GGUF_TO_F16 = frozenset({"BF16", "Q2_K", "Q4_K", "Q6_K"})
MLX_GGUF_DROPPED = frozenset({"TQ1_0", "TQ2_0", "MXFP4", "NVFP4", "Q1_0"})
# every other known type fails in mx.load

_R = "The file is damaged or not GGUF: re-download it and compare its size with the source."
register("GGUF001", "Not a GGUF file (bad magic)", "error", _R, compares="first 4 bytes == b'GGUF'")
register(
    "GGUF002",
    "Unsupported GGUF version",
    "error",
    "Versions 2 and 3 are read; convert older files with llama.cpp's conversion scripts.",
    compares="u32 version in {2, 3}",
)
register(
    "GGUF003",
    "GGUF counts larger than the file can hold",
    "error",
    _R,
    compares="tensor count * 24 and metadata count * 13 bytes (their smallest sizes) vs the bytes left",
)
register(
    "GGUF004",
    "GGUF header truncated",
    "error",
    "The file ends inside its header: an unfinished download. Download it again.",
    compares="every length and count read stays inside the file",
)
register(
    "GGUF005",
    "A GGUF string is too long or not UTF-8",
    "error",
    _R,
    compares="string lengths vs 16 MiB cap and remaining bytes; UTF-8 decoding",
)
register(
    "GGUF006",
    "A GGUF metadata key or tensor name is repeated",
    "error",
    "gguf-py refuses duplicate names; rewrite the file with gguf-new-metadata or reconvert.",
    compares="metadata keys and tensor names are unique",
)
register(
    "GGUF007",
    "general.alignment is not a power of two",
    "error",
    "Set general.alignment to a power of two (default 32) or reconvert.",
    compares="general.alignment > 0 and a power of two",
)
register("GGUF008", "A GGUF tensor has too many dimensions", "error", _R, compares="n_dims <= 8")
register(
    "GGUF009",
    "Unknown GGUF metadata value type",
    "error",
    "The file uses a value type newer than this reader or is damaged; update genai-common or reconvert.",
    compares="value type ids 0-12",
)
register(
    "GGUF010",
    "Big-endian GGUF",
    "warning",
    "MLX and most tools read little-endian GGUF: convert with gguf-convert-endian.",
    compares="byte order of the version field",
)
register(
    "GGUF011",
    "Unknown ggml tensor type",
    "error",
    "The tensor type is newer than this reader (or the file is damaged); MLX will not read it.",
    compares="ggml type ids vs the known table (gguf-py 0.19.0)",
)
register(
    "GGUF012",
    "A GGUF tensor is not block-aligned",
    "error",
    _R,
    compares="first dimension % block size == 0 and offset % alignment == 0",
)
register(
    "GGUF013",
    "A GGUF file is shorter than its tensor infos say",
    "error",
    "Truncated or unfinished download: download it again.",
    compares="data offset + tensor offset + n_elems * type_size / block_size vs file size",
)
register("GGUF014", "Two GGUF tensors overlap", "error", _R, compares="sorted tensor byte spans")
register(
    "GGUF020",
    "GGUF without general.architecture",
    "error",
    "Loaders pick the model class from general.architecture; reconvert with llama.cpp's convert script.",
    compares="general.architecture is a non-empty string",
)
register(
    "GGUF021",
    "GGUF tensor types that MLX dequantizes to float16",
    "warning",
    "mx.load keeps only Q4_0, Q4_1 and Q8_0 quantized: these tensors become float16 in memory "
    "(several times their file size). Use an MLX-quantized safetensors release, or a Q4_0/Q8_0 GGUF.",
    compares="tensor types vs what mx.load keeps quantized (mlx 0.32.4)",
)
register(
    "GGUF022",
    "GGUF tensor types that mx.load cannot read",
    "error",
    "mx.load fails on these types ('gguf_tensor_to_f16 failed'): use a Q4_0, Q4_1, Q8_0, Q4_K or "
    "Q6_K file, or an MLX safetensors release.",
    compares="tensor types vs what mx.load reads (mlx 0.32.4)",
)
register(
    "GGUF023",
    "GGUF tensor types that mx.load silently drops",
    "error",
    "mx.load returns no array for these types (TQ1_0, TQ2_0, MXFP4, NVFP4, Q1_0): the model would "
    "miss weights. Use another quantization.",
    compares="tensor types vs what mx.load returns (mlx 0.32.4)",
)
register(
    "GGUF030",
    "GGUF vocabulary larger than the token embedding",
    "error",
    "The tokenizer can emit ids the embedding has no row for: the file was converted with the "
    "wrong tokenizer; reconvert from the original model.",
    compares="len(tokenizer.ggml.tokens) vs token_embd.weight rows (ne1)",
)
register(
    "GGUF031",
    "GGUF block_count differs from the blocks stored",
    "error",
    "The metadata and the tensors disagree on the number of layers: reconvert, or fix "
    "<arch>.block_count with gguf-set-metadata.",
    compares="<arch>.block_count vs max blk.N + 1 in tensor names",
)
register(
    "GGUF025",
    "Several GGUF files: one was judged",
    "info",
    "GGUF repositories often ship one file per quantization: pass the .gguf file you will load "
    "to judge that one.",
    compares="number of *.gguf files that are not parts of one split model",
)
register(
    "GGUF024",
    "Split GGUF: mx.load reads one file",
    "warning",
    "The model is split across several .gguf files; merge them with llama-gguf-split --merge "
    "before loading with MLX.",
    compares="number of *.gguf files and split.count metadata",
)


def check(md: ModelDir) -> Iterator[Finding]:
    ggufs = [f for f in md.top_files if f.endswith(".gguf")] if md.single_name is None else []
    info = md.gguf
    if info is None:
        return
    rel = md.single_name if md.single_name is not None else ggufs[0]
    if not info.architecture:
        yield finding("GGUF020", f"{rel} has no general.architecture", file=rel)
    split = info.metadata.get("split.count")
    parts = [f for f in ggufs if re.search(r"-\d{5}-of-\d{5}\.gguf$", f)]
    if (isinstance(split, int) and not isinstance(split, bool) and split > 1) or len(parts) > 1:
        count = split if isinstance(split, int) and split > 1 else len(parts)
        yield finding("GGUF024", f"{rel} is one of {count} GGUF parts", file=rel)
    elif len(ggufs) > 1:
        yield finding(
            "GGUF025",
            f"{len(ggufs)} GGUF files ({', '.join(ggufs[:4])}); judged {rel} only",
            file=rel,
        )
    yield from _consistency(info, rel)
    counts = info.type_counts()
    to_f16 = {t: n for t, n in counts.items() if t in MLX_GGUF_TO_F16}
    dropped = {t: n for t, n in counts.items() if t in MLX_GGUF_DROPPED}
    known = MLX_GGUF_QUANTIZED | MLX_GGUF_AS_IS | MLX_GGUF_TO_F16 | MLX_GGUF_DROPPED
    failing = {t: n for t, n in counts.items() if t not in known and not t.startswith("type")}
    if failing:
        yield finding("GGUF022", f"{rel}: mx.load fails on {_list(failing)}", file=rel)
    if dropped:
        yield finding("GGUF023", f"{rel}: mx.load drops {_list(dropped)}", file=rel)
    if to_f16:
        grow = 0
        for t in info.tensors.values():
            if t.type_name in MLX_GGUF_TO_F16 and t.nbytes is not None:
                n = 1
                for d in t.shape:
                    n *= d
                grow += 2 * n - t.nbytes
        yield finding(
            "GGUF021",
            f"{rel}: {_list(to_f16)} become float16 in MLX (+{grow / 2**30:.2f} GiB over the file)",
            file=rel,
        )


def _arch_int(info, key: str) -> int | None:
    value = info.metadata.get(f"{info.architecture}.{key}") if info.architecture else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _consistency(info, rel: str) -> Iterator[Finding]:
    """The GGUF twins of CFG010/CFG020: vocabulary and block count against the tensors."""
    tokens = info.metadata.get("tokenizer.ggml.tokens")
    n_tokens = getattr(tokens, "length", None) if not isinstance(tokens, list) else len(tokens)
    emb = info.tensors.get("token_embd.weight")
    if n_tokens and emb is not None and len(emb.shape) == 2:
        rows = emb.shape[1]  # ggml order: ne0 = embedding width, ne1 = vocabulary
        if rows < n_tokens:
            yield finding(
                "GGUF030",
                f"{rel}: token_embd.weight has {rows} rows but the tokenizer has {n_tokens} tokens",
                file=rel,
            )
    blocks = _arch_int(info, "block_count")
    block = re.compile(r"blk\.(\d+)\.").match
    found = {int(m.group(1)) for name in info.tensors for m in [block(name)] if m}
    if blocks is not None and found and max(found) + 1 != blocks:
        yield finding(
            "GGUF031",
            f"{rel}: {info.architecture}.block_count = {blocks} but tensors hold blocks "
            f"0..{max(found)} ({len(found)} distinct)",
            file=rel,
        )


def _list(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {t}" for t, n in sorted(counts.items()))
