"""The quick inference test that `genai doctor --infer` and `genai diagnostics` share."""

from pathlib import Path

import pytest

from genai_common.runtime.inference import ml_input_width, quick_inference
from genai_common.runtime.loading import LOADERS


def test_ml_input_width_takes_the_first_declared_positive_int() -> None:
    assert ml_input_width({"input_dims": 32}) == 32
    assert ml_input_width({"in_features": 8, "input_size": 4}) == 8
    for config in (None, {}, {"input_dims": 0}, {"input_dims": True}, {"input_dims": "32"}):
        assert ml_input_width(config) is None


def test_llm_generates_a_few_tokens(tiny_llm: Path) -> None:
    text, summary = quick_inference("llm", LOADERS["llm"](str(tiny_llm)))
    assert isinstance(text, str) and text
    assert summary == f"generated {text!a}"


def test_vlm_generates_from_an_image(tiny_vlm: Path) -> None:
    text, summary = quick_inference("vlm", LOADERS["vlm"](str(tiny_vlm)))
    assert text and summary.startswith("generated ")


def test_ml_runs_one_forward_pass_or_says_why_not(tiny_ml: Path) -> None:
    loaded = LOADERS["ml"](str(tiny_ml))
    shape, summary = quick_inference("ml", loaded)
    width = loaded.config["input_dims"]
    assert shape == (1, loaded.config["output_dims"])
    assert summary == f"output {shape} from input (1, {width})"
    loaded.config = {k: v for k, v in loaded.config.items() if k != "input_dims"}
    with pytest.raises(ValueError, match="input shape"):
        quick_inference("ml", loaded)


@pytest.mark.torch
def test_diffusion_runs_two_steps_at_64(tiny_diffusion: Path) -> None:
    shape, summary = quick_inference("diffusion", LOADERS["diffusion"](str(tiny_diffusion)))
    assert shape == (64, 64, 3) and "(64, 64, 3)" in summary


@pytest.mark.torch
def test_diffusion_sd3_runs_two_steps_at_64(tiny_diffusion_sd3: Path) -> None:
    loaded = LOADERS["diffusion"](str(tiny_diffusion_sd3))
    assert type(loaded.model).__name__ == "SD3Transformer2DModel"
    shape, summary = quick_inference("diffusion", loaded)
    assert shape == (64, 64, 3) and "(64, 64, 3)" in summary
