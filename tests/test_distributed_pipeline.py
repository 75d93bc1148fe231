"""Issue 13: pipeline-parallel generation under real mlx.launch (ring backend on loopback), and
three ranks. The tiny qwen2 pipelines in mlx-lm (PipelineMixin); sharded_load's pipeline path
opens model.safetensors.index.json, so the copies get one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from genai_common.distributed import launch, preflight, smoke
from genai_common.distributed import plan as P
from genai_common.model import ModelDir

pytestmark = pytest.mark.skipif(launch.launcher() is None, reason="mlx.launch (mlx) not installed")
PARIS = "The capital of France is Paris."


def _index(model):
    md = ModelDir.open(model)
    index = {"metadata": {}, "weight_map": dict.fromkeys(md.tensors, "model.safetensors")}
    (model / "model.safetensors.index.json").write_text(json.dumps(index))
    return model


@pytest.fixture(scope="module")
def qwen2(tiny_llm_qwen2, tmp_path_factory):
    return _index(shutil.copytree(tiny_llm_qwen2, tmp_path_factory.mktemp("dst") / "qwen2"))


@pytest.fixture(scope="module")
def qwen2_3layers(tiny_llm_qwen2, tmp_path_factory):
    """The tiny qwen2 with its last layer repeated as a third (real mlx save): one layer per rank
    on three ranks. Its text is no longer Paris; greedy equality with one process still holds."""
    import mlx.core as mx

    model = shutil.copytree(tiny_llm_qwen2, tmp_path_factory.mktemp("dst3") / "qwen2-3")
    weights = mx.load(str(model / "model.safetensors"))
    for name in list(weights):
        if name.startswith("model.layers.1."):
            weights[name.replace("layers.1.", "layers.2.")] = weights[name]
    mx.save_safetensors(str(model / "model.safetensors"), weights, metadata={"format": "mlx"})
    config = json.loads((model / "config.json").read_text())
    config.update(num_hidden_layers=3, max_window_layers=3)
    (model / "config.json").write_text(json.dumps(config))
    return _index(model)


def test_doctor_infer_runs_tensor_and_pipeline_like_one_process(qwen2):
    proc = subprocess.run(
        [sys.executable, "-m", "genai_common.cli", "doctor", str(qwen2), "--ranks", "2",
         "--infer", "--json", "--select", "DST"],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    assert out["findings"] == []
    dist = out["facts"]["distributed"]
    assert sorted(dist["smoke"]) == ["pipeline", "tensor"]
    md = ModelDir.open(qwen2)
    for mode, got in dist["smoke"].items():
        assert got["reference_text"].startswith(PARIS)
        assert got["text"] == got["reference_text"], mode
        plan, _ = P.plan(md, 2, mode=mode)
        assert got["param_bytes"] == [r.weights for r in plan.ranks], mode


def test_three_ranks_pipeline_plan_smoke_and_all_sum(qwen2_3layers):
    md = ModelDir.open(qwen2_3layers)
    plan, found = P.plan(md, 3, mode="pipeline")
    assert found == [] and [r.layers for r in plan.ranks] == [(2, 3), (1, 2), (0, 1)]
    # tensor parallel cannot split 4 heads / 2 KV heads three ways: said before launch
    assert {f.code for f in P.plan(md, 3, mode="tensor")[1]} == {"DST011"}
    results, found = smoke.run(str(qwen2_3layers), 3, modes=("pipeline",), tokens=6)
    assert found == []
    ranks = results["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1, 2] and {r["size"] for r in ranks} == {3}
    assert all(r["all_sum"] == {"got": [6.0] * 4, "want": 6.0} for r in ranks)
    assert [r["param_bytes"] for r in ranks] == [r.weights for r in plan.ranks]
    assert ranks[0]["tokens"] == results["reference"]["tokens"] and len(ranks[0]["tokens"]) == 6


def test_pipeline_without_index_is_said_before_launch(tiny_llm_qwen2):
    md = ModelDir.open(tiny_llm_qwen2)
    modes, skipped, found = preflight.infer_modes(md, 2, "pipeline")
    assert modes == () and [f.code for f in found] == ["DST032"]
    modes, skipped, found = preflight.infer_modes(md, 2, "auto")
    assert modes == ("tensor",) and found == [] and "index" in skipped["pipeline"]
    # more ranks than layers: no pipeline plan
    modes, skipped, _ = preflight.infer_modes(md, 3, "auto")
    assert modes == () and "3 ranks" in skipped["pipeline"] and "divisible" in skipped["tensor"]


def test_ring_errors_printed_at_exit_are_recognised():
    """The lines mlx 0.32.4's ring printed when a rank exited under its peer's pending receive
    (recorded in this session, both results already written): smoke.run makes them DST021."""
    log = (
        "[ring] Receiving from socket 4 failed with errno 9\n" * 3
        + "[ring] Too many send/recv errors. Failing pending tasks...\n"
    )
    assert smoke._RING_ERROR.search(log)
    assert smoke._RING_ERROR.search("[ring] Too many send/recv errors. Aborting...")
    assert not smoke._RING_ERROR.search("The capital of France is Paris.\n[ring] connected")


def test_bench_sweeps_world_sizes_and_modes(qwen2_3layers, tmp_path):
    """`genai bench --ranks 2,3` on a pipelining model: tensor and pipeline on two ranks,
    pipeline on three (four heads do not split three ways: said, not run), each with the same
    trials as one process, rank 0 equal to one process at every size, one plot of the sweep."""
    from genai_common.bench.plots import ranks_series

    proc = subprocess.run(
        [sys.executable, "-m", "genai_common.cli", "bench", str(qwen2_3layers), "--ranks", "2,3",
         "--trials", "2", "--gen-tokens", "6", "--prompt-tokens", "12", "--prompts", "random",
         "--out", str(tmp_path), "--json"],
        capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads(proc.stdout)
    runs = [(r["ranks"], r["parallel"], len(r["trials"])) for r in record["results"]]
    assert runs == [(1, "single", 2), (2, "tensor", 2), (2, "pipeline", 2), (3, "pipeline", 2)]
    dist = record["distributed"]
    assert dist["findings"] == [] and dist["world_sizes"] == [2, 3]
    assert "tensor parallel on 3 ranks" in dist["skipped"]
    assert sorted((r["world_size"], r["parallel"], r["rank"]) for r in dist["ranks"]) == [
        (1, "single", 0), (2, "pipeline", 0), (2, "pipeline", 1), (2, "tensor", 0),
        (2, "tensor", 1), (3, "pipeline", 0), (3, "pipeline", 1), (3, "pipeline", 2),
    ]  # fmt: skip
    # pipeline ranks hold their layers: with 3 layers on 3 ranks, each a third of the blocks
    md = ModelDir.open(qwen2_3layers)
    plan, _ = P.plan(md, 3, mode="pipeline")
    held = {r["rank"]: r["param_bytes"] for r in dist["ranks"] if r["world_size"] == 3}
    assert held == {r.rank: r.weights for r in plan.ranks}
    lines = ranks_series(record)
    assert {k: [x for x, _ in v] for k, v in lines.items()} == {
        "random-12, tensor parallel": [1, 2],
        "random-12, pipeline parallel": [1, 2, 3],
    }
    assert Path(record["written"]["plot ranks"]).is_file()
