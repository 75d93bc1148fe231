"""CNV: convert and quantize an LLM through mlx-lm's own convert (issue 11 item 1).

Before: the doctor on the source, and which layers the group size does not divide (mlx-lm 0.32.2
utils.quantize_model's predicate skips every module whose weight's last dimension is not a
multiple of the group size: they stay in full precision, silently). The run: mlx_lm.convert
(quantize, q_bits, q_group_size, dtype, the mixed_* recipes). After: the doctor on the output,
`genai verify` output vs source when that command is installed, sizes on disk; one RESULTS.md
row and one TODO.md session-log line (common.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

from genai_common.findings import Finding, finding, rule

TYPE_CHECKING = False
if TYPE_CHECKING:
    from genai_common.model import ModelDir

RECIPES = ("mixed_2_6", "mixed_3_4", "mixed_3_6", "mixed_4_6")
# mlx-vlm 0.7.10 convert.QUANT_RECIPES (it has three recipes mlx-lm 0.32.2 does not)
VLM_RECIPES = (*RECIPES, "mixed_3_5", "mixed_3_8", "mixed_4_8")
BITS = ("2", "3", "4", "5", "6", "8")
# mlx-vlm's quantize predicate (utils.skip_multimodal_module) keeps these towers in full precision
# by design, so CNV001 does not name them (names as in the source checkpoint, HF or MLX)
_TOWERS = (
    "visual.",
    "vision",
    "aligner",
    "multi_modal_projector",
    "vl_connector",
    "audio_",
    "img_projector",
)


class ConvertResult(NamedTuple):
    source: str
    output: str
    quantize: str | None
    group_size: int
    findings: list[Finding]
    metrics: dict[str, Any]
    verdict: str


def _quantizable(md: ModelDir) -> Iterator[tuple[str, tuple[int, ...]]]:
    vlm = md.kind == "vlm"
    for name, info in md.tensors.items():
        shape = tuple(info.shape or ())
        if not name.endswith(".weight") or len(shape) != 2 or "norm" in name:
            continue
        if vlm and any(t in name for t in _TOWERS):
            continue
        yield name, shape


@rule(
    "CNV001",
    "Layers the quantization group size does not divide stay in full precision",
    severity="warning",
    fix="mlx-lm quantizes a layer only when its input dimension is a multiple of --group-size; "
    "the others keep the source dtype (bigger, slower). Pick a group size that divides them "
    "(32 or 64), or accept it knowingly.",
    compares="each 2-D weight's last dimension vs --group-size",
)
def undivided(md: ModelDir, group_size: int) -> Iterator[Finding]:
    skipped = [(n, s) for n, s in _quantizable(md) if s[-1] % group_size]
    if skipped:
        names = ", ".join(f"{n} {list(s)}" for n, s in skipped[:6])
        more = f" and {len(skipped) - 6} more" if len(skipped) > 6 else ""
        yield finding(
            "CNV001",
            f"group size {group_size} does not divide {len(skipped)} layer(s): {names}{more}",
        )


@rule(
    "CNV002",
    "The output folder already exists",
    severity="error",
    fix="mlx-lm's convert refuses an existing folder: remove it or choose another --output.",
    compares="the output path does not exist",
)
def output_exists(output: str) -> Iterator[Finding]:
    if os.path.exists(output):
        yield finding("CNV002", f"{output} already exists")


@rule(
    "CNV003",
    "Quantizing a model that is already quantized",
    severity="error",
    fix="mlx-lm cannot quantize a quantized model: convert from the full-precision source, or "
    "dequantize first (mlx_lm.convert --dequantize).",
    compares="config.json quantization vs --quantize",
)
def already_quantized(md: ModelDir, quantize: str | None) -> Iterator[Finding]:
    cfg = md.config or {}
    if quantize and (cfg.get("quantization") or cfg.get("quantization_config")):
        yield finding("CNV003", "the source's config.json already declares quantization")


@rule(
    "CNV004",
    "An unknown --quantize value",
    severity="error",
    fix=f"Use a bit width ({', '.join(BITS)}) or one of mlx-lm's recipes ({', '.join(RECIPES)}); "
    f"mlx-vlm also has {', '.join(VLM_RECIPES[len(RECIPES) :])}.",
    compares="--quantize vs mlx-lm's (mlx-vlm's) bit widths and QUANT_RECIPES",
)
def bad_quantize(quantize: str | None, recipes: tuple[str, ...] = RECIPES) -> Iterator[Finding]:
    if quantize and quantize.replace("-", "_") not in recipes + BITS:
        yield finding("CNV004", f"--quantize {quantize!r} is not known")


@rule(
    "CNV010",
    "mlx-lm's convert stopped with an error",
    severity="error",
    fix="The message is mlx-lm's own; the doctor's findings on the source usually explain it.",
    compares="mlx_lm.convert ran to the end",
)
def convert_failed(message: str) -> Iterator[Finding]:
    yield finding("CNV010", message)


@rule(
    "CNV030",
    "mlx-vlm's convert stopped with an error",
    severity="error",
    fix="The message is mlx-vlm's own; the doctor's findings on the source usually explain it "
    "(a mixed_* recipe needs down_proj layers; --method awq needs a text forward).",
    compares="mlx_vlm.convert.convert ran to the end",
)
def vlm_convert_failed(message: str) -> Iterator[Finding]:
    yield finding("CNV030", message)


@rule(
    "CNV031",
    "A quantization method the converter of this kind does not have",
    severity="error",
    fix="llm: --method rtn (mlx-lm convert), awq, gptq or dynamic (mlx-lm's quant/ modules); "
    "vlm: rtn or awq (mlx-vlm convert --quant-method).",
    compares="--method vs the methods wired for the model's kind",
)
def bad_method(kind: str, method: str, known: tuple[str, ...]) -> Iterator[Finding]:
    if method not in known:
        yield finding(
            "CNV031", f"--method {method!r} for a {kind} model; known: {', '.join(known)}"
        )


@rule(
    "CNV011",
    "The converted model has doctor errors",
    severity="error",
    fix="Run `genai doctor OUTPUT` for the details; the source's own findings come first.",
    compares="genai doctor on the output, errors that the source did not have",
)
def output_errors(new: list[Finding]) -> Iterator[Finding]:
    for f in new:
        yield finding("CNV011", f"{f.code}: {f.message}", file=f.file)


def _run(func: Any, *args: Any) -> list[Finding]:
    from genai_common.findings import declared, stamp

    rules = declared(func)
    return [stamp(f, rules) for f in func(*args)]


def verifier() -> Any:
    """genai_common.verify.verify (the layer below): output vs source."""
    from genai_common.verify import verify

    return verify


def bench_pair(source: str, output: str, trials: int = 3, kind: str = "llm") -> dict[str, Any]:
    """`genai bench`'s own runner on source and output (ABBA order, same random prompt; a vlm also
    gets bench's test image): decode tokens/s and peak MLX memory, medians."""
    from genai_common.bench.llm import bench
    from genai_common.bench.progress import Progress
    from genai_common.bench.runner import load_subject

    subjects = [
        load_subject(path, kind, label) for label, path in (("source", source), ("output", output))
    ]
    with Progress() as progress:  # bench's own bar on a terminal, silent elsewhere
        results = bench(
            subjects,
            prompt_tokens=32,
            gen_tokens=32,
            trials=trials,
            warmup=1,
            cooldown=0.0,
            prompts="random",
            image_size=64,
            progress=progress,
        )
    out: dict[str, Any] = {}
    for res in results:
        for metric in ("decode_tps", "peak_mlx"):
            summary = res["summary"].get(metric)
            if summary:
                out[f"{metric}_{res['subject']}"] = round(summary["median"], 1)
    return out


def disk_bytes(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            if name.endswith((".safetensors", ".gguf", ".bin")):
                total += os.path.getsize(os.path.join(root, name))
    return total


# rtn: mlx_lm.convert / mlx_vlm.convert; llm awq, gptq: mlx_lm.quant.awq.awq_quantize and
# mlx_lm.quant.gptq.gptq_quantize on calibration text we give them (mlx-lm's own load_data
# downloads a calibration file); vlm awq: mlx_vlm.convert(quant_method="awq") (its own text).
# llm dynamic: mlx_lm.quant.dynamic_quant's estimate_sensitivities + estimate_threshold (per-layer
# sensitivity by gradients, then the layers above the threshold at the next width up, to reach
# --target-bpw) and utils.quantize_model with its predicate, as its main() does.
# Not wired (mlx-lm 0.32.2): dwq (a distillation training run: minutes, not a convert step).
METHODS = {"llm": ("rtn", "awq", "gptq", "dynamic"), "vlm": ("rtn", "awq")}
LEARNED = ("awq", "gptq", "dynamic")
NEXT_WIDTH = {2: 3, 3: 4, 4: 5, 5: 6, 6: 8, 8: 8}


@rule(
    "CNV032",
    "A learned quantization method without a bit width",
    severity="error",
    fix="awq and gptq quantize every layer to one width, dynamic starts from one: give --quantize "
    "2|3|4|5|6|8 (not a mixed_* recipe, not omitted).",
    compares="--method awq|gptq|dynamic needs --quantize BITS",
)
def learned_needs_bits(method: str, quantize: str | None) -> Iterator[Finding]:
    if method in LEARNED and not (quantize or "").isdigit():
        yield finding("CNV032", f"--method {method} with --quantize {quantize or '(none)'}")


@rule(
    "CNV033",
    "mlx-lm's AWQ has no recipe for this model type",
    severity="error",
    fix="mlx_lm.quant.awq.AWQ_MODEL_CONFIGS lists the model types AWQ knows how to scale: use "
    "--method gptq or rtn for this one.",
    compares="config.json model_type vs mlx_lm.quant.awq.AWQ_MODEL_CONFIGS",
)
def awq_unknown_type(model_type: str, known: list[str]) -> Iterator[Finding]:
    if model_type not in known:
        yield finding("CNV033", f"model_type {model_type!r}; AWQ knows {', '.join(known)}")


@rule(
    "CNV034",
    "Too little calibration text for a learned quantization",
    severity="error",
    fix="Give --calibration FILE with text like the model's use (at least --num-samples x "
    "--sequence-length tokens), or lower --sequence-length.",
    compares="calibration tokens vs one --sequence-length window",
)
def short_calibration(tokens: int, sequence_length: int, where: str) -> Iterator[Finding]:
    if tokens < sequence_length:
        yield finding(
            "CNV034",
            f"{where}: {tokens} calibration tokens, fewer than one window of {sequence_length}",
        )


@rule(
    "CNV035",
    "The converted weights hold NaN or infinite values",
    severity="error",
    fix="The quantizer divided by zero or overflowed. mlx-lm 0.32.2 GPTQ on a float16 source "
    "writes non-finite scales/biases for down_proj: run it with --dtype float32. Otherwise try "
    "--method rtn or a larger --group-size.",
    compares="every floating tensor of the output's safetensors is finite",
)
def nonfinite_weights(names: list[str]) -> Iterator[Finding]:
    if names:
        more = f" and {len(names) - 6} more" if len(names) > 6 else ""
        yield finding("CNV035", f"{len(names)} tensor(s): {', '.join(names[:6])}{more}")


@rule(
    "CNV036",
    "GPTQ on a half-precision source",
    severity="warning",
    fix="mlx-lm 0.32.2's GPTQ accumulates its Hessian in the source dtype; on the float16 tiny "
    "llama it wrote non-finite scales (CNV035). Add --dtype float32 (the size grows only for the "
    "layers left unquantized).",
    compares="--method gptq vs config.json torch_dtype / --dtype (float16, bfloat16)",
)
def gptq_half(method: str, dtype: str | None) -> Iterator[Finding]:
    if method == "gptq" and dtype in ("float16", "bfloat16"):
        yield finding("CNV036", f"--method gptq on {dtype} weights")


def nonfinite_tensors(path: str) -> list[str]:
    """Names of floating tensors with NaN/inf in the folder's safetensors (mx.load, one file at
    a time)."""
    import mlx.core as mx

    bad: list[str] = []
    for name in sorted(os.listdir(path)):
        if name.endswith(".safetensors"):
            for key, value in mx.load(os.path.join(path, name)).items():
                if mx.issubdtype(value.dtype, mx.floating) and not mx.isfinite(value).all().item():
                    bad.append(key)
    return bad


def calibration_text(path: str | None) -> str:
    """The calibration file's text, else the corpus shipped in genai_common (the same text
    `genai verify` scores: give --calibration for a fair held-out check on a real model)."""
    if path:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    from genai_common.corpus import training_text

    return training_text()


def calibration_tokens(
    tokenizer: Any, text: str, num_samples: int, sequence_length: int, seed: int = 0
) -> Any:
    """(n, sequence_length) non-overlapping token windows of `text`, at most num_samples, chosen
    at random (mlx-lm's load_data does the same with its downloaded file)."""
    import mlx.core as mx

    ids = mx.array(tokenizer.encode(text))
    n = ids.size // sequence_length
    windows = ids[: n * sequence_length].reshape(n, sequence_length)
    mx.random.seed(seed)
    return windows[mx.random.permutation(n)[: max(num_samples, 1)]]


def learned_quantize(
    source: str,
    output: str,
    method: str,
    bits: int,
    group_size: int,
    *,
    calibration: str | None = None,
    num_samples: int = 32,
    sequence_length: int = 256,
    n_grid: int = 20,
    dtype: str | None = None,
    target_bpw: float = 5.0,
) -> dict[str, Any]:
    """mlx-lm's own AWQ or GPTQ on calibration windows, saved with mlx_lm.utils.save (what
    `mlx_lm.awq` / `mlx_lm.gptq` do after their download of calibration data)."""
    from mlx_lm.utils import compute_bits_per_weight, load, save

    model, tokenizer, config = load(source, lazy=True, return_config=True)
    if dtype:  # what mlx_lm.convert --dtype does, before quantizing
        import mlx.core as mx
        from mlx.utils import tree_map

        target = getattr(mx, dtype)
        model.update(
            tree_map(
                lambda a: a.astype(target) if mx.issubdtype(a.dtype, mx.floating) else a,
                model.parameters(),
            )
        )
        config["torch_dtype"] = dtype
    text = calibration_text(calibration)
    data = calibration_tokens(tokenizer, text, num_samples, sequence_length)
    print(f"convert: {method} calibration on {data.shape[0]} x {data.shape[1]} tokens", flush=True)
    extra: dict[str, Any] = {}
    if method == "dynamic":
        import mlx.core as mx
        from mlx_lm.quant.dynamic_quant import estimate_sensitivities, estimate_threshold
        from mlx_lm.utils import quantize_model

        high = NEXT_WIDTH[bits]
        sens = dict(
            estimate_sensitivities(
                model, data, bits, group_size, high, group_size, gradient_accum_dtype=mx.float32
            )
        )
        threshold = estimate_threshold(
            model,
            sens,
            target_bpw=target_bpw,
            low_bits=bits,
            low_group_size=group_size,
            high_bits=high,
            high_group_size=group_size,
        )

        def predicate(path: str, module: Any) -> Any:
            if not hasattr(module, "to_quantized"):
                return False
            if sens.get(path, 0.0) > threshold:
                return {"bits": high, "group_size": group_size}
            return True

        model, config = quantize_model(
            model, config, group_size=group_size, bits=bits, quant_predicate=predicate
        )
        extra["layers_at_high_bits"] = sum(1 for v in sens.values() if v > threshold)
    elif method == "gptq":
        from mlx_lm.quant.gptq import gptq_quantize

        # layers GPTQ does not handle (embeddings, head) fall back to RTN at 6 bits, mlx-lm's default
        model, config["quantization"] = gptq_quantize(model, data, bits, group_size, 6, group_size)
    else:
        from mlx_lm.quant.awq import AWQ_MODEL_CONFIGS, awq_quantize, update_config

        awq_quantize(
            model,
            data,
            AWQ_MODEL_CONFIGS[config["model_type"]],
            bits=bits,
            group_size=group_size,
            embed_bits=4,
            embed_group_size=32,
            n_grid=n_grid,
        )
        config = update_config(model, config)
    bpw = round(float(compute_bits_per_weight(model)), 3)
    save(output, source, model, tokenizer, config)
    return {"bits_per_weight": bpw, "calibration_windows": int(data.shape[0]), **extra}


def preflight(
    source: str,
    output: str,
    quantize: str | None,
    group_size: int,
    kind: str = "llm",
    method: str = "rtn",
    dtype: str | None = None,
) -> list[Finding]:
    from genai_common.doctor import diagnose
    from genai_common.model import ModelDir

    recipes = VLM_RECIPES if kind == "vlm" else RECIPES
    found = _run(bad_quantize, quantize, recipes) + _run(output_exists, output)
    found += _run(bad_method, kind, method, METHODS.get(kind, ("rtn",)))
    if kind == "llm" and method in LEARNED:
        found += _run(learned_needs_bits, method, quantize)
        if method == "awq":
            from mlx_lm.quant.awq import AWQ_MODEL_CONFIGS

            md_type = str((ModelDir.open(source).config or {}).get("model_type", ""))
            found += _run(awq_unknown_type, md_type, sorted(AWQ_MODEL_CONFIGS))
        if method == "gptq":
            cfg = ModelDir.open(source).config or {}
            found += _run(gptq_half, method, dtype or cfg.get("torch_dtype") or cfg.get("dtype"))
    report = diagnose(source)
    found += [f for f in report.findings if f.severity == "error"]
    if quantize:
        md = ModelDir.open(source)
        md.read_all()
        found += _run(undivided, md, group_size) + _run(already_quantized, md, quantize)
    return found


def convert(
    source: str,
    output: str,
    *,
    quantize: str | None = None,
    group_size: int = 64,
    dtype: str | None = None,
    verify_text: str | None = None,
    verify_context: int | None = None,  # positions genai verify scores (None: its default)
    measure: bool = True,
    kind: str | None = None,
    method: str = "rtn",
    calibration: str | None = None,
    num_samples: int = 32,
    sequence_length: int = 256,
    n_grid: int = 20,
    target_bpw: float = 5.0,
) -> ConvertResult:
    """Doctor before, the kind's converter (mlx_lm.convert for llm, mlx_vlm.convert for vlm),
    doctor, bench and verify after; never raises on bad input."""
    from genai_common.verify.reference_hf import gguf_file

    if gguf_file(source):  # verify-reference: a .gguf source, see workflows/convert_gguf.py
        from genai_common.workflows.convert_gguf import convert_from_gguf

        return convert_from_gguf(
            source,
            output,
            convert,
            ConvertResult,
            quantize=quantize,
            group_size=group_size,
            dtype=dtype,
            verify_text=verify_text,
            verify_context=verify_context,
            measure=measure,
        )
    if kind is None:
        from genai_common.model import ModelDir

        kind = ModelDir.open(source).kind if os.path.isdir(source) else "llm"
        kind = kind if kind in ("llm", "vlm") else "llm"
    found = preflight(source, output, quantize, group_size, kind, method, dtype)
    metrics: dict[str, Any] = {"kind": kind, "source_bytes": disk_bytes(source)}
    if method != "rtn":
        metrics["method"] = method
    if any(f.severity == "error" for f in found):
        return ConvertResult(source, output, quantize, group_size, found, metrics, "fail")
    kwargs: dict[str, Any] = {"dtype": dtype}
    if quantize:
        kwargs.update(quantize=True, q_group_size=group_size)
        recipe = quantize.replace("-", "_")
        if recipe in VLM_RECIPES:
            kwargs["quant_predicate"] = recipe
        else:
            kwargs["q_bits"] = int(quantize)
    start = time.perf_counter()
    print(f"convert: {kind} {source} -> {output} ({method}, q={quantize or 'none'})", flush=True)
    if kind == "vlm":
        from mlx_vlm.convert import convert as mlx_convert

        if quantize:
            kwargs["quant_method"] = method
        failed: Any = vlm_convert_failed
    else:
        from mlx_lm.convert import convert as mlx_convert

        failed = convert_failed
    try:
        if kind == "llm" and method in LEARNED:
            from pathlib import Path

            from mlx_lm.utils import load_tokenizer

            try:
                text = calibration_text(calibration)
            except OSError as exc:
                found += _run(short_calibration, 0, sequence_length, f"{calibration}: {exc}")
                return ConvertResult(source, output, quantize, group_size, found, metrics, "fail")
            tokens = len(load_tokenizer(Path(source)).encode(text))
            found += _run(short_calibration, tokens, sequence_length, calibration or "corpus")
            if any(f.code == "CNV034" for f in found):
                return ConvertResult(source, output, quantize, group_size, found, metrics, "fail")
            metrics.update(
                learned_quantize(
                    source,
                    output,
                    method,
                    int(quantize or 4),
                    group_size,
                    calibration=calibration,
                    num_samples=num_samples,
                    sequence_length=sequence_length,
                    n_grid=n_grid,
                    dtype=dtype,
                    target_bpw=target_bpw,
                )
            )
        else:
            mlx_convert(source, output, **kwargs)
    except Exception as exc:  # the library's own error, reported as a finding
        found += _run(failed, f"{type(exc).__name__}: {exc}")
        return ConvertResult(source, output, quantize, group_size, found, metrics, "fail")
    metrics["convert_s"] = round(time.perf_counter() - start, 2)
    metrics["output_bytes"] = disk_bytes(output)
    found += _run(nonfinite_weights, nonfinite_tensors(output))
    from genai_common.doctor import diagnose

    before = {(f.code, f.message) for f in diagnose(source).findings}
    after = [f for f in diagnose(output).findings if f.severity == "error"]
    found += _run(output_errors, [f for f in after if (f.code, f.message) not in before])
    verdict = "fail" if any(f.severity == "error" for f in found) else "pass"
    if measure:
        print("convert: genai bench, source vs output (ABBA, 3 trials each)", flush=True)
        try:
            metrics.update(bench_pair(source, output, kind=kind))
        except Exception as exc:  # a measurement, not a verdict: record why it is missing
            metrics["bench"] = f"not measured: {type(exc).__name__}: {exc}"[:200]
    verify = verifier()
    if verify is None:
        metrics["verify"] = "not installed in this genai-common"
    else:
        print("convert: genai verify, output vs source", flush=True)
        llm = kind == "llm"
        r = verify(
            output,
            source,
            kind=kind,
            text=verify_text if llm else None,
            context=verify_context if llm else None,
        )
        metrics.update(
            {
                f"verify_{k}": v
                for k, v in dict(r.metrics).items()
                if v is None or isinstance(v, (int, float, str))  # not the curve or the plan
            }
        )
        found += list(r.findings)
        if r.verdict == "fail" or verdict == "fail":
            verdict = "fail"
        elif r.verdict == "warn":
            verdict = "warn"
    return ConvertResult(source, output, quantize, group_size, found, metrics, verdict)
