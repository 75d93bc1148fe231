"""A tiny MLX module (an MLP classifier) saved as config.json + model.safetensors, and its loader.

    build(dest, variant, seed, *, trained=True)   writes the files
    load_tiny_ml(path) -> TinyMLP   rebuilds the module from config.json and loads the weights
    dataset(seed) -> (x, y)         the synthetic task it is trained on
    mean_loss(model, x, y)          its cross-entropy there

The task is deterministic and synthetic: 32-dimensional standard-normal inputs, labelled by the
argmax of a fixed random linear "teacher" (both drawn from the seed). The module is trained on it
for a fraction of a second with MLX (Adam, cross-entropy), so its loss there is far below the
random initialisation's (about ln 10) and a broken conversion of it shows.

The config names the architecture (`model_type: "tiny_mlp"`) and every dimension, so a loader
never guesses: input_dims -> hidden_dims (x num_layers, GELU) -> output_dims.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

from genai_common.testing import train
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


def dataset(seed: int, n: int | None = None) -> tuple[Any, Any]:
    """(x [n, input_dims] float32, y [n] int32): the synthetic classification task of `seed`."""
    from genai_common.testing._files import rng_for

    config = DEFAULT_CONFIG
    n = train.ML_RECIPE["examples"] if n is None else n
    x = rng_for(seed, "tiny_ml.inputs").standard_normal((n, config["input_dims"]))
    teacher = rng_for(seed, "tiny_ml.teacher").standard_normal(
        (config["input_dims"], config["output_dims"])
    )
    return x.astype("float32"), (x @ teacher).argmax(axis=1).astype("int32")


def mean_loss(model: Any, x: Any, y: Any) -> float:
    """Mean cross-entropy of `model` on (x, y) (numpy or mlx arrays)."""
    import mlx.core as mx
    import mlx.nn as nn

    logits = model(mx.array(x))
    return float(nn.losses.cross_entropy(logits, mx.array(y), reduction="mean").item())


def _train(model: Any, seed: int) -> None:
    """Adam on the task of `seed`, minibatches in an order drawn from the seed, on the CPU."""
    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim
    import numpy as np

    from genai_common.testing._files import rng_for

    x, y = dataset(seed)
    order = rng_for(seed, "tiny_ml.order")
    batch = train.ML_RECIPE["batch"]

    def loss_fn(m: Any, xb: Any, yb: Any) -> Any:
        return nn.losses.cross_entropy(m(xb), yb, reduction="mean")

    with mx.stream(mx.cpu):
        optimizer = optim.Adam(learning_rate=train.ML_RECIPE["lr"])
        step = nn.value_and_grad(model, loss_fn)
        picks = np.zeros(0, dtype=np.int64)
        for _ in range(train.ML_RECIPE["steps"]):
            if len(picks) < batch:
                picks = np.concatenate([picks, order.permutation(len(x))])
            idx, picks = picks[:batch], picks[batch:]
            _, grads = step(model, mx.array(x[idx]), mx.array(y[idx]))
            optimizer.update(model, grads)
            mx.eval(model.parameters(), optimizer.state)


def build(dest: Path, variant: str, seed: int, *, trained: bool = True) -> Path:
    import mlx.core as mx
    from mlx.utils import tree_flatten

    config = dict(DEFAULT_CONFIG)
    weights = random_weights(_shapes(config), seed, std=0.1)
    arrays = {k: mx.array(weights[k]) for k in weights}
    if trained:
        model = module_class()(**{k: v for k, v in config.items() if k != "model_type"})
        model.load_weights(list(arrays.items()))
        x, y = dataset(seed)
        before = mean_loss(model, x, y)
        started = time.perf_counter()
        _train(model, seed)
        train.RECORDS.append(
            {
                "first_loss": round(before, 4),
                "last_loss": round(mean_loss(model, x, y), 4),
                "seconds": round(time.perf_counter() - started, 3),
                "recipe": dict(train.ML_RECIPE),
            }
        )
        arrays = dict(tree_flatten(model.parameters()))
    # mx.save_safetensors keeps insertion order: insert sorted for stable bytes.
    arrays = {k: arrays[k] for k in sorted(arrays)}
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
