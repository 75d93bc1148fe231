"""CMP: can the installed MLX loaders build this architecture, and does it ask to run its own code.

The supported model types come from genai_common/model/loaders.py, found without importing
mlx-lm or mlx-vlm. Custom code is flagged, never executed.
"""

from __future__ import annotations

from collections.abc import Iterator

from genai_common.findings import Finding, finding, rule
from genai_common.model.loaders import resolve, supported
from genai_common.runtime.machine import mlx_backend_here

TYPE_CHECKING = False
if TYPE_CHECKING:
    from genai_common.model import ModelDir


HALF = frozenset({"F16", "BF16"})


@rule(
    "CMP040",
    "Unquantized half-precision experts cannot run on MLX's CPU backend",
    severity="warning",
    fix="MLX's CPU gather_mm, the routed experts' matmul, runs float32 only (mlx 0.32: "
    "'[GatherMM::eval] Currently only supports float32'): quantize the model (mlx_lm.convert -q, "
    "quantized experts use gather_qmm) or cast it to float32 to run it on this machine; Metal and "
    "CUDA run half-precision experts.",
    compares="dtype of the routed-expert weights (experts.N, switch_mlp) vs this machine's MLX "
    "backend (macOS: Metal; an mlx-cuda package: CUDA; else the CPU)",
)
def half_experts(md: ModelDir) -> Iterator[Finding]:
    experts = [
        t
        for n, t in md.text.tensors.items()
        if t.dtype in HALF and n.endswith(".weight") and (".experts." in n or ".switch_mlp." in n)
    ]
    if not experts or mlx_backend_here() != "cpu":
        return
    dtypes = sorted({t.dtype for t in experts})
    yield finding(
        "CMP040",
        f"{len(experts)} routed-expert weights are {'/'.join(dtypes)} and MLX runs on the CPU "
        f"here (e.g. {experts[0].name})",
        file=experts[0].file,
    )


def has_vision(md: ModelDir) -> bool:
    cfg = md.config or {}
    if any(k in cfg for k in ("vision_config", "vision_tower", "mm_vision_tower", "visual")):
        return True
    ts, text = md.tensors, md.text.tensors
    if len(text) == len(ts):
        return False  # every tensor is a text tensor
    return any(n not in text and ("vision" in n or "visual" in n) for n in ts)


@rule(
    "CMP001",
    "config.json has no model_type, or one that is not a string",
    severity="error",
    fix="Add model_type as a string (copy it from the original model): mlx-lm and mlx-vlm pick "
    "the architecture from it and fail without it (mlx-lm 0.32: KeyError: 'model_type'; "
    "mlx-vlm 0.7: KeyError: 'model_type'); a list or number is no architecture name to any loader.",
    compares="config['model_type'] present and a non-empty string (a model_file custom "
    "architecture: a warning)",
)
def model_type(md: ModelDir) -> Iterator[Finding]:
    cfg = md.config
    if cfg is None:
        return
    mt = cfg.get("model_type")
    if isinstance(mt, str) and mt:
        return
    custom = isinstance(cfg.get("model_file"), str)  # the loader builds the model from that file
    if mt is None:
        nested = md.model_type  # a text_config's model_type is not what the loaders read
        yield finding(
            "CMP001",
            "config.json has no model_type"
            + (f" (only text_config has {nested!r}, which loaders do not read)" if nested else "")
            + (
                ""
                if custom
                else f": {md.loader or 'the loader'} fails with KeyError: 'model_type' before "
                "reading anything else"
            ),
            file="config.json",
            severity="warning" if custom else None,
        )
    else:
        yield finding(
            "CMP001",
            f"model_type = {mt!r} is a {type(mt).__name__}, not an architecture name: no loader "
            "can resolve it (mlx-lm, mlx-vlm and transformers look it up as a string)",
            file="config.json",
        )


@rule(
    "CMP002",
    "Support could not be checked: neither mlx-lm nor mlx-vlm is installed",
    severity="info",
    fix="Install genai-common[llm] or [vlm] to check the model type against the loaders.",
    compares="importlib.util.find_spec('mlx_lm'), find_spec('mlx_vlm')",
)
@rule(
    "CMP010",
    "The installed MLX loaders do not support this model type",
    severity="error",
    fix="Upgrade mlx-lm / mlx-vlm (new architectures land often), or pick a model of a supported "
    "family; a load fails with 'Model type X not supported'.",
    compares="model_type (after MODEL_REMAPPING) vs mlx_lm/models/*.py and mlx_vlm/models/*/",
)
@rule(
    "CMP020",
    "A vision model would lose its vision tower in a text loader",
    severity="warning",
    fix="Load it with mlx-vlm (mlx_vlm.load) to use images; mlx-lm either drops the vision weights "
    "in sanitize or fails with 'Received parameters not in model: vision_tower...'.",
    compares="vision_config / vision tensors vs which loader supports the model type",
)
@rule(
    "CMP021",
    "Only mlx-vlm supports this model type",
    severity="info",
    fix="Load it with mlx_vlm.load, not mlx_lm.load.",
    compares="model_type in mlx-vlm's models but not mlx-lm's",
)
def support(md: ModelDir) -> Iterator[Finding]:
    cfg = md.config or {}
    mt = cfg.get("model_type")
    if not isinstance(mt, str) or not mt:
        return
    lm, vlm = supported("mlx_lm"), supported("mlx_vlm")
    if lm is None and vlm is None:
        yield finding(
            "CMP002", f"model_type {mt!r} not checked: mlx-lm and mlx-vlm are not installed"
        )
        return
    in_lm = resolve("mlx_lm", mt) if lm else None
    in_vlm = resolve("mlx_vlm", mt) if vlm else None
    vision = has_vision(md)
    if in_lm is None and in_vlm is None:
        checked = " and ".join(
            f"{p} ({len(info[0])} architectures)"
            for p, info in (("mlx-lm", lm), ("mlx-vlm", vlm))
            if info
        )
        yield finding(
            "CMP010",
            f"model_type {mt!r} is supported by neither installed {checked}",
            file="config.json",
        )
        return
    if vision and in_vlm is None:
        yield finding(
            "CMP010",
            f"model_type {mt!r} has a vision tower but the installed mlx-vlm does not support it"
            + (f" (mlx-lm would load only the text part as {in_lm!r})" if in_lm else ""),
            file="config.json",
            severity="warning" if in_lm else None,
        )
    elif vision:
        yield finding(
            "CMP020",
            f"model_type {mt!r} has a vision tower: use mlx-vlm ({in_vlm!r})"
            + (f"; mlx-lm's {in_lm!r} keeps only the text model" if in_lm else ""),
            severity="info",
        )
    elif in_lm is None and in_vlm is not None:
        yield finding("CMP021", f"model_type {mt!r} is supported by mlx-vlm ({in_vlm!r}) only")


@rule(
    "CMP030",
    "The model asks to run its own Python code",
    severity="warning",
    fix="Read the named files before trusting them. mlx-vlm 0.7 imports config.json's model_file "
    "on load WITHOUT asking, and asks transformers for trust_remote_code on its own when it "
    "loads the image processor (auto_map); mlx-lm and diffusers run such code only with "
    "trust_remote_code. genai's --load, --infer, `genai diagnostics` and `genai bench` refuse "
    "this folder (SEC001) unless you pass --trust-remote-code for that run; the static checks "
    "never execute it.",
    compares="model_file in config.json; auto_map in any *config*.json (and in diffusers "
    "components); custom classes in model_index.json; *.py files in the model directory",
)
def custom_code(md: ModelDir) -> Iterator[Finding]:
    from genai_common.model import custom_code as scanner

    found = scanner.scan(md.root_str, md) if md.single_name is None else []
    for code in found[:8]:
        yield finding(
            "CMP030",
            scanner.message(code) + "; --load/--infer refuse it without --trust-remote-code",
            file=code.file,
        )
    if len(found) > 8:
        yield finding("CMP030", f"... and {len(found) - 8} more places that name code")
    if not found:
        py_files = [f for f in md.files if f.endswith(".py")]
        if py_files:
            shown = ", ".join(repr(f)[1:-1][:120] for f in py_files[:3])
            yield finding(
                "CMP030",
                f"Python files in the model directory ({shown}{' ...' if len(py_files) > 3 else ''})"
                ": no config names them, so no loader imports them",
                severity="info",
            )
