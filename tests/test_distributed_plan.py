"""Issue 13: the memory plan per rank, from headers only, against the real tensor bytes of the
tiny llama and a 70B-shaped header-only checkpoint (benchmarks/bench_doctor.py's writer)."""

from __future__ import annotations

import pytest

from genai_common.distributed import plan as P
from genai_common.model import ModelDir

H, KV, INTER, VOCAB, LAYERS = 8192, 1024, 28672, 128256, 80


@pytest.fixture(scope="module")
def llama70b(tmp_path_factory):
    from benchmarks.bench_doctor import build

    return build(tmp_path_factory.mktemp("dst70b") / "llama70b")


def test_mlx_lm_support_read_from_its_source():
    llama = P.support("llama")
    assert llama.tensor and not llama.pipeline
    assert llama.sharded["self_attn.o_proj"] == "sharded-to-all"
    assert llama.sharded["mlp.up_proj"] == "all-to-sharded"
    assert P.support("qwen2").pipeline
    assert P.support("mistral").module == "mlx_lm.models.llama"  # MODEL_REMAPPING
    gemma = P.support("gemma")
    assert not gemma.tensor and not gemma.pipeline


def test_pipeline_split_as_pipeline_mixin():
    # even split, low ranks take the extras, rank 0 runs the last layers
    assert P.pipeline_split(5, 2) == [(2, 5), (0, 2)]
    assert P.pipeline_split(80, 3) == [(53, 80), (26, 53), (0, 26)]


def test_tiny_llama_tensor_plan_equals_real_bytes(tiny_llm):
    md = ModelDir.open(tiny_llm)
    total = sum(t.nbytes for t in md.tensors.values())
    one, found = P.plan(md, 1, context=64)
    assert found == [] and one.ranks[0].weights == total
    two, found = P.plan(md, 2, context=64)
    assert found == []
    sharded = sum(
        t.nbytes
        for t in md.tensors.values()
        if any(
            f".{s}." in t.name
            for s in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
        )
    )
    assert two.ranks[0].weights == total - sharded + sharded // 2
    assert two.ranks[0].kv_cache * 2 == one.ranks[0].kv_cache


def test_heads_not_divisible(tiny_llm):
    md = ModelDir.open(tiny_llm)  # 4 heads, 2 kv heads
    _, found = P.plan(md, 3)
    assert [f.code for f in found] == ["DST011", "DST011"]


def test_unsupported_modes(tiny_llm, tiny_llm_gemma):
    plan, found = P.plan(ModelDir.open(tiny_llm), 2, mode="pipeline")
    assert plan is None and [f.code for f in found] == ["DST010"]
    assert "pipelining" in found[0].message
    plan, found = P.plan(ModelDir.open(tiny_llm_gemma), 2)
    assert plan is None and "any sharding" in found[0].message


def test_70b_tensor_parallel_numbers(llama70b):
    md = ModelDir.open(llama70b)
    per_layer_sharded = 2 * (H * H + 2 * KV * H + H * H + 3 * INTER * H)
    replicated = 2 * (2 * VOCAB * H + H + LAYERS * 2 * H)
    plan, found = P.plan(md, 4, context=8192)
    assert found == []
    assert plan.ranks[3].weights == replicated + LAYERS * per_layer_sharded // 4
    # KV cache: 80 layers x 2 (K, V) x 8 kv heads x 128 x 2 bytes x 8192 tokens, 1/4 per rank
    assert plan.ranks[0].kv_cache == LAYERS * 2 * KV * 2 * 8192 // 4


def test_70b_smallest_fit(llama70b):
    md = ModelDir.open(llama70b)
    gib = 1024**3
    # 141 GB of bf16 weights: hosts of 64 GiB need 4 (3 does not divide 64 heads / 8 kv heads)
    n = P.smallest_fit(md, 64 * gib, context=8192)
    assert n == 4
    plan, _ = P.plan(md, n, context=8192)
    assert all(r.total <= 64 * gib for r in plan.ranks)
    smaller, _ = P.plan(md, 2, context=8192)
    assert smaller.ranks[0].total > 64 * gib
    assert P.fits(smaller, [64 * gib])[0].code == "DST012"
    assert P.smallest_fit(md, 1 * gib) is None
