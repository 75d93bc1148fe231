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

from genai_common.findings import Finding, finding, rule
from genai_common.model.values import gib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from genai_common.model import ModelDir


MLX_GGUF_QUANTIZED = frozenset({"Q4_0", "Q4_1", "Q8_0"})
MLX_GGUF_AS_IS = frozenset({"F32", "F16", "I8", "I16", "I32"})
MLX_GGUF_TO_F16 = frozenset({"BF16", "Q2_K", "Q4_K", "Q6_K"})
MLX_GGUF_DROPPED = frozenset({"TQ1_0", "TQ2_0", "MXFP4", "NVFP4", "Q1_0"})
# every other known type fails in mx.load

_R = "The file is damaged or not GGUF: re-download it and compare its size with the source."


@rule(
    "GGUF001",
    "Not a GGUF file (bad magic)",
    severity="error",
    fix=_R,
    compares="first 4 bytes == b'GGUF'",
)
@rule(
    "GGUF002",
    "Unsupported GGUF version",
    severity="error",
    fix="Versions 2 and 3 are read; convert older files with llama.cpp's conversion scripts.",
    compares="u32 version in {2, 3}",
)
@rule(
    "GGUF003",
    "GGUF counts larger than the file can hold",
    severity="error",
    fix=_R,
    compares="tensor count * 24 and metadata count * 13 bytes (their smallest sizes) vs the bytes left",
)
@rule(
    "GGUF004",
    "GGUF header truncated",
    severity="error",
    fix="The file ends inside its header: an unfinished download. Download it again.",
    compares="every length and count read stays inside the file",
)
@rule(
    "GGUF005",
    "A GGUF string is too long or not UTF-8",
    severity="error",
    fix=_R,
    compares="string lengths vs 16 MiB cap and remaining bytes; UTF-8 decoding",
)
@rule(
    "GGUF006",
    "A GGUF metadata key or tensor name is repeated",
    severity="error",
    fix="gguf-py refuses duplicate names; rewrite the file with gguf-new-metadata or reconvert.",
    compares="metadata keys and tensor names are unique",
)
@rule(
    "GGUF007",
    "general.alignment is not a power of two",
    severity="error",
    fix="Set general.alignment to a power of two (default 32) or reconvert.",
    compares="general.alignment > 0 and a power of two",
)
@rule(
    "GGUF008",
    "A GGUF tensor has too many dimensions",
    severity="error",
    fix=_R,
    compares="n_dims <= 8",
)
@rule(
    "GGUF009",
    "Unknown GGUF metadata value type",
    severity="error",
    fix="The file uses a value type newer than this reader or is damaged; update genai-common or reconvert.",
    compares="value type ids 0-12",
)
@rule(
    "GGUF010",
    "Big-endian GGUF",
    severity="warning",
    fix="MLX and most tools read little-endian GGUF: convert with gguf-convert-endian.",
    compares="byte order of the version field",
)
@rule(
    "GGUF011",
    "Unknown ggml tensor type",
    severity="error",
    fix="The tensor type is newer than this reader (or the file is damaged); MLX will not read it.",
    compares="ggml type ids vs the known table (gguf-py 0.19.0)",
)
@rule(
    "GGUF012",
    "A GGUF tensor is not block-aligned",
    severity="error",
    fix=_R,
    compares="first dimension % block size == 0 and offset % alignment == 0",
)
@rule(
    "GGUF013",
    "A GGUF file is shorter than its tensor infos say",
    severity="error",
    fix="Truncated or unfinished download: download it again.",
    compares="data offset + tensor offset + n_elems * type_size / block_size vs file size",
)
@rule(
    "GGUF014",
    "Two GGUF tensors overlap",
    severity="error",
    fix=_R,
    compares="sorted tensor byte spans",
)
def header_problems(md: ModelDir) -> Iterator[Finding]:
    """What the GGUF reader met in the header (genai_common/formats/gguf.py)."""
    for problem in md.problems:
        if problem.code.startswith("GGUF0") and problem.code < "GGUF020":
            yield finding(problem.code, problem.message, file=problem.file)


def _judged(md: ModelDir) -> tuple[Any, str, list[str]] | None:
    """(the GGUF header, its file, every top-level GGUF file) when there is one to judge."""
    ggufs = [f for f in md.top_files if f.endswith(".gguf")] if md.single_name is None else []
    info = md.gguf
    if info is None:
        return None
    return info, md.single_name if md.single_name is not None else ggufs[0], ggufs


@rule(
    "GGUF020",
    "GGUF without general.architecture",
    severity="error",
    fix="Loaders pick the model class from general.architecture; reconvert with llama.cpp's convert script.",
    compares="general.architecture is a non-empty string",
)
@rule(
    "GGUF024",
    "Split GGUF: mx.load reads one file",
    severity="warning",
    fix="The model is split across several .gguf files; merge them with llama-gguf-split --merge "
    "before loading with MLX.",
    compares="number of *.gguf files and split.count metadata",
)
@rule(
    "GGUF025",
    "Several GGUF files: one was judged",
    severity="info",
    fix="GGUF repositories often ship one file per quantization: pass the .gguf file you will load "
    "to judge that one.",
    compares="number of *.gguf files that are not parts of one split model",
)
def gguf_file(md: ModelDir) -> Iterator[Finding]:
    judged = _judged(md)
    if judged is None:
        return
    info, rel, ggufs = judged
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


@rule(
    "GGUF030",
    "GGUF vocabulary larger than the token embedding",
    severity="error",
    fix="The tokenizer can emit ids the embedding has no row for: the file was converted with the "
    "wrong tokenizer; reconvert from the original model.",
    compares="len(tokenizer.ggml.tokens) vs token_embd.weight rows (ne1)",
)
@rule(
    "GGUF031",
    "GGUF block_count differs from the blocks stored",
    severity="error",
    fix="The metadata and the tensors disagree on the number of layers: reconvert, or fix "
    "<arch>.block_count with gguf-set-metadata.",
    compares="<arch>.block_count vs max blk.N + 1 in tensor names",
)
def consistency(md: ModelDir) -> Iterator[Finding]:
    """The GGUF twins of CFG010/CFG020: vocabulary and block count against the tensors."""
    judged = _judged(md)
    if judged is None:
        return
    info, rel, _ = judged
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


@rule(
    "GGUF022",
    "GGUF tensor types that mx.load cannot read",
    severity="error",
    fix="mx.load fails on these types ('gguf_tensor_to_f16 failed'): use a Q4_0, Q4_1, Q8_0, Q4_K or "
    "Q6_K file, or an MLX safetensors release.",
    compares="tensor types vs what mx.load reads (mlx 0.32.4)",
)
@rule(
    "GGUF023",
    "GGUF tensor types that mx.load silently drops",
    severity="error",
    fix="mx.load returns no array for these types (TQ1_0, TQ2_0, MXFP4, NVFP4, Q1_0): the model would "
    "miss weights. Use another quantization.",
    compares="tensor types vs what mx.load returns (mlx 0.32.4)",
)
@rule(
    "GGUF021",
    "GGUF tensor types that MLX dequantizes to float16",
    severity="warning",
    fix="mx.load keeps only Q4_0, Q4_1 and Q8_0 quantized: these tensors become float16 in memory "
    "(several times their file size). Use an MLX-quantized safetensors release, or a Q4_0/Q8_0 GGUF.",
    compares="tensor types vs what mx.load keeps quantized (mlx 0.32.4)",
)
def mlx_types(md: ModelDir) -> Iterator[Finding]:
    """What mx.load does with each tensor type in the file."""
    judged = _judged(md)
    if judged is None:
        return
    info, rel, _ = judged
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
                for dim in t.shape:
                    n *= dim
                grow += 2 * n - t.nbytes
        yield finding(
            "GGUF021",
            f"{rel}: {_list(to_f16)} become float16 in MLX (+{gib(grow)} over the file)",
            file=rel,
        )


def _arch_int(info, key: str) -> int | None:
    value = info.metadata.get(f"{info.architecture}.{key}") if info.architecture else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _list(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {t}" for t, n in sorted(counts.items()))
