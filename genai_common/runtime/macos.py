"""macOS facts read through libc with ctypes (no subprocess): sysctl values and the process's
physical footprint (what Activity Monitor shows and what the OS judges; RSS under-reports it
because of compressed memory). Every function returns None off macOS or on any failure."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from functools import cache

RUSAGE_INFO_V2 = 2
# struct rusage_info_v2: uuid[16], then uint64 fields; ri_phys_footprint is the 8th of them.
_PHYS_FOOTPRINT_INDEX = 2 + 7
_RUSAGE_WORDS = 32  # more than rusage_info_v2 needs


@cache
def _libc() -> ctypes.CDLL | None:
    if sys.platform != "darwin":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    except OSError:
        return None


def _sysctl_raw(name: str) -> bytes | None:
    libc = _libc()
    if libc is None:
        return None
    size = ctypes.c_size_t(0)
    key = name.encode()
    if libc.sysctlbyname(key, None, ctypes.byref(size), None, ctypes.c_size_t(0)) != 0:
        return None
    buf = ctypes.create_string_buffer(size.value)
    if libc.sysctlbyname(key, buf, ctypes.byref(size), None, ctypes.c_size_t(0)) != 0:
        return None
    return buf.raw[: size.value]


def sysctl_string(name: str) -> str | None:
    raw = _sysctl_raw(name)
    return None if raw is None else raw.rstrip(b"\0").decode(errors="replace")


def sysctl_int(name: str) -> int | None:
    raw = _sysctl_raw(name)
    if raw is None or len(raw) not in (4, 8):
        return None
    return int.from_bytes(raw, sys.byteorder, signed=True)


def phys_footprint(pid: int | None = None) -> int | None:
    """The process's physical footprint in bytes (proc_pid_rusage, RUSAGE_INFO_V2)."""
    libc = _libc()
    if libc is None:
        return None
    buf = (ctypes.c_uint64 * _RUSAGE_WORDS)()
    try:
        rc = libc.proc_pid_rusage(os.getpid() if pid is None else pid, RUSAGE_INFO_V2, buf)
    except AttributeError:
        return None
    return int(buf[_PHYS_FOOTPRINT_INDEX]) if rc == 0 else None


def pressure_level() -> str | None:
    """kern.memorystatus_vm_pressure_level: 1 normal, 2 warn, 4 critical."""
    level = sysctl_int("kern.memorystatus_vm_pressure_level")
    return {1: "normal", 2: "warn", 4: "critical"}.get(level) if level is not None else None
