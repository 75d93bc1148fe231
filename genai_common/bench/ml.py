"""`genai bench` for a project's own MLX module: forward (and optional training-step) time per batch.

The input batch is random, shaped from config.json: ``input_shape`` (list, without the batch
axis) when given, else ``[input_dims]``. The module's output is evaluated inside the clock
(`timeit`); the first call in the process is the cold run, reported apart. A training step is
value_and_grad of a mean-squared loss against a random target plus an SGD update, with the new
parameters and optimizer state evaluated inside the clock.
"""

from __future__ import annotations

from typing import Any


def input_shape(config: dict[str, Any], batch_size: int) -> tuple[int, ...]:
    shape = config.get("input_shape")
    if shape:
        return (batch_size, *[int(d) for d in shape])
    if config.get("input_dims"):
        return (batch_size, int(config["input_dims"]))
    raise ValueError("config.json gives neither input_shape nor input_dims: cannot build a batch")


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
    x = mx.random.normal(input_shape(config, batch_size))
    mx.eval(x)
    clear_cache()
    with track_memory() as mem:
        forward = timeit(model, x, warmup=warmup, repeat=trials, label="forward")
    results = [
        _result(f"forward[batch {batch_size}]", "forward_s", forward, mem.mlx_peak, batch_size)
    ]
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
    return results
