"""timeit/sync/Measurement: evaluation inside the clock, cold call apart, blocks, statistics."""

from __future__ import annotations

import json
import math
import statistics
import time

import pytest

from genai_common.runtime.timing import Measurement, sync, timeit

try:
    import mlx.core as mx
except ImportError:  # the torch environment has no MLX
    mx = None

needs_mlx = pytest.mark.skipif(mx is None, reason="needs an importable mlx (mlx[cpu] on Linux)")

SIZE = 384  # a matmul of this size: graph build ~10 us, evaluation ~10-100 ms on CPU


def _matmul_input():
    a = mx.random.normal((SIZE, SIZE))
    mx.eval(a)
    return a


def _construction_time(a, rounds: int = 20) -> float:
    """Median time to build the lazy graph of a @ a (never evaluated)."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        _ = a @ a
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _naive_median(fn, *args, repeat: int = 5) -> float:
    """A timer that does not evaluate: what a torch-style timer would measure on MLX."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _measures_the_work(median: float, construction: float) -> bool:
    return median >= 50 * construction


@needs_mlx
def test_timeit_measures_evaluation_not_graph_construction():
    a = _matmul_input()
    construction = _construction_time(a)
    measured = timeit(lambda x: x @ x, a, warmup=1, repeat=5)
    assert _measures_the_work(measured.median, construction), (measured, construction)
    # The same check on a timer that does not evaluate fails: the test can tell the difference.
    naive = _naive_median(lambda x: x @ x, a)
    assert not _measures_the_work(naive, construction), (naive, construction)


@needs_mlx
def test_timeit_evaluates_nested_outputs():
    a = _matmul_input()
    construction = _construction_time(a)
    measured = timeit(lambda x: {"out": [(x @ x,)], "n": 3}, a, warmup=0, repeat=3)
    assert _measures_the_work(measured.median, construction)


@needs_mlx
def test_sync_evaluates_a_tree():
    a = _matmul_input()
    tree = {"y": [a @ a, (a @ a + 1,)]}
    start = time.perf_counter()
    sync(tree, None, 3)
    first = time.perf_counter() - start
    start = time.perf_counter()
    mx.eval(tree["y"])  # already computed: only the eval call's own cost
    again = time.perf_counter() - start
    assert first > 10 * again


@needs_mlx
def test_inputs_are_evaluated_before_the_clock():
    a = _matmul_input()
    lazy = (a @ a) @ a  # expensive until evaluated; timeit must compute it before timing
    start = time.perf_counter()
    mx.eval((a @ a) @ a)
    work = time.perf_counter() - start
    measured = timeit(lambda x: x[0, 0], lazy, warmup=0, repeat=3)
    assert measured.cold < work / 3, (measured.cold, work)


@needs_mlx
def test_fn_is_called_every_iteration_and_cold_call_is_apart():
    calls = []

    def fn():
        calls.append(None)
        if len(calls) == 1:
            time.sleep(0.05)  # the first call pays a one-off cost
        return mx.array(len(calls)) + 1

    measured = timeit(fn, warmup=2, repeat=3, number=2)
    assert len(calls) == 1 + 2 + 3 * 2
    assert measured.number == 2 and len(measured.samples) == 3
    assert measured.cold >= 0.05
    assert measured.max < 0.05


def test_sub_millisecond_work_is_timed_in_blocks():
    measured = timeit(lambda: 1, min_time=0.05)
    assert measured.number > 1
    assert measured.median < 1e-4
    assert measured.overhead > 0
    assert len(measured.samples) >= 5


def test_adaptive_sampling_respects_min_time():
    start = time.perf_counter()
    measured = timeit(lambda: time.sleep(0.002), min_time=0.1, warmup=0)
    assert time.perf_counter() - start >= 0.1
    assert len(measured.samples) >= 5
    assert measured.number == 1


def test_statistics_on_known_samples():
    m = Measurement(samples=(1.0, 2.0, 3.0, 4.0, 100.0))
    assert (m.min, m.median, m.max) == (1.0, 3.0, 100.0)
    assert m.mean == 22.0
    assert m.iqr == 2.0  # p75 4.0 - p25 2.0
    assert math.isclose(m.p90, 61.6)
    assert m.noisy
    assert any("noisy" in w for w in m.warnings)
    steady = Measurement(samples=(2.0,) * 10)
    assert steady.stdev == 0 and steady.iqr == 0 and not steady.noisy
    assert steady.warnings == []


@needs_mlx
def test_to_json_is_serialisable():
    measured = timeit(lambda: mx.ones((8,)) * 2, repeat=5)
    data = json.loads(json.dumps(measured.to_json()))
    assert len(data["samples"]) == 5
    assert data["stats"]["median"] == measured.median
    assert data["cold"] > 0 and data["overhead"] > 0
    assert "median" in str(measured)


@needs_mlx
def test_returning_nothing_is_flagged():
    measured = timeit(lambda: None, repeat=5)
    assert any("returned nothing" in w for w in measured.warnings)


@needs_mlx
def test_outputs_are_evaluated_when_fn_imports_mlx_itself():
    """A process that imports MLX only inside fn: the first call's import must be noticed."""
    import subprocess
    import sys

    code = (
        "import sys, time\n"
        "from genai_common.runtime.timing import timeit\n"
        "assert 'mlx.core' not in sys.modules\n"
        "def fn():\n"
        "    import mlx.core as mx\n"
        "    a = getattr(fn, 'a', None)\n"
        "    if a is None:\n"
        "        a = fn.a = mx.random.normal((384, 384)); mx.eval(a)\n"
        "    return a @ a\n"
        "m = timeit(fn, warmup=1, repeat=3)\n"
        "print(m.median)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(out.stdout) > 1e-4  # a 384x384 matmul, not a 10-us graph build


@pytest.mark.torch
def test_timeit_and_sync_on_torch_tensors():
    torch = pytest.importorskip("torch", reason="needs torch")
    a = torch.randn(256, 256)
    sync({"x": [a @ a]}, None)  # CPU tensors: nothing to wait for, no error
    measured = timeit(lambda x: x @ x, a, repeat=3)
    assert measured.median > 0 and len(measured.samples) == 3
    assert not any("returned nothing" in w for w in measured.warnings)
