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
BITS = ("2", "3", "4", "5", "6", "8")


class ConvertResult(NamedTuple):
    source: str
    output: str
    quantize: str | None
    group_size: int
    findings: list[Finding]
    metrics: dict[str, Any]
    verdict: str


def _quantizable(md: ModelDir) -> Iterator[tuple[str, tuple[int, ...]]]:
    for name, info in md.tensors.items():
        shape = tuple(info.shape or ())
        if not name.endswith(".weight") or len(shape) != 2 or "norm" in name:
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
    fix=f"Use a bit width ({', '.join(BITS)}) or one of mlx-lm's recipes ({', '.join(RECIPES)}).",
    compares="--quantize vs mlx-lm's bit widths and QUANT_RECIPES",
)
def bad_quantize(quantize: str | None) -> Iterator[Finding]:
    if quantize and quantize.replace("-", "_") not in RECIPES + BITS:
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


def bench_pair(source: str, output: str, trials: int = 3) -> dict[str, Any]:
    """`genai bench`'s own runner on source and output (ABBA order, same random prompt): decode
    tokens/s and peak MLX memory, medians; {} with the reason when it cannot run."""
    import json

    from mlx_lm.utils import load

    from genai_common.bench.llm import Subject, bench

    subjects = []
    for label, path in (("source", source), ("output", output)):
        model, tok = load(path)
        with open(os.path.join(path, "config.json"), encoding="utf-8") as fh:
            cfg = json.load(fh)
        subjects.append(Subject(label, path, "llm", model, tok, cfg))
    results = bench(
        subjects,
        prompt_tokens=32,
        gen_tokens=32,
        trials=trials,
        warmup=1,
        cooldown=0.0,
        prompts="random",
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


def preflight(source: str, output: str, quantize: str | None, group_size: int) -> list[Finding]:
    from genai_common.doctor import diagnose
    from genai_common.model import ModelDir

    found = _run(bad_quantize, quantize) + _run(output_exists, output)
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
    measure: bool = True,
) -> ConvertResult:
    """Doctor before, mlx_lm.convert, doctor and verify after; never raises on bad input."""
    found = preflight(source, output, quantize, group_size)
    metrics: dict[str, Any] = {"source_bytes": disk_bytes(source)}
    if any(f.severity == "error" for f in found):
        return ConvertResult(source, output, quantize, group_size, found, metrics, "fail")
    from mlx_lm.convert import convert as mlx_convert

    kwargs: dict[str, Any] = {"dtype": dtype}
    if quantize:
        kwargs.update(quantize=True, q_group_size=group_size)
        recipe = quantize.replace("-", "_")
        if recipe in RECIPES:
            kwargs["quant_predicate"] = recipe
        else:
            kwargs["q_bits"] = int(quantize)
    start = time.perf_counter()
    try:
        mlx_convert(source, output, **kwargs)
    except Exception as exc:  # mlx-lm's own error, reported as a finding
        found += _run(convert_failed, f"{type(exc).__name__}: {exc}")
        return ConvertResult(source, output, quantize, group_size, found, metrics, "fail")
    metrics["convert_s"] = round(time.perf_counter() - start, 2)
    metrics["output_bytes"] = disk_bytes(output)
    from genai_common.doctor import diagnose

    before = {(f.code, f.message) for f in diagnose(source).findings}
    after = [f for f in diagnose(output).findings if f.severity == "error"]
    found += _run(output_errors, [f for f in after if (f.code, f.message) not in before])
    verdict = "fail" if any(f.severity == "error" for f in found) else "pass"
    if measure:
        try:
            metrics.update(bench_pair(source, output))
        except Exception as exc:  # a measurement, not a verdict: record why it is missing
            metrics["bench"] = f"not measured: {type(exc).__name__}: {exc}"[:200]
    verify = verifier()
    if verify is None:
        metrics["verify"] = "not installed in this genai-common"
    else:
        r = verify(output, source, text=verify_text)
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
