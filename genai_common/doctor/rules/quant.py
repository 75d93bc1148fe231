"""QNT: quantization metadata and every quantized tensor's shapes.

What the quantization is (the block, per-layer entries, packed shapes, valid modes) is read by
md.quant (genai_common/model/quant.py); the rules here judge it, and non-MLX formats.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from genai_common.findings import Finding, finding, rule
from genai_common.model.quant import BLOCK_KEYS, DEFAULT_GROUP_SIZE, MODES, QParams, params
from genai_common.model.values import positive_int

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from genai_common.model import ModelDir


# quantization_config.quant_method -> (severity, what MLX does with it)
FOREIGN_METHODS: dict[str, tuple[str, str]] = {
    "bitsandbytes": (
        "error",
        "bitsandbytes (CUDA-only) is not loadable by MLX: use the unquantized original and "
        "quantize with mlx_lm.convert -q",
    ),
    "gptq": (
        "warning",
        "mlx-lm 0.32 repacks 4-bit GPTQ without g_idx (act-order); other bit widths fail",
    ),
    "awq": ("warning", "mlx-lm 0.32 repacks 4-bit AWQ; other bit widths fail"),
    "fp8": (
        "warning",
        "mlx-lm keeps fp8 packed only with ue8m0 scales over 32x32 blocks (as mxfp8); other fp8 "
        "checkpoints are dequantized by the model's sanitize (2x memory) or fail",
    ),
    "compressed-tensors": (
        "warning",
        "mlx-lm reads only the pack-quantized, nvfp4-pack-quantized and mxfp4-pack-quantized "
        "formats; others raise 'unsupported compressed-tensors format'",
    ),
    "modelopt": ("info", "mlx-lm reads ModelOpt NVFP4 as MLX nvfp4; other algorithms fail"),
    "mxfp4": ("info", "mlx-lm maps it to MLX mxfp4 (group 32, 4 bits)"),
    "mxfp8": ("info", "mlx-lm maps it to MLX mxfp8 (group 32, 8 bits)"),
    "bitnet": ("info", "mlx-lm builds BitLinear layers for it"),
    "hqq": ("error", "HQQ is not loadable by MLX: quantize the original with mlx_lm.convert"),
    "eetq": ("error", "EETQ is not loadable by MLX: quantize the original with mlx_lm.convert"),
    "quanto": ("error", "quanto is not loadable by MLX: quantize the original with mlx_lm.convert"),
    "aqlm": ("error", "AQLM is not loadable by MLX: quantize the original with mlx_lm.convert"),
}
# What mx.load does with low-precision float dtypes in safetensors (measured, mlx 0.32.4).
F8_DTYPES = {
    "F8_E4M3": "read as raw uint8",
    "F8_E8M0": "read as raw uint8",
    "F8_E5M2": "refused",
    "F4": "refused",
}


QNT032 = rule(
    "QNT032",
    "A per-layer entry disagrees with the bits/group size the tensor was stored with",
    severity="error",
    fix="Make the per-layer entry match the stored tensor (a strict load fails with 'Expected shape').",
    compares="per-layer bits/group_size vs the ones implied by the stored shapes",
)


KV_GROUP_SIZE = 64


@rule(
    "QNT001",
    "The MLX quantization block is malformed",
    severity="error",
    fix="config.json 'quantization' must be an object with integer group_size and bits (and an "
    "optional mode); re-export with mlx_lm.convert.",
    compares="type and keys of config['quantization']",
)
@rule(
    "QNT010",
    "Quantization parameters that MLX does not accept",
    severity="error",
    fix="Use a mode/bits/group_size from MLX's table: affine bits 1-6 or 8 with group 32/64/128; "
    "mxfp4 (32, 4); mxfp8 (32, 8); nvfp4 (16, 4).",
    compares="mode, bits, group_size (default and per layer) vs mlx.core.quantize's table",
)
def block(md: ModelDir) -> Iterator[Finding]:
    cfg = md.config or {}
    block = cfg.get("quantization")
    if block is None:
        return
    if not isinstance(block, dict):
        yield finding("QNT001", f"quantization = {block!r} is not an object", file="config.json")
        return
    for key in ("group_size", "bits"):
        if key in block and positive_int(block[key]) is None:
            yield finding(
                "QNT001",
                f"quantization.{key} = {block[key]!r} is not a positive integer",
                file="config.json",
            )
    if "bits" not in block and block.get("mode", "affine") == "affine":
        yield finding("QNT001", "quantization has no 'bits'", file="config.json")
    default = params(block)
    yield from _valid(default, "quantization")
    for key, value in block.items():
        if key in BLOCK_KEYS or isinstance(value, bool):
            continue
        if not isinstance(value, dict):
            yield finding(
                "QNT001",
                f"quantization[{key!r}] = {value!r} is neither an object nor true/false",
                file="config.json",
            )
            continue
        unknown = set(value) - set(BLOCK_KEYS)
        if unknown:
            yield finding(
                "QNT001",
                f"quantization[{key!r}] has unknown keys {sorted(unknown)}",
                file="config.json",
            )
        yield from _valid(params(value, default), f"quantization[{key!r}]")


def _valid(p: QParams, where: str) -> Iterator[Finding]:
    spec = MODES.get(p.mode)
    if spec is None:
        yield finding(
            "QNT010", f"{where}: mode {p.mode!r} is not one of {sorted(MODES)}", file="config.json"
        )
        return
    sizes, bits, _, _ = spec
    if p.bits is not None and p.bits not in bits:
        yield finding(
            "QNT010",
            f"{where}: {p.mode} bits = {p.bits}, MLX accepts {list(bits)}",
            file="config.json",
        )
    if p.group_size is not None and p.group_size not in sizes:
        yield finding(
            "QNT010",
            f"{where}: {p.mode} group_size = {p.group_size}, MLX accepts {list(sizes)}",
            file="config.json",
        )


@rule(
    "QNT022",
    "A quantized weight lacks its scales or biases (or has biases its mode does not use)",
    severity="error",
    fix="Affine tensors need .scales and .biases; mxfp4/mxfp8/nvfp4 need uint8 .scales and no "
    "biases. Re-export the module.",
    compares="presence of X.scales/X.biases beside a U32 X.weight, scales dtype vs mode",
)
@rule(
    "QNT023",
    "Quantized tensors are stored but the config has no quantization block",
    severity="error",
    fix="Add the 'quantization' block ({'group_size': G, 'bits': B}) that the model was saved with; "
    "without it the loader builds float layers and rejects the .scales tensors.",
    compares="U32 weights with .scales vs config['quantization']",
)
@rule(
    "QNT024",
    "The config declares quantization but no quantized tensors are stored",
    severity="error",
    fix="Remove the 'quantization' block, or use the quantized weights it belongs to.",
    compares="config['quantization'] vs *.scales tensors",
)
def presence(md: ModelDir) -> Iterator[Finding]:
    ts = md.tensors
    if not ts or md.metadata_only:
        return
    block = md.quant.block
    qmods = md.quant.modules
    if qmods and block is None:
        example = next(iter(qmods))
        yield finding(
            "QNT023",
            f"{len(qmods)} modules are stored quantized (e.g. {example}) but config.json has no "
            "'quantization' block",
            file="config.json",
        )
    elif isinstance(block, dict) and not qmods and not any(n.endswith(".scales") for n in ts):
        yield finding(
            "QNT024",
            f"config.json declares quantization {_describe(md.quant.default)} but no tensor "
            "has .scales",
            file="config.json",
        )
    default = md.quant.default
    causes: dict[str, list[tuple[str, str]]] = {}  # what is wrong -> (module, file)
    for name, t in ts.items():
        if not name.endswith(".weight") or t.dtype != "U32":
            continue
        module = name[: -len(".weight")]
        scales = ts.get(f"{module}.scales")
        if scales is None:
            if block is not None:
                causes.setdefault("is uint32 but its .scales is missing", []).append(
                    (module, t.file)
                )
            continue
        biases = ts.get(f"{module}.biases")
        fixed_mode = scales.dtype == "U8"
        over = md.quant.override_for(module)
        mode = (
            params(over[1], default).mode
            if over and isinstance(over[1], dict)
            else (default.mode if default else "affine")
        )
        cause = None
        if fixed_mode and biases is not None:
            cause = f"has uint8 scales ({mode if mode != 'affine' else 'mx/nv fp'} mode) but also .biases"
        elif not fixed_mode and biases is None:
            cause = f"has {scales.dtype} scales (affine) but no .biases"
        elif not fixed_mode and mode != "affine":
            cause = f"has {scales.dtype} scales but mode {mode!r} needs uint8 scales"
        if cause:
            causes.setdefault(cause, []).append((module, t.file))
    for cause, modules in causes.items():  # one finding per cause, naming its modules
        if len(modules) == 1:
            yield finding("QNT022", f"{modules[0][0]} {cause}", file=modules[0][1])
            continue
        names = [m for m, _ in modules]
        shown = ", ".join(names[:4]) + (f", ... (+{len(names) - 4} more)" if len(names) > 4 else "")
        yield finding("QNT022", f"{len(names)} modules: each {cause}: {shown}", file=modules[0][1])


def _describe(p: QParams | None) -> str:
    if p is None:
        return "(none)"
    return f"({p.mode}, bits={p.bits}, group_size={p.group_size})"


@rule(
    "QNT020",
    "A packed weight's width does not match in_features x bits / 32",
    severity="error",
    fix="The weight was packed for a different in_features or bit width than the config says: "
    "re-quantize from the original weights, or fix the config.",
    compares="U32 weight columns vs in_features (from the config) * bits / 32",
)
@rule(
    "QNT021",
    "Scales or biases do not have shape (out, in_features / group_size)",
    severity="error",
    fix="Scales and biases must come from the same quantization as the weight: re-quantize the module.",
    compares="scales/biases shape vs (weight rows, in_features / group_size); biases == scales",
)
@rule(
    "QNT031",
    "A tensor is stored at other bits/group size than the default, with no per-layer entry",
    severity="warning",
    fix="Add a per-layer entry {'bits': B, 'group_size': G} for the modules named: mlx-lm >= 0.32 "
    "infers it from the shapes, but older mlx-lm, mlx-vlm and mlx-swift fail with 'Expected "
    "shape'. When every module disagrees the same way, the block itself is wrong: the message "
    "says which value to set back.",
    compares="bits/group size implied by shapes and config in_features vs the default block (one "
    "finding per stored scheme, naming its modules)",
)
@QNT032
def shapes(md: ModelDir) -> Iterator[Finding]:
    """Per quantized module: packed width, scales/biases shapes, and bits vs what the loader uses.
    Modules stored at one scheme the config does not give are reported together (_grouped): a
    wrong group_size in the block is one finding with its remedy, not one per layer."""
    ts = md.tensors
    default = md.quant.default
    # (code, stored (bits, group_size) or bits x group_size, configured (bits, group_size))
    mismatched: dict[tuple[str, Any, tuple[int, int]], list[tuple[str, str]]] = {}
    judged = 0
    for module, w in md.quant.modules.items():
        scales = ts[f"{module}.scales"]
        biases = ts.get(f"{module}.biases")
        if not w.shape or not scales.shape:
            continue
        if scales.shape[:-1] != w.shape[:-1]:
            yield finding(
                "QNT021",
                f"{module}.scales is {list(scales.shape)} but the weight is {list(w.shape)} "
                "(leading dimensions differ)",
                file=scales.file,
            )
            continue
        if biases is not None and biases.shape and biases.shape != scales.shape:
            yield finding(
                "QNT021",
                f"{module}.biases is {list(biases.shape)} but .scales is {list(scales.shape)}",
                file=biases.file,
            )
        packed, groups = w.shape[-1], scales.shape[-1]
        over = md.quant.override_for(module)
        want = params(over[1], default) if over and isinstance(over[1], dict) else default
        mode = (
            "affine"
            if scales.dtype != "U8"
            else (want.mode if want and want.mode != "affine" else None)
        )
        k = md.quant.expected_in_features(module)
        if k:
            if (packed * 32) % k or (packed * 32 // k) not in MODES["affine"][1] + (4, 8):
                yield finding(
                    "QNT020",
                    f"{module}.weight has {packed} packed columns: in_features = {k} gives "
                    f"{packed * 32 / k:g} bits, not a valid bit width",
                    file=w.file,
                )
                continue
            bits = packed * 32 // k
            if groups <= 0 or k % groups:
                yield finding(
                    "QNT021",
                    f"{module}.scales has {groups} groups: in_features = {k} is not a multiple",
                    file=scales.file,
                )
                continue
            gs = k // groups
            if mode is not None and gs not in MODES[mode][0]:
                yield finding(
                    "QNT021",
                    f"{module}: in_features = {k} over {groups} scale groups = group size {gs}, "
                    f"not one of {list(MODES[mode][0])} ({mode})",
                    file=scales.file,
                )
                continue
            judged += 1
            if want is None or want.bits is None or want.group_size is None:
                continue
            if (bits, gs) != (want.bits, want.group_size):
                key = ("QNT032" if over else "QNT031", (bits, gs), (want.bits, want.group_size))
                mismatched.setdefault(key, []).append((module, w.file))
        else:
            # No config width for this module: the two shapes fix only bits * group_size.
            product = packed * 32 // groups if groups and (packed * 32) % groups == 0 else None
            modes = [mode] if mode else ["mxfp4", "mxfp8", "nvfp4"]
            products = {b * g for m in modes for b in MODES[m][1] for g in MODES[m][0]}
            if product is None or product not in products:
                yield finding(
                    "QNT021",
                    f"{module}: {packed} packed columns over {groups} scale groups give bits x "
                    f"group_size = {packed * 32 / max(groups, 1):g}, which no {modes[0]} "
                    "setting produces",
                    file=scales.file,
                )
            elif want and want.bits and want.group_size and product != want.bits * want.group_size:
                judged += 1
                key = ("QNT032" if over else "QNT031", product, (want.bits, want.group_size))
                mismatched.setdefault(key, []).append((module, w.file))
            else:
                judged += 1
    yield from _grouped(mismatched, judged, md.quant.block)


def _scheme(value: Any) -> str:
    if isinstance(value, tuple):
        return f"bits={value[0]}, group_size={value[1]}"
    return f"bits x group_size = {value}"


def _grouped(
    mismatched: dict[tuple[str, Any, tuple[int, int]], list[tuple[str, str]]],
    judged: int,
    block: Any,
) -> Iterator[Finding]:
    """One finding per cause (code, stored scheme, configured scheme), naming its modules. When
    every judged module is stored at one scheme the default does not give, the block itself is
    wrong: the remedy is to set it back, not to add an entry per layer."""
    for (code, stored, want), modules in sorted(mismatched.items(), key=str):
        names = [m for m, _ in modules]
        whose = "per-layer entry" if code == "QNT032" else "default"
        configured = _scheme(want)
        if not isinstance(stored, tuple):
            configured += f", which gives {want[0] * want[1]}"
        if len(names) == 1:
            yield finding(
                code,
                f"{names[0]} is stored at {_scheme(stored)} but the {whose} says {configured}",
                file=modules[0][1],
            )
            continue
        shown = ", ".join(names[:4]) + (f", ... (+{len(names) - 4} more)" if len(names) > 4 else "")
        if code == "QNT031" and len(names) == judged and isinstance(stored, tuple):
            # every module agrees with the others and not with the block: the block is wrong
            wrong = [
                (key, have, was)
                for key, have, was in zip(("bits", "group_size"), want, stored, strict=True)
                if have != was
            ]
            said = " and ".join(f"{k} ({have})" for k, have, _ in wrong)
            packed = " and ".join(f"{k} {was}" for k, _, was in wrong)
            back = ", ".join(f"{k} = {was}" for k, _, was in wrong)
            yield finding(
                code,
                f"the quantization block's {said} disagrees with every quantized module's "
                f"packed shapes ({packed}, all {len(names)}: {shown}): set it back to {back}",
                file="config.json",
                hint=f"Set the quantization block's {back} (and quantization_config's, when "
                "config.json mirrors it): the weights were packed so. Per-layer entries are not "
                "the remedy; mlx-lm >= 0.32 infers the packing from the shapes, older mlx-lm, "
                "mlx-vlm and mlx-swift fail with 'Expected shape'.",
            )
        else:
            yield finding(
                code,
                f"{len(names)} modules are stored at {_scheme(stored)} but the {whose} says "
                f"{configured}: {shown}",
                file=modules[0][1],
            )


def _aliases(key: str) -> set[str]:
    """Other spellings of a module path that loaders produce by sanitize."""
    out = {key}
    swaps = (
        ("model.language_model.", "language_model.model."),
        ("language_model.model.", "model.language_model."),
        ("language_model.", ""),
        ("model.", "language_model.model."),
    )
    for old, new in swaps:
        if key.startswith(old):
            out.add(new + key[len(old) :])
    return out


@rule(
    "QNT030",
    "A per-layer quantization entry names no module in the weights",
    severity="warning",
    fix="Per-layer keys must be module paths as the loader builds them (weight name minus '.weight'); "
    "an unmatched key is ignored and that module gets the default bits.",
    compares="per-layer keys in config['quantization'] vs module paths of the stored tensors",
)
@QNT032
def overrides(md: ModelDir) -> Iterator[Finding]:
    block = md.quant.block
    ts = md.tensors
    if not isinstance(block, dict) or not ts:
        return
    modules = {n.rsplit(".", 1)[0] for n in ts}
    keys = [
        k for k, v in block.items() if k not in BLOCK_KEYS and (isinstance(v, dict) or v is True)
    ]
    unmatched = [k for k in keys if k not in modules]
    for key in unmatched[:10]:
        alias = next((a for a in sorted(_aliases(key)) if a in modules and a != key), None)
        yield finding(
            "QNT030",
            f"quantization[{key!r}] names no stored module"
            + (f"; the weights spell it {alias!r}" if alias else ""),
            file="config.json",
        )
    if len(unmatched) > 10:
        yield finding(
            "QNT030",
            f"{len(unmatched) - 10} more per-layer entries name no stored module",
            file="config.json",
        )
    # mlx-lm's predicate returns the entry itself: false keeps the module float, a dict quantizes it.
    for key, value in block.items():
        if key in BLOCK_KEYS or key not in modules:
            continue
        stored_quantized = f"{key}.scales" in ts
        if value is False and stored_quantized:
            yield finding(
                "QNT032",
                f"quantization[{key!r}] is false (keep float) but {key} is stored quantized",
                file="config.json",
            )
        elif isinstance(value, dict) and not stored_quantized and f"{key}.weight" in ts:
            yield finding(
                "QNT032",
                f"quantization[{key!r}] quantizes {key} but it is stored in float (no .scales)",
                file="config.json",
            )


@rule(
    "QNT040",
    "Mixed precision",
    severity="info",
    fix="Informational: modules are stored at several bit widths.",
    compares="bit widths over all quantized modules",
)
def mixed(md: ModelDir) -> Iterator[Finding]:
    counts: Counter[int] = Counter()
    for module in md.quant.modules:
        bits = md.quant.stored_bits(module)
        if bits is not None:
            counts[bits] += 1
    if len(counts) > 1:
        parts = ", ".join(f"{n} at {b} bits" for b, n in sorted(counts.items()))
        yield finding("QNT040", f"mixed precision: {parts}")


@rule(
    "QNT050",
    "Non-MLX quantization format",
    severity="warning",
    fix="See the message for what MLX can do with it; the reliable path is mlx_lm.convert from the "
    "unquantized original.",
    compares="quantization_config.quant_method, quantize_config.json, hf_quant_config.json",
)
def foreign(md: ModelDir) -> Iterator[Finding]:
    cfg = md.config or {}
    qc = cfg.get("quantization_config") or (md.text_config or {}).get("quantization_config")
    if isinstance(qc, dict) and "quantization" in cfg and qc.get("quant_method") is None:
        return  # mlx_lm.convert mirrors the MLX block into quantization_config
    if isinstance(qc, dict):
        method = str(qc.get("quant_method") or qc.get("quant_algo") or "unknown").lower()
        severity, text = FOREIGN_METHODS.get(
            method, ("warning", "MLX has no reader for it; convert from the unquantized original")
        )
        extra = ""
        if method in ("gptq", "awq") and qc.get("bits", 4) != 4:
            severity, extra = "error", f" (this one is {qc.get('bits')}-bit)"
        if method == "gptq" and any(n.endswith(".g_idx") for n in md.tensors):
            severity, extra = "error", " (this one stores g_idx)"
        if method == "compressed-tensors" and qc.get("format") in (
            "pack-quantized",
            "nvfp4-pack-quantized",
            "mxfp4-pack-quantized",
        ):
            severity = "info"
        yield finding(
            "QNT050",
            f"quantization_config.quant_method = {method!r}: {text}{extra}",
            file="config.json",
            severity=severity,  # type: ignore[arg-type]
        )
    files = set(md.files)
    for sidecar in ("quantize_config.json", "hf_quant_config.json"):
        if sidecar in files and not isinstance(qc, dict):
            yield finding(
                "QNT050",
                f"{sidecar} describes a non-MLX quantization (GPTQ/AutoRound/ModelOpt style)",
                file=sidecar,
            )


@rule(
    "QNT060",
    "Layers whose input width the group size does not divide will not be quantized",
    severity="info",
    fix="Pick a group size that divides them (32 divides more widths than 64), or accept that those "
    "layers stay in float (mlx_lm.convert skips them).",
    compares="last dimension of each float 2-D weight % group_size (64 unless configured)",
)
def divisibility(md: ModelDir) -> Iterator[Finding]:
    """Before conversion: float 2-D weights whose last dim the group size does not divide."""
    if md.quant.modules or md.quant.block is not None:
        return
    gs = DEFAULT_GROUP_SIZE
    skipped = []
    for name, t in md.tensors.items():
        if not name.endswith(".weight") or not t.shape or len(t.shape) != 2:
            continue
        if t.dtype not in ("F32", "F16", "BF16"):
            continue
        if "norm" in name.rsplit(".", 2)[-2]:
            continue
        if t.shape[-1] % gs:
            skipped.append(f"{name} ({t.shape[-1]})")
    if skipped:
        yield finding(
            "QNT060",
            f"{len(skipped)} weights have an input width not divisible by group size {gs}: "
            f"{', '.join(skipped[:4])}{', ...' if len(skipped) > 4 else ''}",
        )


@rule(
    "QNT070",
    "Low-precision float (F8, F4) tensors that MLX does not load as floats",
    severity="warning",
    fix="mx.load (mlx 0.32.4) returns F8_E4M3 and F8_E8M0 tensors as raw uint8 bytes, not floats: "
    "only a loader that dequantizes them with their scales gets the right values; it refuses "
    "F8_E5M2 and F4 ('[safetensor] unsupported dtype F8_E5M2'). Dequantize to BF16 first (then "
    "mlx_lm.convert to quantize for MLX) or use a loader that handles this format.",
    compares="F8_E4M3, F8_E8M0 (raw uint8), F8_E5M2, F4 (refused) vs what mx.load reads",
)
def f8(md: ModelDir) -> Iterator[Finding]:
    counts = Counter(t.dtype for t in md.tensors.values() if t.dtype in F8_DTYPES)
    if counts:
        parts = ", ".join(f"{n} {d} ({F8_DTYPES[d]})" for d, n in sorted(counts.items()))
        yield finding("QNT070", f"tensors with low-precision float dtypes: {parts}")


@rule(
    "QNT061",
    "head_dim is not a multiple of the KV-cache quantization group size",
    severity="info",
    fix="Quantized KV caches (mlx-lm --kv-bits, kv_group_size 64) need head_dim % group size == 0; "
    "use --kv-group-size 32 (if it divides head_dim) or keep the KV cache in float.",
    compares="each cached width % 64, mlx-lm's default kv_group_size "
    "(head_dim; MLA: kv_lora_rank, qk_rope_head_dim)",
)
def kv_group(md: ModelDir) -> Iterator[Finding]:
    """The cached arrays' last axis (head_dim; MLA: the latent and rope widths) against the
    quantized cache's group size."""

    layout = md.memory.kv_layout
    # Widths below one group (tiny test models) cannot use a quantized cache at all: not reported.
    bad = [w for w in (layout.widths if layout else ()) if w > KV_GROUP_SIZE and w % KV_GROUP_SIZE]
    if bad:
        plain = layout.description.startswith("K+V")
        alt = " (32 divides it)" if all(w % 32 == 0 for w in bad) else ""
        yield finding(
            "QNT061",
            f"{'head_dim' if plain else 'cached width'} = {', '.join(map(str, bad))} is not a "
            f"multiple of kv_group_size {KV_GROUP_SIZE}{alt}"
            + ("" if plain else f" ({layout.description})"),
        )
