"""genai verify, the llm core (issue 10 parts 1, 4, 9): text sources, the position curve and its
break point, perplexity with a bootstrap interval, determinism, the quantized KV cache, adapters,
isolated mode. Real tiny models through mlx-lm; short texts and contexts keep it fast."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mlx_lm", reason="genai verify needs mlx-lm")


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    from genai_common import corpus

    path = tmp_path_factory.mktemp("text") / "austen.txt"
    path.write_text(corpus.text("austen")[:1500], encoding="utf-8")
    return str(path)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`genai verify ...` in this process (the command's own main; no interpreter start-up)."""
    import contextlib
    import io

    from genai_common.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["verify", *args])
    return subprocess.CompletedProcess(
        ["genai", "verify", *args], code, out.getvalue(), err.getvalue()
    )


def _copy_with_config(src, dest, **changes):
    shutil.copytree(src, dest)
    cfg = json.loads((dest / "config.json").read_text())
    cfg.update(changes)
    (dest / "config.json").write_text(json.dumps(cfg))
    return str(dest)


def test_text_sources_and_default_context(tiny_llm, tmp_path):
    from mlx_lm.utils import load_tokenizer

    from genai_common.verify import llm

    tok = load_tokenizer(tiny_llm)
    corpus_docs = llm.documents(tok)
    assert len(corpus_docs) > 10 and sum(map(len, corpus_docs)) > 3000
    plain = tmp_path / "t.txt"
    plain.write_text("The capital of France is Paris.\n")
    assert llm.documents(tok, str(plain)) == [list(tok.encode(plain.read_text()))]
    rows = [
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]},
        {"prompt": "What is two and two?", "completion": "Four."},
        {"text": "Plain words."},
    ]
    jl = tmp_path / "t.jsonl"
    jl.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    chat, completion, text = llm.documents(tok, str(jl))
    user = tok.convert_tokens_to_ids("<|user|>")
    assert user in chat and user in completion  # rendered with the chat template
    assert text == list(tok.encode("Plain words."))
    wins = llm.windows([list(range(10)), list(range(10, 15))], 4)
    assert wins == [[0, 1, 2, 3, 4], [4, 5, 6, 7, 8], [8, 9, 10, 11, 12], [12, 13, 14]]
    assert llm.default_context(str(tiny_llm)) == 2048  # max_position_embeddings < 4096
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "no known field"}\n')
    res = _cli(str(tiny_llm), "--against", str(tiny_llm), "--text", str(bad))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "none of messages" in res.stderr


def test_identical_pass_with_curve_ppl_interval_and_determinism(tiny_llm, text_file):
    from genai_common.verify import verify

    r = verify(str(tiny_llm), str(tiny_llm), text=text_file, context=128)
    m = r.metrics
    assert r.verdict == "pass" and r.findings == [] and r.mode == "together"
    assert m["kl_mean"] == pytest.approx(0, abs=1e-9) and m["top1_agreement"] == 1.0
    assert m["max_abs_dlogit"] == 0 and m["ppl_delta"] == 0
    assert m["ppl_delta_ci95"] == [0.0, 0.0] and m["deterministic"] is True
    assert m["context"] == 128 and m["windows"] >= 3 and m["breaks_after"] is None
    assert [w["start"] for w in m["curve"]] == list(range(0, 128, m["curve_width"]))


def test_padding_rows_are_excluded(tiny_llm):
    from genai_common.verify.llm import MlxSide, SideSpec

    side = MlxSide(SideSpec(str(tiny_llm)))
    cfg = json.loads((tiny_llm / "config.json").read_text())
    assert side.vocab < cfg["vocab_size"]  # the tiny embedding has padding rows past the tokenizer
    rows = side.rows([1, 20, 30, 40])
    assert rows.shape == (3, side.vocab)


def test_rope_theta_changed_breaks_after_n_tokens(tiny_llm, tmp_path, text_file):
    """A changed rope_theta barely moves the first positions and ruins the later ones: the curve
    says where, QLT003 names the position, the perplexity delta's interval excludes zero."""
    # 500000 -> 50000 (at 100000 the agreement wanders around the 60% line after position 96:
    # QLT001 alone; at 10000 the second window already fails)
    cand = _copy_with_config(tiny_llm, tmp_path / "rope", rope_theta=50000.0)
    res = _cli(cand, "--against", str(tiny_llm), "--text", text_file, "--context", "512", "--json")
    assert res.returncode == 1, res.stderr
    out = json.loads(res.stdout)
    codes = [f["code"] for f in out["findings"]]
    assert "QLT003" in codes and "QLT006" in codes and out["verdict"] == "fail"
    assert out["metrics"]["ppl_delta_ci95"][0] > 0
    at = out["metrics"]["breaks_after"]
    assert 0 < at <= 256
    msg = next(f["message"] for f in out["findings"] if f["code"] == "QLT003")
    assert msg.startswith(f"breaks after {at} tokens")
    assert out["metrics"]["curve"][0]["top1_confident"] >= 0.85  # 60% is the fail line


def test_ppl_and_nan_rules_fail_on_real_damage(tiny_llm, tmp_path, text_file):
    import mlx.core as mx

    from genai_common.verify import verify

    worse = _copy_with_config(tiny_llm, tmp_path / "rope", rope_theta=20000.0)
    r = verify(worse, str(tiny_llm), text=text_file, context=512)
    assert {"QLT001", "QLT006"} <= {f.code for f in r.findings}
    assert r.metrics["ppl_delta_ci95"][0] > 0
    nan = tmp_path / "nan"
    shutil.copytree(tiny_llm, nan)
    for f in nan.glob("*.safetensors"):
        w = mx.load(str(f))
        w = {k: (v * float("nan") if k == "model.norm.weight" else v) for k, v in w.items()}
        mx.save_safetensors(str(f), w, metadata={"format": "mlx"})
    r = verify(str(nan), str(tiny_llm), text=text_file, context=128)
    assert "QLT007" in {f.code for f in r.findings} and r.verdict == "fail"


def test_break_point_ignores_noise_and_early_failure():
    from genai_common.verify.llm import break_point

    def curve(values):
        return [
            {"start": 32 * i, "end": 32 * i + 32, "positions": 32, "top1_confident": v}
            for i, v in enumerate(values)
        ]

    assert break_point(curve([0.9, 0.9, 0.4, 0.3]), 0.7) == 64
    assert break_point(curve([0.72, 0.68, 0.71, 0.69]), 0.7) is None  # noise around the line
    assert break_point(curve([0.3, 0.9, 0.9]), 0.7) is None  # broken from the start: QLT001
    assert break_point(curve([0.9, 0.4, 0.3, 0.3]), 0.7) is None  # only the first window passed
    # a broken model whose agreement wanders around the line after two easy windows
    assert break_point(curve([0.81, 0.81, 0.66, 0.74, 0.76, 0.63, 0.56, 0.66]), 0.7) is None
    assert break_point(curve([0.9, 0.6, 0.95, 0.95]), 0.7) is None  # a dip, not a break


def test_determinism_rule():
    from genai_common.findings import run_rule
    from genai_common.verify import rules

    assert run_rule(rules.determinism, {"deterministic": True}) == []
    found = run_rule(rules.determinism, {"deterministic": False})
    assert [f.code for f in found] == ["QLT004"]


def test_quantized_kv_cache_is_used_from_its_start(tiny_llm_gemma, text_file):
    """The candidate with mlx-lm's QuantizedKVCache against its own float cache, fed in chunks:
    the positions before --quantized-kv-start match exactly, the ones after do not."""
    from genai_common.verify import verify

    g = str(tiny_llm_gemma)
    r = verify(
        g, g, text=text_file, context=256, kv_bits=4, kv_group_size=32, quantized_kv_start=128
    )
    assert r.verdict in ("pass", "warn"), r.findings  # 4-bit KV: within the thresholds
    curve = r.metrics["curve"]
    assert all(w["kl_mean"] == 0 for w in curve if w["end"] <= 128)
    assert all(w["kl_mean"] > 0 for w in curve if w["start"] >= 128)
    assert r.metrics["quantized_kv_start"] == 128 and r.metrics["kv_bits"] == 4


def test_kv_group_size_that_does_not_divide_head_dim_is_a_finding(tiny_llm, text_file):
    res = _cli(str(tiny_llm), "--against", str(tiny_llm), "--kv-bits", "4", "--json",
               "--text", text_file, "--context", "64")  # fmt: skip
    assert res.returncode == 1 and "Traceback" not in res.stderr
    out = json.loads(res.stdout)
    assert [f["code"] for f in out["findings"]] == ["QLT005"]
    assert "does not divide head_dim 16" in out["findings"][0]["message"]


def test_isolated_mode_gives_the_same_metrics(tiny_llm, tmp_path, text_file):
    from genai_common.verify import verify

    cand = _copy_with_config(tiny_llm, tmp_path / "rope", rope_theta=100000.0)
    args = (cand, str(tiny_llm))
    together = verify(*args, text=text_file, context=128, isolated=False)
    isolated = verify(*args, text=text_file, context=128, isolated=True)
    assert (together.mode, isolated.mode) == ("together", "isolated")
    assert isolated.metrics["rows_through_files"] == "full"
    for key in ("kl_mean", "kl_max", "top1_agreement", "top5_overlap", "ppl_candidate"):
        assert isolated.metrics[key] == pytest.approx(together.metrics[key], abs=1e-5)
    assert isolated.metrics["kl_mean"] > 0.01  # a real difference travelled through the files


def test_isolated_mode_localises_one_model_at_a_time(tiny_llm, tmp_path, text_file):
    """When the two models do not fit together, the layer walk must not load them together
    either: each side records its stages in a child (ISOLATED_TOKENS positions, through files)
    and one more child per side reads the bad stage's tensors; it names what the in-process walk
    names."""
    from genai_common.testing.broken import swap_gate_up
    from genai_common.verify import verify
    from genai_common.verify.localise import ISOLATED_TOKENS

    cand = swap_gate_up(tiny_llm, tmp_path / "swap")  # every layer
    together = verify(str(cand), str(tiny_llm), text=text_file, context=128, isolated=False)
    isolated = verify(str(cand), str(tiny_llm), text=text_file, context=128, isolated=True)
    assert isolated.mode == "isolated" and isolated.verdict == "fail"
    assert isolated.first_bad_layer == together.first_bad_layer == "model.layers.0.mlp"
    walk = {f.code: f.message for f in isolated.findings if f.code.startswith("QLT1")}
    assert f"over {ISOLATED_TOKENS} tokens" in walk["QLT100"]  # the isolated walk ran
    assert "gate_proj" in walk["QLT103"] and "up_proj" in walk["QLT103"]


def test_topk_comparison_matches_full_rows_on_kl():
    import numpy as np

    from genai_common.verify.llm import compare_rows, compare_topk, topk_of

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 300)) * 3, rng.normal(size=(6, 300)) * 3

    def logp(a):
        return a - np.log(np.exp(a).sum(-1, keepdims=True))

    r = logp(x)
    c = logp(x + 0.3 * y)
    target = rng.integers(0, 300, 6)
    full = compare_rows(r, c, target)
    part = compare_topk(topk_of(r, target, k=64), c, target)
    assert np.allclose(part["nll_r"], full["nll_r"]) and np.allclose(part["nll_c"], full["nll_c"])
    assert (part["top1"] == full["top1"]).all()
    assert np.allclose(part["kl"], full["kl"], rtol=0.2, atol=0.02)


def _make_adapter(base, dest, scale=4.0, seed=0):
    """A LoRA adapter in mlx-lm's format (adapter_config.json + adapters.safetensors) with
    random, non-zero lora_b: what `mlx_lm lora` writes, without the training time."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm import load
    from mlx_lm.tuner.utils import linear_to_lora_layers

    model, _ = load(str(base))
    model.freeze()
    params = {"rank": 4, "scale": scale, "dropout": 0.0}
    linear_to_lora_layers(model, 2, params)
    mx.random.seed(seed)
    weights = {
        k: (mx.random.normal(v.shape) * 0.05 if k.endswith("lora_b") else v)
        for k, v in tree_flatten(model.trainable_parameters())
    }
    dest.mkdir()
    mx.save_safetensors(str(dest / "adapters.safetensors"), weights)
    cfg = {"fine_tune_type": "lora", "num_layers": 2, "lora_parameters": params}
    (dest / "adapter_config.json").write_text(json.dumps({**cfg, "model": str(base)}))
    return str(dest)


def test_adapters_fused_against_base_plus_adapter(tiny_llm, tmp_path, text_file):
    """--adapter puts the adapter on the candidate, --reference-adapter on the reference: a
    fused model passes against base + adapter; a fuse that dropped the adapter fails."""
    from genai_common.verify import verify
    from genai_common.workflows import finetune as ft

    adapter = _make_adapter(tiny_llm, tmp_path / "adapter")
    base = str(tiny_llm)
    moved = verify(base, base, candidate_adapter=adapter, text=text_file, context=128)
    assert moved.metrics["kl_mean"] > 0.01  # the adapter changes the candidate
    fused = str(tmp_path / "fused")
    assert ft.fuse(base, adapter, fused) == []
    res = _cli(
        fused,
        "--against",
        base,
        "--reference-adapter",
        adapter,
        "--text",
        text_file,
        "--context",
        "128",
        "--json",
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads(res.stdout)["verdict"] in ("pass", "warn")
    found, diffs = ft.check_fused(fused, base, adapter, "The capital of France is Paris.")
    assert found == [] and diffs["fused_vs_adapted"] < diffs["fused_vs_base"], diffs
    found, diffs = ft.check_fused(base, base, adapter, "The capital of France is Paris.")
    assert [f.code for f in found] == ["ADP010"], diffs  # the "fused" model is the bare base


def test_memory_plan_and_topk_rows_through_files(tiny_llm, tmp_path, text_file):
    """The plan: together when both sides' exact weight bytes fit the budget, else isolated;
    a large-vocabulary run sends the reference's top-k through the files."""
    from genai_common.verify import llm

    ref = llm.SideSpec(str(tiny_llm))
    cand = llm.SideSpec(_copy_with_config(tiny_llm, tmp_path / "rope", rope_theta=100000.0))
    mode, plan = llm.plan_mode(cand, ref)
    assert mode == "together" and plan["weight_bytes"] > 0
    assert llm.plan_mode(cand, ref, budget=plan["weight_bytes"])[0] == "isolated"
    assert (
        llm.plan_mode(ref, ref, budget=plan["weight_bytes"])[1]["weight_bytes"]
        < plan["weight_bytes"]
    )  # the same model on both sides is loaded once
    wins, quiet = llm._load_text(ref, text_file, 64)
    wins = wins[:2]
    full, _ = llm.run_together(cand, ref, wins, quiet)
    topk, det, is_full = llm.run_isolated_sides(cand, ref, wins, quiet, 384, full_rows_max=0)
    assert not is_full and det
    for a, b in zip(full, topk, strict=True):
        decided = a["margin"] > 0  # an exact tie may pick either of the tied ids
        assert (a["top1"] == b["top1"])[decided].all()
        # top-k plus one tail bucket: a lower bound of the full KL, close on a peaked model
        assert 0.8 * a["kl"].mean() <= b["kl"].mean() <= a["kl"].mean() + 1e-9


def test_hub_ids_from_the_local_cache(tiny_llm, tmp_path, text_file, monkeypatch):
    sha = "0" * 40
    repo = tmp_path / "hub" / "models--tiny-org--tiny-llm"
    shutil.copytree(tiny_llm, repo / "snapshots" / sha)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    ok = _cli("tiny-org/tiny-llm", "--against", str(tiny_llm), "--text", text_file,
              "--context", "64", "--json")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["candidate"] == "tiny-org/tiny-llm"
    gone = _cli("tiny-org/absent", "--against", str(tiny_llm))
    assert gone.returncode == 2 and "Traceback" not in gone.stderr
    assert len(gone.stderr.strip().splitlines()) == 1
    assert "not in the local Hugging Face cache" in gone.stderr and "hf download" in gone.stderr


def test_missing_extra_names_the_extra(tiny_llm):
    """With mlx-lm absent (the import made to fail in the child), exit 2 names the extra."""
    code = (
        "import sys; sys.modules['mlx_lm'] = None\n"
        "from genai_common.cli import main\n"
        f"sys.exit(main(['verify', {str(tiny_llm)!r}, '--against', {str(tiny_llm)!r}]))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 2, res.stderr
    assert "pip install 'genai-common[llm]'" in res.stderr and "Traceback" not in res.stderr


def test_reference_backend_seam(tiny_llm, text_file, monkeypatch):
    """A backend registered in BACKENDS supplies the reference's rows (here mlx-lm's own under
    a second name); an unknown backend is one clear error."""
    from genai_common.verify import llm, verify

    monkeypatch.setitem(llm.BACKENDS, "mlx-by-name", "genai_common.verify.llm:MlxSide")
    r = verify(
        str(tiny_llm), str(tiny_llm), text=text_file, context=64, reference_backend="mlx-by-name"
    )
    assert r.verdict == "pass" and r.metrics["kl_mean"] == 0
    with pytest.raises(ValueError, match="nope"):
        verify(str(tiny_llm), str(tiny_llm), text=text_file, context=64, reference_backend="nope")


def test_candidate_tokenizer_that_differs_is_a_warning(tiny_llm, tmp_path, text_file):
    """Both sides get the reference's ids; a candidate whose own chat template renders the
    exchanges differently is named (QLT009), the text documents are not."""
    from genai_common import corpus
    from genai_common.verify import verify

    cand = tmp_path / "template"
    shutil.copytree(tiny_llm, cand)
    template = cand / "chat_template.jinja"
    template.write_text(template.read_text().replace("'|>\\n'", "'|>\\n\\n'"))
    same = verify(str(cand), str(tiny_llm), text=text_file, context=64)
    assert same.metrics["tokenizer_difference"] is None  # plain text: no chat template involved
    r = verify(str(cand), str(tiny_llm), context=64)
    d = r.metrics["tokenizer_difference"]
    assert d["differ"] == len(corpus.chats()), d
    assert "QLT009" in {f.code for f in r.findings} and r.metrics["kl_mean"] == 0


def test_plain_output_shows_the_curve_and_the_mode(tiny_llm, text_file):
    res = _cli(str(tiny_llm), "--against", str(tiny_llm), "--text", text_file,
               "--context", "64", "--isolated")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("verdict: pass (isolated)")
    assert "top-1 agreement by position:" in res.stdout and "(decided 100.0%)" in res.stdout


@pytest.mark.parametrize("isolated", [False, True])
def test_a_candidate_the_loader_refuses_is_one_line_and_exit_2(tiny_llm, tmp_path, isolated):
    """o_proj stored transposed (a converter that forgot a transpose): mlx-lm refuses the shape;
    verify says which side, the loader's words and the command that diagnoses it."""
    import mlx.core as mx

    cand = Path(shutil.copytree(tiny_llm, tmp_path / "transposed"))
    for f in cand.glob("*.safetensors"):
        w, meta = mx.load(str(f), return_metadata=True)
        key = "model.layers.0.self_attn.o_proj.weight"
        if key in w:
            w[key] = w[key][:, :-8].T  # cut and transposed: a shape the loader refuses
        mx.save_safetensors(str(f), w, metadata=meta)
    args = [str(cand), "--against", str(tiny_llm), "--context", "64"]
    res = _cli(*args, *(["--isolated"] if isolated else []))
    assert res.returncode == 2, res.stdout + res.stderr
    line = res.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert f"the candidate {cand} could not be loaded" in line and "o_proj" in line
    assert f"genai doctor {cand} --load" in line


def test_a_missing_tensor_is_named_on_the_one_line(tiny_llm, tmp_path):
    """mlx's "Missing 1 parameters: \\n{names}." runs over two lines; the names are what tells the
    user which tensor the converter dropped, so they stay on the one line."""
    import mlx.core as mx

    cand = Path(shutil.copytree(tiny_llm, tmp_path / "no-final-norm"))
    for f in cand.glob("*.safetensors"):
        w, meta = mx.load(str(f), return_metadata=True)
        w.pop("model.norm.weight", None)
        mx.save_safetensors(str(f), w, metadata=meta)
    res = _cli(str(cand), "--against", str(tiny_llm), "--context", "64")
    assert res.returncode == 2, res.stdout + res.stderr
    line = res.stderr.strip()
    assert "\n" not in line and "Missing 1 parameters: model.norm.weight" in line, line
