"""Run the benchmarks: `python -m benchmarks [-k NAME] [--json]` (see the package docstring)."""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import pkgutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

COLUMNS = ("benchmark", "value", "target", "ok", "notes")


def discover(pattern: str | None = None) -> list[str]:
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    return [n for n in names if pattern is None or pattern in n]


def stack_of(name: str) -> str:
    """The environment a module needs: its STACK ("mlx" unless it says "torch"), read from the
    source so that discovering a torch module does not import torch."""
    source = (Path(__file__).parent / f"{name}.py").read_text(encoding="utf-8")
    return "torch" if 'STACK = "torch"' in source else "mlx"


def run_module(name: str) -> list[dict[str, Any]]:
    start = time.perf_counter()
    try:
        module = importlib.import_module(f"benchmarks.{name}")
        rows = list(module.main() or [])
    except Exception as exc:
        last = traceback.format_exc().strip().splitlines()[-1]
        return [{"benchmark": name, "value": "error", "ok": False, "notes": f"{exc!r} ({last})"}]
    for row in rows:
        row.setdefault("module", name)
    seconds = time.perf_counter() - start
    print(f"  {name}: {len(rows)} rows in {seconds:.1f} s", file=sys.stderr)
    return rows


def machine() -> str:
    from genai_common.runtime.envinfo import environment

    env = environment()
    mlx = env["frameworks"]["mlx"]
    parts = [
        f"{env['cpu']['name']} ({env['cpu']['logical_cores']} logical cores)",
        f"{env['memory']['total'] / 2**30:.1f} GiB",
        f"{env['os']['system']} {env['os']['machine']}",
        f"Python {env['python']['version']}",
    ]
    if mlx["usable"]:
        parts.append(f"mlx {mlx['version']} ({mlx['backend']})")
    for name in ("mlx-lm", "torch"):
        if env["frameworks"][name]["installed"]:
            parts.append(f"{name} {env['frameworks'][name]['version']}")
    return ", ".join(parts)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if value is True:
        return "yes"
    if value is False:
        return "**no**"
    return value


def markdown(rows: list[dict[str, Any]], when: str, where: str, command: str) -> str:
    from genai_common.formats.markdown import table_header, table_row

    lines = [f"Benchmarks, {when}, `{command}`", f"Machine: {where}", "", table_header(COLUMNS)]
    lines += [table_row(_cell(row.get(c)) for c in COLUMNS) for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("-k", dest="pattern", help="run only bench_* modules whose name has this")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument(
        "--stack",
        choices=("mlx", "torch", "all"),
        default="all",
        help="run the modules of one environment (nox -s bench runs each in its own)",
    )
    args = parser.parse_args(argv)
    names = [n for n in discover(args.pattern) if args.stack in ("all", stack_of(n))]
    if not names:
        print("no benchmarks/bench_*.py module matched", file=sys.stderr)
        return 2
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = [row for name in names for row in run_module(name)]
    if args.json:
        print(json.dumps({"date": when, "machine": machine(), "rows": rows}, indent=2))
    else:
        command = (
            "nox -s bench" if args.stack == "all" else f"nox -s \"bench(stack='{args.stack}')\""
        )
        print(markdown(rows, when, machine(), command))
    return 1 if any(row.get("value") == "error" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
