"""Runtime overheads: timeit's cost per sample, and the start-up time of `genai` and the package."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RUNS = 30
TIMEIT_TARGET = 5e-6
HELP_TARGET = 0.1


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.2f} us"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def process_times(commands: dict[str, list[str]], runs: int = RUNS) -> dict[str, list[float]]:
    """Wall time of `runs` fresh processes per command, interleaved round by round so that load
    from other work on the machine falls on every command alike (one untimed round first)."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(runs + 1):
        for name, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, capture_output=True, check=True)
            if round_:
                times[name].append(time.perf_counter() - start)
    return times


def _spread(times: list[float]) -> str:
    q = statistics.quantiles(times, n=10)
    return f"min {_ms(min(times))}, p90 {_ms(q[-1])}, n={len(times)}"


def timeit_rows() -> list[dict[str, Any]]:
    from genai_common.runtime.timing import timeit

    rows = []
    cases: list[tuple[str, Any]] = [("returns None", lambda: None)]
    try:
        import mlx.core as mx

        done = mx.ones((4,))
        mx.eval(done)
        cases.append(("returns an evaluated MLX array", lambda: done))
    except ImportError:
        pass
    for label, fn in cases:
        m = timeit(fn, number=1, min_time=0.5, warmup=10)
        rows.append(
            {
                "benchmark": f"timeit cost per sample, no-op {label} (number=1)",
                "value": _us(m.median),
                "target": f"< {_us(TIMEIT_TARGET)}",
                "ok": m.median < TIMEIT_TARGET,
                "notes": f"p90 {_us(m.p90)}, measured clock+eval overhead {_us(m.overhead)}, "
                f"n={len(m.samples)}",
            }
        )
    return rows


def startup_rows() -> list[dict[str, Any]]:
    python = sys.executable
    genai = Path(python).with_name("genai")
    genai_cmd = [str(genai)] if genai.exists() else [python, "-m", "genai_common"]
    times = process_times(
        {
            "bare": [python, "-c", "pass"],
            "help": [*genai_cmd, "--help"],
            "import": [python, "-c", "import genai_common"],
        }
    )
    bare, helps, imports = times["bare"], times["help"], times["import"]
    env_runs = process_times({"env": [*genai_cmd, "env"]}, runs=10)["env"]
    bytecode = (
        "PYTHONDONTWRITEBYTECODE set"
        if os.environ.get("PYTHONDONTWRITEBYTECODE")
        else "bytecode written"
    )
    rows = [
        {
            "benchmark": "`genai --help` process time (median)",
            "value": _ms(statistics.median(helps)),
            "target": f"< {_ms(HELP_TARGET)}",
            "ok": statistics.median(helps) < HELP_TARGET,
            "notes": f"{_spread(helps)}; bare `python -c pass` {_ms(statistics.median(bare))}; {bytecode}",
        },
        {
            "benchmark": "`python -c 'import genai_common'` process time (median)",
            "value": _ms(statistics.median(imports)),
            "notes": f"{_spread(imports)}; {_ms(statistics.median(imports) - statistics.median(bare))} above bare Python",
        },
    ]
    rows.append(
        {
            "benchmark": "`genai env` process time (median)",
            "value": _ms(statistics.median(env_runs)),
            "notes": f"{_spread(env_runs)}; imports mlx.core (and torch when installed)",
        }
    )
    return rows


def import_time(module: str, runs: int = 10) -> float:
    """Median cumulative import time of `module` in a fresh interpreter (-X importtime)."""
    values = []
    for _ in range(runs):
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        for line in err.splitlines():
            fields = [f.strip() for f in line.split("|")]
            if len(fields) == 3 and fields[2] == module:
                values.append(int(fields[1]) * 1e-6)
    return statistics.median(values)


def import_rows() -> list[dict[str, Any]]:
    return [
        {
            "benchmark": "`import genai_common` (-X importtime, cumulative, median)",
            "value": _ms(import_time("genai_common")),
            "notes": "in-process import cost without interpreter start-up",
        }
    ]


def main() -> list[dict[str, Any]]:
    return timeit_rows() + startup_rows() + import_rows()
