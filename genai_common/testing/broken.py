"""Broken (and good) copies of a tiny llm checkpoint, for `genai verify`'s tests and calibration
(issue 10). Each function takes a checkpoint folder in the layout the tiny_llm fixtures write
(Hugging Face names that mlx-lm loads: model.layers.N.self_attn.q_proj.weight, ...) and writes a
changed copy to `dest`; it returns `dest`. The source is never modified.

Broken, each a bug users have met:
    reverse_qk_permutation  the HF<->Meta rotate-half permutation applied to q_proj/k_proj rows
                            of a checkpoint already in HF order (a converter run twice)
    norm_plus_one           RMSNorm weights + 1 (one layer or all): an offset applied twice
    change_rope_theta       config.json's rope_theta changed, weights untouched
    swap_gate_up            gate_proj and up_proj exchanged
    quantize_embedding      only the embedding quantized (2 bits), through mlx-lm's convert with a
                            per-layer quantization predicate (the layout mlx-lm loads)
    zero_lm_head            the untied output projection all zeros (llama: untied)
    tie_lm_head             an untied model re-tied: lm_head dropped, tie_word_embeddings true
    fuse_adapter            a LoRA fused with mlx-lm (scale=1.0: "fused without its scale")
    (a fuse that dropped the adapter is the base itself: `copy`)
Good:
    cast                    weights cast to another dtype (float32: exact; bfloat16: rounded)
    convert_quantized       mlx-lm's convert to `bits`-bit affine (group_size)

mlx, mlx_lm and numpy are imported inside the functions.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

WEIGHT_FILES = "*.safetensors"


def copy(src: str | Path, dest: str | Path) -> Path:
    """An unchanged copy (also "a fuse that dropped the adapter": fused == base)."""
    dest = Path(dest)
    shutil.copytree(src, dest)
    return dest


def _config(path: Path) -> dict[str, Any]:
    return json.loads((path / "config.json").read_text())


def _write_config(path: Path, config: dict[str, Any]) -> None:
    (path / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def _edit_weights(
    src: str | Path, dest: str | Path, edit: Callable[[dict[str, Any]], dict[str, Any]]
) -> Path:
    """Copy `src` to `dest`, then rewrite every weight file through `edit(name -> mx.array)`."""
    import mlx.core as mx

    dest = copy(src, dest)
    for f in sorted(dest.glob(WEIGHT_FILES)):
        weights = edit(dict(mx.load(str(f))))
        mx.save_safetensors(str(f), weights, metadata={"format": "mlx"})
    return dest


def rotate_half_permutation(w: Any, heads: int) -> Any:
    """The permutation Hugging Face's Llama converter applies to q/k rows (Meta's interleaved
    rotary pairs -> rotate-half halves), per head: view(heads, dim/heads/2, 2, in), swap the
    middle axes. Applied to rows already in HF order, it scrambles the rotary pairs."""
    shape = w.shape  # [rows, in] (a quantized weight: [rows, packed]; scales, biases: 1-D ok)
    return w.reshape(heads, shape[0] // heads // 2, 2, -1).swapaxes(1, 2).reshape(shape)


def reverse_qk_permutation(src: str | Path, dest: str | Path) -> Path:
    """q_proj and k_proj rows permuted once more (every layer): shapes all still match. A
    quantized checkpoint's scales and biases rows and a q/k bias move with their rows."""
    config = _config(Path(src))
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads", heads)

    def edit(w: dict[str, Any]) -> dict[str, Any]:
        for name in list(w):
            if ".self_attn.q_proj." in name:
                w[name] = rotate_half_permutation(w[name], heads)
            elif ".self_attn.k_proj." in name:
                w[name] = rotate_half_permutation(w[name], kv_heads)
        return w

    return _edit_weights(src, dest, edit)


def norm_plus_one(src: str | Path, dest: str | Path, layer: int | None = 0) -> Path:
    """+1 on the RMSNorm weights of decoder layer `layer` (input and post-attention norms), or
    on every norm weight (final norm included) when `layer` is None."""
    prefix = "" if layer is None else f"model.layers.{layer}."

    def edit(w: dict[str, Any]) -> dict[str, Any]:
        for name in list(w):
            if name.startswith(prefix) and name.endswith("norm.weight"):
                w[name] = w[name] + 1
        return w

    return _edit_weights(src, dest, edit)


def change_rope_theta(src: str | Path, dest: str | Path, theta: float | None = None) -> Path:
    """config.json's rope_theta set to `theta` (default: a fiftieth of the source's, so the tiny
    llama's 500,000 becomes 10,000); weights equal."""
    dest = copy(src, dest)
    config = _config(dest)
    config["rope_theta"] = theta if theta is not None else config.get("rope_theta", 10_000.0) / 50
    _write_config(dest, config)
    return dest


def swap_gate_up(src: str | Path, dest: str | Path, layer: int | None = None) -> Path:
    """mlp.gate_proj and mlp.up_proj exchanged (in `layer`, or every layer when None)."""
    prefix = "model.layers." if layer is None else f"model.layers.{layer}."

    def edit(w: dict[str, Any]) -> dict[str, Any]:
        for name in list(w):
            if name.startswith(prefix) and ".mlp.gate_proj." in name:
                other = name.replace(".gate_proj.", ".up_proj.")
                w[name], w[other] = w[other], w[name]
        return w

    return _edit_weights(src, dest, edit)


def zero_lm_head(src: str | Path, dest: str | Path) -> Path:
    """lm_head.weight all zeros (an untied model: the tiny llama)."""
    if _config(Path(src)).get("tie_word_embeddings", True):
        raise ValueError(f"{src}: tied embeddings, there is no lm_head to zero")

    def edit(w: dict[str, Any]) -> dict[str, Any]:
        import mlx.core as mx

        if "lm_head.weight" in w:
            w["lm_head.weight"] = mx.zeros_like(w["lm_head.weight"])
        return w

    return _edit_weights(src, dest, edit)


def tie_lm_head(src: str | Path, dest: str | Path) -> Path:
    """An untied model written as tied: lm_head dropped, tie_word_embeddings true, so the
    embedding serves as the output projection (a converter that assumed every model ties)."""
    if _config(Path(src)).get("tie_word_embeddings", True):
        raise ValueError(f"{src}: already tied")

    def edit(w: dict[str, Any]) -> dict[str, Any]:
        w.pop("lm_head.weight", None)
        return w

    dest = _edit_weights(src, dest, edit)
    config = _config(dest)
    config["tie_word_embeddings"] = True
    _write_config(dest, config)
    return dest


def cast(src: str | Path, dest: str | Path, dtype: str = "float32") -> Path:
    """Every floating weight cast to `dtype` (config's torch_dtype too): float16 -> float32 is
    exact; bfloat16 rounds each weight to 8 significant bits."""
    import mlx.core as mx

    target = getattr(mx, dtype)

    def edit(w: dict[str, Any]) -> dict[str, Any]:
        return {
            k: v.astype(target) if mx.issubdtype(v.dtype, mx.floating) else v for k, v in w.items()
        }

    dest = _edit_weights(src, dest, edit)
    config = _config(dest)
    config["torch_dtype"] = dtype
    _write_config(dest, config)
    return dest


def _convert(src: Path, dest: Path, **kwargs: Any) -> Path:
    """mlx-lm's convert into `dest`; keep its weights, index and config, and the source's other
    files (the tokenizer files convert re-saves depend on the transformers version)."""
    from mlx_lm.convert import convert

    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="genai-broken-") as tmp:
        out = Path(tmp) / "q"
        with contextlib.redirect_stdout(io.StringIO()):  # convert prints progress
            convert(str(src), str(out), **kwargs)
        for item in sorted(out.iterdir()):
            if item.name.endswith((".safetensors", ".safetensors.index.json")) or (
                item.name == "config.json"
            ):
                shutil.move(str(item), dest / item.name)
    for item in sorted(src.iterdir()):
        if item.is_file() and not (dest / item.name).exists():
            shutil.copyfile(item, dest / item.name)
    return dest


def convert_quantized(
    src: str | Path, dest: str | Path, bits: int = 4, group_size: int = 64
) -> Path:
    """mlx-lm's convert to `bits`-bit affine quantization at `group_size` (a good pair)."""
    return _convert(Path(src), Path(dest), quantize=True, q_bits=bits, q_group_size=group_size)


def quantize_embedding(
    src: str | Path, dest: str | Path, bits: int = 2, group_size: int = 64
) -> Path:
    """Only model.embed_tokens quantized, to `bits` bits, through mlx-lm's convert with a
    per-layer predicate: config.json records the embedding's own bits (as mlx-lm writes mixed
    quantizations) and every other layer stays in its dtype."""

    def predicate(path: str, module: Any, *_: Any) -> bool | dict[str, Any]:
        if path.endswith("embed_tokens"):
            return {"bits": bits, "group_size": group_size}
        return False

    return _convert(
        Path(src),
        Path(dest),
        quantize=True,
        q_bits=bits,
        q_group_size=group_size,
        quant_predicate=predicate,
    )


def write_adapter(
    src: str | Path,
    adapter: str | Path,
    *,
    rank: int = 8,
    scale: float = 20.0,
    std: float = 0.02,
    seed: int = 0,
    keys: tuple[str, ...] = ("self_attn.q_proj", "self_attn.v_proj"),
) -> Path:
    """A LoRA adapter for the model at `src`, in mlx-lm's layout (adapter_config.json and
    adapters.safetensors: lora_a [in, rank], lora_b [rank, out]) on `keys` of every layer, with
    random (not zero) lora_b so that fusing it changes the model. Not trained: its effect is
    what the tests need, not its quality."""
    import mlx.core as mx

    src, adapter = Path(src), Path(adapter)
    config = _config(src)
    hidden, layers = config["hidden_size"], config["num_hidden_layers"]
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or hidden // heads
    out_dims = {
        "self_attn.q_proj": heads * head_dim,
        "self_attn.k_proj": config.get("num_key_value_heads", heads) * head_dim,
        "self_attn.v_proj": config.get("num_key_value_heads", heads) * head_dim,
    }
    key = mx.random.key(seed)
    weights = {}
    for i in range(layers):
        for k in keys:
            key, ka, kb = mx.random.split(key, 3)
            bound = hidden**-0.5
            weights[f"model.layers.{i}.{k}.lora_a"] = mx.random.uniform(
                -bound, bound, (hidden, rank), key=ka
            )
            weights[f"model.layers.{i}.{k}.lora_b"] = std * mx.random.normal(
                (rank, out_dims[k]), key=kb
            )
    adapter.mkdir(parents=True, exist_ok=True)
    mx.save_safetensors(str(adapter / "adapters.safetensors"), weights)
    adapter_config = {
        "fine_tune_type": "lora",
        "num_layers": layers,
        "lora_parameters": {"rank": rank, "scale": scale, "dropout": 0.0, "keys": list(keys)},
    }
    (adapter / "adapter_config.json").write_text(json.dumps(adapter_config, indent=2) + "\n")
    return adapter


def fuse_adapter(
    src: str | Path, adapter: str | Path, dest: str | Path, *, scale: float | None = None
) -> Path:
    """The adapter fused into the base the way `mlx_lm.fuse` does it (load with adapter_path,
    each LoRA layer's fuse()). `scale` overrides the adapter's: scale=1.0 is "a LoRA fused
    without its scale" (W + B·A instead of W + scale·B·A)."""
    from mlx.utils import tree_unflatten
    from mlx_lm.utils import load, save_model

    src, adapter, dest = Path(src), Path(adapter), Path(dest)
    with tempfile.TemporaryDirectory(prefix="genai-adapter-") as tmp:
        if scale is not None:
            tmp_adapter = Path(tmp) / "adapter"
            shutil.copytree(adapter, tmp_adapter)
            config = json.loads((tmp_adapter / "adapter_config.json").read_text())
            config["lora_parameters"]["scale"] = scale
            (tmp_adapter / "adapter_config.json").write_text(json.dumps(config))
            adapter = tmp_adapter
        model, _ = load(str(src), adapter_path=str(adapter))
        fused = [(n, m.fuse()) for n, m in model.named_modules() if hasattr(m, "fuse")]
        model.update_modules(tree_unflatten(fused))
    dest.mkdir(parents=True, exist_ok=True)
    save_model(dest, model, donate_model=False)
    for item in sorted(src.iterdir()):
        if item.is_file() and not (dest / item.name).exists():
            shutil.copyfile(item, dest / item.name)
    return dest


# name -> (what it is, whether verify must pass it); build_pairs writes them
PAIRS = {
    "qk-permutation-reversed": ("q/k rotate-half permutation applied again", False),
    "norm-plus-one-layer0": ("RMSNorm weights + 1 in layer 0", False),
    "norm-plus-one-all": ("every RMSNorm weight + 1", False),
    "rope-theta-changed": ("rope_theta 500000 -> 10000 in config.json", False),
    "gate-up-swapped": ("gate_proj <-> up_proj in every layer", False),
    "embedding-2bit": ("embedding alone quantized to 2 bits (group 64)", False),
    "lm-head-zeroed": ("lm_head all zeros", False),
    "lm-head-tied-wrongly": ("untied model re-tied (lm_head dropped)", False),
    "lora-fused-without-scale": ("LoRA fused with scale 1 vs 20; reference: fused with 20", False),
    "lora-fuse-dropped": ("base vs base + LoRA fused (the fuse dropped the adapter)", False),
    "float32-cast": ("float16 weights cast to float32 (exact)", True),
    "bfloat16-cast": ("float16 weights rounded to bfloat16", True),
    "8bit-g64": ("mlx_lm.convert 8-bit, group 64", True),
    "4bit-g64": ("mlx_lm.convert 4-bit, group 64", True),
}


def build_pairs(
    src: str | Path, dest: str | Path, names: tuple[str, ...] | None = None
) -> dict[str, tuple[Path, Path]]:
    """Write the PAIRS (or `names` of them) for the untied tiny llama at `src` under `dest`:
    name -> (candidate, reference)."""
    src, dest = Path(src), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    wanted = names or tuple(PAIRS)
    makers: dict[str, Callable[[Path], Path]] = {
        "qk-permutation-reversed": lambda d: reverse_qk_permutation(src, d),
        "norm-plus-one-layer0": lambda d: norm_plus_one(src, d, layer=0),
        "norm-plus-one-all": lambda d: norm_plus_one(src, d, layer=None),
        "rope-theta-changed": lambda d: change_rope_theta(src, d),
        "gate-up-swapped": lambda d: swap_gate_up(src, d),
        "embedding-2bit": lambda d: quantize_embedding(src, d, bits=2),
        "lm-head-zeroed": lambda d: zero_lm_head(src, d),
        "lm-head-tied-wrongly": lambda d: tie_lm_head(src, d),
        "float32-cast": lambda d: cast(src, d, "float32"),
        "bfloat16-cast": lambda d: cast(src, d, "bfloat16"),
        "8bit-g64": lambda d: convert_quantized(src, d, bits=8, group_size=64),
        "4bit-g64": lambda d: convert_quantized(src, d, bits=4, group_size=64),
    }
    out: dict[str, tuple[Path, Path]] = {}
    for name in wanted:
        if name in makers:
            out[name] = (makers[name](dest / name), src)
    if {"lora-fused-without-scale", "lora-fuse-dropped"} & set(wanted):
        adapter = write_adapter(src, dest / "adapter")
        fused = fuse_adapter(src, adapter, dest / "lora-fused")
        if "lora-fused-without-scale" in wanted:
            unscaled = fuse_adapter(src, adapter, dest / "lora-fused-scale-1", scale=1.0)
            out["lora-fused-without-scale"] = (unscaled, fused)
        if "lora-fuse-dropped" in wanted:
            out["lora-fuse-dropped"] = (src, fused)
    return out
