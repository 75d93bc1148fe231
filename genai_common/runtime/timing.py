"""Timing that is correct under lazy evaluation.

MLX builds a graph and computes nothing until something evaluates it: timing ``a @ b`` measures
graph construction (microseconds), not the matmul (milliseconds to seconds). ``mx.synchronize()``
does not evaluate either. So ``timeit`` calls ``fn`` every iteration and evaluates what it returns
inside the clock (``mx.eval`` on every MLX array in the returned tree; ``torch.cuda`` /
``torch.mps`` synchronize for torch tensors on those devices). ``fn`` must *return* its outputs:
work it builds and drops is never computed, and work it hides cannot be seen.

Other rules it follows: arguments are evaluated before the clock starts; the first (cold) call is
kept apart from the samples (compilation, kernel JIT, lazy weight loading); the cost of the clock
plus evaluating an already computed output is measured and reported; work shorter than
``block_time`` is timed in blocks of calls so the clock's own cost does not dominate; and the
result says when it is noisy (IQR/median above 10%).
"""

from __future__ import annotations

import dataclasses
import gc
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

NOISE_THRESHOLD = 0.10  # IQR/median above this: the machine moved under the measurement


def _leaves(tree: Any) -> Iterator[Any]:
    """Every leaf of nested lists, tuples, sets, dicts (MLX modules are dicts) and dataclasses."""
    if isinstance(tree, (list, tuple, set, frozenset)):
        for item in tree:
            yield from _leaves(item)
    elif isinstance(tree, dict):
        for item in tree.values():
            yield from _leaves(item)
    elif dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        for field in dataclasses.fields(tree):
            yield from _leaves(getattr(tree, field.name))
    elif tree is not None:
        yield tree


def _evaluate(tree: Any, mx: Any, torch: Any) -> int:
    """Evaluate MLX arrays and wait for torch devices in ``tree``; returns how many leaves were
    device work (0 when there was nothing to wait for)."""
    if tree is None:
        return 0
    arrays: list[Any] = []
    devices: set[str] = set()
    for leaf in _leaves(tree):
        if mx is not None and isinstance(leaf, mx.array):
            arrays.append(leaf)
        elif torch is not None and isinstance(leaf, torch.Tensor):
            devices.add(leaf.device.type)
    if arrays:
        mx.eval(arrays)
    for device in devices:
        if device == "cuda":
            torch.cuda.synchronize()
        elif device == "mps":
            torch.mps.synchronize()
        elif device == "xpu":
            torch.xpu.synchronize()
    return len(arrays) + len(devices)


def _frameworks() -> tuple[Any, Any]:
    """mlx.core and torch if this process already imported them (never imports them)."""
    return sys.modules.get("mlx.core"), sys.modules.get("torch")


def sync(*outputs: Any) -> None:
    """Make the work behind ``outputs`` finish: ``mx.eval`` every MLX array in the tree, and
    synchronize the torch devices (cuda, mps, xpu) that tensors in the tree live on. Use it in a
    hand-made timer right before reading the clock."""
    mx, torch = _frameworks()
    _evaluate(outputs, mx, torch)


def sorted_quantile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile of already sorted samples: linear interpolation between the closest ranks
    (numpy's default); NaN for no samples. The one quantile of the runtime and of genai bench."""
    if not ordered:
        return math.nan
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def format_seconds(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns"


@dataclasses.dataclass(frozen=True)
class Measurement:
    """Raw samples (seconds per call) and what to read from them.

    ``number`` calls were timed together for each sample (blocks for sub-``block_time`` work);
    ``cold`` is the first call alone; ``overhead`` is the measured cost, per timed call, of reading
    the clock and evaluating an already computed output; ``notes`` are warnings found while timing.
    """

    samples: tuple[float, ...]
    number: int = 1
    cold: float | None = None
    warmup: int = 0
    overhead: float = 0.0
    label: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def _sorted(self) -> list[float]:
        return sorted(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples) if self.samples else math.nan

    @property
    def max(self) -> float:
        return max(self.samples) if self.samples else math.nan

    @property
    def median(self) -> float:
        return sorted_quantile(self._sorted, 0.5)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples) if self.samples else math.nan

    @property
    def p90(self) -> float:
        return sorted_quantile(self._sorted, 0.90)

    @property
    def p99(self) -> float:
        return sorted_quantile(self._sorted, 0.99)

    @property
    def stdev(self) -> float:
        return statistics.stdev(self.samples) if len(self.samples) > 1 else 0.0

    @property
    def iqr(self) -> float:
        ordered = self._sorted
        return sorted_quantile(ordered, 0.75) - sorted_quantile(ordered, 0.25)

    @property
    def cv(self) -> float:
        mean = self.mean
        return self.stdev / mean if mean else math.nan

    @property
    def noisy(self) -> bool:
        """IQR/median above 10% (torch.utils.benchmark's threshold)."""
        median = self.median
        return bool(median) and self.iqr / median > NOISE_THRESHOLD

    @property
    def warnings(self) -> list[str]:
        found = list(self.notes)
        median = self.median
        if self.noisy:
            found.append(f"noisy: IQR is {self.iqr / median:.0%} of the median (> 10%)")
        if len(self.samples) < 5:
            found.append(f"only {len(self.samples)} samples")
        if median and self.overhead and median < 20 * self.overhead:
            found.append(
                f"median {format_seconds(median)} is within 20x of the timer/eval overhead "
                f"{format_seconds(self.overhead)}"
            )
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": 1,
            "label": self.label,
            "unit": "s",
            "samples": list(self.samples),
            "number": self.number,
            "cold": self.cold,
            "warmup": self.warmup,
            "overhead": self.overhead,
            "stats": {
                name: getattr(self, name)
                for name in ("min", "median", "mean", "p90", "p99", "max", "stdev", "iqr", "cv")
            },
            "noisy": self.noisy,
            "warnings": self.warnings,
        }

    def __str__(self) -> str:
        head = f"{self.label}: " if self.label else ""
        text = (
            f"{head}median {format_seconds(self.median)} "
            f"(IQR {format_seconds(self.iqr)}, min {format_seconds(self.min)}, "
            f"n={len(self.samples)}x{self.number}, cold {format_seconds(self.cold)})"
        )
        return text + (" [noisy]" if self.noisy else "")


def _measure_overhead(output: Any, mx: Any, torch: Any, rounds: int = 200) -> float:
    """Median cost of a clock pair around evaluating an output that is already computed."""
    clock = time.perf_counter
    costs = []
    for _ in range(rounds):
        start = clock()
        _evaluate(output, mx, torch)
        costs.append(clock() - start)
    return sorted_quantile(sorted(costs), 0.5)


def timeit(
    fn: Callable[..., Any],
    *args: Any,
    warmup: int = 1,
    repeat: int | None = None,
    number: int | None = None,
    min_time: float = 0.2,
    max_time: float = 10.0,
    min_repeat: int = 5,
    block_time: float = 1e-3,
    label: str | None = None,
    disable_gc: bool = True,
    **kwargs: Any,
) -> Measurement:
    """Time ``fn(*args, **kwargs)``, evaluating its return value inside the clock.

    warmup: calls after the cold one and before sampling. repeat: exact number of samples; if
    None, sample until ``min_time`` seconds and ``min_repeat`` samples, at most ``max_time``.
    number: calls per sample; if None, 1 for work of ``block_time`` or more, else enough calls to
    fill ``block_time``. ``fn``'s own keyword arguments cannot use these names.
    """
    mx, torch = _frameworks()
    clock = time.perf_counter
    _evaluate((args, kwargs), mx, torch)  # inputs are computed before any clock starts

    start = clock()
    output = fn(*args, **kwargs)
    mx, torch = _frameworks()  # the first call may have imported them
    device_work = _evaluate(output, mx, torch)
    cold = clock() - start
    notes = []
    if not device_work and mx is not None and output is None:
        notes.append("fn returned nothing: lazy MLX work it built was never evaluated")

    warm: list[float] = []
    for _ in range(warmup):
        start = clock()
        output = fn(*args, **kwargs)
        _evaluate(output, mx, torch)
        warm.append(clock() - start)
    estimate = max(min(warm) if warm else cold, 1e-9)
    overhead = _measure_overhead(output, mx, torch)
    if number is None:
        number = 1 if estimate >= block_time else min(10**6, math.ceil(block_time / estimate))

    samples: list[float] = []
    gc_was_enabled = gc.isenabled()
    if disable_gc:
        gc.disable()
    try:
        begin = clock()
        while True:
            start = clock()
            for _ in range(number):
                output = fn(*args, **kwargs)
                _evaluate(output, mx, torch)
            samples.append((clock() - start) / number)
            if repeat is not None:
                if len(samples) >= repeat:
                    break
                continue
            elapsed = clock() - begin
            if (elapsed >= min_time and len(samples) >= min_repeat) or elapsed >= max_time:
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    return Measurement(
        samples=tuple(samples),
        number=number,
        cold=cold,
        warmup=warmup,
        overhead=overhead,
        label=label,
        notes=tuple(notes),
    )
