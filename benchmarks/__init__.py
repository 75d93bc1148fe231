"""Benchmarks of this repository (`nox -s bench`, or `python -m benchmarks [-k NAME] [--json]`).

The runner imports every ``benchmarks/bench_*.py`` module and calls its ``main()``, which returns
a list of rows: dicts with "benchmark" (what was measured), "value" (formatted, with its unit),
and optionally "target" (formatted), "ok" (True/False/None: met the target?) and "notes". The
runner prints one Markdown table with the date, the machine and the command, ready to paste into
reference/RESULTS.md. A module that raises becomes one row saying so; the others still run.
"""
