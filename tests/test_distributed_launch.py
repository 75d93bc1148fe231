"""Issue 13: real mlx.launch, two ranks on loopback (ring backend): the sharded smoke test of the
tiny llama (tensor parallel, mlx-lm's sharded_load) against one process, the plan against what
each rank really holds, and a rank that dies."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from genai_common.distributed import launch, smoke
from genai_common.distributed import plan as P
from genai_common.model import ModelDir

pytestmark = pytest.mark.skipif(launch.launcher() is None, reason="mlx.launch (mlx) not installed")


@pytest.fixture(scope="module")
def two_ranks(tiny_llm):
    return smoke.run(str(tiny_llm), 2, tokens=8, timeout=120, bench=True)


def test_command_line_is_mlx_launch():
    cmd = launch.command(["python", "x.py"], ranks=3, backend="ring", port=5000)
    assert cmd[0].endswith("mlx.launch")
    assert cmd[1:] == [
        "-n",
        "3",
        "--backend",
        "ring",
        "--starting-port",
        "5000",
        "--",
        "python",
        "x.py",
    ]
    cmd = launch.command(["p"], hostfile="hosts.json", backend="jaccl", envs=("A=1",))
    assert cmd[1:] == ["--hostfile", "hosts.json", "--backend", "jaccl", "--env", "A=1", "--", "p"]
    # hosts whose venv is elsewhere: mlx.launch puts --python in front of the program there
    cmd = launch.command(["-m", "w"], hostfile="h.json", python="/opt/venv/bin/python")
    assert cmd[-5:] == ["--python", "/opt/venv/bin/python", "--", "-m", "w"]


def test_sharded_output_equals_single_process(two_ranks, tiny_llm):
    results, found = two_ranks
    assert found == []
    ranks, ref = results["ranks"], results["reference"]
    assert [r["rank"] for r in ranks] == [0, 1] and ranks[0]["size"] == 2
    assert ranks[0]["all_sum"] == {"got": [3.0] * 4, "want": 3.0}
    assert ranks[0]["tokens"] == ref["tokens"] and len(ref["tokens"]) == 8
    assert ranks[0]["max_logit_diff"] <= smoke.LOGIT_TOL
    assert ranks[1]["tokens"] == ref["tokens"]


def test_plan_equals_what_each_rank_holds(two_ranks, tiny_llm):
    results, _ = two_ranks
    plan, _ = P.plan(ModelDir.open(tiny_llm), 2)
    for r in results["ranks"]:
        assert r["param_bytes"] == plan.ranks[r["rank"]].weights
    assert (
        results["reference"]["param_bytes"]
        == P.plan(ModelDir.open(tiny_llm), 1)[0].ranks[0].weights
    )


def test_compare_detects_a_difference(two_ranks):
    results, _ = two_ranks
    rank0 = dict(results["ranks"][0], tokens=[1, 2, 3])
    assert [f.code for f in smoke.compare(rank0, results["reference"])] == ["DST020"]


def test_a_rank_that_dies_is_dst021(tmp_path):
    # an unreadable model directory: every rank fails in sharded_load; the finding carries its
    # last output lines
    _, found = smoke.run(str(tmp_path / "no-model"), 2, timeout=60)
    assert [f.code for f in found] == ["DST021"]
    assert "ranks without a result" in found[0].message


def test_bench_ranks_cli(tiny_llm):
    cmd = [sys.executable, "-m", "genai_common.cli", "bench", str(tiny_llm), "--ranks", "2"]
    proc = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    one, two = out["rows"]
    assert (one["ranks"], one["parallel"], two["ranks"], two["parallel"]) == (
        1, "single", 2, "tensor",
    )  # fmt: skip
    for row in (one, two):
        assert row["ttft_ms"] > 0 and row["decode_tps"] > 0 and row["tokens"] == 32
    assert two["all_sum_gbps"] > 0 and one["all_sum_gbps"] is None
    # the decode step's collectives: o_proj and down_proj all_sum per layer, 2 layers
    assert two["collectives_per_token"] == 4 and two["collective_us"] > 0
    assert 0 < two["comm_share"] <= 1 and one["comm_share"] is None
    assert "pipeline" in out["skipped"]  # llama has no pipeline() in mlx-lm
