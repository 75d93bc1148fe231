"""Run a load or inference test in a child process, so a crash cannot take the caller down.

A Metal out-of-memory ends the process with an uncaught C++ exception (SIGABRT); a failed
allocation in MLX's CPU allocator segfaults; the kernel's OOM killer sends SIGKILL. In a child,
each of these becomes an ``IsolatedResult`` with the signal's name and the last lines of stderr.

How: a fresh ``python -c`` child (not fork: MLX and torch hold threads and device handles that
fork would copy half-way; not multiprocessing: it re-imports ``__main__`` and fails from a REPL or
notebook). The parent sends its ``sys.path``, the target and the arguments pickled in a file; the
child sends back a pickled value or exception. ``target`` is a top-level function (pickled by
reference, so the child must be able to import its module) or a ``"module:function"`` string.

memory_limit (bytes), enforced twice:
- on Linux the child caps its address space (RLIMIT_AS) before it imports anything heavy, so an
  allocation over the limit fails (Python: MemoryError; numpy: its MemoryError subclass; MLX on
  CPU: SIGSEGV, since its allocator does not check malloc). The cap counts virtual memory: CUDA
  and some allocators reserve far more than they use, so give them headroom or set None.
- everywhere, the parent samples the child's RSS (with its descendants) every 20 ms and kills it
  when RSS exceeds the limit (macOS does not enforce RLIMIT_AS).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TAIL_LINES = 20
POLL_SECONDS = 0.02

_BOOTSTRAP = (
    "import pickle, sys\n"
    "with open(sys.argv[1], 'rb') as f:\n"
    "    sys.path[:] = pickle.load(f)\n"
    "    from genai_common.runtime.isolate import _child_main\n"
    "    _child_main(f, sys.argv[2])\n"
)

SIGNAL_HINTS = {
    "SIGABRT": "an abort: an uncaught C++ exception such as a Metal out-of-memory "
    "('[METAL] Command buffer execution failed') or a failed assertion",
    "SIGSEGV": "a segmentation fault: with a memory limit set, often a failed allocation "
    "(MLX's CPU allocator does not check malloc); else a native crash",
    "SIGKILL": "killed from outside: the kernel's OOM killer or a watchdog",
    "SIGBUS": "a bus error: often a memory-mapped file that shrank or ran out of space",
}


@dataclasses.dataclass(frozen=True)
class IsolatedResult:
    """What came back from the child. ``ok`` only when the target returned a value."""

    ok: bool
    value: Any = None
    returncode: int | None = None
    signal: str | None = None
    error: str | None = None
    error_type: str | None = None
    traceback: str | None = None
    stderr_tail: str = ""
    stdout_tail: str = ""
    duration: float = 0.0
    timed_out: bool = False
    memory_exceeded: bool = False

    def summary(self) -> str:
        if self.ok:
            return f"ok in {self.duration:.2f} s"
        return f"failed after {self.duration:.2f} s: {self.error}"


def _resolve(target: str | Callable[..., Any]) -> Callable[..., Any]:
    if callable(target):
        return target
    module_name, sep, attr = target.partition(":")
    if not sep or not attr:
        raise ValueError(f"target {target!r} is not 'module:function'")
    import importlib

    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _limit_address_space(limit: int | None) -> None:
    if limit is None or not sys.platform.startswith("linux"):
        return
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))  # soft cap; the hard one stays


def _child_main(payload: Any, result_path: str) -> None:
    """Runs in the child: load the target and arguments, call, write back the outcome."""
    memory_limit = pickle.load(payload)
    _die_with_parent(os.path.dirname(result_path))
    _limit_address_space(memory_limit)
    try:
        target, args, kwargs = pickle.load(payload)
        data, code = pickle.dumps(("ok", _resolve(target)(*args, **kwargs))), 0
    except BaseException as exc:  # everything, MemoryError and SystemExit included, goes back
        import traceback

        trace = traceback.format_exc(limit=-TAIL_LINES)
        data, code = pickle.dumps(("error", type(exc).__name__, str(exc), trace)), 1
    Path(result_path).write_bytes(data)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _die_with_parent(workdir: str) -> None:
    """The child is its own session (so a kill reaches its own children), hence not killed with
    its parent's terminal: it must end itself when the parent is gone (a SIGKILL of `genai doctor
    --load` must leave no loader running under PID 1). Linux: PR_SET_PDEATHSIG sends SIGTERM;
    everywhere: a daemon thread polls the parent pid. Either removes the temp folder and kills
    the child's group."""
    import threading

    parent = os.getppid()

    def end(*_: Any) -> None:
        shutil.rmtree(workdir, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.killpg(0, signal.SIGKILL)  # the child's own group: itself and what it started
        os._exit(137)

    signal.signal(signal.SIGTERM, end)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                end()
            time.sleep(0.2)

    if os.getppid() != parent or parent == 1:
        os._exit(137)
    threading.Thread(target=watch, name="genai-parent-watch", daemon=True).start()


def _tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        text = path.read_bytes()[-65536:].decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        proc.kill()
    proc.wait()


def run_isolated(
    target: str | Callable[..., Any],
    *args: Any,
    timeout: float | None = None,
    memory_limit: int | None = None,
    **kwargs: Any,
) -> IsolatedResult:
    """Call ``target(*args, **kwargs)`` in a child Python process and report what happened.

    timeout: seconds before the child (and its descendants) are killed. memory_limit: bytes (see
    the module docstring). The target's own keyword arguments cannot be named timeout or
    memory_limit. Raises TypeError when target or arguments cannot be pickled.
    """
    try:
        payload = pickle.dumps((target, args, kwargs))
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise TypeError(
            f"run_isolated needs a picklable top-level function or 'module:function' and "
            f"picklable arguments: {exc}"
        ) from exc
    workdir = Path(tempfile.mkdtemp(prefix="genai-isolated-"))
    try:
        payload_path, result_path = workdir / "payload.pkl", workdir / "result.pkl"
        with payload_path.open("wb") as f:
            pickle.dump(list(sys.path), f)
            pickle.dump(memory_limit, f)
            f.write(payload)
        env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
        out_path, err_path = workdir / "stdout.txt", workdir / "stderr.txt"
        start = time.perf_counter()
        with out_path.open("wb") as out, err_path.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-c", _BOOTSTRAP, str(payload_path), str(result_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                start_new_session=True,  # its own process group: a kill reaches its children
            )
            try:
                with _terminate_raises():
                    timed_out, peak_rss = _watch(proc, start, timeout, memory_limit)
            except BaseException:  # Ctrl-C, SIGTERM, an error here: the child dies with us
                _kill_group(proc)
                raise
        duration = time.perf_counter() - start
        return _result(
            proc.returncode,
            result_path,
            duration=duration,
            timed_out=timed_out,
            timeout=timeout,
            memory_limit=memory_limit,
            peak_rss=peak_rss,
            stdout_tail=_tail(out_path),
            stderr_tail=_tail(err_path),
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def _terminate_raises() -> Any:
    """While the parent waits, SIGTERM raises SystemExit (its default would end the process at
    once, with no `finally`: the child and the temp folder left behind). Main thread only."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):
        yield
        return
    if previous not in (signal.SIG_DFL, None):  # someone else handles it: leave theirs
        signal.signal(signal.SIGTERM, previous)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _watch(
    proc: subprocess.Popen[bytes], start: float, timeout: float | None, memory_limit: int | None
) -> tuple[bool, int | None]:
    """Wait for the child; kill it on timeout or when its RSS passes memory_limit.
    Returns (timed_out, the RSS that broke the limit or None)."""
    while True:
        try:
            proc.wait(timeout=POLL_SECONDS)
            return False, None
        except subprocess.TimeoutExpired:
            pass
        if timeout is not None and time.perf_counter() - start > timeout:
            _kill_group(proc)
            return True, None
        if memory_limit is not None:
            rss = _tree_rss(proc.pid)
            if rss > memory_limit:
                _kill_group(proc)
                return False, rss


def _result(
    returncode: int,
    result_path: Path,
    *,
    duration: float,
    timed_out: bool,
    timeout: float | None,
    memory_limit: int | None,
    peak_rss: int | None,
    stdout_tail: str,
    stderr_tail: str,
) -> IsolatedResult:
    common = {
        "returncode": returncode,
        "duration": duration,
        "stdout_tail": stdout_tail,
        "stderr_tail": stderr_tail,
    }
    sig = signal.Signals(-returncode).name if returncode < 0 else None
    if timed_out:
        return IsolatedResult(
            ok=False, signal=sig, timed_out=True, error=f"timed out after {timeout} s", **common
        )
    if peak_rss is not None:
        return IsolatedResult(
            ok=False,
            signal=sig,
            memory_exceeded=True,
            error=f"exceeded memory_limit: RSS {peak_rss} > {memory_limit} bytes (killed)",
            **common,
        )
    outcome = None
    if result_path.exists():
        try:
            outcome = pickle.loads(result_path.read_bytes())
        except Exception as exc:  # the value's class may not import here
            return IsolatedResult(
                ok=False, error=f"cannot read the child's result: {exc}", **common
            )
    if outcome is not None and outcome[0] == "ok" and returncode == 0:
        return IsolatedResult(ok=True, value=outcome[1], **common)
    if outcome is not None and outcome[0] == "error":
        _, error_type, message, trace = outcome
        return IsolatedResult(
            ok=False,
            error=f"{error_type}: {message}",
            error_type=error_type,
            traceback=trace,
            memory_exceeded=error_type == "MemoryError" or "MemoryError" in trace,
            **common,
        )
    if sig is not None:
        hint = SIGNAL_HINTS.get(sig, "")
        return IsolatedResult(
            ok=False,
            signal=sig,
            error=f"killed by {sig}" + (f" ({hint})" if hint else ""),
            **common,
        )
    return IsolatedResult(
        ok=False, error=f"exited with code {returncode} without a result", **common
    )
