"""Port a PyTorch state_dict into an MLX module (issue 11 item 4).

Layout rules (mlx 0.32, torch 2.13):

- Linear, Embedding, LayerNorm/RMSNorm, biases: same shape, copied as they are.
- Conv1d/2d/3d: PyTorch (out, in, *k) -> MLX (out, *k, in): move axis 1 to the end.
- ConvTranspose1d/2d/3d: PyTorch (in, out, *k) -> MLX (out, *k, in).
- BatchNorm: running_mean/running_var kept (MLX names them the same); num_batches_tracked
  has no MLX counterpart and is dropped.
- Tied weights: a name missing from the state dict whose MLX module shares another's weight
  is reported (PRT002) with the tie to set in the fix.

`port_state_dict` returns the MLX weights and the findings (unmatched names, shape mismatches,
a convolution left in PyTorch layout), each with its fix. `compare_outputs` gives the max
absolute and relative error per output.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterator

from genai_common.findings import Finding, finding, rule, run_rule
from genai_common.model.layout import (  # noqa: F401  (the layout rules, re-exported)
    DROPPED_SUFFIXES,
    convert_state_dict,
    layer_kinds,
    to_mlx_layout,
    to_torch_layout,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# subject of the port rules: names -> shapes on both sides, MLX layer kind per parameter
PortPlan = namedtuple("PortPlan", "torch_shapes mlx_shapes kinds")


@rule(
    "PRT001",
    "A PyTorch tensor has no MLX parameter of that name",
    severity="error",
    fix="Rename the key (e.g. strip a 'module.' prefix, map 'gamma'/'beta' to weight/bias) or "
    "add the layer to the MLX module; keys are matched by their full dotted name.",
    compares="state_dict keys vs the MLX module's tree_flatten(parameters()) names",
)
def unmatched_torch(plan: PortPlan) -> Iterator[Finding]:
    for name in sorted(set(plan.torch_shapes) - set(plan.mlx_shapes)):
        if name.endswith(DROPPED_SUFFIXES):
            continue
        yield finding("PRT001", f"{name} {plan.torch_shapes[name]} has no MLX parameter")


@rule(
    "PRT002",
    "An MLX parameter gets no PyTorch tensor",
    severity="error",
    fix="Map it from the state dict; when the PyTorch model ties it to another weight (e.g. "
    "lm_head to the embedding), copy that tensor or tie the modules in MLX.",
    compares="the MLX module's parameter names vs state_dict keys",
)
def unmatched_mlx(plan: PortPlan) -> Iterator[Finding]:
    by_shape: dict[tuple, list[str]] = {}
    for name, shape in plan.torch_shapes.items():
        by_shape.setdefault(tuple(shape), []).append(name)
    for name in sorted(set(plan.mlx_shapes) - set(plan.torch_shapes)):
        same = [
            n for n in by_shape.get(tuple(plan.mlx_shapes[name]), []) if n not in plan.mlx_shapes
        ]
        tie = f"; a tied weight? candidates of that shape: {', '.join(same[:3])}" if same else ""
        yield finding(
            "PRT002", f"{name} {tuple(plan.mlx_shapes[name])} is not in the state dict{tie}"
        )


@rule(
    "PRT003",
    "A convolution weight is in PyTorch layout",
    severity="error",
    fix="Convert it: Conv weights np.moveaxis(w, 1, -1) (out,in,*k -> out,*k,in); "
    "ConvTranspose weights w.transpose(1, 2, ..., 0) (in,out,*k -> out,*k,in). "
    "port_state_dict does this from the MLX layer kinds.",
    compares="the given weight's shape vs the MLX layer's (out, *k, in) shape",
)
def conv_layout(plan: PortPlan) -> Iterator[Finding]:
    for name, shape in sorted(plan.torch_shapes.items()):
        kind = plan.kinds.get(name, "plain")
        want = plan.mlx_shapes.get(name)
        if kind == "plain" or want is None or tuple(shape) == tuple(want):
            continue
        import numpy as np

        if tuple(to_torch_layout(kind, np.empty(want, dtype=np.int8)).shape) == tuple(shape):
            yield finding(
                "PRT003", f"{name} {tuple(shape)} is PyTorch layout; MLX {kind} wants {tuple(want)}"
            )


@rule(
    "PRT004",
    "A tensor's shape differs from the MLX parameter's",
    severity="error",
    fix="Check the layer's sizes (in/out features, kernel, groups, vocabulary); a transposed "
    "Linear weight (in,out) must be w.T to be (out,in).",
    compares="converted tensor shape vs MLX parameter shape",
)
def shapes(plan: PortPlan) -> Iterator[Finding]:
    import numpy as np

    for name, shape in sorted(plan.torch_shapes.items()):
        want = plan.mlx_shapes.get(name)
        if want is None or tuple(shape) == tuple(want):
            continue
        kind = plan.kinds.get(name, "plain")
        if kind != "plain" and tuple(
            to_torch_layout(kind, np.empty(want, dtype=np.int8)).shape
        ) == tuple(shape):
            continue  # PRT003's
        hint = "; it is the transpose" if tuple(shape)[::-1] == tuple(want) else ""
        yield finding("PRT004", f"{name} {tuple(shape)} vs MLX {tuple(want)}{hint}")


PORT_RULES = (unmatched_torch, unmatched_mlx, conv_layout, shapes)


def check_port(weights: dict[str, Any], module: Any) -> list[Finding]:
    """Judge weights (already in what should be MLX layout) against an MLX module."""
    from mlx.utils import tree_flatten

    mlx_shapes = {n: tuple(p.shape) for n, p in tree_flatten(module.parameters())}
    plan = PortPlan(
        {n: tuple(w.shape) for n, w in weights.items()}, mlx_shapes, layer_kinds(module)
    )
    out: list[Finding] = []
    for func in PORT_RULES:
        out.extend(run_rule(func, plan))
    return out


def port_state_dict(
    state_dict: dict[str, Any], module: Any
) -> tuple[dict[str, Any], list[Finding]]:
    """Convert a PyTorch state_dict (tensors or numpy arrays) to MLX layout and judge it.

    Returns (weights as numpy arrays in MLX layout, findings). Load them with
    `module.load_weights([(k, mx.array(v)) for k, v in weights.items()])` when no error.
    """
    weights = convert_state_dict(state_dict, module)
    return weights, check_port(weights, module)


def load_ported(module: Any, weights: dict[str, Any]) -> Any:
    import mlx.core as mx

    module.load_weights([(k, mx.array(v)) for k, v in weights.items()])
    return module


def compare_outputs(
    candidate: dict[str, Any],
    reference: dict[str, Any],
    channels_last: tuple[str, ...] | frozenset[str] | set[str] = (),
) -> dict[str, dict[str, float]]:
    """Per output name: max_abs and max_rel error of candidate (MLX) against reference (PyTorch).

    Name in `channels_last` the MLX outputs in (N, *spatial, C) layout: they are moved to PyTorch's
    (N, C, *spatial) before comparing. Never guessed from shapes alone: when C equals the spatial
    sizes the shapes agree in both layouts (measured: an (2, 8, 8, 8) activation compared unmoved
    gives max_abs 1.7 on a correct port). An output whose shapes still differ gets inf.
    """
    import numpy as np

    metrics: dict[str, dict[str, float]] = {}
    for name, ref in reference.items():
        r = np.asarray(ref, dtype=np.float64)
        c = np.asarray(candidate[name], dtype=np.float64)
        if name in channels_last and c.ndim >= 3:
            c = np.moveaxis(c, -1, 1)
        if c.shape != r.shape:
            metrics[name] = {"max_abs": float("inf"), "max_rel": float("inf")}
            continue
        diff = np.abs(c - r)
        metrics[name] = {
            "max_abs": float(diff.max(initial=0.0)),
            "max_rel": float((diff / np.maximum(np.abs(r), 1e-6)).max(initial=0.0)),
        }
    return metrics
