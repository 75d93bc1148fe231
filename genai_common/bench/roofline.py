"""Roofline figures: how close a run comes to the machine's memory bandwidth.

Decode at batch 1 reads every weight once per token (except a VLM's vision tower and an untied
input embedding, see `read_per_token`), so those bytes x decode tokens/s is the bandwidth the run
achieved (the KV cache read is left out: small at batch 1 and short contexts); divided by the bandwidth this machine sustains on a plain streaming
pass it says how far the model is from the memory roofline. Prefill is compute-bound: its FLOP/s
is estimated from the configuration (2 FLOPs per weight per token plus the attention scores).

The peak comes from a short probe (`x + 1` over a large array: one read and one write per
element), measured once per machine, backend and MLX version and cached in
``$XDG_CACHE_HOME/genai-common/roofline.json`` (default ``~/.cache``).
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from genai_common.model.values import gib

GB = 1e9


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "genai-common" / "roofline.json"


def machine_key(backend: str, mlx_version: str, device: str | None = None) -> str:
    """machine | device | backend | mlx version: what the measured peak depends on."""
    return "|".join([platform.node(), device or platform.machine(), backend, f"mlx {mlx_version}"])


def _mlx_backend() -> tuple[str, str, str | None]:
    """(backend, mlx version, device name) through the runtime's version shim."""
    import mlx.core as mx

    from genai_common.runtime import mlx_compat

    info = mlx_compat.device_info(mx)
    return mlx_compat.backend(mx), mx.__version__, info.get("name") or info.get("architecture")


def _add_one(x: Any) -> Any:
    return x + 1


def probe_bandwidth(*, nbytes: int | None = None, repeat: int = 7) -> dict[str, Any]:
    """Measure streaming bandwidth with MLX: y = x + 1 over `nbytes` of float32.

    Default size: 4 GiB on a GPU (beyond any cache), 256 MiB on the CPU backend (enough to leave
    the caches; the probe must stay short on a 2-core CI machine).
    """
    import mlx.core as mx

    from genai_common.runtime.timing import timeit

    backend, version, device = _mlx_backend()
    if nbytes is None:
        nbytes = (4 << 30) if backend != "cpu" else (256 << 20)
    x = mx.zeros((nbytes // 4,), dtype=mx.float32)
    mx.eval(x)
    m = timeit(_add_one, x, warmup=2, repeat=repeat)
    del x
    moved = 2 * nbytes  # one read and one write per element
    return {
        "bytes_per_s": moved / m.median,
        "best_bytes_per_s": moved / m.min,
        "probe": f"x + 1 on {gib(nbytes)} float32 ({gib(moved)} moved)",
        "median_s": m.median,
        "samples": list(m.samples),
        "backend": backend,
        "mlx": version,
        "device": device,
    }


def peak_bandwidth(*, refresh: bool = False, probe_bytes: int | None = None) -> dict[str, Any]:
    """The cached peak for this machine+backend+mlx version, probing once when missing."""
    backend, version, device = _mlx_backend()
    key = machine_key(backend, version, device)
    path = cache_path()
    cache: dict[str, Any] = {}
    if path.exists():
        try:
            cache = json.loads(path.read_text())
        except (OSError, ValueError):
            cache = {}
    if not refresh and key in cache:
        return {**cache[key], "key": key, "cached": True}
    entry = probe_bandwidth(nbytes=probe_bytes)
    cache[key] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    from genai_common.runtime import files

    files.write_text(path, json.dumps(cache, indent=1))  # atomic: concurrent probes never clash
    return {**entry, "key": key, "cached": False}


VISION_PARTS = ("vision_tower", "vision_model", "visual.", "multi_modal_projector", "image_newline")


def read_per_token(sizes: dict[str, int]) -> int:
    """Bytes one decode step reads: every weight, except what a token does not touch.

    Not read: the vision tower and projector of a VLM (used once, in the prompt), and an untied
    input embedding (a lookup reads one row; the LM head reads the whole matrix, and is its own
    tensor when untied).
    """
    untied = any(name.endswith("lm_head.weight") for name in sizes)
    total = 0
    for name, nbytes in sizes.items():
        if any(part in name for part in VISION_PARTS):
            continue
        if untied and "embed_tokens." in name:
            continue
        total += nbytes
    return total


def weight_bytes(path: str | Path) -> tuple[int | None, int | None, str]:
    """(all weight bytes, bytes read per decoded token, source), exact from the safetensors
    headers (the doctor's ModelDir); (None, None, 'unknown') when those cannot be read."""
    try:
        from genai_common.model import ModelDir

        tensors = ModelDir.open(path).tensors
        sizes = {name: t.nbytes for name, t in tensors.items()}
        if sizes and all(s is not None for s in sizes.values()):
            return int(sum(sizes.values())), read_per_token(sizes), "safetensors headers"
    except Exception:  # no such path, or headers it cannot read: the caller falls back
        pass
    return None, None, "unknown"


def parameter_bytes(model: Any) -> tuple[int, int]:
    """(all, read per decoded token) bytes of an MLX module's parameters, counted after loading."""
    from mlx.utils import tree_flatten

    sizes = {name: int(v.nbytes) for name, v in tree_flatten(model.parameters())}
    return sum(sizes.values()), read_per_token(sizes)


def llm_matmul_params(config: dict[str, Any]) -> int | None:
    """Weights that take part in a matmul per token (attention, MLP, LM head), from config.json.

    Embedding lookups are not matmuls; the LM head is (tied or not). None when the config lacks
    the sizes.
    """
    cfg = config.get("text_config") or config
    try:
        d = int(cfg["hidden_size"])
        n_layers = int(cfg["num_hidden_layers"])
        inter = int(cfg["intermediate_size"])
        heads = int(cfg["num_attention_heads"])
        kv_heads = int(cfg.get("num_key_value_heads") or heads)
        head_dim = int(cfg.get("head_dim") or d // heads)
        vocab = int(cfg["vocab_size"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    attn = d * heads * head_dim * 2 + d * kv_heads * head_dim * 2  # q, o, k, v
    mlp = 3 * d * inter  # gate, up, down (the llama family; a 2-matrix MLP is 2/3 of this)
    return n_layers * (attn + mlp) + d * vocab


def prefill_flops(config: dict[str, Any], prompt_tokens: int) -> float | None:
    """Estimated FLOPs of a causal prefill of `prompt_tokens` tokens.

    2 FLOPs per matmul weight per token, plus scores and weighted values: 2 * 2 * T^2 * d per
    layer, halved by the causal mask.
    """
    params = llm_matmul_params(config)
    if params is None:
        return None
    cfg = config.get("text_config") or config
    d = int(cfg["num_attention_heads"]) * int(
        cfg.get("head_dim") or int(cfg["hidden_size"]) // int(cfg["num_attention_heads"])
    )
    attention = int(cfg["num_hidden_layers"]) * 2 * prompt_tokens**2 * d
    return 2.0 * params * prompt_tokens + attention


def decode_roofline(
    weight_bytes_: int | None, decode_tps: float | None, peak: dict[str, Any] | None
) -> dict[str, Any]:
    """Achieved bandwidth (bytes/s) = weight bytes x decode tok/s, and its share of the peak."""
    out: dict[str, Any] = {"weight_bytes": weight_bytes_}
    if not weight_bytes_ or not decode_tps:
        return out
    achieved = weight_bytes_ * decode_tps
    out["achieved_bytes_per_s"] = achieved
    if peak and peak.get("bytes_per_s"):
        out["peak_bytes_per_s"] = peak["bytes_per_s"]
        out["fraction_of_peak"] = achieved / peak["bytes_per_s"]
        out["peak_probe"] = peak.get("probe")
    return out
