"""Facts about a model path without judgement (from genai_common.model only), and `genai inspect`.

    facts(md) -> dict   architecture, parameter count, dtype breakdown, quantization, layers,
                        vocab, context, bytes, estimated memory (from headers, never the data)

Parameters of MLX-quantized layers are counted as the logical (unpacked) weights: a U32 `X.weight`
next to `X.scales` holds 32/bits values per element; its scales and biases are counted in bytes,
not in parameters.
"""

from __future__ import annotations

import json
import os
import re
import sys

from genai_common.findings import shown

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from genai_common.model import ModelDir


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def quantization(md: ModelDir) -> dict[str, Any] | None:
    cfg = md.config or {}
    q = cfg.get("quantization")
    if isinstance(q, dict):
        out = {k: q[k] for k in ("bits", "group_size", "mode") if k in q}
        overrides = sum(1 for v in q.values() if isinstance(v, dict))
        if overrides:
            out["per_layer_overrides"] = overrides
        out["format"] = "mlx"
        return out
    for source in (cfg, md.text_config):
        qc = source.get("quantization_config")
        if isinstance(qc, dict):
            out = {"format": str(qc.get("quant_method", "unknown"))}
            for k in ("bits", "group_size", "fmt", "weight_block_size"):
                if k in qc:
                    out[k] = qc[k]
            return out
    return None


def _bits_for(md: ModelDir, module: str, q: dict[str, Any] | None) -> int | None:
    cfg = (md.config or {}).get("quantization")
    if isinstance(cfg, dict):
        override = cfg.get(module)
        if isinstance(override, dict) and _int(override.get("bits")):
            return override["bits"]
    return _int((q or {}).get("bits"))


def parameter_count(md: ModelDir) -> dict[str, int]:
    """Logical parameters and quantization overhead, from the headers."""
    q = quantization(md)
    tensors = md.tensors
    params = 0
    overhead = 0
    for name, t in tensors.items():
        if t.shape is None:
            continue
        numel = 1
        for d in t.shape:
            numel *= d
        base, _, leaf = name.rpartition(".")
        if (
            leaf in ("scales", "biases")
            and f"{base}.weight" in tensors
            and tensors[f"{base}.weight"].dtype == "U32"
        ):
            overhead += numel
            continue
        if t.dtype == "U32" and leaf == "weight" and f"{base}.scales" in tensors:
            bits = _bits_for(md, base, q)
            if bits is None:
                scales = tensors[f"{base}.scales"].shape
                group = _int((q or {}).get("group_size")) or 64
                if scales and t.shape and scales[-1]:
                    in_features = scales[-1] * group
                    bits = max(1, t.shape[-1] * 32 // in_features)
            numel = numel * 32 // (bits or 32)
        params += numel
    return {"parameters": params, "quantization_elements": overhead}


def dtype_breakdown(md: ModelDir) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for t in md.tensors.values():
        if t.dtype is None:
            continue
        row = out.setdefault(t.dtype, {"tensors": 0, "bytes": 0})
        row["tensors"] += 1
        row["bytes"] += t.nbytes or 0
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["bytes"]))


def _text_dims(md: ModelDir) -> dict[str, Any]:
    """The text dimensions (md.text.dims: positive ints up to MAX_COUNT, else None) under their
    config names: an absurd size is unknown here too, never multiplied."""
    d = md.text.dims
    return {
        "hidden_size": d.hidden,
        "num_attention_heads": d.heads,
        "num_key_value_heads": d.kv_heads,
        "head_dim": d.head_dim,
        "num_hidden_layers": d.layers,
        "intermediate_size": d.intermediate,
        "vocab_size": d.vocab,
        "max_position_embeddings": d.max_positions,
    }


def facts(md: ModelDir) -> dict[str, Any]:
    out: dict[str, Any] = {"loader": md.loader}
    cfg = md.config or {}
    archs = cfg.get("architectures")
    out["architecture"] = (
        archs[0] if isinstance(archs, list) and archs and isinstance(archs[0], str) else None
    )
    if md.hub_id:
        out["hub_id"] = md.hub_id
        out["snapshot"] = str(md.root)  # hub ids only
    out["metadata_only"] = md.metadata_only
    if md.kind == "gguf" or (md.gguf is not None and md.kind in ("unknown",)):
        return {**out, **_gguf_facts(md)}
    if md.kind == "diffusion":
        index = md.json("model_index.json") or {}
        out["pipeline"] = index.get("_class_name")
        out["components"] = {k: cls for k, (_, cls) in md.pipeline.components.items() if cls}
        total, seen, per_component = 0, False, {}
        for name in out["components"]:
            if os.path.isdir(md.fspath(name)):
                comp = md.component(name)
                if comp.tensors:
                    seen = True
                    per_component[name] = parameter_count(comp)["parameters"]
                total += sum(t.nbytes or 0 for t in comp.tensors.values())
        if seen:  # unknown (absent) before a download, not zero
            # stored numbers: persistent buffers saved with the weights (SD3's pos_embed) count
            out["parameters"] = sum(per_component.values())
            out["parameters_by_component"] = per_component
            out["weight_bytes"] = total
        decode = md.memory.vae_decode
        if decode is not None:
            out["vae_decode_bytes"] = {
                "resolution": f"{decode.width}x{decode.height}",
                "bytes": decode.bytes,
                "per_megapixel": decode.per_megapixel,
                "dtype": decode.dtype,
            }
        return out
    if md.kind == "adapter":
        acfg = md.json("adapter_config.json") or {}
        out["base_model"] = acfg.get("base_model_name_or_path") or acfg.get("base_model")
        for k in ("r", "rank", "lora_alpha", "num_layers", "fine_tune_type", "peft_type"):
            if k in acfg:
                out[k] = acfg[k]
    dims = _text_dims(md)
    out.update({k: v for k, v in dims.items() if v is not None})
    # the first `layers.N.` (at the start or after a dot) of each name, all names in one pass
    # (the lazy prefix finds the leftmost; see genai_common.model.text.FIRST_LAYER_PATTERN)
    first_layer = r"(?m)^(?:[^\n]*?\.)?layers\.(\d+)\."
    layer_ids = set(map(int, re.findall(first_layer, "\n".join(md.tensors))))
    if layer_ids:
        out["layers_in_weights"] = max(layer_ids) + 1
    if md.vision_config:
        vc = md.vision_config
        out["vision"] = {
            k: vc[k]
            for k in (
                "model_type",
                "hidden_size",
                "depth",
                "num_hidden_layers",
                "image_size",
                "patch_size",
            )
            if k in vc
        }
    q = quantization(md)
    if q:
        out["quantization"] = q
    tok = md.tokenizer
    if tok is not None:
        out["tokenizer_size"] = tok.size
        out["chat_template"] = tok.chat_template is not None
    out["tensor_files"] = len(md.tensor_files)
    out["tensors"] = len(md.tensors)
    if md.metadata_only:
        index = md.index
        if index is not None and index.total_size is not None:
            out["weight_bytes"] = index.total_size
            out["weight_bytes_source"] = "index total_size"
    else:
        out.update(parameter_count(md))
        out["dtypes"] = dtype_breakdown(md)
        out["weight_bytes"] = sum(t.nbytes or 0 for t in md.tensors.values())
        largest = max(md.tensors.values(), key=lambda t: t.nbytes or 0, default=None)
        if largest is not None:
            out["largest_tensor"] = {"name": largest.name, "bytes": largest.nbytes}
    out.update(_kv_facts(md, dims.get("max_position_embeddings"), out.get("weight_bytes")))
    return out


def _kv_facts(md: ModelDir, context: int | None, weights: int | None) -> dict[str, Any]:
    """The KV cache as md.memory counts it (sliding windows, MLA latents)."""
    layout = md.memory.kv_layout
    kv = md.memory.kv_bytes(context or 1)
    if not (layout and kv):
        return {}
    out: dict[str, Any] = {"kv_cache_bytes_per_token": kv[0], "kv_cache_layout": layout.description}
    if context and weights is not None:
        out["estimated_memory_at_context"] = {"context": context, "bytes": weights + kv[1]}
    return out


def _gguf_facts(md: ModelDir) -> dict[str, Any]:
    info = md.gguf
    if info is None:
        return {}
    arch = info.architecture
    meta = info.metadata

    def key(name: str) -> Any:
        value = meta.get(f"{arch}.{name}") if arch else None
        return value if isinstance(value, (int, float, str)) else None

    tokens = meta.get("tokenizer.ggml.tokens")
    n_tokens = getattr(tokens, "length", None) or (
        len(tokens) if isinstance(tokens, list) else None
    )
    params = 0
    for t in info.tensors.values():
        n = 1
        for d in t.shape:
            n *= d
        params += n
    return {
        "gguf_version": info.version,
        "architecture": arch,
        "name": meta.get("general.name") if isinstance(meta.get("general.name"), str) else None,
        "file_type": meta.get("general.file_type"),
        "tensors": len(info.tensors),
        "metadata_entries": len(meta),
        "tensor_types": info.type_counts(),
        "parameters": params,
        "weight_bytes": sum(t.nbytes or 0 for t in info.tensors.values()),
        "num_hidden_layers": key("block_count"),
        "context_length": key("context_length"),
        "hidden_size": key("embedding_length"),
        "vocab_size": n_tokens,
    }


# ---------------------------------------------------------------------------------------------
# `genai inspect`


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="model directory, .safetensors/.gguf file, or cached hub id")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--metadata-only", action="store_true", help="read no weight headers")


def _plain(value: Any, key: str = "") -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_plain(v, k)}" for k, v in value.items())
    if isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > 200:  # never a 4,300-digit conversion
            return f"an integer of {value.bit_length():,} bits"
        return (
            f"{value:,}" if key.endswith(("bytes", "parameters")) or value >= 10**6 else str(value)
        )
    return str(value)


def run(args: argparse.Namespace) -> int:
    from genai_common.model import ModelDir, ModelPathError

    try:
        md = ModelDir.open(args.path, metadata_only=args.metadata_only)
    except ModelPathError as exc:
        print(f"genai inspect: {exc}", file=sys.stderr)
        return 2
    try:
        out = {"path": md.display, "kind": md.kind, "model_type": md.model_type, **facts(md)}
    except Exception as exc:  # a damaged file: the doctor names it; never a traceback here
        print(
            f"genai inspect: {shown(args.path)}: facts unavailable ({type(exc).__name__}); "
            f"run `genai doctor {shown(args.path)}`",
            file=sys.stderr,
        )
        return 2
    if args.json:
        print(json.dumps(out, indent=2, default=str))
        return 0
    for k, v in out.items():
        print(f"{k:<28} {shown(_plain(v, k))}")
    return 0
