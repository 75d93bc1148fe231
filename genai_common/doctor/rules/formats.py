"""JSON, HDR, IDX (and the tokenizer-file readers' TOK9xx): files that do not read as what they claim.

The readers in genai_common/formats raise or return these codes; ModelDir records them as
md.problems (data, in the order they were met), after md.read_all() has read every metadata file
and every header the loader will read. The rules here report them, and judge the dtypes the
loader cannot take.
"""

from __future__ import annotations

from collections.abc import Iterator

from genai_common.findings import Finding, finding, rule

TYPE_CHECKING = False
if TYPE_CHECKING:
    from genai_common.model import ModelDir

MLX_LOADERS = ("mlx-lm", "mlx-vlm", "mlx")
_J = "Re-save the file with a JSON writer (json.dump with allow_nan=False), or re-download it."
_H = (
    "The file is damaged or not a safetensors file: re-download it (compare its size and sha256 "
    "with the hub) or re-save it with safetensors.save_file / mx.save_safetensors."
)


def _recorded(md: ModelDir, codes: tuple[str, ...]) -> Iterator[Finding]:
    """The problems a reader recorded with one of these codes, as findings (in reading order)."""
    for problem in md.problems:
        if problem.code in codes:
            yield finding(problem.code, problem.message, file=problem.file)


@rule(
    "JSON001",
    "A JSON file is not UTF-8",
    severity="error",
    fix=_J,
    compares="file bytes decode as UTF-8",
)
@rule(
    "JSON002",
    "A JSON file does not parse",
    severity="error",
    fix=_J,
    compares="json.loads of the file",
)
@rule(
    "JSON003",
    "A JSON file holds something other than an object",
    severity="error",
    fix="Configs, indexes and tokenizer files are JSON objects ({...}): the file is the wrong one or damaged.",
    compares="type of the top-level JSON value",
)
@rule(
    "JSON004",
    "A JSON file contains NaN or Infinity",
    severity="warning",
    fix="Python reads these, strict readers (Rust, JavaScript, transformers' tagged floats) refuse them: "
    'write a number, null, or {"__float__": "Infinity"} as transformers does.',
    compares="non-standard constants NaN, Infinity, -Infinity",
)
@rule(
    "JSON005",
    "A JSON file repeats a key",
    severity="warning",
    fix="Remove the duplicate: Python keeps the last value, other readers may keep the first.",
    compares="keys of every JSON object",
)
@rule(
    "JSON006",
    "A metadata file is larger than the reader's cap",
    severity="error",
    fix="A config or index is KBs; a file this large is not what its name says (or is hostile).",
    compares="file size vs cap (16 MiB for configs, 48 MiB for indexes, 256 MiB for "
    "tokenizer.json, 4 MiB for templates)",
)
@rule(
    "JSON007",
    "A JSON file is empty",
    severity="error",
    fix=_J,
    compares="file has non-blank content",
)
@rule(
    "JSON008",
    "A metadata file cannot be read",
    severity="error",
    fix="Check the file's permissions, or whether it is a broken link into the Hugging Face cache.",
    compares="open() and read() succeed",
)
def json_problems(md: ModelDir) -> Iterator[Finding]:
    """Metadata files that do not read as JSON objects (genai_common/formats/jsonfile.py)."""
    yield from _recorded(
        md, ("JSON001", "JSON002", "JSON003", "JSON004", "JSON005", "JSON006", "JSON007", "JSON008")
    )


@rule(
    "HDR001",
    "A safetensors file is empty or shorter than its 8-byte header length",
    severity="error",
    fix=_H,
    compares="file size >= 8",
)
@rule(
    "HDR002",
    "A safetensors header length is zero or absurd",
    severity="error",
    fix=_H,
    compares="8-byte little-endian header length vs the format's 100 MB cap",
)
@rule(
    "HDR003",
    "A safetensors header length runs past the end of the file",
    severity="error",
    fix="The file is truncated (an unfinished download): download it again.",
    compares="header length vs file size - 8",
)
@rule(
    "HDR004",
    "A safetensors header is not valid UTF-8 JSON",
    severity="error",
    fix=_H,
    compares="json.loads of the header bytes",
)
@rule(
    "HDR005",
    "A safetensors header is not a JSON object",
    severity="error",
    fix=_H,
    compares="header JSON type",
)
@rule(
    "HDR006",
    "A safetensors header names a tensor twice",
    severity="error",
    fix="The format forbids duplicate names; the safetensors library refuses the file and mx.load "
    "silently keeps the last one. Re-save the weights.",
    compares="keys of the header object",
)
@rule(
    "HDR007",
    "A safetensors __metadata__ entry is not a map (nor null)",
    severity="warning",
    fix="__metadata__ must be null or map strings to strings (e.g. {'format': 'mlx'}): mx.load "
    "reads such a file, but safe_open (transformers, diffusers) refuses it ('invalid JSON in "
    "header'). Re-save the file; for diffusers it is an error.",
    compares="type of __metadata__ (null, as mx.save_safetensors writes it, is accepted by both "
    "safe_open and mx.load: safetensors 0.8, mlx 0.32.4)",
)
@rule(
    "HDR008",
    "A safetensors __metadata__ value is not a string",
    severity="error",
    fix="Both safe_open and mx.load refuse the file ('invalid type: integer' / 'type must be "
    "string'): re-save it with string metadata values (str(value)).",
    compares="types of the __metadata__ values (safetensors 0.8, mlx 0.32.4)",
)
@rule(
    "HDR010",
    "A safetensors header entry is malformed",
    severity="error",
    fix=_H,
    compares="each entry has dtype (str), shape (list), data_offsets (two ints)",
)
@rule(
    "HDR011",
    "A tensor has a dtype the safetensors format does not define",
    severity="error",
    fix="Known dtypes: BOOL, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, I16, U16, F16, BF16, I32, U32, F32, "
    "F64, I64, U64, C64, F4, F6_E2M3, F6_E3M2. Re-save the tensor in one of them.",
    compares="entry dtype vs the safetensors dtype table",
)
@rule(
    "HDR012",
    "A tensor shape has negative or non-integer dimensions",
    severity="error",
    fix=_H,
    compares="every shape dimension is an integer >= 0",
)
@rule(
    "HDR013",
    "A tensor's byte span does not match its dtype and shape",
    severity="error",
    fix="The header disagrees with itself: the file was written wrongly or edited by hand. Re-save it.",
    compares="data_offsets end - begin == prod(shape) * dtype bits / 8",
)
@rule(
    "HDR014",
    "A tensor's data_offsets are invalid",
    severity="error",
    fix=_H,
    compares="0 <= begin <= end",
)
@rule(
    "HDR015",
    "A safetensors file is shorter than its header says",
    severity="error",
    fix="Truncated or unfinished download: download the file again and compare its size with the hub.",
    compares="largest end offset vs file size - 8 - header length",
)
@rule(
    "HDR016",
    "Two tensors share bytes in a safetensors file",
    severity="error",
    fix="Overlapping tensors alias each other's data (mx.load accepts it silently; safetensors refuses "
    "it). Re-save the weights.",
    compares="sorted [begin, end) spans do not overlap",
)
@rule(
    "HDR017",
    "A safetensors buffer has gaps or unused bytes",
    severity="warning",
    fix="mx.load reads it, but the safetensors library (transformers, diffusers) refuses non-contiguous "
    "buffers ('invalid offset'). Re-save with safetensors.save_file or mx.save_safetensors.",
    compares="tensors cover the data buffer contiguously, end to end",
)
def header_problems(md: ModelDir) -> Iterator[Finding]:
    """Safetensors headers that do not read (genai_common/formats/safetensors.py)."""
    for found in _recorded(
        md,
        (
            "HDR001",
            "HDR002",
            "HDR003",
            "HDR004",
            "HDR005",
            "HDR006",
            "HDR007",
            "HDR008",
            "HDR010",
            "HDR011",
            "HDR012",
            "HDR013",
            "HDR014",
            "HDR015",
            "HDR016",
            "HDR017",
        ),
    ):
        if found.code == "HDR007" and md.loader == "diffusers":  # safe_open refuses the file
            found = found._replace(severity="error")
        yield found


@rule(
    "IDX001",
    "A safetensors index has no weight_map",
    severity="error",
    fix="An index must hold {'weight_map': {tensor: shard}}; regenerate it, or delete it if there is "
    "one weights file.",
    compares="index JSON has a weight_map object",
)
@rule(
    "IDX002",
    "A safetensors index maps tensors to things that are not file names",
    severity="error",
    fix="Every weight_map value must be a shard file name; regenerate the index.",
    compares="weight_map values are strings",
)
@rule(
    "IDX003",
    "A safetensors index points outside the model directory",
    severity="error",
    fix="Shard names must be plain relative names (no '..', no absolute paths): such entries are "
    "ignored here and are a path-traversal risk for loaders that follow them.",
    compares="weight_map values resolve inside the directory",
)
@rule(
    "IDX004",
    "A safetensors index has a malformed metadata.total_size",
    severity="warning",
    fix="metadata.total_size should be the bytes of tensor data; regenerate the index.",
    compares="metadata is an object and total_size a non-negative number",
)
def index_problems(md: ModelDir) -> Iterator[Finding]:
    """Safetensors indexes that do not read (genai_common/formats/index.py)."""
    yield from _recorded(md, ("IDX001", "IDX002", "IDX003", "IDX004"))


@rule(
    "TOK900",
    "A tokenizer file has the wrong structure",
    severity="error",
    fix="tokenizer.json / tokenizer_config.json do not have the fields the tokenizers library "
    "expects; re-save the tokenizer with tokenizer.save_pretrained().",
    compares="model.vocab, added_tokens, added_tokens_decoder, chat_template field types",
)
@rule(
    "TOK901",
    "tokenizer.model is not a SentencePiece model",
    severity="error",
    fix="The file does not parse as a SentencePiece protobuf (it may be an LFS pointer, truncated, or "
    "a tiktoken file under the wrong name): re-download it.",
    compares="protobuf structure of tokenizer.model, pieces counted",
)
def tokenizer_file_problems(md: ModelDir) -> Iterator[Finding]:
    """Tokenizer files that do not read (genai_common/formats/tokenizer.py)."""
    yield from _recorded(md, ("TOK900", "TOK901"))


@rule(
    "TOK042",
    "tokenizer.json is larger than any published one: read in outline",
    severity="warning",
    fix="No published tokenizer.json is over 33 MB (Gemma 3's 262,144 tokens): a file this large "
    "is damaged, padded or hostile. Re-save the tokenizer with tokenizer.save_pretrained(), or "
    "check it with the tokenizers library.",
    compares="tokenizer.json bytes vs the 48 MiB read in full (formats/tokenizer_json.OUTLINE)",
)
def tokenizer_outline(md: ModelDir) -> Iterator[Finding]:
    """What was not checked in a tokenizer.json read in outline (formats/tokenizer_json.py)."""
    yield from _recorded(md, ("TOK042",))


@rule(
    "TOK043",
    "tokenizer.model holds more pieces than any real SentencePiece model: not read",
    severity="error",
    fix="Real SentencePiece models hold at most 262,144 pieces (Gemma 3): this file is damaged, "
    "not a SentencePiece model, or hostile. Re-download it.",
    compares="pieces in tokenizer.model vs the 524,288 read (formats/tokenizer.MAX_PIECES)",
)
def tokenizer_model_cut(md: ModelDir) -> Iterator[Finding]:
    """A tokenizer.model the reader stopped reading (formats/tokenizer.py)."""
    yield from _recorded(md, ("TOK043",))


@rule(
    "HDR020",
    "A tensor has a dtype MLX cannot load",
    severity="error",
    fix="mx.load refuses F64, F4 and F6 (mlx 0.32.4; F8 and F4 dtypes: see QNT070): convert those tensors "
    "(e.g. to F32/BF16) before loading with MLX.",
    compares="safetensors dtypes vs what mx.load reads (measured with mlx 0.32.4)",
)
def mlx_dtypes(md: ModelDir) -> Iterator[Finding]:
    """Tensor dtypes mx.load refuses, for the MLX loaders."""
    from genai_common.formats.safetensors import MLX_UNSUPPORTED_DTYPES

    if md.loader not in MLX_LOADERS or md.metadata_only:
        return
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
