"""`genai verify MLX_DIR --against TORCH_STATE_DICT_OR_DIR` for kind ml (issue 10 part 6): an MLX
module against its PyTorch original on the same inputs, through the converted state dict.

    verify_ml(candidate, reference, torch_module=None) -> (findings, metrics)

The candidate is an MLX model folder (config.json + safetensors) loaded by runtime.loading.load_ml
(the project's `[tool.genai] module`). The reference is the PyTorch state dict: a file (.pt, .pth,
.bin via torch.load(weights_only=True), or .safetensors), or a folder holding one (and its
config.json); the PyTorch class is `torch_module` ("pkg.mod:Class"), else `[tool.genai]
torch_module`, built from the same config (from_config or the constructor's keys).

Both run one seeded batch (batch 2) of the input shape (config input_shape or the module's
input_shape: MLX channels-last; PyTorch gets it channels-first when the module has convolutions
and the input 3 or more axes, as it is otherwise, e.g. a (B, T, D) sequence; config.json
`torch_channels_first` overrides).
Every leaf layer's output is recorded on both sides (forward hooks in PyTorch; the layer classes'
__call__ wrapped in MLX, restored after) and compared by layer name: max |diff| and max |diff|
relative to the reference's largest value. An MLX (N, *spatial, C) output is moved to (N, C,
*spatial) when that is what makes the shapes agree; when both layouts agree (C equals the spatial
sizes) the smaller error is taken. The first layer, in PyTorch's call order, whose relative error
passes the threshold is named. The candidate's weights are compared with the state dict ported by
model.layout (the port's layout rules): a convolution weight equal to the PyTorch tensor itself (or that
tensor reshaped) is the classic unconverted NCHW -> NHWC bug (QLT201).

Thresholds (relative to the reference's max |value| per output), calibrated on the tests' CNN
(conv, BatchNorm, conv-transpose, linear; float32, CPU, seeds 0-2, mlx 0.32.4, torch 2.13): a
correct port measures 1.3e-7 to 1.4e-7; float16 weights 3.8e-4 to 6.0e-4; the unconverted conv
1.1 to 1.3 at that layer. Pass up to 1e-4, warn to 1e-2, fail above.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genai_common.findings import Finding, declared, finding, rule, stamp

WARN_REL = 1e-4
FAIL_REL = 1e-2
BATCH = 2
STATE_DICT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


def _f(code: str, message: str) -> Finding:
    return stamp(finding(code, message), declared(verify_ml))


def state_dict_file(reference: str | Path) -> Path:
    path = Path(reference)
    if path.is_file():
        return path
    if path.is_dir():
        for suffix in STATE_DICT_SUFFIXES:
            found = sorted(path.glob(f"*{suffix}"))
            if found:
                return found[0]
    raise ValueError(
        f"genai verify: {reference}: no PyTorch state dict ({', '.join(STATE_DICT_SUFFIXES)})"
    )


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """name -> numpy array, from torch.load(weights_only=True) or a safetensors file."""
    import numpy as np

    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        return dict(load_file(str(path)))
    import torch

    data = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(data, dict) and "state_dict" in data and isinstance(data["state_dict"], dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise ValueError(f"genai verify: {path} holds a {type(data).__name__}, not a state dict")
    return {k: v.detach().cpu().float().numpy() if hasattr(v, "detach") else np.asarray(v)
            for k, v in data.items()}  # fmt: skip


def _torch_class(torch_module: str | None, candidate: str) -> Any:
    """The PyTorch class: `torch_module`, else [tool.genai] torch_module of the current folder's
    project (runtime.loading.project_module: never another project's code)."""
    from genai_common.runtime.loading import import_module_class, project_module

    named = project_module(candidate, key="torch_module")
    if torch_module is None and named is None:
        raise ValueError(
            "genai verify: which PyTorch class is the reference? set [tool.genai] torch_module = "
            '"pkg.mod:Class" in pyproject.toml'
        )
    root = named[1] if named else None
    return import_module_class(torch_module or named[0], root)


def _mlx_layer_outputs(model: Any, x: Any) -> tuple[Any, dict[str, Any]]:
    """(final output, leaf layer name -> output) of one MLX forward pass."""
    import mlx.core as mx

    names = {id(m): n for n, m in model.named_modules() if n and not m.children()}
    seen: dict[str, Any] = {}
    classes = {type(m) for n, m in model.named_modules() if id(m) in names}
    originals = {cls: cls.__call__ for cls in classes}

    def wrap(cls: type) -> Any:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            out = originals[cls](self, *args, **kwargs)
            name = names.get(id(self))
            if name is not None and isinstance(out, mx.array):
                seen[name] = out
            return out

        return call

    try:
        for cls in classes:
            cls.__call__ = wrap(cls)  # type: ignore[method-assign]
        out = model(x)
        mx.eval(out, list(seen.values()))
    finally:
        for cls, original in originals.items():
            cls.__call__ = original  # type: ignore[method-assign]
    return out, seen


def _torch_layer_outputs(model: Any, x: Any) -> tuple[Any, dict[str, Any], list[str]]:
    import torch

    seen: dict[str, Any] = {}
    order: list[str] = []
    hooks = []
    for name, module in model.named_modules():
        if not name or any(True for _ in module.children()):
            continue

        def hook(_m: Any, _i: Any, out: Any, name: str = name) -> None:
            if isinstance(out, torch.Tensor):
                seen[name] = out.detach().float().numpy()
                order.append(name)

        hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in hooks:
            h.remove()
    return out, seen, order


def _leaves(out: Any) -> dict[str, Any]:
    """A module's output as name -> array ('output' for a single array)."""
    if isinstance(out, dict):
        return {f"output.{k}": v for k, v in out.items()}
    if isinstance(out, (list, tuple)):
        return {f"output.{i}": v for i, v in enumerate(out)}
    return {"output": out}


def compare(candidate: Any, reference: Any) -> dict[str, Any]:
    """max_abs and rel (max_abs / max |reference|) of an MLX output against PyTorch's, moving
    the MLX channels axis where that is what makes the shapes agree (both tried when both do)."""
    import numpy as np

    c = np.asarray(candidate, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    tries = []
    if c.shape == r.shape:
        tries.append(("as is", c))
    if c.ndim >= 3 and np.moveaxis(c, -1, 1).shape == r.shape:
        tries.append(("channels-last moved", np.moveaxis(c, -1, 1)))
    if not tries:
        return {"max_abs": float("inf"), "rel": float("inf"), "layout": f"{c.shape} vs {r.shape}"}
    scale = max(float(np.abs(r).max(initial=0.0)), 1e-12)
    best = min(
        ({"max_abs": float(np.abs(a - r).max(initial=0.0)), "layout": how} for how, a in tries),
        key=lambda m: m["max_abs"],
    )
    best["rel"] = best["max_abs"] / scale
    return best


def _weight_findings(candidate_model: Any, state: dict[str, Any]) -> list[Finding]:
    """QLT201 / QLT202 from the candidate's weights against the state dict converted by the
    layout rules (model/layout.py; names and shapes were judged by load_ml's strict load)."""
    import mlx.core as mx
    import numpy as np
    from mlx.utils import tree_flatten

    from genai_common.model.layout import convert_state_dict, layer_kinds

    ported = convert_state_dict(state, candidate_model)
    kinds = layer_kinds(candidate_model)
    out: list[Finding] = []
    for name, value in tree_flatten(candidate_model.parameters()):
        want = ported.get(name)
        if want is None or tuple(want.shape) != tuple(value.shape):
            continue
        have = np.array(value.astype(mx.float32))
        diff = float(np.abs(have - want).max(initial=0.0))
        scale = max(float(np.abs(want).max(initial=0.0)), 1e-12)
        if diff / scale <= WARN_REL:
            continue
        raw = state[name]
        if (
            kinds.get(name, "plain") != "plain"
            and raw.size == have.size
            and (np.allclose(have.reshape(-1), raw.reshape(-1), rtol=1e-3, atol=1e-6 * scale))
        ):
            how = "as is" if tuple(raw.shape) == tuple(have.shape) else "reshaped"
            out.append(
                _f(
                    "QLT201",
                    f"{name} {tuple(have.shape)} holds the PyTorch (out, in, *k) tensor {how}: "
                    "the conv weight was not converted from NCHW to MLX's NHWC "
                    "(out, *k, in) layout",
                )
            )
        elif diff / scale > FAIL_REL:
            out.append(
                _f(
                    "QLT202",
                    f"{name}: max |diff| {diff:.3g} from the ported tensor "
                    f"(relative {diff / scale:.3g})",
                )
            )
    return out


@rule(
    "QLT200",
    "ml: the MLX module's outputs differ from the PyTorch original's",
    severity="error",
    fix="Read the first layer named: its weights (QLT201/QLT202, PRT findings) or its code differ "
    "from PyTorch's (an activation, an epsilon, padding, a channels-last reshape or flatten). "
    "Port the state dict with `genai port` / workflows.port.port_state_dict.",
    compares=f"max |MLX - PyTorch| / max |PyTorch| per layer output and final output > {FAIL_REL}",
)
@rule(
    "QLT201",
    "ml: a convolution weight was left in PyTorch's NCHW layout",
    severity="error",
    fix="The conv weight holds PyTorch's (out, in, *k) values where MLX reads channels-last "
    "(out, *k, in): convert with np.moveaxis(w, 1, -1) (ConvTranspose: w.transpose(1, 2, ..., "
    "0)); workflows.port.port_state_dict does it from the MLX layer kinds.",
    compares="the candidate's conv weights vs the PyTorch tensor as it is, or reshaped",
)
@rule(
    "QLT202",
    "ml: a weight differs from the converted PyTorch state dict",
    severity="error",
    fix="The candidate's weight is not the ported PyTorch tensor: re-run the port, or check that "
    "the state dict is the one the candidate was made from (a different checkpoint or seed).",
    compares="each candidate weight vs port_state_dict(reference) at the same name, max |diff|",
)
@rule(
    "QLT203",
    "ml: the outputs differ at reduced-precision level",
    severity="warning",
    fix="Expected for float16/bfloat16 weights or a different reduction order; float32 ports of "
    "the same weights agree to about 1e-6. Cast to float32 to confirm.",
    compares=f"max relative error between {WARN_REL} and {FAIL_REL}",
)
@rule(
    "QLT204",
    "ml: the MLX module's outputs match the PyTorch original",
    severity="info",
    fix="Nothing to fix.",
    compares=f"max relative error per layer <= {WARN_REL}",
)
def verify_ml(
    candidate: str,
    reference: str,
    *,
    torch_module: str | None = None,
    seed: int = 0,
    **_dtypes: Any,
) -> tuple[list[Finding], dict[str, Any]]:
    """Compare the MLX module of `candidate` with the PyTorch original of `reference` (the
    candidate_dtype / reference_dtype options of the other kinds do not apply: ignored)."""
    import json

    import mlx.core as mx
    import numpy as np

    try:
        import torch
    except ImportError:
        raise ValueError(
            "genai verify: the ml reference runs in PyTorch: install torch (genai-common[port])"
        ) from None

    from genai_common.runtime.inference import ml_input_shape
    from genai_common.runtime.loading import ModuleLoadError, build_module, load_ml

    try:
        loaded = load_ml(candidate)
    except ModuleLoadError as exc:  # a conv left in PyTorch layout whose shape differs: say so
        import re

        text = " ".join(t for c, t in exc.problems if c == "LOAD056")
        names = re.findall(r"([\w.]+) \([\d, ]+\) vs module \([\d, ]+\); PyTorch Conv", text)
        if not names:
            raise
        why = (
            f"{', '.join(names)} in PyTorch's NCHW layout: the conv weights were not converted to "
            "MLX's (out, *k, in), and the candidate does not load"
        )
        return [_f("QLT201", why)], {"first_bad_layer": names[0].rsplit(".", 1)[0], "load": text}
    config = loaded.config or {}
    ref_config = Path(reference) / "config.json"
    if Path(reference).is_dir() and ref_config.is_file():
        config = json.loads(ref_config.read_text()) or config
    state = read_state_dict(state_dict_file(reference))
    torch_model = build_module(_torch_class(torch_module, candidate), config)
    missing, unexpected = torch_model.load_state_dict(
        {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, strict=False
    )
    if missing or unexpected:
        raise ValueError(
            f"genai verify: the state dict does not fit the PyTorch class: missing "
            f"{list(missing)[:4]}, unexpected {list(unexpected)[:4]}"
        )
    torch_model.eval()
    shape = ml_input_shape(config, loaded.model)
    if shape is None:
        raise ValueError(
            "genai verify: no input shape: give config.json input_shape (without the batch axis)"
        )
    x = np.random.default_rng(seed).standard_normal((BATCH, *shape)).astype(np.float32)
    from genai_common.model.layout import layer_kinds

    # PyTorch reads images channels-first: move the input's channels when the module convolves
    # (config torch_channels_first overrides); a sequence (B, T, D) goes as it is
    convolves = any(k != "plain" for k in layer_kinds(loaded.model).values())
    first = config.get("torch_channels_first", convolves and x.ndim >= 3)
    xt = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1) if first else x))
    found = _weight_findings(loaded.model, state)
    mlx_out, mlx_layers = _mlx_layer_outputs(loaded.model, mx.array(x))
    torch_out, torch_layers, order = _torch_layer_outputs(torch_model, xt)
    layers = {}
    for name in order:
        if name in mlx_layers and name not in layers:
            layers[name] = compare(np.array(mlx_layers[name]), torch_layers[name])
    mlx_final, torch_final = _leaves(mlx_out), _leaves(torch_out)
    outputs = {
        k: compare(np.array(v), torch_final[k].detach().float().numpy())
        for k, v in mlx_final.items()
        if k in torch_final
    }
    first_bad = next((n for n, m in layers.items() if m["rel"] > FAIL_REL), None)
    worst = max([m["rel"] for m in (*layers.values(), *outputs.values())] or [0.0])
    metrics: dict[str, Any] = {
        "input_shape": [BATCH, *shape],
        "layers_compared": len(layers),
        "max_rel": worst,
        "output_max_abs": max([m["max_abs"] for m in outputs.values()] or [0.0]),
        "output_max_rel": max([m["rel"] for m in outputs.values()] or [0.0]),
        "per_layer": {
            n: {k: m[k] for k in ("max_abs", "rel", "layout")} for n, m in layers.items()
        },
        "first_bad_layer": first_bad,
    }
    conv = [f for f in found if f.code == "QLT201"]
    if worst > FAIL_REL:
        where = f"first at layer {first_bad!r}" if first_bad else "at the final output"
        m = layers.get(first_bad) if first_bad else next(iter(outputs.values()), None)
        because = (
            f"; {conv[0].message.split(' ')[0]} is a conv weight left in PyTorch NCHW layout"
            if conv
            else ""
        )
        numbers = f" (max |diff| {m['max_abs']:.3g}, relative {m['rel']:.3g})" if m else ""
        found.append(_f("QLT200", f"outputs differ {where}{numbers}{because}"))
    elif worst > WARN_REL:
        found.append(_f("QLT203", f"max relative error {worst:.3g} over {len(layers)} layers"))
    if not any(f.severity in ("error", "warning") for f in found):
        found.append(
            _f(
                "QLT204",
                f"{len(layers)} layer outputs and the final output agree: max relative "
                f"error {worst:.3g}",
            )
        )
    return found, metrics
