"""Distributed MLX on `mlx.launch` (issue 13): hostfile preflight, memory plan per rank,
the mlx.launch command line and a sharded smoke test run under it.

    hostfile.parse(path)        hosts and DST findings (the formats mlx.launch reads)
    hosts.probe(hosts)          each host's `genai env --json` over ssh BatchMode (bounded time)
    plan.plan(md, ranks, ...)   bytes per rank for tensor / pipeline parallel, from headers only
    launch.command(...)         the mlx.launch command line (never reimplemented)
    smoke.run(model, ranks)     sharded_load under mlx.launch vs a single-process run
"""
