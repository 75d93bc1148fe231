"""LOAD: the load test and the quick inference test, run in a child process (--load, --infer).

The loaders' strict weight loading ends in one of three canonical messages from mlx's
``nn.Module.load_weights`` (python/mlx/nn/layers/base.py): "Received parameters not in model",
"Missing parameters" (newer: "Missing N parameters") and "Expected shape ... but received shape".
Each names tensors, not the cause; the cause is usually a static finding already in the report
(a stale index, a layer count, a tied head, a quantized shape). So a load error is reported with
the static findings that explain it.

Not a static family: the static pass never runs it; `genai doctor --load/--infer` calls
runtime_findings after the static report.
"""

from __future__ import annotations

import re

from genai_common.findings import Finding, Report, declared, finding, rule, stamp

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from genai_common.model import ModelDir


# static findings that make a load pointless (and dangerous for the machine)
TOO_BIG = ("MEM010", "MEM012")
MAX_PER_CODE = 8

# canonical message -> (code, static code prefixes that can explain it)
CANONICAL: list[tuple[re.Pattern[str], str, tuple[str, ...]]] = [
    (
        re.compile(r"Received (?:\d+ )?parameters not in model"),
        "LOAD010",
        (
            "CFG040",
            "CFG020",
            "CFG080",
            "QNT023",
            "QNT030",
            "QNT031",
            "FILE009",
            "FILE005",
            "VLM010",
            "CMP020",
        ),
    ),
    (
        re.compile(r"Missing (?:\d+ )?parameters"),
        "LOAD011",
        (
            "FILE004",
            "FILE006",
            "FILE003",
            "FILE008",
            "CFG041",
            "CFG020",
            "CFG080",
            "QNT024",
            "VLM010",
            "VLM011",
        ),
    ),
    (
        re.compile(r"Expected shape"),
        "LOAD012",
        (
            "CFG010",
            "CFG011",
            "CFG012",
            "CFG030",
            "QNT020",
            "QNT021",
            "QNT032",
            "VLM020",
            "VLM021",
            "VLM030",
            "VLM031",
        ),
    ),
    (re.compile(r"Model type .* not supported"), "LOAD013", ("CMP010", "CMP021", "CMP001")),
    (re.compile(r"No safetensors found"), "LOAD014", ("FILE002", "FILE003", "FILE010")),
    # inference-time: a prompt longer than the position table (transformers' CLIP, diffusers)
    (re.compile(r"max_position_embeddings"), "LOAD020", ("DIF050", "CFG060", "CFG061")),
]


def classify(message: str, report: Report) -> tuple[str, list[str]]:
    """(load code, the static findings' codes that explain the message)."""
    for pattern, code, explains in CANONICAL:
        if pattern.search(message):
            codes = [
                f.code
                for f in report.findings
                if f.severity != "info" and any(f.code.startswith(p) for p in explains)
            ]
            return code, sorted(set(codes), key=codes.index)
    return "LOAD001", []


def _short(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- child-process targets (top-level, importable by name) ------------------------------------


class InferenceFailed(RuntimeError):
    """The model loaded, then the quick inference raised (its message is the original's)."""


def infer_target(kind: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """Load, then run the quick inference; returns a plain dict (runs in the child).

    A generic MLX module whose config names no input width is loaded only (output None). An
    error of the inference step comes back as InferenceFailed, so that the parent tells a model
    that would not load (LOAD0xx) from one that loaded and would not run (LOAD020).
    """
    from genai_common.runtime.inference import NONFINITE, ml_input_shape, quick_inference
    from genai_common.runtime.loading import LOADERS

    loaded = LOADERS[kind](path, **kwargs)
    out: dict[str, Any] = {"load": loaded.record.to_json(), "output": None}
    if kind != "ml" or ml_input_shape(loaded.config, loaded.model) is not None:
        try:
            out["output"], out["summary"] = quick_inference(kind, loaded)
        except Exception as exc:
            raise InferenceFailed(f"{type(exc).__name__}: {exc}") from exc
        out["nonfinite"] = kind == "ml" and NONFINITE in out["summary"]
    return out


@rule(
    "LOAD001",
    "The load test failed",
    severity="error",
    fix="Read the loader's message; fix the static findings first, they usually explain it.",
    compares="the loader's load() in a child process",
)
@rule(
    "LOAD002",
    "The load or inference process crashed",
    severity="error",
    fix="A signal ended the child (an out-of-memory abort, the OOM killer, a native crash): check "
    "the memory findings (MEM) and free memory, or try a smaller quantization.",
    compares="exit signal and memory of the child process",
)
@rule(
    "LOAD003",
    "The load or inference test timed out",
    severity="error",
    fix="Raise --timeout for large models, or check that the weights are on a fast local disk.",
    compares="child run time vs --timeout",
)
@rule(
    "LOAD010",
    "Load failed: the weights hold parameters the model does not have",
    severity="error",
    fix="Extra tensors: a tied model that stores lm_head, more layers than the config says, "
    "quantized tensors without a quantization block, or a stray file merged in.",
    compares="mlx load_weights 'Received parameters not in model'",
)
@rule(
    "LOAD011",
    "Load failed: parameters the model needs are missing from the weights",
    severity="error",
    fix="Missing tensors: a shard not downloaded, a stale index, fewer layers than the config, an "
    "untied model without lm_head, a vision tower the text loader kept.",
    compares="mlx load_weights 'Missing parameters'",
)
@rule(
    "LOAD012",
    "Load failed: a tensor's shape differs from the model's parameter",
    severity="error",
    fix="A config value (vocab_size, hidden_size, heads, head_dim, intermediate_size) or a "
    "quantization setting disagrees with the stored shapes.",
    compares="mlx load_weights 'Expected shape ... but received shape'",
)
@rule(
    "LOAD013",
    "Load failed: the loader does not know this model type",
    severity="error",
    fix="Upgrade mlx-lm / mlx-vlm, or use the loader that supports it (see CMP findings).",
    compares="'Model type X not supported'",
)
@rule(
    "LOAD014",
    "Load failed: the loader found no weights",
    severity="error",
    fix="Name the weights as the loader expects (see FILE002/FILE003).",
    compares="'No safetensors found'",
)
@rule(
    "LOAD020",
    "The quick inference test failed",
    severity="error",
    fix="The model loaded but could not run a few steps: read the message (often a config value "
    "that only matters at run time, such as rope scaling or the chat template).",
    compares="a few generated tokens (llm), a 64x64 image prompt (vlm), 2 steps at 64x64 (diffusion)",
)
@rule(
    "LOAD021",
    "The quick inference test produced nothing",
    severity="warning",
    fix="Generation stopped at once: check eos/pad token ids and the chat template (TOK findings).",
    compares="generated text is non-empty",
)
@rule(
    "LOAD030",
    "Load test passed",
    severity="info",
    fix="Nothing to fix.",
    compares="the loader's load() in a child process: seconds and peak memory",
)
@rule(
    "LOAD031",
    "Quick inference test passed",
    severity="info",
    fix="Nothing to fix.",
    compares="a few tokens / steps generated in a child process",
)
@rule(
    "LOAD040",
    "No load test for this kind of model",
    severity="info",
    fix="Load tests run for llm, vlm, diffusion and ml directories.",
    compares="model kind",
)
@rule(
    "LOAD041",
    "Load test skipped: the weights do not fit in memory",
    severity="warning",
    fix="The memory findings (MEM010/MEM012) say the weights exceed this machine's memory: a load "
    "would swap or be killed. Run it on a larger machine, or use a quantized variant.",
    compares="static memory findings before starting the child",
)
@rule(
    "SEC001",
    "The model folder names code a loader would run: not loaded",
    severity="error",
    fix="Read the named files (and the configs that name them). Only if you trust them, run "
    "again with --trust-remote-code: that run lets the loader execute them. Without the flag "
    "--load, --infer, `genai diagnostics` and `genai bench` never start a loader on this folder.",
    compares="config.json model_file; auto_map in any *config*.json (also of diffusers "
    "components); custom classes in model_index.json",
)
@rule(
    "SEC002",
    "A file of the model folder is a FIFO, device or socket: not loaded",
    severity="error",
    fix="A loader would block on a FIFO or read a device without end (FILE014 names it): "
    "replace it with the real file, then run --load again.",
    compares="every listed file is a regular file before a loader starts",
)
@rule(
    "LOAD050",
    "ml: [tool.genai] module is not of the form package.module:ClassName",
    severity="error",
    fix='Write it as module = "mypkg.model:MyNet" in pyproject.toml\'s [tool.genai]: the dotted '
    "import path of the module, a colon, the class name.",
    compares="[tool.genai] module (or model_class=) against 'dotted.module:Class'",
)
@rule(
    "LOAD051",
    "ml: the module named by [tool.genai] module does not import",
    severity="error",
    fix="Run `python -c 'import PKG.MOD'` in the project's environment and fix the error shown "
    "(a missing dependency in pyproject.toml, a typo, a syntax error); the project's src/ is on "
    "the path.",
    compares="importlib.import_module of the module path, the exception's first line",
)
@rule(
    "LOAD052",
    "ml: the module has no class of that name",
    severity="error",
    fix="Name a class the module defines (the finding lists them), or add it.",
    compares="getattr(module, ClassName)",
)
@rule(
    "LOAD053",
    "ml: the module's constructor rejects the model's config.json",
    severity="error",
    fix="Give config.json the constructor's required arguments (named in the message), give "
    "them defaults, or add a `from_config(cls, config)` classmethod that builds the module.",
    compares="the constructor's required parameters vs the config.json keys; the call itself",
)
@rule(
    "LOAD054",
    "ml: parameters of the module are missing from the weights",
    severity="error",
    fix="The weights lack tensors the module defines: a layer added to the code after the "
    "weights were saved, a renamed attribute, or a different config (layer count, sizes). "
    "Re-save the weights from this module, or rename the keys.",
    compares="tree_flatten(module.parameters()) names vs the safetensors keys",
)
@rule(
    "LOAD055",
    "ml: the weights hold tensors the module does not have",
    severity="error",
    fix="Extra tensors: a PyTorch-only buffer (num_batches_tracked), a prefix such as 'module.' "
    "or 'model.', or a layer the module no longer has. Port PyTorch weights with "
    "`genai port` / workflows/port.py, or rename the keys.",
    compares="the safetensors keys vs tree_flatten(module.parameters()) names",
)
@rule(
    "LOAD056",
    "ml: a tensor's shape differs from the module's parameter",
    severity="error",
    fix="A convolution saved in PyTorch layout (the message says so) must be moved to MLX's "
    "(out, *kernel, in); otherwise the config's sizes differ from the weights' (channels, "
    "hidden size, kernel): fix config.json or the module.",
    compares="each weight's shape vs the module's parameter of the same name",
)
@rule(
    "LOAD057",
    "ml: no MLX module is known for this model",
    severity="error",
    fix='Name your module in pyproject.toml: [tool.genai] module = "mypkg.model:MyNet" (its '
    "constructor receives the config.json keys it accepts, or from_config(config)). A module "
    "named by another project is imported only from inside that project, or with "
    "--trust-remote-code.",
    compares="[tool.genai] module, then the config's model_type against the built-in modules",
)
@rule(
    "LOAD058",
    "ml: no input shape for the quick inference",
    severity="info",
    fix="Add input_shape (without the batch axis, e.g. [3, 32, 32]) to config.json, or an "
    "`input_shape` attribute to the module, so that --infer can run it.",
    compares="config.json input_shape / input_dims, the module's input_shape attribute",
)
@rule(
    "LOAD059",
    "ml: the module loaded and its output holds NaN or Inf",
    severity="error",
    fix="The forward pass of zeros gave non-finite values: check the weights (genai doctor "
    "--weights) and divisions or logs in the module.",
    compares="the quick inference's output is finite",
)
def runtime_findings(
    report: Report,
    md: ModelDir,
    *,
    infer: bool = False,
    timeout: float | None = 600.0,
    trust_remote_code: bool = False,
) -> list[Finding]:
    """Run the load (and inference) test for md in a child process and judge the result.
    A folder that names code a loader would run is refused here (SEC001), before any child or
    loader starts, unless trust_remote_code."""
    from genai_common.runtime.isolate import run_isolated

    kind = md.kind
    if kind not in ("llm", "vlm", "diffusion", "ml"):
        return [_load("LOAD040", f"no load test for kind {kind!r}")]
    if not trust_remote_code:
        from genai_common.model import custom_code

        found = custom_code.scan(md.root_str)
        if found:
            out = [_load("SEC001", custom_code.message(c)) for c in found[:MAX_PER_CODE]]
            if len(found) > MAX_PER_CODE:
                out.append(_load("SEC001", f"... and {len(found) - MAX_PER_CODE} more"))
            return out
    too_big = [f.code for f in report.findings if f.code in TOO_BIG and f.severity == "error"]
    if too_big:
        return [_load("LOAD041", f"not loaded: {', '.join(too_big)} says the weights do not fit")]
    if md.metadata_only:
        return [_load("LOAD040", "no load test without the weight files (metadata only)")]
    import os

    special = [rel for rel in md.files if md.size(rel) is None and os.path.exists(md.fspath(rel))]
    if special:
        shown = ", ".join(repr(r)[1:-1][:120] for r in special[:3])
        more = f" and {len(special) - 3} more" if len(special) > 3 else ""
        return [_load("SEC002", f"not loaded: {shown}{more} is not a regular file")]
    path = md.root_str  # a single file's folder too
    trust = {"trust_remote_code": True} if trust_remote_code else {}
    if infer:
        result = run_isolated(
            "genai_common.doctor.rules.load:infer_target", kind, path, timeout=timeout, **trust
        )
    else:
        result = run_isolated(
            "genai_common.runtime.loading:load_summary", kind, path, timeout=timeout, **trust
        )
    step = "inference" if infer else "load"
    if result.timed_out:
        return [_load("LOAD003", f"the {step} test passed its {timeout:.0f} s limit")]
    if result.signal or (not result.ok and result.error_type is None):
        tail = _short(result.stderr_tail, 300)
        return [
            _load(
                "LOAD002",
                f"the {step} process ended with {result.signal or result.returncode}: {tail}",
            )
        ]
    if not result.ok and result.error_type == "ModuleLoadError":  # ml: one line per LOAD05x
        text = (result.error or "").removeprefix("ModuleLoadError: ")
        lines = [line.partition(": ") for line in text.splitlines()]
        return [_load(c, _short(t)) for c, _, t in lines if re.fullmatch(r"LOAD05\d", c)] or [
            _load("LOAD001", _short(text))
        ]
    if not result.ok:
        message = result.error or "no message"  # run_isolated's error is "Type: message"
        inference = result.error_type == InferenceFailed.__name__
        if inference:
            message = message.removeprefix(f"{InferenceFailed.__name__}: ")
        code, explained = classify(message, report)
        if code in ("LOAD001", "LOAD020"):  # the step that raised decides which of the two
            code = "LOAD020" if inference else "LOAD001"
        because = f"; explained by {', '.join(explained)}" if explained else ""
        return [_load(code, f"{_short(message)}{because}")]
    value = result.value or {}
    load = value.get("load", value)
    seconds = load.get("seconds")
    text = f"loaded in {seconds:.2f} s" if isinstance(seconds, (int, float)) else "loaded"
    from genai_common.runtime.memory import describe_peak

    peak = describe_peak(load)  # which peak it is: MLX active or process RSS (issue 16)
    if peak:
        text += f", {peak}"
    out = [_load("LOAD030", f"{md.loader or kind}: {text}")]
    if infer:
        output = value.get("output")
        if kind in ("llm", "vlm") and not output:
            out.append(_load("LOAD021", "the model generated no text from a short prompt"))
        elif output is None:
            out.append(
                _load(
                    "LOAD058",
                    "no quick inference: neither config.json (input_shape, input_dims, "
                    "in_features, input_size) nor the module (input_shape) gives an input shape; "
                    "load only",
                )
            )
        elif kind == "ml" and value.get("nonfinite"):
            out.append(_load("LOAD059", _short(value.get("summary") or repr(output), 160)))
        else:
            out.append(_load("LOAD031", _short(value.get("summary") or repr(output), 120)))
    return out


def _load(code: str, message: str) -> Finding:
    """A LOAD finding, stamped with what runtime_findings declares for its code."""
    return stamp(finding(code, message), declared(runtime_findings))
