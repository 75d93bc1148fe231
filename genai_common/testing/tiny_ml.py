"""A tiny MLX module (an MLP classifier) saved as config.json + model.safetensors, and its loader.

    build(dest, variant, seed)   writes the files
    load_tiny_ml(path) -> TinyMLP   rebuilds the module from config.json and loads the weights

The config names the architecture (`model_type: "tiny_mlp"`) and every dimension, so a loader
never guesses: input_dims -> hidden_dims (x num_layers, GELU) -> output_dims.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from genai_common.testing._files import random_weights, write_json

MODEL_TYPE = "tiny_mlp"
DEFAULT_CONFIG: dict[str, Any] = {
    "model_type": MODEL_TYPE,
    "input_dims": 32,
    "hidden_dims": 64,
    "output_dims": 10,
    "num_layers": 2,
}


def _shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    dims = [config["input_dims"]] + [config["hidden_dims"]] * config["num_layers"]
    dims.append(config["output_dims"])
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (d_in, d_out) in enumerate(itertools.pairwise(dims)):
        shapes[f"layers.{i}.weight"] = (d_out, d_in)
        shapes[f"layers.{i}.bias"] = (d_out,)
    return shapes


def build(dest: Path, variant: str, seed: int) -> Path:
    import mlx.core as mx

    config = dict(DEFAULT_CONFIG)
    weights = random_weights(_shapes(config), seed, std=0.1)
    # mx.save_safetensors keeps insertion order: insert sorted for stable bytes.
    arrays = {k: mx.array(weights[k]) for k in sorted(weights)}
    mx.save_safetensors(str(dest / "model.safetensors"), arrays, metadata={"format": "mlx"})
    write_json(dest / "config.json", config)
    return dest


def module_class() -> type:
    """The TinyMLP nn.Module class (built on call so that importing this module needs no mlx)."""
    import mlx.core as mx
    import mlx.nn as nn

    class TinyMLP(nn.Module):
        def __init__(self, input_dims: int, hidden_dims: int, output_dims: int, num_layers: int):
            super().__init__()
            dims = [input_dims] + [hidden_dims] * num_layers + [output_dims]
            self.layers = [nn.Linear(a, b) for a, b in itertools.pairwise(dims)]

        def __call__(self, x: mx.array) -> mx.array:
            for layer in self.layers[:-1]:
                x = nn.gelu(layer(x))
            return self.layers[-1](x)

    return TinyMLP


def load_tiny_ml(path: str | Path, *, strict: bool = True) -> Any:
    """The tiny MLP from `path` through the runtime's generic loader (``load_ml``: the class
    registered for the config's model_type, the config entries it takes, every weight);
    ValueError for another model_type. The module's ``config`` is its config.json."""
    from genai_common.runtime.loading import load_ml

    loaded = load_ml(path, strict=strict)  # an unregistered model_type raises before loading
    model_type = loaded.config.get("model_type")
    if model_type != MODEL_TYPE:
        raise ValueError(f"{path}: model_type {model_type!r} is not {MODEL_TYPE!r}")
    loaded.model.config = loaded.config
    return loaded.model
