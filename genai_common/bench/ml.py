"""`genai bench` for a project's own MLX module: forward (and optional training-step) time per batch.

The input batch is random, shaped from config.json: ``input_shape`` (list, without the batch
axis) when given, else the module's ``input_shape`` attribute, else ``[input_dims]``. The
module's output is evaluated inside the clock (`timeit`); the first call in the process is the cold run, reported apart. A training step is
value_and_grad of a mean-squared loss against a random target plus an SGD update, with the new
parameters and optimizer state evaluated inside the clock.

FLOP/s: `forward_flops` builds (never evaluates) one forward pass of the batch with the matmul
layers of `mlx.nn` (Linear, QuantizedLinear, Conv1d/2d/3d) counting as they are called: a Linear
is 2 x rows x in x out, a convolution 2 x output elements x kernel elements x input channels per
group. Attention score products and elementwise work are not counted, so the figure is a lower
bound; a training step is counted as 3x the forward (the backward pass costs about twice it).
"""

from __future__ import annotations

from typing import Any


def input_shape(config: dict[str, Any], batch_size: int, model: Any = None) -> tuple[int, ...]:
    """(batch, *one example's shape): the same source as the doctor's --infer
    (runtime.inference.ml_input_shape: config input_shape, the module's input_shape, the width)."""
    from genai_common.runtime.inference import ml_input_shape

    shape = ml_input_shape(config, model)
    if shape is None:
        raise ValueError(
            "neither config.json (input_shape, input_dims) nor the module (input_shape) gives an "
            "input shape: cannot build a batch"
        )
    return (batch_size, *shape)


def forward_flops(model: Any, x: Any) -> tuple[float, dict[str, int]]:
    """(FLOPs of one forward pass of `x`, calls per layer class) from the matmul layers of
    mlx.nn, counted while the graph is built; nothing is evaluated."""
    import math

    import mlx.nn as nn

    calls: dict[str, int] = {}
    total = 0.0

    def linear(layer: Any, inputs: Any, out: Any) -> float:
        return 2.0 * math.prod(out.shape[:-1]) * inputs.shape[-1] * out.shape[-1]

    def conv(layer: Any, inputs: Any, out: Any) -> float:
        return 2.0 * math.prod(out.shape) * math.prod(layer.weight.shape[1:])

    counters = {nn.Linear: linear, nn.QuantizedLinear: linear}
    counters.update({cls: conv for cls in (nn.Conv1d, nn.Conv2d, nn.Conv3d)})
    originals = {cls: cls.__call__ for cls in counters}

    def counting(cls: type, count: Any) -> Any:
        def call(self: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal total
            out = originals[cls](self, inputs, *args, **kwargs)
            total += count(self, inputs, out)
            calls[cls.__name__] = calls.get(cls.__name__, 0) + 1
            return out

        return call

    try:
        for cls, count in counters.items():
            cls.__call__ = counting(cls, count)  # type: ignore[method-assign]
        model(x)
    finally:
        for cls, original in originals.items():
            cls.__call__ = original  # type: ignore[method-assign]
    return total, calls


def _compute(flops: float, calls: dict[str, int], seconds: float | None, times: int) -> Any:
    if not flops or not seconds:
        return None
    layers = ", ".join(f"{c} {n}" for n, c in sorted(calls.items()))
    note = f"{layers} call(s) in one forward pass; attention products and elementwise not counted"
    if times > 1:
        note += f"; a training step counted as {times}x the forward"
    return {
        "flops_per_call": flops * times,
        "flops_per_s": flops * times / seconds,
        "flops_note": note,
    }


def _result(name: str, metric: str, m: Any, peak: int | None, batch: int) -> dict[str, Any]:
    from genai_common.bench.stats import summarize

    trials = [{metric: s} for s in m.samples]
    summary = {metric: summarize(m.samples).to_json()}
    if metric == "forward_s":
        for t in trials:
            t["samples_per_s"] = batch / t[metric]
        summary["samples_per_s"] = summarize([t["samples_per_s"] for t in trials]).to_json()
    if peak is not None:
        summary["peak_mlx"] = summarize([peak]).to_json()
    return {
        "subject": "A",
        "workload": name,
        "batch_size": batch,
        "calls_per_sample": m.number,
        "warmup_runs": 1 + m.warmup,
        "cold": {metric: m.cold} if m.cold is not None else None,
        "warmup": [],
        "trials": trials,
        "notes": list(m.notes),
        "summary": summary,
    }


def bench(
    model: Any,
    config: dict[str, Any],
    *,
    batch_size: int,
    trials: int,
    warmup: int,
    train_step: bool,
    seed: int = 0,
) -> list[dict[str, Any]]:
    import mlx.core as mx

    from genai_common.runtime.memory import clear_cache, track_memory
    from genai_common.runtime.timing import timeit

    mx.random.seed(seed)
    x = mx.random.normal(input_shape(config, batch_size, model))
    mx.eval(x)
    flops, calls = forward_flops(model, x)
    clear_cache()
    with track_memory() as mem:
        forward = timeit(model, x, warmup=warmup, repeat=trials, label="forward")
    results = [
        _result(f"forward[batch {batch_size}]", "forward_s", forward, mem.mlx_peak, batch_size)
    ]
    results[0]["roofline"] = _compute(flops, calls, forward.median, 1)
    if train_step:
        import mlx.nn as nn
        import mlx.optimizers as optim

        target = mx.random.normal(model(x).shape)
        optimizer = optim.SGD(learning_rate=1e-3)

        def loss_fn(m: Any, inputs: Any, y: Any) -> Any:
            return mx.mean((m(inputs) - y) ** 2)

        loss_and_grad = nn.value_and_grad(model, loss_fn)

        def step() -> Any:
            loss, grads = loss_and_grad(model, x, target)
            optimizer.update(model, grads)
            return loss, model.parameters(), optimizer.state

        clear_cache()
        with track_memory() as mem:
            train = timeit(step, warmup=warmup, repeat=trials, label="train step")
        results.append(
            _result(
                f"train-step[batch {batch_size}]", "train_step_s", train, mem.mlx_peak, batch_size
            )
        )
        results[-1]["roofline"] = _compute(flops, calls, train.median, 3)
    return results
