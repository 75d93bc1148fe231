"""CMP: can the installed MLX loaders build this architecture, and does it ask to run its own code.

The supported model types are found WITHOUT importing mlx-lm or mlx-vlm (importing mlx-lm costs
seconds, and with torch installed about 10 s): `importlib.util.find_spec` gives the package folder
without running it, the architectures are the file names under `models/`, and MODEL_REMAPPING is
read from `utils.py` as source text (a dict literal of strings; ast.literal_eval for anything
else). Custom code is flagged, never executed. Neither ast nor importlib.util is imported on the
common path: each costs about a millisecond of the doctor's start-up.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from functools import cache

from genai_common.checks import finding, register
from genai_common.checks.config import run_each, tensors, text_tensors
from genai_common.report import Finding

TYPE_CHECKING = False
if TYPE_CHECKING:
    from genai_common.model_dir import ModelDir


# Files under mlx_lm/models that are helpers, not architectures.
_HELPERS = frozenset(
    {
        "__init__",
        "base",
        "cache",
        "rope_utils",
        "switch_layers",
        "activations",
        "pipeline",
        "ssm",
        "gated_delta",
        "bitlinear_layers",
        "mla",
        "attention",
    }
)

register(
    "CMP001",
    "config.json has no model_type",
    "warning",
    "Add model_type (copy it from the original model): loaders pick the architecture from it.",
    compares="config['model_type'] present and a string",
)
register(
    "CMP002",
    "Support could not be checked: neither mlx-lm nor mlx-vlm is installed",
    "info",
    "Install genai-common[llm] or [vlm] to check the model type against the loaders.",
    compares="importlib.util.find_spec('mlx_lm'), find_spec('mlx_vlm')",
)
register(
    "CMP010",
    "The installed MLX loaders do not support this model type",
    "error",
    "Upgrade mlx-lm / mlx-vlm (new architectures land often), or pick a model of a supported "
    "family; a load fails with 'Model type X not supported'.",
    compares="model_type (after MODEL_REMAPPING) vs mlx_lm/models/*.py and mlx_vlm/models/*/",
)
register(
    "CMP020",
    "A vision model would lose its vision tower in a text loader",
    "warning",
    "Load it with mlx-vlm (mlx_vlm.load) to use images; mlx-lm either drops the vision weights "
    "in sanitize or fails with 'Received parameters not in model: vision_tower...'.",
    compares="vision_config / vision tensors vs which loader supports the model type",
)
register(
    "CMP021",
    "Only mlx-vlm supports this model type",
    "info",
    "Load it with mlx_vlm.load, not mlx_lm.load.",
    compares="model_type in mlx-vlm's models but not mlx-lm's",
)
register(
    "CMP030",
    "The model asks to run its own Python code",
    "warning",
    "Read the named files before trusting them. transformers runs auto_map classes only with "
    "trust_remote_code; mlx-lm runs model_file only with trust_remote_code=True; mlx-vlm 0.7 "
    "imports model_file WITHOUT asking. genai never executes it.",
    compares="config auto_map, model_file, *.py files in the model directory",
)
register(
    "CMP040",
    "Unquantized half-precision experts cannot run on MLX's CPU backend",
    "warning",
    "MLX's CPU gather_mm, the routed experts' matmul, runs float32 only (mlx 0.32: "
    "'[GatherMM::eval] Currently only supports float32'): quantize the model (mlx_lm.convert -q, "
    "quantized experts use gather_qmm) or cast it to float32 to run it on this machine; Metal and "
    "CUDA run half-precision experts.",
    compares="dtype of the routed-expert weights (experts.N, switch_mlp) vs this machine's MLX "
    "backend (macOS: Metal; an mlx-cuda package: CUDA; else the CPU)",
)

HALF = frozenset({"F16", "BF16"})


def _mlx_backend_here() -> str | None:
    """The MLX backend this machine would use, without importing mlx (unless it already is):
    "metal" on macOS, "cuda" with an mlx-cuda package installed, "cpu" with mlx installed, else
    None."""
    mx = sys.modules.get("mlx.core")
    if mx is not None:
        try:
            if mx.metal.is_available():
                return "metal"
            return "cuda" if mx.cuda.is_available() else "cpu"
        except Exception:
            pass
    if sys.platform == "darwin":
        return "metal"
    from importlib import metadata

    names = {(d.metadata["Name"] or "").lower().replace("_", "-") for d in metadata.distributions()}
    if any(n.startswith("mlx-cuda") for n in names):
        return "cuda"
    return "cpu" if "mlx" in names else None


def _half_experts(md: ModelDir) -> Iterator[Finding]:
    experts = [
        t
        for n, t in text_tensors(md).items()
        if t.dtype in HALF and n.endswith(".weight") and (".experts." in n or ".switch_mlp." in n)
    ]
    if not experts or _mlx_backend_here() != "cpu":
        return
    dtypes = sorted({t.dtype for t in experts})
    yield finding(
        "CMP040",
        f"{len(experts)} routed-expert weights are {'/'.join(dtypes)} and MLX runs on the CPU "
        f"here (e.g. {experts[0].name})",
        file=experts[0].file,
    )


def find_spec(name: str):  # -> ModuleSpec | None
    """importlib.util.find_spec for a top-level name (the module if imported, else the import
    system's finders), without importing importlib.util and contextlib."""
    module = sys.modules.get(name)
    if module is not None:
        return getattr(module, "__spec__", None)
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is not None:
            spec = find(name, None)
            if spec is not None:
                return spec
    return None


def _package_dir(name: str) -> str | None:
    try:
        spec = find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.fspath(next(iter(spec.submodule_search_locations)))


_REMAP_RE = re.compile(r"^MODEL_REMAPPING\s*(?::[^=]*)?=\s*\{", re.MULTILINE)


_HEAD_CHARS = 16_384  # MODEL_REMAPPING sits near the top of utils.py (mlx-lm: line 48 of ~1300)


def _remap_literal(text: str) -> str | None:
    """The `{...}` of the first MODEL_REMAPPING assignment, up to its matching brace; None when
    there is none or it does not close within `text`."""
    found = _REMAP_RE.search(text)
    if found is None:
        return None
    depth = 0
    for i in range(found.end() - 1, len(text)):  # the dict literal: up to its matching brace
        char = text[i]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[found.end() - 1 : i + 1]
    return None


def _remapping(utils_py: str | os.PathLike[str]) -> dict[str, str]:
    """MODEL_REMAPPING's literal from the module's source text (never imported, never parsed whole;
    read whole only when the literal does not close within its first _HEAD_CHARS characters)."""
    try:
        with open(utils_py, encoding="utf-8") as fh:
            text = fh.read(_HEAD_CHARS)
            literal = _remap_literal(text)
            if literal is None and len(text) == _HEAD_CHARS:
                literal = _remap_literal(text + fh.read())
    except (OSError, UnicodeDecodeError):
        return {}
    if literal is None:
        return {}
    value = _string_dict(literal)
    if value is None:  # not a plain dict of strings: let Python's own parser read it
        import ast

        try:
            value = ast.literal_eval(literal)
        except (ValueError, SyntaxError):
            return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


_GAP = re.compile(r"(?:\s|#[^\n]*)*")  # whitespace and comments
# one `"key": "value"` entry, either quote, no escapes (then ast reads the literal instead)
_ENTRY = re.compile(
    r"""(?:"(?P<k1>[^"\\\n]*)"|'(?P<k2>[^'\\\n]*)')\s*:\s*"""
    r"""(?:"(?P<v1>[^"\\\n]*)"|'(?P<v2>[^'\\\n]*)')"""
)


def _string_dict(literal: str) -> dict[str, str] | None:
    """`{"a": "b", 'c': 'd',  # comment}` read exactly as ast.literal_eval reads it, or None when
    the literal holds anything else (escapes, numbers, nesting, expressions)."""
    if not literal.startswith("{"):
        return None
    out: dict[str, str] = {}
    pos = _GAP.match(literal, 1).end()
    while not literal.startswith("}", pos):
        m = _ENTRY.match(literal, pos)
        if m is None:
            return None
        key = m["k1"] if m["k1"] is not None else m["k2"]
        out[key] = m["v1"] if m["v1"] is not None else m["v2"]
        pos = _GAP.match(literal, m.end()).end()
        if literal.startswith(",", pos):
            pos = _GAP.match(literal, pos + 1).end()
        elif not literal.startswith("}", pos):
            return None
    return out if pos == len(literal) - 1 else None


@cache
def supported(package: str) -> tuple[frozenset[str], dict[str, str]] | None:
    """(architectures, remapping) of an installed mlx-lm / mlx-vlm, or None when not installed."""
    root = _package_dir(package)
    models = os.path.join(root, "models") if root is not None else ""
    if root is None or not os.path.isdir(models):
        return None
    # mlx-lm: one file per architecture; mlx-vlm: one package per architecture.
    names: set[str] = set()
    with os.scandir(models) as entries:
        for entry in entries:
            if entry.name.startswith(("_", ".")):
                continue
            if entry.name.endswith(".py"):
                names.add(entry.name[:-3])
            elif entry.is_dir():
                names.add(entry.name)
    names -= _HELPERS
    return frozenset(names), _remapping(os.path.join(root, "utils.py"))


def resolve(package: str, model_type: str) -> str | None:
    """The architecture module the loader would import for model_type, or None if it has none."""
    info = supported(package)
    if info is None:
        return None
    names, remap = info
    key = model_type.lower() if package == "mlx_vlm" else model_type
    target = remap.get(key, key)
    if package == "mlx_vlm":
        target = target.replace("-", "_")
    return target if target in names else None


def has_vision(md: ModelDir) -> bool:
    cfg = md.config or {}
    if any(k in cfg for k in ("vision_config", "vision_tower", "mm_vision_tower", "visual")):
        return True
    ts, text = tensors(md), text_tensors(md)
    if len(text) == len(ts):
        return False  # every tensor is a text tensor
    return any(n not in text and ("vision" in n or "visual" in n) for n in ts)


def _model_type(md: ModelDir) -> Iterator[Finding]:
    cfg = md.config
    if cfg is None:
        return
    mt = cfg.get("model_type")
    if not isinstance(mt, str) or not mt:
        yield finding(
            "CMP001",
            "config.json has no model_type" if mt is None else f"model_type = {mt!r}",
            file="config.json",
        )


def _support(md: ModelDir) -> Iterator[Finding]:
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


def _custom_code(md: ModelDir) -> Iterator[Finding]:
    cfg = md.config or {}
    auto_map = cfg.get("auto_map")
    model_file = cfg.get("model_file")
    py_files = [f for f in md.files if f.endswith(".py")]
    if model_file is not None:
        yield finding(
            "CMP030",
            f"model_file = {model_file!r}: mlx-vlm imports and runs it on load without asking",
            file="config.json",
        )
    if isinstance(auto_map, dict) and auto_map:
        targets = sorted({str(v[0] if isinstance(v, list) and v else v) for v in auto_map.values()})
        yield finding(
            "CMP030",
            f"auto_map names custom classes {targets[:3]}{' ...' if len(targets) > 3 else ''}",
            file="config.json",
            severity="info",
        )
    elif py_files and model_file is None:
        yield finding(
            "CMP030",
            f"Python files in the model directory: {py_files[:3]}",
            severity="info",
        )


SUBCHECKS = (_model_type, _support, _custom_code, _half_experts)


def check(md: ModelDir) -> Iterator[Finding]:
    yield from run_each(md, SUBCHECKS)
