"""Issue 13: real mlx.launch, two ranks on loopback (ring backend): the sharded smoke test of the
tiny llama (tensor parallel, mlx-lm's sharded_load) against one process, the plan against what
each rank really holds, and a rank that dies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


def test_bench_ranks_cli(tiny_llm, tmp_path):
    """`genai bench --ranks 2`: the single-machine bench's trials, statistics, record, plots and
    RESULTS.md row, one process beside rank 0 of two."""
    cmd = [sys.executable, "-m", "genai_common.cli", "bench", str(tiny_llm), "--ranks", "2",
           "--trials", "3", "--gen-tokens", "8", "--prompt-tokens", "16", "--out", str(tmp_path)]  # fmt: skip
    proc = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads(proc.stdout)
    by = {(r["subject"], r["workload"]): r for r in record["results"]}
    assert sorted(by) == [
        ("1 rank", "chat"), ("1 rank", "random-16"),
        ("2 ranks tensor", "chat"), ("2 ranks tensor", "random-16"),
    ]  # fmt: skip
    for res in by.values():
        assert len(res["trials"]) == 3 and res["cold"] is not None
        assert all(len(t["arrivals"]) == 8 for t in res["trials"])  # EOS off: every token
        assert res["summary"]["decode_tps"]["n"] == 3 and res["summary"]["ttft"]["median"] > 0
    two = by[("2 ranks tensor", "random-16")]
    assert (two["ranks"], two["parallel"]) == (2, "tensor")
    coll = two["collectives"]
    assert coll["all_sum_gbps"] > 0
    # the decode step's collectives: o_proj and down_proj all_sum per layer, 2 layers
    assert coll["collectives_per_token"] == 4 and coll["collective_us"] > 0
    assert 0 < coll["comm_share"] <= 1
    assert by[("1 rank", "chat")]["collectives"]["all_sum_gbps"] is None
    dist = record["distributed"]
    assert [(r["ranks"], r["parallel"]) for r in dist["rows"]] == [
        (1, "single"), (1, "single"), (2, "tensor"), (2, "tensor"),
    ]  # fmt: skip
    assert "pipeline parallel on 2 ranks" in dist["skipped"]  # llama has no pipeline() in mlx-lm
    assert dist["findings"] == []
    # every rank's load: each tensor-parallel rank holds less than the one process
    held = {(r["world_size"], r["rank"]): r["param_bytes"] for r in dist["ranks"]}
    assert held[(2, 0)] < held[(1, 0)] and held[(2, 1)] < held[(1, 0)]
    written = record["written"]
    for name in ("record", "plot latency", "plot rate", "plot memory", "plot ranks"):
        assert Path(written[name]).is_file(), name
    row = (tmp_path / "RESULTS.md").read_text().splitlines()[-1]
    assert "--ranks 2" in row and "[2 ranks tensor] random-16: decode tokens/s" in row
    # the record is a bench record: --compare reads it (a run against itself: no difference)
    proc = subprocess.run(
        [sys.executable, "-m", "genai_common.cli", "bench", "--compare", written["record"],
         written["record"], "--json"], capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    pairs = {(c["subject"], c["workload"]) for c in json.loads(proc.stdout)["comparisons"]}
    assert ("2 ranks tensor", "chat") in pairs
