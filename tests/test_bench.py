"""genai bench without a model: statistics, decode arithmetic, records, compare, plots, roofline."""

from __future__ import annotations

import itertools
import json
import random
import struct
from pathlib import Path

import pytest

from genai_common.bench import compare, records, roofline, stats
from genai_common.bench.llm import abba, summarize_trials, trial_figures
from genai_common.runtime.stream import StreamMetrics


def test_decode_rate_is_n_minus_one_over_the_arrival_window():
    # start at 0; first token at 100 ms; then 4 more tokens 20 ms apart, one slow gap of 60 ms
    arrivals = (0.100, 0.120, 0.140, 0.200, 0.220)
    figures = trial_figures(StreamMetrics(arrivals=arrivals), prompt_tokens=50)
    assert figures["n_tokens"] == 5
    assert figures["ttft"] == pytest.approx(0.100)
    assert figures["prefill_tps"] == pytest.approx(500.0)
    assert figures["decode_tps"] == pytest.approx(4 / 0.120)  # not 5 / 0.120 (mlx-lm's N/window)
    assert figures["e2e"] == pytest.approx(0.220)
    assert figures["itl_p50"] == pytest.approx(0.020)
    assert figures["itl_p99"] > 0.055  # the slow gap shows in the tail
    assert figures["arrivals"] == list(arrivals)


def test_one_token_has_no_decode_rate():
    figures = trial_figures(StreamMetrics(arrivals=(0.05,)), prompt_tokens=10)
    assert figures["decode_tps"] is None
    assert figures["ttft"] == pytest.approx(0.05)


def test_summary_only_counts_timed_trials():
    trials = [{"decode_tps": v, "library": {"generation_tps": v * 1.1}} for v in (100, 102, 98)]
    summary = summarize_trials(trials)
    assert summary["decode_tps"]["n"] == 3
    assert summary["decode_tps"]["median"] == 100
    assert summary["library_generation_tps"]["median"] == pytest.approx(110)


def test_summarize_spread_and_noise():
    tight = stats.summarize([100, 101, 99, 100, 100.5])
    assert (tight.min, tight.max, tight.median) == (99, 101, 100)
    assert not tight.noisy
    wide = stats.summarize([100, 140, 70, 100, 160])
    assert wide.noisy and "IQR" in wide.noise
    assert stats.summarize([5.0]).stdev == 0.0


def test_quantile_matches_linear_interpolation():
    xs = [3.0, 1.0, 2.0, 10.0]
    assert stats.quantile(xs, 0.5) == 2.5
    assert stats.quantile(xs, 0.25) == pytest.approx(1.75)
    assert stats.quantile(xs, 1.0) == 10.0


def _brute_force_p(a: list[float], b: list[float]) -> float:
    """Two-sided exact p of U by enumerating every split of the pooled ranks."""
    pooled = sorted(a + b)
    n1 = len(a)
    u_obs = sum(1 for x in a for y in b if x > y)
    mean = n1 * len(b) / 2
    extreme = total = 0
    for idx in itertools.combinations(range(len(pooled)), n1):
        xs = [pooled[i] for i in idx]
        ys = [pooled[i] for i in range(len(pooled)) if i not in idx]
        u = sum(1 for x in xs for y in ys if x > y)
        total += 1
        extreme += abs(u - mean) >= abs(u_obs - mean)
    return extreme / total


@pytest.mark.parametrize("seed", range(4))
def test_exact_mann_whitney_matches_enumeration(seed):
    rng = random.Random(seed)
    a = [rng.random() for _ in range(4)]
    b = [rng.random() + 0.3 for _ in range(5)]
    u, p = stats.mann_whitney_u(a, b)
    assert u == sum(1 for x in a for y in b if x > y)
    assert p == pytest.approx(_brute_force_p(a, b))


def test_mann_whitney_with_ties_uses_normal_approximation():
    _, p_same = stats.mann_whitney_u([1, 1, 2, 2, 3], [1, 1, 2, 2, 3])
    assert p_same == pytest.approx(1.0)
    _, p_apart = stats.mann_whitney_u([1, 1, 2, 2, 3] * 4, [5, 5, 6, 6, 7] * 4)
    assert p_apart < 1e-6


def _normal(seed: int, n: int, mean: float, sd: float) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(mean, sd) for _ in range(n)]


def test_compare_calls_equal_distributions_equal_and_shifted_ones_different():
    a = _normal(1, 12, 100, 3)
    same = stats.compare(a, _normal(2, 12, 100, 3))
    assert not same.different
    assert same.ci_low <= 1.0 <= same.ci_high
    shifted = stats.compare(a, _normal(3, 12, 110, 3))
    assert shifted.different
    assert shifted.ci_low > 1.0
    assert shifted.verdict.startswith("different")


def test_compare_warns_about_few_samples():
    result = stats.compare([1.0, 1.1], [2.0, 2.1])
    assert not result.different  # 2 vs 2 samples cannot reach p < 0.05
    assert "little power" in result.verdict


def test_inconclusive_says_how_many_trials_would_decide():
    """Issue 16: a 20x gap at 3 trials read "inconclusive" without saying 3 can never decide."""
    assert stats.trials_to_decide(0.05) == 4 and stats.trials_to_decide(0.01) == 5
    result = stats.compare([0.05, 0.051, 0.052], [1.0, 1.01, 1.02], metric="ttft_s")
    assert result.verdict.startswith("inconclusive") and "at least 4 per side" in result.verdict
    decided = stats.compare([0.05, 0.051, 0.052, 0.053], [1.0, 1.01, 1.02, 1.03])
    assert decided.different and "per side" not in decided.verdict


def test_abba_order_balances_two_configurations():
    order = abba(4, ["A", "B"])
    assert order == ["A", "B", "B", "A", "A", "B", "B", "A"]
    assert abba(3, ["A"]) == ["A", "A", "A"]


# --- records -------------------------------------------------------------------------------


def synthetic_record(decode: list[float], *, kind: str = "llm", seed: int = 0) -> dict:
    """A record shaped like `genai bench` writes, from made-up arrival times."""
    rng = random.Random(seed)

    def trial(rate: float) -> dict:
        arrivals = [0.01]
        for _ in range(15):
            arrivals.append(arrivals[-1] + rng.uniform(0.8, 1.2) / rate)
        figures = trial_figures(StreamMetrics(arrivals=tuple(arrivals)), prompt_tokens=32)
        figures["decode_tps"] = rate
        figures["memory"] = [[t, 1_000_000 + 1000 * i, 2000] for i, t in enumerate(arrivals)]
        figures["peak_mlx"] = 1_100_000
        figures["library"] = {"generation_tps": rate * 16 / 15}
        return figures

    trials = [trial(r) for r in decode]
    record = records.new_record(kind, "/models/tiny", {"trials": len(decode)}, ["/models/tiny"])
    record["results"] = [
        {
            "subject": "A",
            "workload": "random-32",
            "prompt_tokens": 32,
            "gen_tokens": 16,
            "cold": trial(decode[0] / 3),
            "warmup": [],
            "trials": trials,
            "summary": summarize_trials(trials),
        }
    ]
    return record


USER_TEXT = (
    "# Results\n\nMy notes — keep these bytes: é ü ✓\n| not | our | table |\nno newline at end"
)


def _git_commit(root: Path) -> str:
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    git("init", "-q")
    git(
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        str(root),
    )
    return git("rev-parse", "--short", "HEAD")


def test_record_names_the_projects_own_commit_or_none(tmp_path, monkeypatch):
    """A project folder nested inside another repository has no commit of its own: the record
    says none rather than the enclosing repository's."""
    outer = tmp_path / "outer"
    project = outer / "work" / "myproj"
    (project / "src").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[tool.genai]\nkind = 'llm'\n")
    outer_head = _git_commit(outer)
    for cwd in (project, project / "src"):
        monkeypatch.chdir(cwd)
        assert records.project_root(cwd) == project.resolve()
        record = records.new_record("llm", "/models/tiny", {}, [])
        assert record["commit"] is None, cwd  # not outer's
        assert outer_head not in (records.project_commit(cwd) or "")
    own_head = _git_commit(project)
    assert own_head != outer_head
    for cwd in (project, project / "src"):
        monkeypatch.chdir(cwd)
        assert records.new_record("llm", "/models/tiny", {}, [])["commit"] == own_head
    monkeypatch.chdir(outer)  # the outer repository benchmarked from its own root
    assert records.new_record("llm", "/models/tiny", {}, [])["commit"].startswith(outer_head)


def test_results_row_append_keeps_every_existing_byte(tmp_path):
    md = tmp_path / "RESULTS.md"
    md.write_bytes(USER_TEXT.encode())
    original = md.read_bytes()
    rec = synthetic_record([100, 101, 99])
    records.append_row(md, records.results_row(rec, "decode 100 tok/s", {"json": "bench/x.json"}))
    first = md.read_bytes()
    assert first.startswith(original)
    added = first[len(original) :].decode()
    assert "## Benchmarks" in added and "| date | commit |" in added
    # a second run adds one row to the same table, nothing else
    records.append_row(md, records.results_row(rec, "decode 101 tok/s", {}))
    second = md.read_bytes()
    assert second.startswith(first)
    extra = second[len(first) :].decode()
    assert extra.count("\n") == 1 and extra.startswith("| ") and "decode 101" in extra
    # the user writes below the table: the next row starts a new table, their text stays
    md.write_bytes(second + b"\nMore notes.\n")
    before = md.read_bytes()
    records.append_row(md, records.results_row(rec, "decode 102 tok/s", {}))
    assert md.read_bytes().startswith(before)
    assert md.read_text().count("| date | commit |") == 2


def test_record_environment_is_the_runtime_report():
    env = records.environment()
    runtime = env["runtime"]
    assert set(runtime) >= {"python", "os", "frameworks"}  # `genai env --json`'s report
    assert runtime["network"] is None  # committed records carry no interface addresses
    assert env["platform"] == runtime["os"]["platform"] and env["cpu"] == runtime["os"]["machine"]
    assert env["versions"]["python"] == runtime["python"]["version"]
    for name, fw in runtime["frameworks"].items():
        assert env["versions"].get(name) == fw["version"], name
    mlx = runtime["frameworks"]["mlx"]
    row = records.results_row(synthetic_record([100, 101]), "x", {})
    assert not mlx["installed"] or f"mlx {mlx['version']}" in row


def test_results_row_escapes_pipes(tmp_path):
    rec = synthetic_record([100, 101, 99])
    row = records.results_row(rec, "a | b", {})
    assert row.count(" | ") == len(records.TABLE_HEADER.splitlines()[0].split(" | ")) - 1
    assert "a \\| b" in row


def test_json_record_round_trip(tmp_path):
    rec = synthetic_record([100, 101, 99])
    path = records.write_json(rec, tmp_path)
    again = records.write_json(rec, tmp_path)
    assert path != again  # never overwrites an earlier record
    loaded = records.read_json(path)
    assert (
        loaded["results"][0]["trials"][0]["arrivals"] == rec["results"][0]["trials"][0]["arrivals"]
    )
    assert len(records.history(tmp_path, kind="llm", model="/elsewhere/tiny")) == 2
    (tmp_path / "junk.json").write_text("{}")
    with pytest.raises(ValueError):
        records.read_json(tmp_path / "junk.json")


def test_compare_records_on_raw_trials():
    base = synthetic_record(_normal(1, 8, 100, 2))
    same = synthetic_record(_normal(2, 8, 100, 2))
    faster = synthetic_record(_normal(3, 8, 115, 2))
    head = [c for c in compare.compare_records(base, same) if c["metric"] == "decode_tps"]
    assert len(head) == 1 and not head[0]["different"] and head[0]["headline"]
    head = [c for c in compare.compare_records(base, faster) if c["metric"] == "decode_tps"]
    assert head[0]["different"] and head[0]["ratio"] > 1.1
    text = compare.render(compare.compare_records(base, faster), "a.json", "b.json")
    assert "random-32" in text and "different" in text


def test_compare_says_which_side_is_better():
    base = synthetic_record(_normal(1, 8, 100, 2))
    faster = synthetic_record(_normal(3, 8, 115, 2))
    for trial in faster["results"][0]["trials"]:
        trial["peak_mlx"] *= 1.5  # and uses more memory
    faster["results"][0]["summary"] = summarize_trials(faster["results"][0]["trials"])
    by_metric = {c["metric"]: c for c in compare.compare_records(base, faster)}
    assert by_metric["decode_tps"]["b_better"] is True  # a rate: higher is better
    assert by_metric["peak_mlx"]["different"] and by_metric["peak_mlx"]["b_better"] is False
    assert compare.mismatches(base, faster) == []  # same work, same machine
    text = compare.render(list(by_metric.values()), "a", "b", [])
    assert "-> B better" in text and "-> B worse" in text and "not like for like" not in text


def test_compare_flags_runs_that_did_different_work():
    base = synthetic_record(_normal(1, 8, 100, 2))
    other = synthetic_record(_normal(3, 8, 115, 2))
    other["results"][0]["gen_tokens"] = 64
    other["settings"]["seed"], base["settings"]["seed"] = 1, 0
    other["environment"]["machine"] = "another-host"
    extra = dict(other["results"][0], workload="chat")
    other["results"].append(extra)
    diffs = {d["what"]: d for d in compare.mismatches(base, other)}
    assert diffs["random-32: gen_tokens"]["scope"] == "workload"
    assert (diffs["random-32: gen_tokens"]["a"], diffs["random-32: gen_tokens"]["b"]) == (16, 64)
    assert diffs["seed"]["scope"] == "workload"
    assert diffs["workload chat"] == {
        "what": "workload chat",
        "a": "absent",
        "b": "measured",
        "scope": "unmatched",
    }
    assert diffs["machine"]["scope"] == "context" and diffs["machine"]["b"] == "another-host"
    comparisons = compare.compare_records(base, other)
    assert {c["workload"] for c in comparisons} == {"random-32"}
    assert all(c["same_work"] is False and c["b_better"] is None for c in comparisons)
    text = compare.render(comparisons, "a", "b", list(diffs.values()))
    assert "not like for like" in text and "! random-32: gen_tokens: 16 vs 64" in text
    assert "workload chat only in B" in text and "machine:" in text
    assert "[different work]" in text and "B better" not in text


def test_compare_pairs_subjects_of_two_against_runs():
    a = synthetic_record(_normal(1, 8, 100, 2))
    b = synthetic_record(_normal(2, 8, 100, 2))
    for rec, rate in ((a, 200), (b, 200)):
        other = synthetic_record(_normal(3, 8, rate, 2))["results"][0]
        rec["results"].append(dict(other, subject="B"))
    comparisons = compare.compare_records(a, b)
    decode = {c["subject"]: c for c in comparisons if c["metric"] == "decode_tps"}
    assert set(decode) == {"A", "B"}
    assert not decode["A"]["different"] and not decode["B"]["different"]  # A with A, B with B
    text = compare.render(comparisons, "a", "b", compare.mismatches(a, b))
    assert "random-32 [B]" in text


def test_compare_command(tmp_path, capsys):
    from genai_common.cli import main

    a = records.write_json(synthetic_record(_normal(1, 8, 100, 2)), tmp_path)
    b = records.write_json(synthetic_record(_normal(3, 8, 120, 2)), tmp_path)
    assert main(["bench", "--compare", str(a), str(b), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    decode = next(c for c in out["comparisons"] if c["metric"] == "decode_tps")
    assert decode["different"] and decode["b_better"] and out["differences"] == []
    assert main(["bench", "--compare", str(a), str(tmp_path / "missing.json")]) == 2


# --- plots ---------------------------------------------------------------------------------


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_plots_are_valid_png_with_content(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib (genai-common[ml]) is not installed")
    import matplotlib.image

    from genai_common.bench.plots import write_plots

    history = [synthetic_record([90, 92, 91], seed=1), synthetic_record([95, 96, 94], seed=2)]
    written = write_plots(synthetic_record([100, 101, 99]), history, tmp_path, "run")
    assert set(written) == {"latency", "rate", "memory"}
    for path in written.values():
        width, height = _png_size(path)
        assert width >= 400 and height >= 200
        assert path.stat().st_size > 10_000
        pixels = matplotlib.image.imread(path)
        assert pixels.reshape(-1, pixels.shape[-1]).std(axis=0).max() > 0.05  # not a blank image


def _with_cold_spike(record: dict, gap_s: float = 0.470, at: int = 7) -> dict:
    """The cold run's token `at` arrives gap_s late (a JIT compile, a page fault)."""
    cold = record["results"][0]["cold"]
    arrivals = cold["arrivals"]
    cold["arrivals"] = arrivals[:at] + [t + gap_s for t in arrivals[at:]]
    return record


def test_latency_axis_leaves_out_a_cold_spike_and_marks_it():
    pytest.importorskip("matplotlib", reason="matplotlib (genai-common[ml]) is not installed")
    from genai_common.bench.plots import latency_figure

    record = _with_cold_spike(synthetic_record([100, 101, 99]))
    trial_ms = [
        (b - a) * 1e3
        for t in record["results"][0]["trials"]
        for a, b in itertools.pairwise(t["arrivals"])
    ]
    [ax] = latency_figure(record).axes
    bottom, top = ax.get_ylim()
    assert max(trial_ms) <= top < 50  # the trials (about 10 ms a token) fill the axis
    assert bottom <= min(trial_ms)
    cold = record["results"][0]["cold"]["arrivals"]
    spike_ms = (cold[7] - cold[6]) * 1e3  # 470 ms late + the cold run's own gap
    assert spike_ms > 470
    [note] = [t for t in ax.texts if "cold" in t.get_text()]
    assert note.get_text() == f"cold: {spike_ms:.3g} ms at token 8"
    assert note.xy == (8, top)  # the arrow points at the clipped point, on the top edge
    edge_marks = [ln for ln in ax.lines if ln.get_marker() == "^"]
    assert len(edge_marks) == 1 and list(edge_marks[0].get_ydata()) == [top]
    assert not edge_marks[0].get_clip_on()


def test_latency_axis_without_outliers_shows_every_point():
    pytest.importorskip("matplotlib", reason="matplotlib (genai-common[ml]) is not installed")
    from genai_common.bench.plots import latency_figure, robust_top

    record = synthetic_record([100, 101, 99])
    [ax] = latency_figure(record).axes
    drawn = [y for line in ax.lines for y in line.get_ydata()]
    assert ax.get_ylim()[1] >= max(drawn) and len(ax.texts) == 0
    assert robust_top([3.0] * 50 + [470.0]) < 10  # one spike among 3 ms tokens
    assert robust_top([3.0 + 0.01 * i for i in range(50)]) is None  # spread, no outlier


def test_rate_title_names_only_what_is_drawn():
    pytest.importorskip("matplotlib", reason="matplotlib (genai-common[ml]) is not installed")
    from genai_common.bench.plots import rate_figure

    record = synthetic_record([100, 101, 99])  # a cold run, no warm-up runs
    left = rate_figure(record, []).axes[0]
    assert left.get_title() == "this run: red cold, blue timed"
    colours = {tuple(c) for c in left.collections[0].get_facecolors().round(3)}
    assert len(colours) == 2  # red and blue points only
    result = record["results"][0]
    result["warmup"] = [dict(result["trials"][0])]
    result["cold"] = None
    left = rate_figure(record, []).axes[0]
    assert left.get_title() == "this run: orange warm-up, blue timed"


def test_history_follows_only_runs_of_the_same_work_and_machine():
    pytest.importorskip("matplotlib", reason="matplotlib (genai-common[ml]) is not installed")
    from genai_common.bench.plots import history_series

    same = synthetic_record([90, 92, 91], seed=1)
    longer = synthetic_record([70, 71, 72], seed=2)
    longer["results"][0]["gen_tokens"] = 256
    elsewhere = synthetic_record([300, 310, 305], seed=3)
    elsewhere["environment"]["machine"] = "a-bigger-host"
    now = synthetic_record([100, 101, 99])
    [(res, points)] = history_series(now, [same, longer, elsewhere], "decode_tps")
    assert res["workload"] == "random-32"
    assert sorted(points) == [0, 3]  # the earlier like-for-like run and this one
    assert points[0][1]["median"] == 91 and points[3][1]["median"] == 100


# --- roofline ------------------------------------------------------------------------------


def test_roofline_arithmetic():
    out = roofline.decode_roofline(2_000_000_000, 100.0, {"bytes_per_s": 1e12, "probe": "p"})
    assert out["achieved_bytes_per_s"] == pytest.approx(2e11)
    assert out["fraction_of_peak"] == pytest.approx(0.2)
    assert "fraction_of_peak" not in roofline.decode_roofline(10, 1.0, None)
    config = {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 512,
    }
    # per layer: q,o 64x64 each; k,v 64x32 each; mlp 3 x 64x128; head 64x512
    params = 2 * (2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 128) + 64 * 512
    assert roofline.llm_matmul_params(config) == params
    assert roofline.prefill_flops(config, 10) == 2 * params * 10 + 2 * 2 * 100 * 64
    assert roofline.prefill_flops({"hidden_size": 8}, 10) is None


def test_bytes_read_per_decoded_token():
    untied = {"model.embed_tokens.weight": 100, "model.layers.0.w": 10, "lm_head.weight": 100}
    assert roofline.read_per_token(untied) == 110  # the input lookup reads one row, not 100
    tied = {"model.embed_tokens.weight": 100, "model.layers.0.w": 10}
    assert roofline.read_per_token(tied) == 110  # the tied matrix is the LM head
    vlm = {
        "language_model.model.embed_tokens.weight": 100,
        "language_model.model.layers.0.w": 10,
        "vision_tower.blocks.0.w": 50,
        "multi_modal_projector.linear.weight": 5,
    }
    assert roofline.read_per_token(vlm) == 110


def test_peak_bandwidth_is_probed_once_and_cached(tmp_path, monkeypatch):
    pytest.importorskip("mlx.core", reason="mlx is not installed")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = roofline.peak_bandwidth(probe_bytes=8 << 20)
    assert not first["cached"] and first["bytes_per_s"] > 0
    assert len(first["samples"]) == 7
    second = roofline.peak_bandwidth(probe_bytes=8 << 20)
    assert second["cached"] and second["bytes_per_s"] == first["bytes_per_s"]
    cache = json.loads((tmp_path / "genai-common" / "roofline.json").read_text())
    assert list(cache) == [first["key"]] and "mlx" in first["key"]


def test_bench_kind_is_the_doctors_kind(tmp_path):
    """One kind detector (ModelDir.kind): bench runs the kinds the doctor names, and asks for
    --kind where the doctor names none that bench runs (no config fallback of its own)."""
    from genai_common.bench.cli import model_kind

    cases = {
        "llm": '{"model_type": "llama", "vocab_size": 32, "num_hidden_layers": 2}',
        "vlm": '{"model_type": "qwen2_vl", "vision_config": {"depth": 2}}',
        "layers": '{"num_hidden_layers": 2}',  # the doctor says unknown: no vocab, no weights
        "other": '{"hidden": 2}',
        "bad": "nope",
    }
    for name, text in cases.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(text)
    (tmp_path / "diffusion").mkdir()
    (tmp_path / "diffusion" / "model_index.json").write_text('{"_class_name": "X"}')
    assert model_kind(str(tmp_path / "llm")) == "llm"
    assert model_kind(str(tmp_path / "vlm")) == "vlm"
    assert model_kind(str(tmp_path / "diffusion")) == "diffusion"
    for name in ("layers", "other", "bad", "missing"):
        with pytest.raises(ValueError, match="pass --kind"):
            model_kind(str(tmp_path / name))


def test_bench_without_a_path_runs_the_projects_model(
    tmp_path, tmp_path_factory, monkeypatch, capsys
):
    """`genai bench` with no PATH reads [tool.genai] itself: the project's model, its kind."""
    pytest.importorskip("mlx.core", reason="mlx builds and runs the tiny ml model")
    from genai_common.cli import main

    (tmp_path / "pyproject.toml").write_text('[tool.genai]\nkind = "ml"\nmodel = ""\n')
    (tmp_path / "src").mkdir()
    monkeypatch.chdir(tmp_path / "src")
    assert main(["bench", "--trials", "1", "--batch-size", "2", "--no-record", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["kind"] == "ml" and record["model"] == str(tmp_path / "models/tiny-ml")
    assert (tmp_path / "models/tiny-ml/config.json").is_file()  # built on first use

    monkeypatch.chdir(tmp_path_factory.mktemp("no-project"))  # no [tool.genai] above: exit 2
    assert main(["bench"]) == 2
    assert "give a model PATH" in capsys.readouterr().err


def test_progress_is_silent_off_a_terminal_and_draws_on_one(capsys):
    from genai_common.bench.progress import Progress

    with Progress(enabled=False) as quiet:
        quiet.start("work", 2)
        quiet.advance("step")
    assert capsys.readouterr().err == ""
    with Progress(enabled=True) as bar:
        bar.start("work", 2)
        bar.advance("step 1")
        bar.advance("step 2")
    assert bar._bar is None  # stopped on exit


def test_two_models_given_the_same_text_did_the_same_work():
    # --against or two records of different models: the chat prompt is the same text, which two
    # tokenizers count differently; that is not different work
    a = synthetic_record(_normal(1, 8, 100, 2))
    b = synthetic_record(_normal(3, 8, 115, 2))
    a["results"][0].update(model="/models/llama", prompt_tokens=129)
    b["results"][0].update(model="/models/qwen2", prompt_tokens=131)
    decode = next(c for c in compare.compare_records(a, b) if c["metric"] == "decode_tps")
    assert decode["same_work"] and decode["b_better"] is True
    b["results"][0]["model"] = "/models/llama"  # the same model: 131 tokens is other work
    decode = next(c for c in compare.compare_records(a, b) if c["metric"] == "decode_tps")
    assert not decode["same_work"] and decode["b_better"] is None
