"""load_llm / load_vlm / load_ml / load_diffusion on the tiny real-format models."""

from __future__ import annotations

import json
import shutil

import pytest

from genai_common.runtime.isolate import run_isolated
from genai_common.runtime.loading import load_diffusion, load_llm, load_ml, load_vlm


def _check_record(record, loader: str) -> None:
    assert record.loader == loader
    assert record.seconds > 0 and record.import_seconds >= 0
    assert record.memory_before is not None and record.memory_after is not None
    assert record.rss_peak is not None and record.rss_peak > 0
    json.dumps(record.to_json())


def test_load_llm_runs_and_records(tiny_llm):
    mx = pytest.importorskip("mlx.core", reason="needs an importable mlx")
    mlx_lm = pytest.importorskip("mlx_lm", reason="needs mlx-lm")
    loaded = load_llm(tiny_llm)
    _check_record(loaded.record, "mlx_lm.load")
    assert loaded.kind == "llm" and loaded.config["model_type"] == "llama"
    assert loaded.record.mlx_added > 0  # the weights are allocated, not lazy
    assert loaded.record.mlx_peak_delta >= loaded.record.mlx_added
    ids = loaded.tokenizer.encode("hello")
    logits = loaded.model(mx.array([ids]))
    assert logits.shape == (1, len(ids), loaded.config["vocab_size"])
    text = mlx_lm.generate(loaded.model, loaded.tokenizer, "hello", max_tokens=4)
    assert isinstance(text, str)


def test_load_vlm(tiny_vlm):
    pytest.importorskip("mlx_vlm", reason="needs mlx-vlm")
    loaded = load_vlm(tiny_vlm)
    _check_record(loaded.record, "mlx_vlm.load")
    assert loaded.kind == "vlm" and loaded.processor is not None
    assert loaded.config["model_type"] == "qwen2_vl"
    assert loaded.record.mlx_added > 0


def test_load_ml_generic_module(tiny_ml):
    mx = pytest.importorskip("mlx.core", reason="needs an importable mlx")
    loaded = load_ml(tiny_ml)
    _check_record(loaded.record, "TinyMLP + load_weights")
    config = loaded.config
    out = loaded.model(mx.zeros((2, config["input_dims"])))
    assert out.shape == (2, config["output_dims"])


def test_load_ml_with_an_explicit_class_and_strict_weights(tiny_ml, tmp_path):
    mx = pytest.importorskip("mlx.core", reason="needs an importable mlx")
    import mlx.nn as nn

    class Wider(nn.Module):  # takes every config key; its shapes do not match the weights
        def __init__(self, input_dims: int, output_dims: int, **_: object):
            super().__init__()
            self.layers = [nn.Linear(input_dims, output_dims)]

    with pytest.raises(ValueError):
        load_ml(tiny_ml, model_class=Wider)
    copy = tmp_path / "unknown"
    shutil.copytree(tiny_ml, copy)
    config = json.loads((copy / "config.json").read_text())
    config["model_type"] = "not_registered"
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="model_class="):
        load_ml(copy)
    assert mx is not None


def test_load_in_a_child_process(tiny_llm):
    pytest.importorskip("mlx_lm", reason="needs mlx-lm")
    result = run_isolated(
        "genai_common.runtime.loading:load_summary", "llm", str(tiny_llm), timeout=300
    )
    assert result.ok, result.error + "\n" + result.stderr_tail
    assert result.value["kind"] == "llm" and result.value["model_type"] == "llama"
    assert result.value["seconds"] > 0


@pytest.mark.torch
def test_load_diffusion_runs_two_steps(tiny_diffusion):
    pytest.importorskip("diffusers", reason="needs diffusers (genai-common[diffusion])")
    loaded = load_diffusion(tiny_diffusion)
    _check_record(loaded.record, "DiffusionPipeline.from_pretrained")
    assert loaded.pipeline is not None and loaded.model is loaded.pipeline.unet
    image = loaded.pipeline(
        "a cat", num_inference_steps=2, height=64, width=64, output_type="pil"
    ).images[0]
    assert image.size == (64, 64)


@pytest.mark.torch
def test_load_diffusion_sd3_without_t5(tiny_diffusion_sd3):
    """model_index.json has text_encoder_3/tokenizer_3 = [null, null], which the SD3 class
    requires: load_diffusion passes them as None (plain from_pretrained raises)."""
    pytest.importorskip("diffusers", reason="needs diffusers (genai-common[diffusion])")
    loaded = load_diffusion(tiny_diffusion_sd3)
    _check_record(loaded.record, "DiffusionPipeline.from_pretrained")
    pipe = loaded.pipeline
    assert type(pipe).__name__ == "StableDiffusion3Pipeline"
    assert loaded.model is pipe.transformer and pipe.text_encoder_3 is None
    assert loaded.config["_class_name"] == "StableDiffusion3Pipeline"
    image = pipe("a cat", num_inference_steps=2, height=64, width=64, output_type="pil").images[0]
    assert image.size == (64, 64)
    # the caller's keyword arguments still reach from_pretrained beside the nulls
    assert load_diffusion(tiny_diffusion_sd3, text_encoder_2=None).pipeline.text_encoder_2 is None


def test_load_llm_deepseek_v3_mla_and_experts(tiny_llm_deepseek_v3):
    mx = pytest.importorskip("mlx.core", reason="needs an importable mlx")
    from mlx.utils import tree_flatten

    loaded = load_llm(tiny_llm_deepseek_v3)
    _check_record(loaded.record, "mlx_lm.load")
    assert loaded.config["model_type"] == "deepseek_v3"
    # sanitize restacks the stored tensors without changing their sizes: what is loaded is what
    # the file holds (kv_b_proj -> embed_q + unembed_out, experts.N -> switch_mlp)
    stored = (tiny_llm_deepseek_v3 / "model.safetensors").stat().st_size
    held = sum(v.nbytes for _, v in tree_flatten(loaded.model.parameters()))
    assert stored - 16 * 1024 < held < stored
    ids = loaded.tokenizer.encode("hello")
    logits = loaded.model(mx.array([ids]))
    assert logits.shape == (1, len(ids), loaded.config["vocab_size"])
