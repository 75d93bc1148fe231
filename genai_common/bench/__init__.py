"""`genai bench`: benchmarks with spread, cold runs apart, roofline, records and plots.

Modules: cli (the command), runner (load, run, write), llm / diffusion / ml (one runner per
kind), stats (summaries, bootstrap, Mann-Whitney U), roofline (bandwidth probe, FLOP estimates),
records (JSON record, RESULTS.md row), plots (matplotlib PNGs), compare (`--compare A B`),
summary (names, units, the text report), progress (rich bar on a TTY).

Nothing heavy is imported here.
"""
