"""Issue 11 item 5: a diffusion LoRA (peft on the tiny SD unet's attention, saved by diffusers'
save_lora_weights) judged against the pipeline and verified on same-seed images (torch stack)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.torch

FAST = {"steps": 1, "size": 32}  # one denoising step on 32 px: the checks, not the picture


@pytest.fixture(scope="module")
def pipe(tiny_diffusion: Path):
    pytest.importorskip("diffusers", reason="diffusers is not installed")
    pytest.importorskip("peft", reason="peft is not installed (genai-common[diffusion] has it)")
    from diffusers import DiffusionPipeline

    p = DiffusionPipeline.from_pretrained(str(tiny_diffusion))
    p.set_progress_bar_config(disable=True)
    return p


def test_a_real_adapter_changes_the_image_and_scale_zero_does_not(pipe, tmp_path):
    from genai_common.workflows import diffusion

    before = diffusion.pipeline_modules(pipe)
    path = diffusion.make_test_lora(pipe, str(tmp_path / "lora"), rank=4)
    assert Path(path).name == diffusion.LORA_FILE
    assert diffusion.pipeline_modules(pipe) == before  # make_test_lora leaves the pipeline bare
    r = diffusion.verify_lora(pipe, str(tmp_path / "lora"), rank=4, **FAST)
    assert r.verdict == "pass", r.findings
    m = r.metrics
    assert m["rank"] == 4 and m["pairs"] > 0
    assert m["delta_adapter"] > diffusion.CHANGE_MIN
    assert m["delta_scale0"] <= diffusion.SAME_MAX and m["delta_unloaded"] <= diffusion.SAME_MAX
    # the pipeline is left without the adapter
    assert not any(pipe.get_list_adapters().values())


def test_broken_adapters_are_caught(pipe, tmp_path):
    from safetensors.torch import load_file, save_file

    from genai_common.workflows import diffusion

    # PEFT's initial state (every lora_B zero): loads, changes nothing
    diffusion.make_test_lora(pipe, str(tmp_path / "zero"), std=0.0)
    r = diffusion.verify_lora(pipe, str(tmp_path / "zero"), **FAST)
    assert {f.code for f in r.findings} == {"DFL025", "DFL022"} and r.verdict == "fail"

    # targets this pipeline does not have: stopped before any image
    good = diffusion.make_test_lora(pipe, str(tmp_path / "good"))
    state = {k.replace("attn1", "attn9"): v for k, v in load_file(good).items()}
    (tmp_path / "absent").mkdir()
    save_file(state, str(tmp_path / "absent" / diffusion.LORA_FILE))
    r = diffusion.verify_lora(pipe, str(tmp_path / "absent"))
    assert [f.code for f in r.findings] == ["DFL010"] and "delta_adapter" not in r.metrics

    r = diffusion.verify_lora(pipe, str(tmp_path / "nowhere"))
    assert [f.code for f in r.findings] == ["DFL020"]
    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors")
    assert [
        f.code for f in diffusion.verify_lora(pipe, str(tmp_path / "junk.safetensors")).findings
    ] == ["DFL020"]


def test_genai_lora_command(tiny_diffusion, tmp_path, monkeypatch, capsys):
    pytest.importorskip("peft", reason="peft is not installed (genai-common[diffusion] has it)")
    from genai_common.cli import main

    monkeypatch.chdir(tmp_path)
    demo = ["--demo", str(tmp_path / "demo"), "--steps", "1", "--size", "32"]
    assert main(["lora", str(tiny_diffusion), *demo]) == 0
    row = (tmp_path / "RESULTS.md").read_text()
    assert "| lora scale=1 |" in row and "delta_adapter=" in row and "| pass |" in row
    assert "genai lora" in (tmp_path / "TODO.md").read_text()
    assert main(["lora", str(tiny_diffusion)]) == 2
    assert "--adapter" in capsys.readouterr().err


def test_kohya_keys_skip_the_static_checks_and_are_judged_on_images(pipe, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    from genai_common.workflows import diffusion

    kohya = {}
    for key, value in load_file(diffusion.make_test_lora(pipe, str(tmp_path / "d"))).items():
        module, _, side = key.partition(".lora.")
        name = "lora_unet_" + module.removeprefix("unet.").replace(".", "_")
        down = side.startswith("down")
        kohya[name + (".lora_down.weight" if down else ".lora_up.weight")] = value
        kohya[name + ".alpha"] = torch.tensor(float(value.shape[0 if down else 1]))
    save_file(kohya, str(tmp_path / "kohya.safetensors"))
    r = diffusion.verify_lora(pipe, str(tmp_path / "kohya.safetensors"), **FAST)
    assert r.verdict == "pass", r.findings
    assert r.metrics["static_checks"].startswith("skipped") and r.metrics["delta_adapter"] > 0
    zero = {k: (torch.zeros_like(v) if "lora_up" in k else v) for k, v in kohya.items()}
    save_file(zero, str(tmp_path / "zero.safetensors"))
    r = diffusion.verify_lora(pipe, str(tmp_path / "zero.safetensors"), **FAST)
    assert {f.code for f in r.findings} == {"DFL025", "DFL022"}
