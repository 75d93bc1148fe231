"""workflows/diffusion.py: a scheduler swap judged against the tiny SD pipeline (torch stack)."""

from __future__ import annotations

from pathlib import Path

import pytest

from genai_common.workflows import diffusion

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def pipe(tiny_diffusion: Path):
    pytest.importorskip("diffusers", reason="diffusers is not installed")
    from diffusers import DiffusionPipeline

    return DiffusionPipeline.from_pretrained(str(tiny_diffusion))


def test_plain_swap_keeps_the_pipeline_contract(pipe) -> None:
    from diffusers import EulerDiscreteScheduler

    old = pipe.scheduler
    new, found = diffusion.swap_scheduler(pipe, EulerDiscreteScheduler)
    try:
        assert found == []
        assert pipe.scheduler is new
    finally:
        pipe.scheduler = old


def test_prediction_type_and_spacing_mismatch_caught(pipe) -> None:
    from diffusers import EulerDiscreteScheduler

    old = pipe.scheduler
    other_pred = "v_prediction" if old.config.prediction_type != "v_prediction" else "epsilon"
    other_spacing = "trailing" if old.config.timestep_spacing != "trailing" else "leading"
    _new, found = diffusion.swap_scheduler(
        pipe, EulerDiscreteScheduler, prediction_type=other_pred, timestep_spacing=other_spacing
    )
    codes = sorted(f.code for f in found)
    assert codes == ["DFL001", "DFL002"]
    assert pipe.scheduler is old  # an error keeps the old scheduler
    assert all(f.hint for f in found)


def test_noise_schedule_mismatch_caught(pipe) -> None:
    cfg = dict(pipe.scheduler.config)
    cfg["num_train_timesteps"] = cfg["num_train_timesteps"] // 2
    found = diffusion.check_scheduler_swap(pipe.scheduler, cfg)
    assert [f.code for f in found] == ["DFL003"]


TARGET = "unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_q"


def _lora(pipe, rank: int, module: str = TARGET):
    import torch

    fin, fout = diffusion.pipeline_modules(pipe).get(module, (8, 8))
    return {
        f"{module}.lora_A.weight": torch.zeros(rank, fin),
        f"{module}.lora_B.weight": torch.zeros(fout, rank),
    }


def test_lora_matching_the_pipeline_is_clean(pipe) -> None:
    assert diffusion.check_lora(pipe, _lora(pipe, 4), rank=4) == []


def test_lora_wrong_target_and_wrong_rank_caught(pipe) -> None:
    found = diffusion.check_lora(pipe, _lora(pipe, 4, module="unet.mid_block.no_such.to_q"), rank=4)
    assert [f.code for f in found] == ["DFL010"]
    found = diffusion.check_lora(pipe, _lora(pipe, 2), rank=4)
    assert [f.code for f in found] == ["DFL011"]
    found = diffusion.check_lora(pipe, _lora(pipe, 4), rank=4, scale=0)
    assert [f.code for f in found] == ["DFL013"]


def test_lora_for_another_width_caught(pipe) -> None:
    import torch

    assert TARGET in diffusion.pipeline_modules(pipe)
    fin, fout = diffusion.pipeline_modules(pipe)[TARGET]
    state = {
        f"{TARGET}.lora_A.weight": torch.zeros(4, fin * 2),
        f"{TARGET}.lora_B.weight": torch.zeros(fout, 4),
    }
    assert [f.code for f in diffusion.check_lora(pipe, state, rank=4)] == ["DFL012"]
