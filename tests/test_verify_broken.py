"""genai verify against a table of broken conversions (issue 10, "Tests"): each is caught with
QLT001 and the localiser's code, and first_bad_layer names the stage; the good pairs pass or
warn; every metric that QLT001 judges crosses its fail line on the broken pairs and not on the
good ones. The pairs are written once per module from the trained tiny llama (untied, the
smallest trained variant) by genai_common.testing.broken."""

from __future__ import annotations

import pytest

pytest.importorskip("mlx_lm", reason="genai verify needs mlx-lm")

CONTEXT = 1024  # positions scored per pair (the calibration uses 4,096: DIAGNOSTICS.md)

# pair -> (the localiser's code, the stage first_bad_layer must name)
BROKEN = {
    "qk-permutation-reversed": ("QLT102", "model.layers.0.self_attn"),
    "norm-plus-one-layer0": ("QLT101", "model.layers.0.input_layernorm"),
    "norm-plus-one-all": ("QLT101", "model.layers.0.input_layernorm"),
    "rope-theta-changed": ("QLT107", "model.layers.0.self_attn"),
    "gate-up-swapped": ("QLT103", "model.layers.0.mlp"),
    "embedding-2bit": ("QLT108", "model.embed_tokens"),
    "lm-head-zeroed": ("QLT104", "lm_head"),
    "lm-head-tied-wrongly": ("QLT109", "lm_head"),
    "lora-fused-without-scale": ("QLT106", "model.layers.0.self_attn"),
    "lora-fuse-dropped": ("QLT106", "model.layers.0.self_attn"),
}
GOOD = {
    "float32-cast": ("pass",),
    "bfloat16-cast": ("pass",),
    "8bit-g64": ("pass",),
    "4bit-g64": ("pass", "warn"),
}


@pytest.fixture(scope="module")
def pairs(tiny_llm, tmp_path_factory):
    from genai_common.testing.broken import PAIRS, build_pairs

    assert set(PAIRS) == set(BROKEN) | set(GOOD)
    return build_pairs(tiny_llm, tmp_path_factory.mktemp("verify-pairs"))


@pytest.fixture(scope="module")
def results(pairs):
    """verify() of every pair, once per module (the metric tests read the same results)."""
    from genai_common.verify import verify

    return {name: verify(str(c), str(r), context=CONTEXT) for name, (c, r) in pairs.items()}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_pair_is_caught_and_localised(results, name):
    code, stage = BROKEN[name]
    res = results[name]
    codes = [f.code for f in res.findings]
    assert res.verdict == "fail", res.metrics
    assert codes[0] == "QLT001" and code in codes, [(f.code, f.message) for f in res.findings]
    assert res.first_bad_layer == stage
    assert res.to_json()["first_bad_layer"] == stage
    where = next(f for f in res.findings if f.code == "QLT100")
    assert where.message.startswith(stage + ":") and "jumps" in where.message


@pytest.mark.parametrize("name", sorted(GOOD))
def test_good_pair_passes(results, name):
    res = results[name]
    assert res.verdict in GOOD[name], (res.metrics, [f.message for f in res.findings])
    assert res.first_bad_layer is None


def test_localised_numbers(results):
    """The findings carry the numbers: the offset, the config values, the rank, the bits."""
    msgs = {n: " | ".join(f.message for f in r.findings) for n, r in results.items()}
    assert "input_layernorm.weight: candidate = reference +1" in msgs["norm-plus-one-layer0"]
    assert "rope_theta: candidate 10000.0, reference 500000.0" in msgs["rope-theta-changed"]
    assert "q_proj.weight: rows equal the reference's" in msgs["qk-permutation-reversed"]
    assert "gate_proj.weight equals the reference's up_proj" in msgs["gate-up-swapped"]
    assert "has rank 8 of 64" in msgs["lora-fuse-dropped"]
    assert "candidate 2-bit (group 64), reference float16" in msgs["embedding-2bit"]
    assert "lm_head.weight is all zeros" in msgs["lm-head-zeroed"]
    assert "lm_head.weight only in the reference" in msgs["lm-head-tied-wrongly"]


# Perplexity on the corpus cannot see a dropped or unscaled adapter: the reference carries a random
# rank-8 adapter that makes the corpus less likely, so the candidate without it scores a lower
# perplexity (-6.7% here, inside the line); KL and top-k agreement catch both pairs. (At context
# 4,096 a reversed q/k permutation and the 2-bit embedding can be inside it too: DIAGNOSTICS.md.)
PPL_BLIND = {"lora-fused-without-scale", "lora-fuse-dropped"}


# metric -> (is it beyond the fail line?): each one QLT001 judges
def _lines():
    from genai_common.verify import rules

    return {
        "kl_mean": lambda m: m["kl_mean"] > rules.KL_MEAN_FAIL,
        "kl_p99": lambda m: m["kl_p99"] > rules.KL_P99_FAIL,
        "top1_agreement": lambda m: m["top1_agreement"] < rules.TOP1_FAIL,
        "top5_overlap": lambda m: m["top5_overlap"] < rules.TOP5_FAIL,
        "ppl_delta": lambda m: abs(m["ppl_delta"] / m["ppl_reference"]) > rules.PPL_REL_FAIL,
    }


@pytest.mark.parametrize(
    "metric", ["kl_mean", "kl_p99", "top1_agreement", "top5_overlap", "ppl_delta"]
)
def test_each_metric_can_fail(results, metric):
    """Measured on real pairs: the metric is beyond its fail line on every broken pair it can see
    (PPL_BLIND) and inside it on every good one; alone beyond its line (the others set to a good pair's
    values), it makes QLT001 fire and the message names it."""
    from genai_common.findings import run_rule
    from genai_common.verify import rules

    beyond = _lines()[metric]
    blind = PPL_BLIND if metric == "ppl_delta" else set()
    assert [n for n in BROKEN if n not in blind and not beyond(results[n].metrics)] == []
    assert [n for n in GOOD if beyond(results[n].metrics)] == []
    worst_good = dict(results["4bit-g64"].metrics)
    # the mildest broken pair that the metric sees
    broken = results["rope-theta-changed" if blind else "lora-fuse-dropped"].metrics
    alone = {**worst_good, metric: broken[metric]}
    if metric == "ppl_delta":
        alone["ppl_candidate"] = broken["ppl_candidate"]
        alone["ppl_reference"] = broken["ppl_reference"]
    found = list(run_rule(rules.distribution, alone))
    assert [f.code for f in found] == ["QLT001"], alone
    assert len(rules.failing(alone)) == 1
    assert not rules.failing(worst_good)  # the good pair alone is inside every line


def test_localise_without_a_difference(pairs):
    """Two identical checkpoints: no stage named, and QLT100 says so."""
    from genai_common.verify.localise import localise

    src = pairs["float32-cast"][1]
    stage, findings = localise(str(src), str(src), tokens=list(range(1, 65)))
    assert stage is None
    assert [f.code for f in findings] == ["QLT100"] and "no stage" in findings[0].message


def test_localise_across_quantized_layouts(pairs):
    """A 4-bit candidate against the 2-bit-embedding one: both dequantized, the embedding's
    storage named on each side."""
    from genai_common.verify.localise import localise

    stage, findings = localise(
        str(pairs["4bit-g64"][0]), str(pairs["embedding-2bit"][0]), tokens=list(range(1, 65))
    )
    assert stage == "model.embed_tokens"
    q = [f.message for f in findings if f.code == "QLT108"]
    assert q and "candidate 4-bit (group 64), reference 2-bit (group 64)" in q[0]


@pytest.mark.parametrize("fixture", ["tiny_llm_qwen2", "tiny_llm_gemma"])
def test_other_families_localised(request, fixture, tmp_path):
    """Tied embeddings and q/k biases (qwen2), Gemma's (1 + w) norm and head_dim 32: a q/k
    permutation reversed is found in layer 0's attention, weights and biases named."""
    from genai_common.testing.broken import reverse_qk_permutation
    from genai_common.verify import verify

    src = request.getfixturevalue(fixture)
    bad = reverse_qk_permutation(src, tmp_path / "qk")
    res = verify(str(bad), str(src), context=256)
    assert res.verdict == "fail" and res.first_bad_layer == "model.layers.0.self_attn"
    named = {f.message.split(":")[0] for f in res.findings if f.code == "QLT102"}
    assert "model.layers.0.self_attn.q_proj.weight" in named
    assert ("model.layers.0.self_attn.k_proj.bias" in named) == (fixture == "tiny_llm_qwen2")


def test_cli_prints_the_layer(pairs):
    import subprocess
    import sys

    cand, ref = pairs["gate-up-swapped"]
    run = subprocess.run(
        [sys.executable, "-m", "genai_common.cli", "verify", str(cand), "--against", str(ref)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1, run.stderr
    assert "first bad layer: model.layers.0.mlp" in run.stdout and "QLT103" in run.stdout


def test_a_square_matrix_stored_transposed_is_named(pairs, tmp_path):
    """o_proj of layer 1 transposed: a square matrix loads either way; the walk names the layer
    and QLT113 the transpose (found by an outside acceptance pass, 2026-12-05)."""
    import shutil

    import mlx.core as mx

    from genai_common.verify.localise import localise

    src = pairs["float32-cast"][1]
    cand = tmp_path / "o-proj-transposed"
    shutil.copytree(src, cand)
    key = "model.layers.1.self_attn.o_proj.weight"
    for f in cand.glob("*.safetensors"):
        w, meta = mx.load(str(f), return_metadata=True)
        if key in w:
            w[key] = w[key].T
        mx.save_safetensors(str(f), w, metadata=meta)
    stage, findings = localise(str(cand), str(src), tokens=list(range(1, 65)))
    assert stage == "model.layers.1.self_attn"
    assert [f.message.split(":")[0] for f in findings if f.code == "QLT113"] == [key]
