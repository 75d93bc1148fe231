"""genai bench on the tiny diffusers pipeline (torch stack): steps, VAE apart, FLOP count."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.torch


def test_bench_command_on_the_tiny_pipeline(tiny_diffusion, tmp_path, capsys):
    pytest.importorskip(
        "matplotlib", reason="matplotlib (genai-common[diffusion]) is not installed"
    )
    from genai_common.cli import main

    argv = ["bench", str(tiny_diffusion), "--steps", "3", "--size", "64", "--trials", "2"]
    assert main([*argv, "--out", str(tmp_path), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["kind"] == "diffusion"
    res = record["results"][0]
    assert res["cold"] is not None and len(res["trials"]) == 2
    for trial in res["trials"]:
        # steps counts the callbacks the scheduler made: PNDM runs one more than asked
        assert trial["steps"] >= 3 and len(trial["series"]) == trial["steps"]
        assert trial["s_per_image"] == pytest.approx(trial["pipeline_s"] + trial["vae_decode_s"])
        assert trial["vae_decode_s"] > 0 and len(trial["memory"]) == trial["steps"] + 1
    summary = res["summary"]
    assert summary["s_per_step"]["n"] == 2 and summary["vae_decode_s"]["n"] == 2
    assert res["roofline"]["denoiser_flops_per_call"] > 0
    assert set(record["written"]) >= {"record", "plot latency", "plot rate", "plot memory"}
    assert "seconds per denoising step" in (tmp_path / "RESULTS.md").read_text()
