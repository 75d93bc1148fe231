"""Memory: clear caches, take snapshots, and track the peak inside a block.

MLX keeps freed buffers in a cache for reuse: memory that "does not come back" after ``del`` is
usually cache, not a leak. Report active and cache apart, and clear the cache where a phase ends
(model swap, between benchmark trials), not every step.

Fields that a backend or version cannot tell are None, never a fake 0: MLX before 0.24.1 off
Metal had stub counters; torch figures are read only when this process already imported torch.
MLX's peak counter is process-global and mlx-lm never resets it; ``track_memory`` scopes it to its
block and keeps enclosing blocks correct (see there).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from genai_common.runtime import mlx_compat

PSI_PATH = Path("/proc/pressure/memory")


def _mlx() -> Any:
    """mlx.core with usable memory counters, or None."""
    mx, _ = mlx_compat.import_mlx()
    if mx is None or not mlx_compat.counters_supported(mx):
        return None
    return mx


def _mlx_read(mx: Any, name: str) -> int | None:
    fn = mlx_compat.memory_fn(mx, name)
    if fn is None:
        return None
    try:
        return int(fn())
    except Exception:
        return None


def _mlx_synchronize(mx: Any) -> None:
    with contextlib.suppress(Exception):
        mx.synchronize()


def clear_cache() -> int:
    """gc, then release MLX's buffer cache (and torch's CUDA/MPS caches when torch is loaded).

    Returns the bytes of MLX cache released (0 without MLX)."""
    gc.collect()
    released = 0
    mx = _mlx()
    if mx is not None:
        _mlx_synchronize(mx)
        before = _mlx_read(mx, "get_cache_memory") or 0
        clear = mlx_compat.memory_fn(mx, "clear_cache")
        if clear is not None:
            clear()
        after = _mlx_read(mx, "get_cache_memory") or 0
        released = max(0, before - after)
    torch = sys.modules.get("torch")
    if torch is not None:
        with contextlib.suppress(Exception):
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        with contextlib.suppress(Exception):
            if torch.backends.mps.is_available():
                torch.mps.empty_cache()
    return released


@dataclasses.dataclass(frozen=True)
class MemorySnapshot:
    """Bytes, or None where this machine/version cannot tell.

    mlx_peak is MLX's process-wide high-water mark of active memory (see track_memory for a
    scoped one). pressure is "normal", "warn" or "critical" (macOS kernel level; on Linux derived
    from PSI: full avg10 >= 10% critical, some avg10 >= 10% warn); pressure_detail holds the raw
    figures.
    """

    mlx_backend: str | None = None
    mlx_active: int | None = None
    mlx_peak: int | None = None
    mlx_cache: int | None = None
    mlx_memory_limit: int | None = None
    mlx_cache_limit: int | None = None
    rss: int | None = None
    footprint: int | None = None
    system_total: int | None = None
    system_available: int | None = None
    swap_used: int | None = None
    pressure: str | None = None
    pressure_detail: dict[str, float] | None = None
    torch_cuda_allocated: int | None = None
    torch_cuda_reserved: int | None = None
    torch_cuda_peak: int | None = None
    torch_mps_allocated: int | None = None
    torch_mps_driver: int | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _linux_pressure() -> tuple[str | None, dict[str, float] | None]:
    try:
        text = PSI_PATH.read_text()
    except OSError:
        return None, None
    detail: dict[str, float] = {}
    for line in text.splitlines():
        kind, *fields = line.split()
        for field in fields:
            key, _, value = field.partition("=")
            if key.startswith("avg"):
                detail[f"{kind}_{key}"] = float(value)
    if not detail:
        return None, None
    if detail.get("full_avg10", 0.0) >= 10:
        level = "critical"
    elif detail.get("some_avg10", 0.0) >= 10:
        level = "warn"
    else:
        level = "normal"
    return level, detail


def _pressure() -> tuple[str | None, dict[str, float] | None]:
    if sys.platform == "darwin":
        from genai_common.runtime import macos

        return macos.pressure_level(), None
    if sys.platform.startswith("linux"):
        return _linux_pressure()
    return None, None


def _torch_fields() -> dict[str, int | None]:
    torch = sys.modules.get("torch")
    fields: dict[str, int | None] = {}
    if torch is None:
        return fields
    with contextlib.suppress(Exception):
        if torch.cuda.is_available():
            fields["torch_cuda_allocated"] = int(torch.cuda.memory_allocated())
            fields["torch_cuda_reserved"] = int(torch.cuda.memory_reserved())
            fields["torch_cuda_peak"] = int(torch.cuda.max_memory_allocated())
    with contextlib.suppress(Exception):
        if torch.backends.mps.is_available():
            fields["torch_mps_allocated"] = int(torch.mps.current_allocated_memory())
            fields["torch_mps_driver"] = int(torch.mps.driver_allocated_memory())
    return fields


def _process_rss() -> int | None:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:
        return None


def memory_snapshot(*, synchronize: bool = True) -> MemorySnapshot:
    """Read every memory figure this machine offers (MLX, process, system, pressure, torch).

    synchronize: wait for MLX's queued work first, so the counters include it."""
    import psutil

    fields: dict[str, Any] = {}
    mx, _ = mlx_compat.import_mlx()
    if mx is not None:
        fields["mlx_backend"] = mlx_compat.backend(mx)
        if mlx_compat.counters_supported(mx):
            if synchronize:
                _mlx_synchronize(mx)
            fields.update(
                mlx_active=_mlx_read(mx, "get_active_memory"),
                mlx_peak=_mlx_read(mx, "get_peak_memory"),
                mlx_cache=_mlx_read(mx, "get_cache_memory"),
                mlx_memory_limit=mlx_compat.memory_limit(mx),
                mlx_cache_limit=mlx_compat.cache_limit(mx),
            )
    vm = psutil.virtual_memory()
    fields.update(
        rss=_process_rss(),
        system_total=int(vm.total),
        system_available=int(vm.available),
    )
    with contextlib.suppress(Exception):
        fields["swap_used"] = int(psutil.swap_memory().used)
    if sys.platform == "darwin":
        from genai_common.runtime import macos

        fields["footprint"] = macos.phys_footprint()
    fields["pressure"], fields["pressure_detail"] = _pressure()
    fields.update(_torch_fields())
    return MemorySnapshot(**fields)


# -- scoped peaks -------------------------------------------------------------------------------
#
# MLX (and torch.cuda) keep one process-wide peak counter. To scope it to a block we must reset it
# at entry, which would erase what an enclosing block has seen so far. So every open tracker keeps
# `folded`: the highest counter value read while it was open. Before any reset, the current
# counter value is folded into every open tracker; at exit a tracker's peak is the max of what it
# folded and the counter's final value. An enclosing tracker thus sees peaks from before, inside
# and after any nested block.

_open: list[MemoryTrack] = []
_lock = threading.Lock()


def _peak_counters() -> dict[str, tuple[Any, Any]]:
    """name -> (read peak, reset peak) for the counters this process has."""
    counters: dict[str, tuple[Any, Any]] = {}
    mx = _mlx()
    if mx is not None:
        read = mlx_compat.memory_fn(mx, "get_peak_memory")
        reset = mlx_compat.memory_fn(mx, "reset_peak_memory")
        if read is not None and reset is not None:

            def read_mlx() -> int:
                _mlx_synchronize(mx)
                return int(read())

            counters["mlx"] = (read_mlx, reset)
    torch = sys.modules.get("torch")
    if torch is not None:
        with contextlib.suppress(Exception):
            if torch.cuda.is_available():
                counters["torch_cuda"] = (
                    lambda: int(torch.cuda.max_memory_allocated()),
                    torch.cuda.reset_peak_memory_stats,
                )
    return counters


@dataclasses.dataclass
class MemoryTrack:
    """What ``track_memory`` saw. Peaks are absolute bytes (they include what was allocated before
    the block); ``*_delta`` subtract the value at entry. None where not measurable."""

    before: MemorySnapshot | None = None
    after: MemorySnapshot | None = None
    mlx_peak: int | None = None
    torch_cuda_peak: int | None = None
    rss_peak: int | None = None
    samples: int = 0
    folded: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def mlx_peak_delta(self) -> int | None:
        if self.mlx_peak is None or self.before is None or self.before.mlx_active is None:
            return None
        return self.mlx_peak - self.before.mlx_active

    @property
    def rss_peak_delta(self) -> int | None:
        if self.rss_peak is None or self.before is None or self.before.rss is None:
            return None
        return self.rss_peak - self.before.rss

    def to_json(self) -> dict[str, Any]:
        return {
            "mlx_peak": self.mlx_peak,
            "mlx_peak_delta": self.mlx_peak_delta,
            "torch_cuda_peak": self.torch_cuda_peak,
            "rss_peak": self.rss_peak,
            "rss_peak_delta": self.rss_peak_delta,
            "rss_samples": self.samples,
            "before": self.before.to_json() if self.before else None,
            "after": self.after.to_json() if self.after else None,
        }


def _fold(counters: dict[str, tuple[Any, Any]], trackers: list[MemoryTrack]) -> None:
    for name, (read, _) in counters.items():
        value = read()
        for tracker in trackers:
            tracker.folded[name] = max(tracker.folded.get(name, 0), value)


class _RssSampler(threading.Thread):
    def __init__(self, interval: float) -> None:
        super().__init__(name="genai-rss-sampler", daemon=True)
        self.interval = interval
        self.peak: int | None = None
        self.count = 0
        self.stop = threading.Event()

    def sample(self) -> None:
        rss = _process_rss()
        if rss is not None:
            self.peak = rss if self.peak is None else max(self.peak, rss)
            self.count += 1

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.interval)


@contextlib.contextmanager
def track_memory(*, interval: float = 0.01) -> Iterator[MemoryTrack]:
    """Track the peak memory inside the ``with`` block; read the yielded object after the block.

    MLX (and torch CUDA) peak: the process-wide counter is reset at entry (after its value is
    folded into enclosing trackers) and read at exit; nested trackers stay correct. Anything else
    that resets the counter inside the block (your own code) makes the MLX peak too low.
    RSS peak: a thread samples the process RSS every ``interval`` seconds (a spike shorter than
    that can be missed).
    """
    track = MemoryTrack(before=memory_snapshot())
    counters = _peak_counters()
    with _lock:
        _fold(counters, _open)
        for _, reset in counters.values():
            reset()
        _open.append(track)
    sampler = _RssSampler(interval)
    sampler.sample()
    sampler.start()
    try:
        yield track
    finally:
        sampler.stop.set()
        sampler.join()
        sampler.sample()
        with _lock:
            _fold(counters, _open)
            _open.remove(track)
        track.mlx_peak = track.folded.get("mlx")
        track.torch_cuda_peak = track.folded.get("torch_cuda")
        track.rss_peak = sampler.peak
        track.samples = sampler.count
        track.after = memory_snapshot()


# -- naming a peak -------------------------------------------------------------------------------

# The peaks a record can carry (a LoadRecord, a MemoryTrack's JSON, a bench trial), in the order
# one is chosen, and what each one measures. Issue 16: "load peak" was MLX memory for an llm and
# the process RSS for a diffusion pipeline, both printed as "peak": the label now says which.
PEAKS: tuple[tuple[str, str], ...] = (
    ("mlx_peak", "MLX active peak"),  # MLX's counter: arrays alive, not its buffer cache
    ("peak_mlx", "MLX active peak"),
    ("torch_cuda_peak", "torch device peak"),  # torch.cuda / MPS allocator
    ("peak_torch", "torch device peak"),
    ("torch_cpu_peak", "torch CPU tensor peak"),  # torch_cpu_peak: live CPU tensor bytes
    ("rss_peak", "process RSS peak"),  # sampled resident set: everything, caches included
    ("peak_rss", "process RSS peak"),
)


def peak_of(record: dict[str, Any]) -> tuple[str, int] | None:
    """(label, bytes) of the first peak `record` holds (PEAKS order), None when it holds none."""
    for key, label in PEAKS:
        value = record.get(key)
        if isinstance(value, (int, float)) and value > 0:
            return label, int(value)
    return None


def describe_peak(record: dict[str, Any]) -> str:
    """ "MLX active peak 1.20 MiB" (the one byte formatter, model.values.gib); "" without one."""
    from genai_common.model.values import gib

    found = peak_of(record)
    return f"{found[0]} {gib(found[1])}" if found else ""


def torch_cpu_peak(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, int]:
    """Call ``fn(*args, **kwargs)``; return (its result, the peak of live CPU tensor bytes during
    the call, counted from the bytes live at its start).

    torch keeps no memory counters for the CPU (``torch.cuda.max_memory_allocated`` has no CPU
    twin) and RSS sampling sees the allocator's cache, not the tensors. torch.profiler records
    every allocation and free with its size: summed in time order they give the exact live bytes.
    The profiler slows the call down; use it to measure memory, not time."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn(*args, **kwargs)
    events = [
        (e.start_ns(), e.nbytes())
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]" and str(e.device_type()).endswith("CPU")
    ]
    live = peak = 0
    for _, nbytes in sorted(events):
        live += nbytes
        peak = max(peak, live)
    return result, peak
