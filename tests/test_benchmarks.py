"""The benchmark runner (`python -m benchmarks`): discovery, stacks, the table it prints."""

from __future__ import annotations

import json

from benchmarks.__main__ import discover, main, stack_of


def test_modules_are_discovered_with_their_stack():
    names = discover()
    assert {"bench_doctor", "bench_runtime", "bench_genai_bench", "bench_vae_decode"} <= set(names)
    torch_side = {n for n in names if stack_of(n) == "torch"}
    assert torch_side == {"bench_genai_bench_diffusion", "bench_vae_decode"}
    assert discover("doctor") == ["bench_doctor"]


def test_a_run_prints_rows_and_refuses_an_empty_selection(capsys):
    assert main(["-k", "no-such-benchmark"]) == 2
    assert main(["-k", "doctor", "--stack", "torch"]) == 2  # the doctor's module is MLX-side
    capsys.readouterr()
    assert main(["-k", "doctor", "--stack", "mlx", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    names = [row["benchmark"] for row in report["rows"]]
    assert any("genai doctor --json (process)" in n for n in names)
    assert all(row["module"] == "bench_doctor" for row in report["rows"])
    # the speed targets are judged in RESULTS.md, not here: a loaded CI machine may miss them
    assert all(row["value"] != "error" for row in report["rows"]), report["rows"]
