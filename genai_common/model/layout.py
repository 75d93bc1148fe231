"""Tensor layouts of PyTorch and MLX layers (issue 11 item 4): the rules a port applies.

- Linear, Embedding, LayerNorm/RMSNorm, biases: same shape, copied as they are.
- Conv1d/2d/3d: PyTorch (out, in, *k) -> MLX (out, *k, in): move axis 1 to the end.
- ConvTranspose1d/2d/3d: PyTorch (in, out, *k) -> MLX (out, *k, in).
- BatchNorm: running_mean/running_var kept; num_batches_tracked has no MLX counterpart.

The model layer holds them so that both `genai port` (workflows/port.py, with its PRT findings)
and `genai verify` for kind ml (verify/ml.py) convert a state dict the same way.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DROPPED_SUFFIXES = ("num_batches_tracked",)


def layer_kinds(module: Any) -> dict[str, str]:
    """MLX parameter name -> 'conv', 'conv_transpose' or 'plain' from the MLX module's layers."""
    import mlx.nn as nn
    from mlx.utils import tree_flatten

    kinds: dict[str, str] = {}
    conv = tuple(getattr(nn, n) for n in ("Conv1d", "Conv2d", "Conv3d") if hasattr(nn, n))
    convt = tuple(
        getattr(nn, n)
        for n in ("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")
        if hasattr(nn, n)
    )
    for name, sub in module.named_modules():
        kind = (
            "conv_transpose"
            if convt and isinstance(sub, convt)
            else "conv"
            if isinstance(sub, conv)
            else None
        )
        if kind:
            prefix = f"{name}." if name else ""
            kinds[f"{prefix}weight"] = kind
    for name, _ in tree_flatten(module.parameters()):
        kinds.setdefault(name, "plain")
    return kinds


def to_mlx_layout(kind: str, array: Any) -> Any:
    """One PyTorch weight (numpy) in MLX layout for its layer kind."""
    import numpy as np

    if kind == "conv" and array.ndim >= 3:
        return np.moveaxis(array, 1, -1)
    if kind == "conv_transpose" and array.ndim >= 3:
        return np.transpose(array, (1, *range(2, array.ndim), 0))
    return array


def to_torch_layout(kind: str, array: Any) -> Any:
    """The inverse of `to_mlx_layout` (MLX -> PyTorch), for exporting and tests."""
    import numpy as np

    if kind == "conv" and array.ndim >= 3:
        return np.moveaxis(array, -1, 1)
    if kind == "conv_transpose" and array.ndim >= 3:
        return np.transpose(array, (array.ndim - 1, 0, *range(1, array.ndim - 1)))
    return array


def convert_state_dict(state_dict: dict[str, Any], module: Any) -> dict[str, Any]:
    """A PyTorch state_dict (tensors or numpy arrays) as numpy arrays in MLX layout for the
    layers of `module`; PyTorch-only buffers dropped. Names and shapes are not judged here."""
    import numpy as np

    kinds = layer_kinds(module)
    weights: dict[str, Any] = {}
    for name, value in state_dict.items():
        if name.endswith(DROPPED_SUFFIXES):
            continue
        array = (
            value.detach().cpu().float().numpy() if hasattr(value, "detach") else np.asarray(value)
        )
        weights[name] = to_mlx_layout(kinds.get(name, "plain"), array)
    return weights
