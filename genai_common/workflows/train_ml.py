"""Train an ml project's own MLX module (issue 11 part 4): `genai train`, `nox -s train`.

    train(model_dir, ...) -> TrainResult(findings, metrics, history, verdict, checkpoint, output)

The module is the project's (`[tool.genai] module`, else the class registered for the config's
model_type: runtime.loading), built from ``model_dir/config.json`` with fresh weights drawn from
the seed (``init="weights"`` starts from the folder's weights instead). The data:

- ``data``: a ``.npz`` or ``.safetensors`` file (or a folder holding ``train.npz`` /
  ``train.safetensors``) with arrays ``x`` (examples, batch axis first, the module's input
  layout) and ``y`` (integer class labels: cross-entropy; floats: mean squared error);
- none: a synthetic classification task built for the module: standard-normal inputs of its
  input shape, labelled by the argmax of a fixed random linear "teacher" of the flattened input
  into the module's output width (all drawn from the seed), so any module whose last output axis
  is its classes can learn it.

Each step draws its batch from (seed, step) alone and seeds MLX's generator from them, so a run
resumed from a checkpoint replays exactly the losses of an uninterrupted one. A checkpoint is one
safetensors file (``model.<name>`` weights, ``optimizer.<name>`` state, the step and settings in
its metadata) written to a temporary file and renamed over ``step_NNNNNN.safetensors``.
Time per step is from the clock around the evaluated step; peak memory from runtime.memory's
track_memory. A NaN or infinite loss stops the run (MLT001); the last checkpoint stays.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, NamedTuple

from genai_common.findings import Finding, declared, finding, rule, stamp

CHECKPOINT_GLOB = "step_*.safetensors"
FORMAT = "genai-train-ml"
SYNTHETIC_EXAMPLES = 1024
OPTIMIZERS = ("adam", "adamw", "sgd")


class TrainResult(NamedTuple):
    findings: list[Finding]
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    verdict: str
    checkpoint: str | None
    output: str | None


class TrainError(Exception):
    """The run could not start: ``finding`` says why (an MLT code with its fix)."""

    def __init__(self, found: Finding):
        super().__init__(found.message)
        self.finding = found


def _f(code: str, message: str, file: str | None = None) -> Finding:
    return stamp(finding(code, message, file=file), declared(train))


# --- data ----------------------------------------------------------------------------------------


def _data_file(data: str | Path) -> Path:
    path = Path(data)
    if path.is_dir():
        for name in ("train.npz", "train.safetensors"):
            if (path / name).is_file():
                return path / name
        found = sorted([*path.glob("*.npz"), *path.glob("*.safetensors")])
        if found:
            return found[0]
        raise TrainError(_f("MLT003", f"{path}: no train.npz, train.safetensors or *.npz"))
    if not path.is_file():
        raise TrainError(_f("MLT003", f"{path}: no such file"))
    return path


def load_data(data: str | Path) -> tuple[Any, Any, str]:
    """(x, y, the file read) as numpy arrays from a .npz or .safetensors file; TrainError
    MLT003 when it cannot be read or lacks x / y."""
    import numpy as np

    path = _data_file(data)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                arrays = {k: archive[k] for k in archive.files}
        elif path.suffix == ".safetensors":
            import mlx.core as mx

            arrays = {k: np.array(v) for k, v in mx.load(str(path)).items()}
        else:
            raise TrainError(_f("MLT003", f"{path}: not a .npz or .safetensors file"))
    except TrainError:
        raise
    except Exception as exc:
        first = (str(exc).splitlines() or [""])[0]
        raise TrainError(_f("MLT003", f"{path}: {type(exc).__name__}: {first}")) from None
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise TrainError(
            _f("MLT003", f"{path}: no array named {', '.join(missing)} (has: {sorted(arrays)})")
        )
    x, y = arrays["x"], arrays["y"]
    if x.ndim < 1 or y.ndim < 1 or len(x) != len(y) or len(x) == 0:
        raise TrainError(
            _f("MLT003", f"{path}: x {tuple(x.shape)} and y {tuple(y.shape)}: rows differ or none")
        )
    if np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    return x, y, str(path)


def synthetic_task(
    model: Any, input_shape: tuple[int, ...], seed: int, n: int = SYNTHETIC_EXAMPLES
) -> tuple[Any, Any]:
    """Inputs of the module's input shape and labels from a fixed random linear teacher of the
    flattened input into the module's output width: a task any classifier can learn."""
    import mlx.core as mx
    import numpy as np

    rng = np.random.default_rng([seed, 20261205])
    x = rng.standard_normal((n, *input_shape)).astype(np.float32)
    out = model(mx.array(x[:1]))
    classes = int(out.shape[-1])
    teacher = rng.standard_normal((math.prod(input_shape), classes)).astype(np.float32)
    y = (x.reshape(n, -1) @ teacher).argmax(axis=1).astype(np.int32)
    return x, y


def batch_indices(seed: int, step: int, n: int, batch_size: int) -> Any:
    """The examples of `step`: drawn from (seed, step) alone, so a resumed run draws the same."""
    import numpy as np

    rng = np.random.default_rng([seed, step])
    return np.sort(rng.choice(n, size=min(batch_size, n), replace=False))


# --- checkpoints ---------------------------------------------------------------------------------


def checkpoints(folder: str | Path) -> list[Path]:
    """The checkpoints in `folder`, oldest step first."""
    return sorted(Path(folder).glob(CHECKPOINT_GLOB))


def save_checkpoint(
    folder: str | Path, step: int, model: Any, optimizer: Any, settings: dict[str, Any]
) -> Path:
    """Weights, optimizer state and step in one safetensors file, written to a temporary name in
    the same folder and renamed (a killed run never leaves a cut checkpoint)."""
    import mlx.core as mx
    from mlx.utils import tree_flatten

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {f"model.{k}": v for k, v in tree_flatten(model.parameters())}
    arrays.update({f"optimizer.{k}": v for k, v in tree_flatten(optimizer.state)})
    path = folder / f"step_{step:06d}.safetensors"
    tmp = folder / f".tmp-{os.getpid()}-{path.name}"
    metadata = {"format": FORMAT, "step": str(step), "settings": json.dumps(settings)}
    try:
        mx.save_safetensors(str(tmp), arrays, metadata=metadata)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(
    path: str | Path, model: Any, optimizer: Any, settings: dict[str, Any] | None = None
) -> int:
    """Restore weights and optimizer state from `path`; returns its step. TrainError MLT007 when
    its tensors do not match the module, or its run's settings (all but the step count) differ
    from `settings`."""
    import mlx.core as mx
    from mlx.utils import tree_flatten, tree_unflatten

    arrays, metadata = mx.load(str(path), return_metadata=True)
    if metadata.get("format") != FORMAT:
        raise TrainError(_f("MLT007", f"{path}: not a genai train checkpoint", file=str(path)))
    if settings is not None:
        saved = json.loads(metadata.get("settings") or "{}")
        differ = sorted(k for k in settings if k != "steps" and saved.get(k) != settings[k])
        if differ:
            shown = ", ".join(f"{k} {saved.get(k)!r} -> {settings[k]!r}" for k in differ)
            raise TrainError(_f("MLT007", f"{path}: written by a run with other settings: {shown}"))
    weights = {k[6:]: v for k, v in arrays.items() if k.startswith("model.")}
    state = [(k[10:], v) for k, v in arrays.items() if k.startswith("optimizer.")]
    params = {k: tuple(v.shape) for k, v in tree_flatten(model.parameters())}
    have = {k: tuple(v.shape) for k, v in weights.items()}
    if params != have:
        differ = sorted(set(params) ^ set(have)) or sorted(
            k for k in params if params[k] != have.get(k)
        )
        raise TrainError(
            _f("MLT007", f"{path}: weights differ from the module at {', '.join(differ[:4])}")
        )
    model.load_weights(list(weights.items()))
    optimizer.state = tree_unflatten(state)
    optimizer.init(model.trainable_parameters())  # fills nothing when the state matches
    if {k for k, _ in tree_flatten(optimizer.state)} != {k for k, _ in state}:
        raise TrainError(_f("MLT007", f"{path}: optimizer state of another optimizer or module"))
    return int(metadata["step"])


# --- the run -------------------------------------------------------------------------------------


def _optimizer(name: str, learning_rate: float) -> Any:
    import mlx.optimizers as optim

    if name == "adam":
        return optim.Adam(learning_rate=learning_rate)
    if name == "adamw":
        return optim.AdamW(learning_rate=learning_rate)
    if name == "sgd":
        return optim.SGD(learning_rate=learning_rate, momentum=0.9)
    raise ValueError(f"optimizer {name!r} is not one of {OPTIMIZERS}")


def _loss_fn(classification: bool) -> Any:
    import mlx.nn as nn

    def loss(model: Any, x: Any, y: Any) -> Any:
        out = model(x)
        if classification:
            return nn.losses.cross_entropy(out, y, reduction="mean")
        return nn.losses.mse_loss(out.reshape(y.shape), y, reduction="mean")

    return loss


def _check_fit(model: Any, x: Any, y: Any, classification: bool) -> None:
    import mlx.core as mx
    import numpy as np

    try:
        out = model(mx.array(x[:2]))
        mx.eval(out)
    except Exception as exc:
        first = (str(exc).splitlines() or [""])[0]
        raise TrainError(
            _f(
                "MLT004",
                f"the module raised on x {tuple(x.shape[1:])}: {type(exc).__name__}: {first}",
            )
        ) from None
    if classification:
        classes = int(out.shape[-1])
        low, high = int(np.min(y)), int(np.max(y))
        if low < 0 or high >= classes:
            raise TrainError(
                _f("MLT005", f"labels span [{low}, {high}] but the module has {classes} outputs")
            )
        if tuple(out.shape[1:-1]) != tuple(y.shape[1:]):  # one label per output position
            raise TrainError(
                _f(
                    "MLT004",
                    f"labels {tuple(y.shape[1:])} vs output {tuple(out.shape[1:])} per example: "
                    "logits (..., classes) with one label per position expected",
                )
            )
    elif math.prod(out.shape[1:]) != math.prod(y.shape[1:]):
        raise TrainError(
            _f(
                "MLT004",
                f"targets {tuple(y.shape[1:])} vs output {tuple(out.shape[1:])} per example",
            )
        )


@rule(
    "MLT001",
    "The training loss became NaN or infinite",
    severity="error",
    fix="Lower --learning-rate (or use adam instead of sgd), check the data for NaN/Inf and "
    "the module for divisions or logs of zero; the run stopped at that step and the last "
    "checkpoint was kept (resume from it with --resume after the fix).",
    compares="every step's loss is finite",
)
@rule(
    "MLT002",
    "The training loss did not go down",
    severity="warning",
    fix="Raise --steps or --learning-rate, check that the labels match the inputs (a shuffled y "
    "cannot be learned) and that the module's output is its prediction (logits for labels).",
    compares="mean loss of the last tenth of the steps vs the first tenth",
)
@rule(
    "MLT003",
    "The training data cannot be read",
    severity="error",
    fix="Give --data a .npz or .safetensors file (or a folder with train.npz / "
    "train.safetensors) holding arrays named x (inputs, batch axis first) and y (labels or "
    "targets), with as many rows in y as in x.",
    compares="the data file exists, opens, and holds x and y with equal first axes",
)
@rule(
    "MLT004",
    "The data does not fit the module",
    severity="error",
    fix="The module raised on a batch of x, or its output does not match y: give x the input "
    "layout the module expects (MLX convolutions are channels-last: N, H, W, C) and y one label "
    "per example (classification) or the output's shape (regression).",
    compares="one forward pass and loss on a batch of the data",
)
@rule(
    "MLT005",
    "Class labels outside the module's outputs",
    severity="error",
    fix="Labels must be integers in [0, classes): the module's last output axis is its classes; "
    "give it more outputs or re-number the labels.",
    compares="min/max of integer y vs the width of the module's output",
)
@rule(
    "MLT006",
    "--resume found no checkpoint: the run started from step 0",
    severity="warning",
    fix="Nothing to resume in the checkpoint folder (first run, or another --checkpoint-dir): "
    "this run started afresh and wrote its own checkpoints.",
    compares="step_*.safetensors in the checkpoint folder",
)
@rule(
    "MLT007",
    "The checkpoint does not match the module or the run",
    severity="error",
    fix="The checkpoint was written by another module, config or optimizer (names or shapes "
    "differ): resume with the same settings, or start afresh without --resume (or with another "
    "--checkpoint-dir).",
    compares="checkpoint tensors vs the module's parameters and the optimizer's state",
)
@rule(
    "MLT010",
    "Training run summary",
    severity="info",
    fix="Nothing to fix.",
    compares="first and last loss, steps, time per step, peak memory",
)
def train(
    model_dir: str | Path,
    *,
    data: str | Path | None = None,
    steps: int = 200,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    optimizer: str = "adam",
    seed: int = 0,
    checkpoint_dir: str | Path = "checkpoints",
    checkpoint_every: int = 50,
    resume: bool = False,
    output: str | Path | None = None,
    init: str = "fresh",
    model_class: Any = None,
    progress: bool = False,
) -> TrainResult:
    """Train the module of `model_dir` (see the module docstring). Bad input comes back as a
    finding in the result (verdict "fail"), never an exception; a module that will not load
    raises runtime.loading.ModuleLoadError (its LOAD05x codes) for the caller to report."""
    import mlx.core as mx
    import mlx.nn as nn
    import numpy as np

    from genai_common.runtime.inference import ml_input_shape
    from genai_common.runtime.loading import build_module, load_ml
    from genai_common.runtime.memory import track_memory

    found: list[Finding] = []
    settings = {
        "steps": steps,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "optimizer": optimizer,
        "seed": seed,
        "init": init,
    }
    mx.random.seed(seed)
    if init == "weights":
        loaded = load_ml(model_dir, model_class)
        model, config = loaded.model, loaded.config or {}
    else:  # fresh weights from the seed: the class and config as load_ml would pick them
        from genai_common.runtime.loading import module_class_for, read_config

        config = read_config(model_dir)
        if config is None:
            return TrainResult(
                [_f("MLT003", f"{model_dir}: no readable config.json")], {}, [], "fail", None, None
            )
        model = build_module(module_class_for(config, model_class, Path(model_dir)), config)
        mx.eval(model.parameters())
    model.train()
    try:
        if data is not None:
            x, y, source = load_data(data)
        else:
            shape = ml_input_shape(config, model)
            if shape is None:
                raise TrainError(
                    _f(
                        "MLT004",
                        "no input shape for the synthetic task: give config.json "
                        "input_shape (or input_dims), or --data",
                    )
                )
            x, y = synthetic_task(model, shape, seed)
            source = f"synthetic classification ({len(x)} examples, seed {seed})"
        classification = bool(np.issubdtype(y.dtype, np.integer))
        if not classification:
            y = y.astype(np.float32)
        _check_fit(model, x, y, classification)
    except TrainError as exc:
        return TrainResult([exc.finding], {}, [], "fail", None, None)
    opt = _optimizer(optimizer, learning_rate)
    opt.init(model.trainable_parameters())
    start = 0
    old = checkpoints(checkpoint_dir)
    if resume and old:
        try:
            start = load_checkpoint(old[-1], model, opt, settings)
        except TrainError as exc:
            return TrainResult([exc.finding], {}, [], "fail", None, None)
    elif resume:
        found.append(_f("MLT006", f"no checkpoint in {checkpoint_dir}: started from step 0"))
    else:  # a fresh run: an older run's later steps must never be what a --resume picks up
        for path in old:
            path.unlink(missing_ok=True)
    step_fn = nn.value_and_grad(model, _loss_fn(classification))
    history: list[dict[str, Any]] = []
    last_ckpt: Path | None = None
    bar = None
    if progress:
        from genai_common.bench.progress import Progress

        bar = Progress(enabled=None)
        bar.start("train", steps - start)
    stopped = None
    started = time.perf_counter()
    with track_memory() as mem:
        for step in range(start + 1, steps + 1):
            idx = batch_indices(seed, step, len(x), batch_size)
            mx.random.seed(seed * 1_000_003 + step)  # dropout and other randomness, per step
            t0 = time.perf_counter()
            loss, grads = step_fn(model, mx.array(x[idx]), mx.array(y[idx]))
            opt.update(model, grads)
            mx.eval(loss, model.parameters(), opt.state)
            value = float(loss.item())
            history.append({"step": step, "loss": value, "seconds": time.perf_counter() - t0})
            if bar is not None:
                bar.advance(f"train step {step}/{steps} loss {value:.4f}")
            if not math.isfinite(value):
                stopped = step
                found.append(
                    _f(
                        "MLT001",
                        f"loss {value} at step {step}; last checkpoint: {last_ckpt or 'none'}",
                    )
                )
                break
            if step % checkpoint_every == 0 or step == steps:
                last_ckpt = save_checkpoint(checkpoint_dir, step, model, opt, settings)
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - started
    losses = [h["loss"] for h in history if math.isfinite(h["loss"])]
    metrics: dict[str, Any] = {
        "data": source,
        "steps": len(history),
        "first_step": start + 1,
        "train_s": round(seconds, 3),
    }
    if history:
        per = sorted(h["seconds"] for h in history)
        metrics["step_ms_median"] = round(1000 * per[len(per) // 2], 3)
    peak = mem.mlx_peak_delta if mem.mlx_peak_delta is not None else mem.rss_peak_delta
    if peak is not None:
        metrics["peak_mib"] = round(peak / 2**20, 2)
        metrics["peak_of"] = "MLX" if mem.mlx_peak_delta is not None else "RSS"
    if losses:
        metrics["first_loss"] = round(losses[0], 4)
        metrics["last_loss"] = round(losses[-1], 4)
        tenth = max(1, len(losses) // 10)
        head, tail = np.mean(losses[:tenth]), np.mean(losses[-tenth:])
        if stopped is None and len(losses) >= 10 and start == 0 and tail >= head:
            found.append(
                _f(
                    "MLT002",
                    f"mean loss {tail:.4f} over the last {tenth} steps vs {head:.4f} "
                    f"over the first {tenth}",
                )
            )
    out_path = None
    if stopped is None and output is not None and history:
        out_path = _write_model(output, model, config)
    summary = (
        f"steps {start + 1}-{start + len(history)}: loss {metrics.get('first_loss')} -> "
        f"{metrics.get('last_loss')}, {metrics.get('step_ms_median')} ms/step, peak "
        f"{metrics.get('peak_mib')} MiB ({metrics.get('peak_of')})"
    )
    found.append(_f("MLT010", summary))
    verdict = (
        "fail"
        if any(f.severity == "error" for f in found)
        else "warn"
        if any(f.severity == "warning" for f in found)
        else "pass"
    )
    return TrainResult(
        found, metrics, history, verdict, str(last_ckpt) if last_ckpt else None, out_path
    )


def loss_plot(history: list[dict[str, Any]], path: str | Path) -> str:
    """Loss and time per step against the step, one PNG written atomically (bench's writer)."""
    from genai_common.bench.plots import new_figure, save_png

    fig = new_figure(figsize=(10, 4))
    ax, bx = fig.subplots(1, 2)
    steps = [h["step"] for h in history]
    ax.plot(steps, [h["loss"] for h in history])
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    bx.plot(steps, [1000 * h["seconds"] for h in history])
    bx.set_xlabel("step")
    bx.set_ylabel("ms / step")
    fig.tight_layout()
    save_png(fig, path)
    return str(path)


def _write_model(output: str | Path, model: Any, config: dict[str, Any]) -> str:
    """The trained module as a model folder (config.json + model.safetensors) that load_ml, the
    doctor, bench and verify read; each file written to a temporary name and renamed."""
    import mlx.core as mx
    from mlx.utils import tree_flatten

    from genai_common.runtime.files import write_text

    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    arrays = dict(sorted(tree_flatten(model.parameters())))
    tmp = out / f".tmp-{os.getpid()}-model.safetensors"
    try:
        mx.save_safetensors(str(tmp), arrays, metadata={"format": "mlx"})
        os.replace(tmp, out / "model.safetensors")
    finally:
        tmp.unlink(missing_ok=True)
    write_text(out / "config.json", json.dumps(config, indent=2) + "\n")
    return str(out)
