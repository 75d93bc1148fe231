"""run_isolated: a normal return, an exception, an abort, a timeout and memory-limit breaches."""

from __future__ import annotations

import sys
import time

import pytest

from genai_common.runtime.isolate import run_isolated

GiB = 2**30


def square(x: int, *, plus: int = 0) -> int:
    return x * x + plus


def fail(message: str) -> None:
    raise ValueError(message)


def noisy_abort() -> None:
    print("about to abort", file=sys.stderr, flush=True)
    import os

    os.abort()


def allocate_bytes(n: int) -> int:
    return len(bytearray(n))


def allocate_mlx(n: int) -> int:
    import mlx.core as mx

    x = mx.ones((n // 4,), dtype=mx.float32)
    mx.eval(x)
    return int(x.nbytes)


def touch_pages(n: int, hold: float) -> int:
    block = bytearray(n)
    for i in range(0, n, 4096):
        block[i] = 1
    time.sleep(hold)
    return len(block)


def lift_cap_and_touch(n: int, hold: float) -> int:
    if sys.platform.startswith("linux"):
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
    return touch_pages(n, hold)


def test_normal_return_with_a_test_module_function():
    result = run_isolated(square, 7, plus=1, timeout=60)
    assert result.ok and result.value == 50
    assert result.returncode == 0 and result.signal is None and result.error is None
    assert result.duration > 0


def test_module_function_string():
    result = run_isolated("math:sqrt", 16.0, timeout=60)
    assert result.ok and result.value == 4.0


def test_exception_comes_back_with_its_type_and_traceback():
    result = run_isolated(fail, "broken config", timeout=60)
    assert not result.ok
    assert result.error == "ValueError: broken config"
    assert result.error_type == "ValueError"
    assert "fail" in result.traceback
    assert result.returncode == 1


def test_abort_is_reported_as_sigabrt_with_stderr():
    result = run_isolated(noisy_abort, timeout=60)
    assert not result.ok
    assert result.signal == "SIGABRT"
    assert result.returncode < 0
    assert "about to abort" in result.stderr_tail
    assert "SIGABRT" in result.error


def test_timeout_kills_the_child():
    result = run_isolated("time:sleep", 30, timeout=1.0)
    assert not result.ok and result.timed_out
    assert result.duration < 10
    assert "timed out" in result.error


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="RLIMIT_AS is enforced on Linux only"
)
def test_memory_limit_makes_a_python_allocation_fail():
    result = run_isolated(allocate_bytes, 2 * GiB, memory_limit=GiB, timeout=60)
    assert not result.ok
    assert result.error_type == "MemoryError" and result.memory_exceeded


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="RLIMIT_AS is enforced on Linux only"
)
def test_memory_limit_breach_by_mlx_is_a_clear_failure():
    mx = pytest.importorskip("mlx.core", reason="needs an importable mlx (mlx[cpu] on Linux)")
    if getattr(mx, "cuda", None) and mx.cuda.is_available():
        pytest.skip("MLX's CUDA backend reserves more address space than a 1 GiB cap allows")
    fits = run_isolated(allocate_mlx, 64 * 2**20, memory_limit=GiB, timeout=60)
    assert fits.ok and fits.value == 64 * 2**20
    breach = run_isolated(allocate_mlx, 2 * GiB, memory_limit=GiB, timeout=60)
    assert not breach.ok
    assert breach.signal is not None or breach.memory_exceeded, breach
    assert breach.error


def test_rss_watchdog_kills_a_child_over_the_limit():
    # A child that lifts its address-space cap (as if on macOS, which does not enforce it) and
    # fills memory must be stopped by the parent's RSS watchdog.
    result = run_isolated(
        lift_cap_and_touch, 600 * 2**20, 5.0, memory_limit=300 * 2**20, timeout=60
    )
    assert not result.ok and result.memory_exceeded
    assert result.signal == "SIGKILL"
    assert "exceeded memory_limit" in result.error


def test_unpicklable_target_is_a_type_error():
    with pytest.raises(TypeError, match="picklable"):
        run_isolated(lambda: 1)
