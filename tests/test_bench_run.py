"""genai bench on tiny real models (CPU): trials, warm-up apart, EOS disabled, scoped peak
memory, ABBA interleaving, the command end to end with its records and plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genai_common.bench import llm
from genai_common.bench.runner import load_subject
from genai_common.cli import main


@pytest.fixture(autouse=True, scope="module")
def _needs_mlx_lm() -> None:
    # a fixture, not a module-level skip: the torch stack deselects these tests without a skip line
    pytest.importorskip("mlx_lm", reason="mlx-lm is not installed (genai-common[llm])")


@pytest.fixture(scope="module")
def subject(tiny_llm):
    return load_subject(str(tiny_llm), "llm", "A")


def _work(subject, prompt_tokens: int, gen_tokens: int) -> llm.Workload:
    ids = llm.random_prompt(llm.vocab_size(subject.config), prompt_tokens, seed=0)
    return llm.Workload(f"random-{prompt_tokens}", ids, gen_tokens, prompt_tokens)


def test_every_trial_generates_the_requested_count_with_eos_disabled(subject):
    tok = subject.tokenizer
    saved = set(tok.eos_token_ids)
    tok.eos_token_ids = set(range(llm.vocab_size(subject.config)))  # every token would stop it
    try:
        trial = llm.run_trial(subject, _work(subject, 8, 12))
        assert trial["n_tokens"] == 12
        assert len(trial["arrivals"]) == 12
        assert tok.eos_token_ids == set(range(llm.vocab_size(subject.config)))  # restored
    finally:
        tok.eos_token_ids = saved
    assert trial["library"]["generation_tokens"] == 12
    assert trial["decode_tps"] == pytest.approx(11 / (trial["arrivals"][-1] - trial["arrivals"][0]))
    # mlx-lm's own rate counts N over the window: ours is lower by about (N-1)/N
    assert trial["library"]["generation_tps"] > trial["decode_tps"]


def test_peak_memory_is_scoped_to_each_trial(subject):
    import mlx.core as mx

    big = mx.zeros((16 << 20,), dtype=mx.float32)  # 64 MiB: raises the process-wide peak
    mx.eval(big)
    del big
    long = llm.run_trial(subject, _work(subject, 192, 4))
    short = llm.run_trial(subject, _work(subject, 4, 4))
    assert 0 < long["peak_mlx"] < 32 << 20  # the 64 MiB before the trial does not count
    assert short["peak_mlx"] < long["peak_mlx"]  # the longer prompt's KV cache did not carry over
    assert 0 < short["peak_mlx_added"] < long["peak_mlx_added"] < long["peak_mlx"]
    assert long["memory"][0][0] == 0.0 and len(long["memory"]) == 5  # start + one per token


def test_warmup_and_cold_runs_stay_out_of_the_statistics(subject):
    results = llm.bench(
        [subject], prompt_tokens=8, gen_tokens=6, trials=3, warmup=2, cooldown=0.0, prompts="both"
    )
    assert [r["workload"] for r in results] == ["random-8", "chat"]
    for res in results:
        assert res["cold"] is not None and len(res["warmup"]) == 1 and len(res["trials"]) == 3
        summary = res["summary"]["decode_tps"]
        assert summary["n"] == 3
        timed = sorted(t["decode_tps"] for t in res["trials"])
        assert summary["median"] == timed[1]
        assert summary["min"] == timed[0] and summary["max"] == timed[2]
    assert results[1]["prompt_tokens"] > 8  # the chat prompt is real text through the template


def test_two_models_interleave_abba(tiny_llm, tiny_llm_qwen2):
    a = load_subject(str(tiny_llm), "llm", "A")
    b = load_subject(str(tiny_llm_qwen2), "llm", "B")
    results = llm.bench(
        [a, b], prompt_tokens=8, gen_tokens=4, trials=2, warmup=1, cooldown=0.0, prompts="random"
    )
    starts = sorted((t["started_at"], res["subject"]) for res in results for t in res["trials"])
    assert [label for _, label in starts] == ["A", "B", "B", "A"]


def test_against_compares_the_two_models_in_the_record(tiny_llm, tiny_llm_qwen2, capsys):
    argv = ["bench", str(tiny_llm), "--against", str(tiny_llm_qwen2), "--prompts", "random"]
    argv += ["--prompt-tokens", "8", "--gen-tokens", "4", "--trials", "3", "--no-roofline"]
    assert main([*argv, "--no-record", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert [s["label"] for s in record["subjects"]] == ["A", "B"]
    assert {r["subject"] for r in record["results"]} == {"A", "B"}
    decode = [c for c in record["comparison"] if c["metric"] == "decode_tps"]
    assert len(decode) == 1 and decode[0]["n_a"] == decode[0]["n_b"] == 3
    assert "written" not in record


def _png(path: str) -> bytes:
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return data


def test_bench_command_writes_record_row_and_plots(tiny_llm, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "reference"
    out.mkdir()
    (out / "RESULTS.md").write_text("# Results\n\nmy own words\n")
    argv = ["bench", str(tiny_llm), "--prompt-tokens", "16", "--gen-tokens", "8", "--trials", "3"]
    assert main([*argv, "--prompts", "random", "--out", str(out), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    res = record["results"][0]
    assert res["summary"]["decode_tps"]["n"] == 3 and res["cold"]["n_tokens"] == 8
    roof = res["roofline"]
    assert roof["weight_bytes"] > 0 and roof["fraction_of_peak"] > 0
    assert roof["prefill_flops_per_s"] > 0
    written = record["written"]
    assert set(written) >= {"record", "plot latency", "plot rate", "plot memory", "results"}
    for name in ("plot latency", "plot rate", "plot memory"):
        _png(written[name])
    saved = json.loads(Path(written["record"]).read_text())
    assert saved["results"][0]["trials"][0]["arrivals"] == res["trials"][0]["arrivals"]
    text = (out / "RESULTS.md").read_text()
    assert text.startswith("# Results\n\nmy own words\n")
    assert "decode tokens/s" in text and "](bench/" in text
    # a second run: --compare on the two records says something for every shared figure
    assert main([*argv, "--prompts", "random", "--out", str(out), "--no-plots"]) == 0
    capsys.readouterr()
    first, second = sorted((out / "bench").glob("*.json"))
    assert main(["bench", "--compare", str(first), str(second)]) == 0
    report = capsys.readouterr().out
    assert "decode tok/s" in report and "B/A" in report
    assert (out / "RESULTS.md").read_text().count("| date | commit |") == 1


def test_bench_command_on_the_ml_module(tiny_ml, tmp_path, capsys):
    argv = ["bench", str(tiny_ml), "--trials", "4", "--train-step", "--batch-size", "8"]
    assert main([*argv, "--out", str(tmp_path), "--json", "--no-plots"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["kind"] == "ml"
    forward, train = record["results"]
    assert forward["summary"]["forward_s"]["n"] == 4 and forward["cold"]["forward_s"] > 0
    assert train["summary"]["train_step_s"]["n"] == 4
    config = json.loads((tiny_ml / "config.json").read_text())
    dims = [config["input_dims"], *[config["hidden_dims"]] * config["num_layers"]]
    per_sample = sum(
        2 * a * b for a, b in zip(dims, [*dims[1:], config["output_dims"]], strict=True)
    )
    assert forward["roofline"]["flops_per_call"] == 8 * per_sample
    assert forward["roofline"]["flops_per_s"] == pytest.approx(
        8 * per_sample / forward["summary"]["forward_s"]["median"]
    )
    assert train["roofline"]["flops_per_call"] == 3 * 8 * per_sample
    assert "3 Linear call(s)" in forward["roofline"]["flops_note"]


def test_forward_flops_counts_linear_and_conv_layers_without_evaluating():
    import mlx.core as mx
    import mlx.nn as nn

    from genai_common.bench.ml import forward_flops

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 5, kernel_size=3, padding=1)
            self.proj = nn.Linear(5, 32)
            self.head = nn.QuantizedLinear(32, 64, bias=False, group_size=32, bits=4)

        def __call__(self, x: mx.array) -> mx.array:
            return self.head(self.proj(self.conv(x)))

    original = nn.Linear.__call__
    flops, calls = forward_flops(Net(), mx.zeros((2, 6, 6, 3)))
    conv = 2 * (2 * 6 * 6 * 5) * (3 * 3 * 3)
    proj = 2 * (2 * 6 * 6) * 5 * 32
    head = 2 * (2 * 6 * 6) * 32 * 64
    assert flops == conv + proj + head
    assert calls == {"Conv2d": 1, "Linear": 1, "QuantizedLinear": 1}
    assert nn.Linear.__call__ is original  # the counting wrappers are gone


def test_weight_bytes_come_from_the_headers(tiny_llm, tiny_vlm, subject):
    from genai_common.bench import roofline

    total, per_token, source = roofline.weight_bytes(tiny_llm)
    assert source == "safetensors headers"
    loaded_total, loaded_per_token = roofline.parameter_bytes(subject.model)
    assert (total, per_token) == (loaded_total, loaded_per_token)
    config = subject.config
    embed = config["vocab_size"] * config["hidden_size"] * 2  # float16, untied llama
    assert per_token == total - embed
    vlm_total, vlm_per_token, _ = roofline.weight_bytes(tiny_vlm)
    assert vlm_per_token < vlm_total  # the vision tower is not read per decoded token


def test_a_model_that_will_not_load_is_an_error_not_a_traceback(tiny_model_factory, capsys):
    from checks_helpers import edit_json

    model = tiny_model_factory("llm")
    edit_json(model / "config.json", lambda c: c.update(hidden_size=96))  # weights are 64 wide
    assert main(["bench", str(model), "--trials", "1", "--no-record"]) == 1
    err = capsys.readouterr().err
    assert "could not be benchmarked" in err and "genai doctor" in err and "--infer" in err
    assert "Traceback" not in err


def test_prompt_length_sweep(tiny_llm, tmp_path, capsys):
    from genai_common.bench.cli import token_counts

    assert token_counts("512") == [512] and token_counts("128,512,128") == [128, 512]
    argv = ["bench", str(tiny_llm), "--prompt-tokens", "8,32", "--gen-tokens", "4"]
    argv += ["--prompts", "random", "--trials", "2", "--no-roofline", "--out", str(tmp_path)]
    assert main([*argv, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert [(r["workload"], r["prompt_tokens"]) for r in record["results"]] == [
        ("random-8", 8),
        ("random-32", 32),
    ]
    assert "--prompt-tokens 8,32" in record["command"]
    assert record["settings"]["prompt_tokens"] == [8, 32]
    _png(record["written"]["plot context"])  # decode rate and TTFT against the length
    capsys.readouterr()
    for bad, says in (("0", "must be positive"), ("8,x", "give token counts")):
        with pytest.raises(SystemExit) as exit_:
            main(["bench", str(tiny_llm), "--prompt-tokens", bad])
        assert exit_.value.code == 2 and says in capsys.readouterr().err


def test_bench_refuses_bad_arguments(tmp_path, capsys):
    assert main(["bench"]) == 2
    assert main(["bench", str(tmp_path)]) == 2  # no config.json: cannot tell the kind
    assert "config.json" in capsys.readouterr().err


def test_vlm_trials_generate_the_requested_count(tiny_vlm):
    pytest.importorskip("mlx_vlm", reason="mlx-vlm is not installed (genai-common[vlm])")
    subject = load_subject(str(tiny_vlm), "vlm", "A")
    results = llm.bench(
        [subject],
        prompt_tokens=8,
        gen_tokens=5,
        trials=2,
        warmup=1,
        cooldown=0.0,
        prompts="chat",
        image_size=32,
    )
    res = results[0]
    assert [t["n_tokens"] for t in res["trials"]] == [5, 5]
    # mlx-vlm's closing item (same generation_tokens, the finish reason) reaches measure_stream
    assert [t["library"].get("finish_reason") for t in res["trials"]] == ["length", "length"]
    assert res["prompt_tokens"] > 0  # counted by mlx-vlm (text + image tokens)
    assert res["summary"]["decode_tps"]["n"] == 2
