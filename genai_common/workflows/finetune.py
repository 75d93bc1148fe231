"""TRN/ADP: LoRA fine-tuning through mlx-lm's own trainer, then fuse (issue 11 item 2).

mlx-lm 0.32.2: ``lora.run(args, training_callback)`` replaces the callback it is given with
``get_reporting_callbacks(args.report_to, ...)``, so a caller's callback is never called; this
module therefore calls mlx-lm's own ``load``, ``load_dataset`` and ``train_model`` (what ``run``
does) with its callback. The trainer reports the validation loss at iteration 1 (before any
update) and at the last iteration: the before/after pair. Fuse is ``python -m mlx_lm fuse`` in a
child process.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from typing import Any, NamedTuple

from genai_common.findings import Finding, finding, rule
from genai_common.model.values import gib


class FinetuneResult(NamedTuple):
    adapter: str
    findings: list[Finding]
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    verdict: str


class _NaNLoss(Exception):
    pass


def _run(func: Any, *args: Any) -> list[Finding]:
    from genai_common.findings import declared, stamp

    rules = declared(func)
    return [stamp(f, rules) for f in func(*args)]


@rule(
    "TRN001",
    "The training loss became NaN or infinite",
    severity="error",
    fix="Lower the learning rate, the LoRA scale (alpha) or the rank; in float16 try bfloat16; "
    "the run was stopped at that step and the adapter of the last good save kept.",
    compares="every reported train loss is finite",
)
def nan_loss(step: int, loss: float) -> Iterator[Finding]:
    yield finding("TRN001", f"train loss {loss} at iteration {step}")


@rule(
    "TRN002",
    "The validation loss did not go down",
    severity="warning",
    fix="More iterations, a higher learning rate, or more (or cleaner) data; check DAT findings.",
    compares="validation loss at the last iteration vs before training",
)
def val_not_down(before: float, after: float) -> Iterator[Finding]:
    if not after < before:
        yield finding("TRN002", f"validation loss {before:.4f} -> {after:.4f}")


@rule(
    "TRN003",
    "mlx-lm's trainer stopped with an error",
    severity="error",
    fix="The message is mlx-lm's own; the DAT findings on the data usually explain it.",
    compares="mlx_lm train_model ran to the end",
)
def train_failed(message: str) -> Iterator[Finding]:
    yield finding("TRN003", message)


@rule(
    "TRN010",
    "Estimated memory per step exceeds the machine's memory",
    severity="warning",
    fix="Lower --batch-size or --max-seq-length, train fewer layers, use --grad-checkpoint, or "
    "quantize the base (QLoRA).",
    compares="weight bytes + activations (batch x max_seq_length x hidden x layers x 12 bytes) "
    "vs the machine's memory",
)
def memory_estimate(estimate: int, available: int) -> Iterator[Finding]:
    if available and estimate > available:
        yield finding("TRN010", f"about {gib(estimate)} per step vs {gib(available)}")


@rule(
    "ADP001",
    "adapter_config.json is missing or names no base",
    severity="error",
    fix="mlx-lm writes adapter_config.json next to adapters.safetensors; keep them together.",
    compares="adapter_config.json exists and has model",
)
def adapter_config(adapter: str, cfg: dict[str, Any] | None) -> Iterator[Finding]:
    if cfg is None:
        yield finding("ADP001", f"no readable adapter_config.json in {adapter}")
    elif not cfg.get("model"):
        yield finding("ADP001", "adapter_config.json has no model (base)")


@rule(
    "ADP002",
    "LoRA target modules that the base model does not have",
    severity="error",
    fix="lora_parameters.keys must name module paths inside a transformer block of the base "
    "(e.g. self_attn.q_proj); a key that matches nothing trains nothing.",
    compares="adapter_config.json lora_parameters.keys vs the base model's module names",
)
def missing_targets(keys: list[str], names: set[str]) -> Iterator[Finding]:
    absent = [k for k in keys if not any(n.endswith("." + k) or n == k for n in names)]
    if absent:
        yield finding("ADP002", f"not in the base: {', '.join(absent)}")


@rule(
    "ADP010",
    "The fused model does not carry the adapter",
    severity="error",
    fix="The fuse dropped the adapter (a known failure on some quantized bases): fuse again with "
    "--dequantize, or serve base + adapter.",
    compares="fused vs base + adapter logits, relative to fused vs bare base (ratio 0.25), same "
    "tokens",
)
def fuse_dropped(to_adapted: float, to_base: float, ratio: float) -> Iterator[Finding]:
    # calibration: the tiny llama (float16) after 12 LoRA steps, fused by mlx-lm 0.32.2: fused vs
    # base + adapter 0.0093, fused vs base 6.29 (the fuse rounds the merged weights to float16)
    if to_base <= 1e-4 or to_adapted > ratio * to_base:
        yield finding(
            "ADP010",
            f"max |logit| difference: fused vs base + adapter {to_adapted:.3g}, fused vs base "
            f"{to_base:.3g} (the fused model must sit within {ratio:g} x the adapter's effect "
            "of base + adapter)",
        )


def _args(**kw: Any) -> types.SimpleNamespace:
    from mlx_lm.lora import CONFIG_DEFAULTS

    cfg = json.loads(json.dumps(CONFIG_DEFAULTS))
    cfg.update(kw)
    return types.SimpleNamespace(**cfg)


def train(
    model: str,
    data: str,
    adapter: str,
    *,
    iters: int = 100,
    batch_size: int = 4,
    num_layers: int = -1,
    learning_rate: float = 1e-5,
    rank: int = 8,
    scale: float = 20.0,
    max_seq_length: int = 2048,
    steps_per_report: int = 10,
    seed: int = 0,
    plot: str | None = None,
) -> FinetuneResult:
    """Data diagnostics, then mlx-lm's LoRA trainer with a NaN guard and a loss history."""
    import mlx.core as mx
    from mlx_lm.lora import train_model
    from mlx_lm.tuner.callbacks import TrainingCallback
    from mlx_lm.tuner.datasets import load_dataset
    from mlx_lm.utils import load

    from genai_common.workflows.data import diagnose

    try:
        mlx_model, tokenizer = load(model)
    except Exception as exc:  # a model that will not load: a finding, not a traceback
        found = _run(train_failed, f"the base does not load: {type(exc).__name__}: {exc}"[:500])
        return FinetuneResult(adapter, found, {}, [], "fail")
    report, _ = diagnose(data, tokenizer, max_seq_length, batch_size)
    found = list(report.findings)
    metrics: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    if any(f.severity == "error" for f in found):
        return FinetuneResult(adapter, found, metrics, history, "fail")
    weight_bytes = sum(v.nbytes for _, v in _flat(mlx_model.parameters()))
    hidden = int(getattr(mlx_model.args, "hidden_size", 0) or 0)
    layers = len(mlx_model.layers)
    estimate = weight_bytes + batch_size * max_seq_length * hidden * layers * 12
    metrics["memory_estimate_bytes"] = estimate
    from genai_common.runtime.machine import total_memory

    found += _run(memory_estimate, estimate, total_memory() or 0)

    from tqdm import tqdm  # mlx-lm's own dependency

    bar = tqdm(total=iters, desc="LoRA training", unit="it", disable=None)

    class Guard(TrainingCallback):
        def on_train_loss_report(self, info: dict) -> None:
            history.append({"kind": "train", **_plain(info)})
            bar.update(int(info["iteration"]) - bar.n)
            bar.set_postfix(loss=f"{float(info['train_loss']):.3f}")
            loss = float(info["train_loss"])
            if not math.isfinite(loss):
                raise _NaNLoss(info["iteration"], loss)

        def on_val_loss_report(self, info: dict) -> None:
            history.append({"kind": "val", **_plain(info)})

    args = _args(
        model=model,
        data=data,
        train=True,
        adapter_path=adapter,
        iters=iters,
        batch_size=batch_size,
        num_layers=num_layers if num_layers > 0 else layers,
        learning_rate=learning_rate,
        lora_parameters={"rank": rank, "dropout": 0.0, "scale": scale},
        max_seq_length=max_seq_length,
        steps_per_report=steps_per_report,
        steps_per_eval=iters,
        save_every=iters,
        val_batches=-1,
        seed=seed,
    )
    mx.random.seed(seed)
    start = time.perf_counter()
    try:
        train_set, valid_set, _ = load_dataset(args, tokenizer)
        train_model(args, mlx_model, train_set, valid_set, Guard())
    except _NaNLoss as exc:
        found += _run(nan_loss, *exc.args)
    except Exception as exc:  # mlx-lm's own error as a finding
        found += _run(train_failed, f"{type(exc).__name__}: {exc}"[:500])
    bar.close()
    metrics["train_s"] = round(time.perf_counter() - start, 2)
    vals = [h["val_loss"] for h in history if h["kind"] == "val"]
    if len(vals) >= 2:
        metrics.update(val_loss_before=round(vals[0], 4), val_loss_after=round(vals[-1], 4))
        found += _run(val_not_down, vals[0], vals[-1])
    tps = [h["tokens_per_second"] for h in history if h["kind"] == "train"]
    if tps:
        metrics["tokens_per_second"] = round(sum(tps) / len(tps), 1)
    if plot and history:
        loss_plot(history, plot)
    verdict = "fail" if any(f.severity == "error" for f in found) else "pass"
    return FinetuneResult(adapter, found, metrics, history, verdict)


def _flat(params: Any) -> list[tuple[str, Any]]:
    from mlx.utils import tree_flatten

    return tree_flatten(params)


def _plain(info: dict) -> dict[str, Any]:
    return {
        k: (float(v) if hasattr(v, "item") or isinstance(v, float) else v) for k, v in info.items()
    }


def loss_plot(history: list[dict[str, Any]], path: str) -> str:
    """Train/validation loss and throughput against the iteration, one PNG (written atomically by
    bench's plot writer)."""
    from genai_common.bench.plots import new_figure, save_png

    fig = new_figure(figsize=(10, 4))
    ax, bx = fig.subplots(1, 2)
    for kind, key in (("train", "train_loss"), ("val", "val_loss")):
        pts = [(h["iteration"], h[key]) for h in history if h["kind"] == kind]
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", label=kind)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.legend()
    pts = [(h["iteration"], h["tokens_per_second"]) for h in history if h["kind"] == "train"]
    if pts:
        bx.plot(*zip(*pts, strict=True), marker="o")
    bx.set_xlabel("iteration")
    bx.set_ylabel("tokens / s")
    fig.tight_layout()
    save_png(fig, path)
    return path


def judge_adapter(adapter: str, base: str) -> list[Finding]:
    """adapter_config.json against the base: present, names a base, targets that exist."""
    from mlx_lm.utils import load

    try:
        with open(os.path.join(adapter, "adapter_config.json"), encoding="utf-8") as fh:
            cfg = json.load(fh)
    except (OSError, ValueError):
        cfg = None
    found = _run(adapter_config, adapter, cfg)
    keys = ((cfg or {}).get("lora_parameters") or {}).get("keys")
    if keys:
        try:
            model, _ = load(base)
        except Exception as exc:  # the base will not load: the targets cannot be judged
            return [*found, *_run(train_failed, f"the base does not load: {exc}"[:500])]
        found += _run(missing_targets, list(keys), {n for n, _ in model.named_modules()})
    return found


def fuse(base: str, adapter: str, output: str, *, dequantize: bool = False) -> list[Finding]:
    """mlx-lm's own fuse in a child process; its error as a finding."""
    cmd = [sys.executable, "-m", "mlx_lm", "fuse", "--model", base, "--adapter-path", adapter]
    cmd += ["--save-path", output] + (["--dequantize"] if dequantize else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return _run(train_failed, f"mlx_lm fuse exit {proc.returncode}: {tail[0]}")
    return []


def check_fused(
    fused: str, base: str, adapter: str, text: str, ratio: float = 0.25
) -> tuple[list[Finding], dict[str, float]]:
    """The fused model against base + adapter and against the bare base on the same tokens,
    through `genai verify` (genai_common.verify: teacher-forced, max |Δ log-prob| over the real
    vocabulary): the fused model must sit within `ratio` x the adapter's effect of base +
    adapter (ADP010)."""
    import tempfile

    from genai_common.verify import verify

    with tempfile.TemporaryDirectory(prefix="genai-fused-") as tmp:
        path = os.path.join(tmp, "text.txt")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        adapted = verify(fused, base, reference_adapter=adapter, text=path, localise=False)
        bare = verify(fused, base, text=path, localise=False)
    diffs = {
        "fused_vs_adapted": float(adapted.metrics.get("max_abs_dlogit", 0.0)),
        "fused_vs_base": float(bare.metrics.get("max_abs_dlogit", 0.0)),
        "fused_vs_adapted_kl": float(adapted.metrics.get("kl_mean", 0.0)),
    }
    return _run(fuse_dropped, diffs["fused_vs_adapted"], diffs["fused_vs_base"], ratio), diffs
