"""clear_cache, memory_snapshot and track_memory on real MLX allocations."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import types

import pytest

from genai_common.runtime import mlx_compat
from genai_common.runtime.memory import MemorySnapshot, clear_cache, memory_snapshot, track_memory

MiB = 2**20


def _mx():
    return pytest.importorskip("mlx.core", reason="needs an importable mlx (mlx[cpu] on Linux)")


def _temporary(mx, mib: int, hold: float = 0.0) -> None:
    """Allocate and fill ``mib`` MiB, keep it ``hold`` seconds, free it."""
    x = mx.ones((mib * MiB // 4,), dtype=mx.float32)
    mx.eval(x)
    time.sleep(hold)
    del x


def test_clear_cache_releases_a_freed_arrays_cache():
    mx = _mx()
    old = mx.set_cache_limit(2**30)  # the CPU default (32 MiB) would not keep a 64 MiB buffer
    try:
        clear_cache()
        _temporary(mx, 64)
        assert mx.get_cache_memory() >= 64 * MiB
        released = clear_cache()
        assert released >= 64 * MiB
        assert mx.get_cache_memory() < released
        assert clear_cache() == 0  # nothing left to release
    finally:
        mx.set_cache_limit(old)


def test_snapshot_reads_mlx_process_and_system():
    mx = _mx()
    snap = memory_snapshot()
    assert snap.mlx_backend == mlx_compat.backend(mx)
    assert isinstance(snap.mlx_active, int) and isinstance(snap.mlx_peak, int)
    assert snap.mlx_memory_limit and snap.mlx_cache_limit
    assert snap.rss > 0 and snap.system_total >= snap.system_available > 0
    json.dumps(snap.to_json())


def test_torch_fields_are_none_without_torch_loaded():
    if "torch" in sys.modules:
        pytest.skip("torch is already imported in this process")
    snap = memory_snapshot()
    for name in (
        "torch_cuda_allocated",
        "torch_cuda_reserved",
        "torch_cuda_peak",
        "torch_mps_allocated",
        "torch_mps_driver",
    ):
        assert getattr(snap, name) is None, name


def test_mlx_fields_are_none_without_mlx():
    code = (
        "import sys, json; sys.modules['mlx'] = None\n"
        "from genai_common.runtime.memory import memory_snapshot, clear_cache\n"
        "assert clear_cache() == 0\n"
        "print(json.dumps(memory_snapshot().to_json()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    snap = json.loads(out.stdout)
    for name in (
        "mlx_backend",
        "mlx_active",
        "mlx_peak",
        "mlx_cache",
        "mlx_memory_limit",
        "mlx_cache_limit",
    ):
        assert snap[name] is None, name
    assert snap["rss"] > 0


def test_stub_counters_of_old_mlx_off_metal_are_not_trusted():
    """Before MLX 0.24.1 the memory counters off Metal returned 0: they must read as None."""
    metal = types.SimpleNamespace(is_available=lambda: False)
    old_cpu = types.SimpleNamespace(__version__="0.23.2", metal=metal)
    new_cpu = types.SimpleNamespace(__version__="0.24.1", metal=metal)
    old_metal = types.SimpleNamespace(
        __version__="0.20.0", metal=types.SimpleNamespace(is_available=lambda: True)
    )
    assert not mlx_compat.counters_supported(old_cpu)
    assert mlx_compat.memory_limit(old_cpu) is None
    assert mlx_compat.counters_supported(new_cpu)
    assert mlx_compat.counters_supported(old_metal)


def test_track_memory_sees_a_large_temporary():
    mx = _mx()
    with track_memory() as tracked:
        _temporary(mx, 128, hold=0.1)
    assert tracked.mlx_peak_delta >= 128 * MiB
    assert tracked.rss_peak_delta >= 100 * MiB  # the sampling thread saw the pages
    assert tracked.samples >= 3
    assert tracked.after.mlx_active < tracked.before.mlx_active + 16 * MiB
    json.dumps(tracked.to_json())


def test_track_memory_scopes_the_peak_and_nesting_keeps_the_outer_one():
    mx = _mx()
    _temporary(mx, 96)  # a peak before any tracker: must not count in the blocks below
    with track_memory() as outer:
        _temporary(mx, 64)
        with track_memory() as inner:
            _temporary(mx, 8)
        _temporary(mx, 4)
    assert 8 * MiB <= inner.mlx_peak_delta < 32 * MiB
    assert 64 * MiB <= outer.mlx_peak_delta < 96 * MiB


def test_snapshot_type_defaults_are_none():
    assert all(value is None for value in MemorySnapshot().to_json().values())


def test_no_deprecation_noise_on_stderr():
    """The runtime must use MLX's top-level memory API, never the deprecated mx.metal.* aliases
    (they print to stderr, which no warnings filter can catch)."""
    mx = _mx()
    code = (
        "import mlx.core as mx\n"
        "from genai_common.runtime.memory import clear_cache, memory_snapshot, track_memory\n"
        "from genai_common.runtime.envinfo import environment\n"
        "from genai_common.runtime.timing import timeit\n"
        "with track_memory():\n"
        "    timeit(lambda: mx.ones((4,)) + 1, repeat=3)\n"
        "clear_cache(); memory_snapshot(); environment()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "deprecated" not in out.stderr, out.stderr
    # the probe can see the noise: the old spelling does print it
    old = subprocess.run(
        [sys.executable, "-c", "import mlx.core as mx; mx.metal.get_active_memory()"],
        capture_output=True,
        text=True,
    )
    if hasattr(mx, "get_active_memory") and hasattr(mx.metal, "get_active_memory"):
        assert "deprecated" in old.stderr


@pytest.mark.torch
def test_torch_fields_without_a_torch_device_are_none():
    torch = pytest.importorskip("torch", reason="needs torch")
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        pytest.skip("this machine has a torch device")
    with track_memory() as tracked:
        torch.ones(1024, 1024).sum()
    snap = memory_snapshot()
    assert snap.torch_cuda_allocated is None and snap.torch_mps_allocated is None
    assert tracked.torch_cuda_peak is None and tracked.rss_peak > 0


@pytest.mark.torch
def test_torch_cpu_peak_counts_live_tensors_exactly():
    import torch

    from genai_common.runtime.memory import torch_cpu_peak

    before = torch.zeros(4_000_000)  # 16 MB live before the call: not counted

    def work() -> float:
        a = torch.zeros(1_000_000)  # 4 MB
        b = a + 1  # 8 MB live
        del a
        c = b * 2  # b and c: 8 MB live, never 12
        return float(c.sum())

    result, peak = torch_cpu_peak(work)
    assert result == 2_000_000.0
    assert 8_000_000 <= peak < 8_000_000 + 1024  # + a few scalars
    assert before.numel() == 4_000_000
