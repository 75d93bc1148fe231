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
