"""CNV02x: `genai convert FILE.gguf` (issue 11 item 1, GGUF sources).

mlx-lm does not load GGUF models, so the file is read the way `genai verify` reads a GGUF
reference: transformers' `from_pretrained(folder, gguf_file=name)` (transformers 5.25.0, gguf
0.19.0) dequantizes every tensor with the `gguf` package and reverses llama.cpp's q/k rotary
permutation; the model and the tokenizer transformers builds from the GGUF metadata are saved as
a Hugging Face folder (safetensors, format "pt") in a temporary folder beside the output, and
mlx-lm's own convert runs on that (workflows/convert.py: doctor before and after, quantize,
bench). Its `genai verify` then scores the MLX output against transformers' reading of the same
numbers. Before any of that, the header (formats/gguf.py, no torch) is checked against what
transformers can read: the architecture, and each tensor's ggml type against the types the `gguf`
package can dequantize.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from genai_common.findings import Finding, finding, rule

TYPE_CHECKING = False
if TYPE_CHECKING:
    from genai_common.formats.gguf import GGUFInfo
    from genai_common.workflows.convert import ConvertResult  # typing only: no import cycle

INSTALL = "pip install 'genai-common[reference]'"


def supported_architectures() -> list[str]:
    """The GGUF `general.architecture` values transformers reads."""
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    return sorted(a for a in GGUF_SUPPORTED_ARCHITECTURES if a != "general")


def dequantizable() -> set[str]:
    """ggml type names the `gguf` package dequantizes (numpy), hence transformers too."""
    from gguf import GGMLQuantizationType
    from gguf.quants import _type_traits

    return {"F32", "F16"} | {GGMLQuantizationType(t).name for t in _type_traits}


@rule(
    "CNV020",
    "The GGUF's architecture is one transformers cannot read",
    severity="error",
    fix="genai convert reads GGUF through transformers' gguf_file=: convert from the model's "
    "Hugging Face checkpoint instead, or upgrade transformers if a newer one lists it.",
    compares="general.architecture vs transformers' GGUF_SUPPORTED_ARCHITECTURES",
)
def unsupported_architecture(info: GGUFInfo, known: list[str]) -> Iterator[Finding]:
    arch = info.architecture
    if arch not in known:
        yield finding(
            "CNV020",
            f"architecture {arch!r} is not one transformers reads from GGUF "
            f"({', '.join(known[:12])}{', ...' if len(known) > 12 else ''})",
            file=info.path,
        )


@rule(
    "CNV021",
    "GGUF tensors in a type that cannot be dequantized here",
    severity="error",
    fix="Use a GGUF of a type the gguf package dequantizes (F16, Q8_0, Q4_0, the K-quants...), "
    "upgrade `gguf`, or convert from the Hugging Face checkpoint.",
    compares="each tensor's ggml type vs gguf.quants' dequantizers",
)
def unsupported_types(info: GGUFInfo, known: set[str]) -> Iterator[Finding]:
    bad: dict[str, list[str]] = {}
    for t in info.tensors.values():
        if t.type_name not in known:
            bad.setdefault(t.type_name, []).append(t.name)
    for name, tensors in sorted(bad.items()):
        yield finding(
            "CNV021",
            f"{len(tensors)} tensor(s) of type {name} (e.g. {tensors[0]}); dequantizable: "
            f"{', '.join(sorted(known))}",
            file=info.path,
        )


@rule(
    "CNV022",
    "mlx-lm has no model for the GGUF's architecture",
    severity="error",
    fix="transformers reads the file, but mlx-lm cannot run the result: upgrade mlx-lm, or "
    "check mlx_lm/models for the model_type.",
    compares="the model_type transformers gives the GGUF vs mlx_lm.models",
)
def no_mlx_model(model_type: str, path: str) -> Iterator[Finding]:
    import importlib.util

    if importlib.util.find_spec(f"mlx_lm.models.{model_type}") is None:
        yield finding(
            "CNV022", f"model_type {model_type!r}: no mlx_lm.models.{model_type}", file=path
        )


@rule(
    "CNV023",
    "transformers could not read the GGUF",
    severity="error",
    fix="The message is transformers' own (from_pretrained with gguf_file=); a file that "
    "`genai doctor` also flags is damaged: download it again.",
    compares="transformers' from_pretrained(gguf_file=) ran to the end",
)
def read_failed(message: str, path: str) -> Iterator[Finding]:
    yield finding("CNV023", message, file=path)


@rule(
    "CNV024",
    "No tokenizer for the GGUF",
    severity="error",
    fix="transformers could not build a tokenizer from the GGUF metadata and no tokenizer.json "
    "lies beside it: put the model's tokenizer files next to the .gguf.",
    compares="AutoTokenizer.from_pretrained(gguf_file=), then tokenizer files beside the file",
)
def no_tokenizer(message: str, path: str) -> Iterator[Finding]:
    yield finding("CNV024", message, file=path)


@rule(
    "CNV025",
    "Reading a GGUF needs torch, transformers and gguf",
    severity="error",
    fix=f"Install the reference extra: {INSTALL}.",
    compares="torch, transformers and gguf import",
)
def missing_stack(name: str, path: str) -> Iterator[Finding]:
    yield finding("CNV025", f"{name} is not installed: {INSTALL}", file=path)


def _run(func: Any, *args: Any) -> list[Finding]:
    from genai_common.findings import declared, stamp

    return [stamp(f, declared(func)) for f in func(*args)]


def preflight(path: str) -> list[Finding]:
    """The header against what transformers and gguf can read (no tensor data is read)."""
    import importlib.util

    for name in ("torch", "transformers", "gguf"):
        if importlib.util.find_spec(name) is None:
            return _run(missing_stack, name, path)
    from genai_common.formats import FormatError
    from genai_common.formats.gguf import read_gguf

    try:
        info = read_gguf(path)
    except (FormatError, OSError) as exc:
        return _run(read_failed, f"the GGUF header does not read: {exc}", path)
    return _run(unsupported_architecture, info, supported_architectures()) + _run(
        unsupported_types, info, dequantizable()
    )


def _dtype(path: str) -> str:
    """The dtype the dequantized checkpoint is saved in: float32 when every matrix is F32,
    bfloat16 when any is BF16, else float16 (quantized blocks carry float16 scales)."""
    from genai_common.formats.gguf import read_gguf

    types = {t.type_name for t in read_gguf(path).tensors.values() if len(t.shape) > 1}
    if types <= {"F32"}:
        return "float32"
    return "bfloat16" if "BF16" in types else "float16"


def _legacy_rope(path: str) -> None:
    """Add the top-level `rope_theta` (and `rope_scaling`) that mlx-lm reads. transformers 5.25.0
    writes them only inside `rope_parameters`; mlx-lm 0.32.2's llama ModelArgs ignores that key
    and falls back to rope_theta 10000, a silent change of every rotary frequency (genai verify
    sees it: KL 0.21 nats, top-1 57% on the tiny llama, whose rope_theta is 500000)."""
    import json

    from genai_common.runtime.files import read_text, write_text

    cfg = json.loads(read_text(path))
    rope = cfg.get("rope_parameters")
    if not isinstance(rope, dict) or "rope_theta" not in rope:
        return
    cfg.setdefault("rope_theta", rope["rope_theta"])
    if rope.get("rope_type", "default") != "default":
        cfg.setdefault("rope_scaling", {k: v for k, v in rope.items() if k != "rope_theta"})
    write_text(path, json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def _save(model: Any, dest: str, dtype: str) -> None:
    """The model as a Hugging Face folder. Not `save_pretrained`: transformers marks a model read
    from GGUF as quantized ("not serializable"), although its tensors are plain float."""
    import torch
    from safetensors.torch import save_model

    os.makedirs(dest, exist_ok=True)
    model = model.to(getattr(torch, dtype))
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = dtype
    config.save_pretrained(dest)
    _legacy_rope(os.path.join(dest, "config.json"))
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(dest)
    # save_model drops the tied copies (lm_head sharing the embedding) that save_file refuses
    save_model(model, os.path.join(dest, "model.safetensors"), metadata={"format": "pt"})


def _drop_phantom_tokens(dest: str, rows: int) -> None:
    """Remove added tokens at ids >= `rows` from the saved tokenizer. transformers 5.25.0 builds a
    byte-level (`gpt2`) GGUF tokenizer as GPT2Tokenizer(vocab, merges), whose default unk, bos and
    eos are "<|endoftext|>": a vocabulary without that token (Llama 3, the tiny llama) gets it
    added at id len(tokens), one past the embedding (the doctor's TOK010). No text maps to it."""
    import json

    from genai_common.runtime.files import read_text, write_text

    tok_path = os.path.join(dest, "tokenizer.json")
    tok = json.loads(read_text(tok_path))
    phantom = {a["id"] for a in tok.get("added_tokens", []) if a["id"] >= rows}
    if not phantom:
        return
    tok["added_tokens"] = [a for a in tok["added_tokens"] if a["id"] not in phantom]
    write_text(tok_path, json.dumps(tok, ensure_ascii=False, indent=2))
    cfg_path = os.path.join(dest, "tokenizer_config.json")
    if os.path.exists(cfg_path):
        cfg = json.loads(read_text(cfg_path))
        decoder = cfg.get("added_tokens_decoder") or {}
        gone = {decoder[k].get("content") for k in decoder if int(k) in phantom}
        cfg["added_tokens_decoder"] = {k: v for k, v in decoder.items() if int(k) not in phantom}
        for key in ("unk_token", "bos_token", "eos_token", "pad_token"):
            if cfg.get(key) in gone:
                cfg.pop(key)
        extra = cfg.get("extra_special_tokens") or cfg.get("additional_special_tokens")
        if isinstance(extra, list):
            kept = [t for t in extra if t not in gone]
            cfg[
                "extra_special_tokens"
                if "extra_special_tokens" in cfg
                else "additional_special_tokens"
            ] = kept
        write_text(cfg_path, json.dumps(cfg, ensure_ascii=False, indent=2))


def dequantize(path: str, dest: str) -> list[Finding]:
    """transformers' reading of the GGUF saved as a Hugging Face folder at `dest`."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = os.path.split(os.path.abspath(path))
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except Exception as exc:  # transformers' own message, as a finding
        return _run(read_failed, f"{type(exc).__name__}: {exc}"[:400], path)
    found = _run(no_mlx_model, model.config.model_type, path)
    if found:
        return found
    _save(model, dest, _dtype(path))
    try:
        AutoTokenizer.from_pretrained(folder, gguf_file=name).save_pretrained(dest)
        _drop_phantom_tokens(dest, int(model.config.vocab_size))
    except Exception as exc:
        beside = [
            n
            for n in os.listdir(folder)
            if n.startswith(("tokenizer", "special_tokens", "chat_template"))
        ]
        if "tokenizer.json" not in beside and "tokenizer.model" not in beside:
            return _run(no_tokenizer, f"{type(exc).__name__}: {exc}"[:300], path)
        for n in beside:
            shutil.copy(os.path.join(folder, n), os.path.join(dest, n))
    return []


def convert_from_gguf(
    source: str, output: str, convert: Any, result: type[ConvertResult], **kwargs: Any
) -> ConvertResult:
    """genai convert from a .gguf: preflight (CNV020-CNV025), transformers' dequantized reading
    into a temporary Hugging Face folder beside the output, then `convert`
    (workflows.convert.convert, passed in: that module imports this one) on it, so that its
    `genai verify` compares the MLX output with transformers' reading of the file."""
    import tempfile

    from genai_common.verify.reference_hf import gguf_file

    path = gguf_file(source) or source
    quantize, group_size = kwargs.get("quantize"), kwargs.get("group_size", 64)
    metrics: dict[str, Any] = {"source_bytes": os.path.getsize(path)}
    found = preflight(path)
    if any(f.severity == "error" for f in found):
        return result(source, output, quantize, group_size, found, metrics, "fail")
    parent = os.path.dirname(os.path.abspath(output))
    os.makedirs(parent, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".genai-gguf-", dir=parent) as tmp:
        hf = os.path.join(tmp, "hf")
        found += dequantize(path, hf)
        if any(f.severity == "error" for f in found):
            return result(source, output, quantize, group_size, found, metrics, "fail")
        r = convert(hf, output, **kwargs)
    metrics.update({k: v for k, v in r.metrics.items() if k != "source_bytes"})
    metrics["gguf_dequantized_by"] = "transformers gguf_file="
    return r._replace(source=source, findings=found + list(r.findings), metrics=metrics)
