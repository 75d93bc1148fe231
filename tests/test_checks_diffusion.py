"""DIF: diffusers pipelines, built inline as component configs plus small safetensors headers.

Most cases need no torch: the checks read only model_index.json, the component configs and the
headers. The last test runs the checks on the real tiny SD pipeline that diffusers wrote (torch).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from checks_helpers import codes as all_codes
from checks_helpers import edit_json, messages, problems, run, without, write_safetensors


def codes(path: Path, family: str, **kw: Any) -> list[str]:
    """The codes found, but DIF006 (whether diffusers is installed: these tests run in both the
    MLX and the PyTorch environment)."""
    return [c for c in all_codes(path, family, **kw) if c != "DIF006"]


SD_INDEX = {
    "_class_name": "StableDiffusionPipeline",
    "_diffusers_version": "0.42.1",
    "feature_extractor": [None, None],
    "safety_checker": [None, None],
    "scheduler": ["diffusers", "PNDMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}


def write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def sd_pipeline(root: Path, *, unet_in: int = 4, cross: int = 32) -> Path:
    """An SD 1.x-shaped pipeline: configs for every component, headers for UNet and VAE."""
    write(root / "model_index.json", SD_INDEX)
    write(
        root / "unet/config.json",
        {
            "_class_name": "UNet2DConditionModel",
            "in_channels": unet_in,
            "out_channels": 4,
            "sample_size": 8,
            "cross_attention_dim": cross,
            "block_out_channels": [32, 64],
        },
    )
    write_safetensors(
        root / "unet/diffusion_pytorch_model.safetensors",
        {"conv_in.weight": ("F32", (32, unet_in, 3, 3))},
    )
    write(
        root / "vae/config.json",
        {
            "_class_name": "AutoencoderKL",
            "latent_channels": 4,
            "sample_size": 64,
            "scaling_factor": 0.18215,
            "block_out_channels": [8, 8, 16, 16],
        },
    )
    write_safetensors(
        root / "vae/diffusion_pytorch_model.safetensors",
        {"decoder.conv_in.weight": ("F32", (16, 4, 3, 3))},
    )
    write(
        root / "text_encoder/config.json",
        {
            "architectures": ["CLIPTextModel"],
            "model_type": "clip_text_model",
            "hidden_size": 32,
            "max_position_embeddings": 77,
        },
    )
    write(root / "tokenizer/tokenizer_config.json", {"model_max_length": 77})
    (root / "tokenizer/vocab.json").write_text('{"a": 0}', encoding="utf-8")
    write(
        root / "scheduler/scheduler_config.json",
        {
            "_class_name": "PNDMScheduler",
            "beta_schedule": "scaled_linear",
            "prediction_type": "epsilon",
            "timestep_spacing": "leading",
        },
    )
    return root


def flux_pipeline(root: Path) -> Path:
    write(
        root / "model_index.json",
        {
            "_class_name": "FluxPipeline",
            "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "text_encoder_2": ["transformers", "T5EncoderModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "tokenizer_2": ["transformers", "T5TokenizerFast"],
            "transformer": ["diffusers", "FluxTransformer2DModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        },
    )
    write(
        root / "transformer/config.json",
        {
            "in_channels": 64,
            "joint_attention_dim": 4096,
            "pooled_projection_dim": 768,
        },
    )
    write(
        root / "vae/config.json",
        {
            "latent_channels": 16,
            "scaling_factor": 0.3611,
            "shift_factor": 0.1159,
            "block_out_channels": [128, 256, 512, 512],
            "sample_size": 1024,
        },
    )
    write(root / "text_encoder/config.json", {"hidden_size": 768, "max_position_embeddings": 77})
    write(root / "text_encoder_2/config.json", {"d_model": 4096})
    write(root / "tokenizer/tokenizer_config.json", {"model_max_length": 77})
    write(root / "tokenizer_2/tokenizer_config.json", {"model_max_length": 512})
    write(
        root / "scheduler/scheduler_config.json",
        {
            "_class_name": "FlowMatchEulerDiscreteScheduler",
            "shift": 1.0,
        },
    )
    return root


@pytest.fixture
def sd(tmp_path: Path) -> Path:
    return sd_pipeline(tmp_path / "sd")


@pytest.fixture
def flux(tmp_path: Path) -> Path:
    return flux_pipeline(tmp_path / "flux")


def test_clean_inline_pipelines_pass(sd: Path, flux: Path) -> None:
    assert codes(sd, "diffusion") == []
    assert codes(flux, "diffusion") == []


def test_dif001_empty_model_index(sd: Path) -> None:
    write(sd / "model_index.json", {"_class_name": "StableDiffusionPipeline"})
    assert codes(sd, "diffusion") == ["DIF001"]


def test_dif002_component_folder_missing(sd: Path) -> None:
    for f in (sd / "text_encoder").iterdir():
        f.unlink()
    (sd / "text_encoder").rmdir()
    assert messages(sd, "diffusion", "DIF002") == [
        "component 'text_encoder' (transformers.CLIPTextModel) has no folder text_encoder/"
    ]


def test_dif002_component_without_config(sd: Path) -> None:
    (sd / "scheduler/scheduler_config.json").rename(sd / "scheduler/config.txt")
    assert "DIF002" in codes(sd, "diffusion")


def test_dif010_inpainting_unet_in_txt2img_pipeline(tmp_path: Path) -> None:
    sd = sd_pipeline(tmp_path / "sd", unet_in=9)  # diffusers#7003 / #6964
    [f] = [f for f in run(sd, "diffusion") if f.code == "DIF010"]
    assert "unet.in_channels = 9" in f.message and "inpainting" in (f.hint or "")


def test_dif010_inpaint_pipeline_needs_nine(sd: Path) -> None:
    edit_json(
        sd / "model_index.json", lambda d: d.update(_class_name="StableDiffusionInpaintPipeline")
    )
    [message] = messages(sd, "diffusion", "DIF010")
    assert "2 x latent_channels 4 + 1 mask" in message


def test_dif010_weights_disagree_with_config(sd: Path) -> None:
    write_safetensors(
        sd / "unet/diffusion_pytorch_model.safetensors", {"conv_in.weight": ("F32", (32, 9, 3, 3))}
    )
    assert messages(sd, "diffusion", "DIF010") == [
        "unet conv_in.weight takes 9 channels but unet.in_channels = 4"
    ]


def test_dif010_flux_packing(flux: Path) -> None:
    edit_json(flux / "transformer/config.json", lambda d: d.update(in_channels=16))
    [message] = messages(flux, "diffusion", "DIF010")
    assert "latent_channels 16 x 4 (2x2 packing) = 64" in message


def test_dif011_vae_weights_disagree_with_latent_channels(sd: Path) -> None:
    write_safetensors(
        sd / "vae/diffusion_pytorch_model.safetensors",
        {"decoder.conv_in.weight": ("F32", (16, 16, 3, 3))},
    )
    assert "DIF011" in codes(sd, "diffusion")


def test_dif012_transformer_depth(flux: Path) -> None:
    spec = {f"transformer_blocks.{i}.attn.to_q.weight": ("F32", (4, 4)) for i in range(2)}
    spec |= {f"single_transformer_blocks.{i}.proj_out.weight": ("F32", (4, 4)) for i in range(3)}
    write_safetensors(flux / "transformer/diffusion_pytorch_model.safetensors", spec)
    edit_json(
        flux / "transformer/config.json", lambda d: d.update(num_layers=2, num_single_layers=3)
    )
    assert codes(flux, "diffusion") == []
    edit_json(
        flux / "transformer/config.json", lambda d: d.update(num_layers=3)
    )  # DiffusionKit PR#11
    assert messages(flux, "diffusion", "DIF012") == [
        "transformer stores 2 transformer_blocks (0..1) but num_layers = 3"
    ]


@pytest.mark.parametrize(
    ("pipeline", "factor", "expect"),
    [
        ("StableDiffusionXLPipeline", 0.18215, "SDXL uses 0.13025"),  # diffusers#6923
        ("StableDiffusionPipeline", 0.13025, "SD 1.x/2.x uses 0.18215"),
        ("StableDiffusionXLPipeline", None, "default 0.18215 applies; SDXL uses 0.13025"),
    ],
)
def test_dif020_scaling_factor_vs_family(
    sd: Path, pipeline: str, factor: float | None, expect: str
) -> None:
    edit_json(sd / "model_index.json", lambda d: d.update(_class_name=pipeline))
    change = (lambda d: d.update(scaling_factor=factor)) if factor else without("scaling_factor")
    edit_json(sd / "vae/config.json", change)
    found = messages(sd, "diffusion", "DIF020")
    assert any(expect in m for m in found)


def test_dif020_flux_shift(flux: Path) -> None:
    edit_json(flux / "vae/config.json", without("shift_factor"))
    assert messages(flux, "diffusion", "DIF020") == ["vae shift_factor = None but Flux uses 0.1159"]


def test_dif030_cross_attention_vs_text_encoder(tmp_path: Path) -> None:
    sd = sd_pipeline(tmp_path / "sd", cross=768)  # an SD1.5 UNet beside a 32-wide encoder
    assert messages(sd, "diffusion", "DIF030") == [
        "unet.cross_attention_dim = 768 but the text encoders give text_encoder 32 = 32"
    ]


def test_dif030_sdxl_sums_both_encoders(sd: Path) -> None:
    edit_json(
        sd / "model_index.json",
        lambda d: d.update(text_encoder_2=["transformers", "CLIPTextModelWithProjection"]),
    )
    write(sd / "text_encoder_2/config.json", {"hidden_size": 64})
    assert "DIF030" in codes(sd, "diffusion")  # 32 != 32 + 64
    edit_json(sd / "unet/config.json", lambda d: d.update(cross_attention_dim=96))
    assert "DIF030" not in codes(sd, "diffusion")


def test_dif030_flux_joint_attention(flux: Path) -> None:
    edit_json(flux / "text_encoder_2/config.json", lambda d: d.update(d_model=2048))
    assert messages(flux, "diffusion", "DIF030") == [
        "transformer.joint_attention_dim = 4096 but text_encoder_2 d_model = 2048"
    ]


@pytest.mark.parametrize(
    ("key", "value"),
    [("final_sigmas_type", 0), ("prediction_type", "eps"), ("timestep_spacing", "uniform")],
)
def test_dif040_scheduler_enum_values(sd: Path, key: str, value: Any) -> None:
    edit_json(sd / "scheduler/scheduler_config.json", lambda d: d.update({key: value}))
    [message] = messages(sd, "diffusion", "DIF040")
    assert f"scheduler {key} = {value!r}" in message


def test_dif040_unknown_scheduler_class(sd: Path) -> None:
    edit_json(
        sd / "scheduler/scheduler_config.json", lambda d: d.update(_class_name="FancyScheduler")
    )
    assert "DIF040" in codes(sd, "diffusion")


def test_dif041_flow_model_with_ddpm_scheduler(flux: Path) -> None:
    edit_json(
        flux / "scheduler/scheduler_config.json",
        lambda d: d.update(_class_name="EulerDiscreteScheduler"),
    )
    assert codes(flux, "diffusion") == ["DIF041"]


def test_dif041_sd2_768_needs_v_prediction(sd: Path) -> None:
    edit_json(sd / "unet/config.json", lambda d: d.update(sample_size=96, cross_attention_dim=1024))
    edit_json(sd / "text_encoder/config.json", lambda d: d.update(hidden_size=1024))
    edit_json(sd / "vae/config.json", lambda d: d.update(sample_size=768))
    assert codes(sd, "diffusion") == ["DIF041"]
    edit_json(
        sd / "scheduler/scheduler_config.json", lambda d: d.update(prediction_type="v_prediction")
    )
    assert codes(sd, "diffusion") == []


def test_dif050_tokenizer_longer_than_positions(sd: Path) -> None:
    edit_json(sd / "tokenizer/tokenizer_config.json", lambda d: d.update(model_max_length=128))
    assert messages(sd, "diffusion", "DIF050") == [
        "tokenizer model_max_length = 128 > text_encoder max_position_embeddings = 77"
    ]


def test_dif060_native_resolution(sd: Path) -> None:
    edit_json(sd / "vae/config.json", lambda d: d.update(sample_size=512))
    assert messages(sd, "diffusion", "DIF060") == [
        "unet.sample_size 8 x VAE scale factor 8 = 64 px but vae.sample_size = 512"
    ]


@pytest.mark.torch
def test_real_tiny_sd_pipeline(tiny_diffusion: Path, tmp_path: Path) -> None:
    import shutil

    assert problems(tiny_diffusion, "diffusion") == []
    broken = Path(shutil.copytree(tiny_diffusion, tmp_path / "sd"))
    edit_json(broken / "vae/config.json", lambda d: d.update(scaling_factor=0.13025))
    edit_json(broken / "unet/config.json", lambda d: d.update(in_channels=9))
    found = codes(broken, "diffusion")
    assert "DIF020" in found and found.count("DIF010") == 2  # config, and conv_in weights vs config


# --- SD3: a transformer denoiser, two CLIPs with projection, T5 optional ---------------------------


def sd3_pipeline(root: Path, *, t5: bool = False) -> Path:
    """An SD3-shaped pipeline (the published SD3 medium widths); without T5 as the tiny sd3."""
    index = {
        "_class_name": "StableDiffusion3Pipeline",
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
        "text_encoder": ["transformers", "CLIPTextModelWithProjection"],
        "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
        "text_encoder_3": ["transformers", "T5EncoderModel"] if t5 else [None, None],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "tokenizer_2": ["transformers", "CLIPTokenizer"],
        "tokenizer_3": ["transformers", "T5TokenizerFast"] if t5 else [None, None],
        "transformer": ["diffusers", "SD3Transformer2DModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    write(root / "model_index.json", index)
    write(
        root / "transformer/config.json",
        {
            "in_channels": 16,
            "out_channels": 16,
            "sample_size": 128,
            "patch_size": 2,
            "joint_attention_dim": 4096,
            "pooled_projection_dim": 2048,
        },
    )
    write_safetensors(
        root / "transformer/diffusion_pytorch_model.safetensors",
        {"pos_embed.proj.weight": ("F32", (8, 16, 2, 2))},
    )
    write(
        root / "vae/config.json",
        {
            "latent_channels": 16,
            "scaling_factor": 1.5305,
            "shift_factor": 0.0609,
            "block_out_channels": [128, 256, 512, 512],
            "sample_size": 1024,
        },
    )
    write_safetensors(
        root / "vae/diffusion_pytorch_model.safetensors",
        {"decoder.conv_in.weight": ("F32", (8, 16, 3, 3))},
    )
    for name, width in (("text_encoder", 768), ("text_encoder_2", 1280)):
        write(
            root / f"{name}/config.json",
            {"hidden_size": width, "projection_dim": width, "max_position_embeddings": 77},
        )
    for name in ("tokenizer", "tokenizer_2"):
        write(root / f"{name}/tokenizer_config.json", {"model_max_length": 77})
    if t5:
        write(root / "text_encoder_3/config.json", {"d_model": 4096})
        write(root / "tokenizer_3/tokenizer_config.json", {"model_max_length": 256})
    write(
        root / "scheduler/scheduler_config.json",
        {"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 3.0},
    )
    return root


@pytest.mark.parametrize("t5", [False, True])
def test_clean_inline_sd3_passes(tmp_path: Path, t5: bool) -> None:
    found = [
        f for f in run(sd3_pipeline(tmp_path / "sd3", t5=t5), "diffusion") if f.code != "DIF006"
    ]
    # without T5, only the note that from_pretrained needs the two null components as None
    assert [f.code for f in found] == ([] if t5 else ["DIF003"])
    assert all(f.severity == "info" for f in found)
    if not t5:
        assert found[0].message == (
            "text_encoder_3, tokenizer_3 saved as [null, null] but StableDiffusion3Pipeline "
            "requires them: DiffusionPipeline.from_pretrained(path) fails; load with "
            "from_pretrained(path, text_encoder_3=None, tokenizer_3=None)"
        )


def test_dif010_sd3_patch_embedding_weights_vs_config(tmp_path: Path) -> None:
    sd3 = sd3_pipeline(tmp_path / "sd3")
    write_safetensors(
        sd3 / "transformer/diffusion_pytorch_model.safetensors",
        {"pos_embed.proj.weight": ("F32", (8, 4, 2, 2))},
    )
    assert messages(sd3, "diffusion", "DIF010") == [
        "transformer pos_embed.proj.weight takes 4 channels but transformer.in_channels = 16"
    ]


def test_dif010_sd3_transformer_out_channels(tmp_path: Path) -> None:
    sd3 = sd3_pipeline(tmp_path / "sd3")
    edit_json(sd3 / "transformer/config.json", lambda d: d.update(out_channels=4))
    assert messages(sd3, "diffusion", "DIF010") == [
        "transformer.out_channels = 4 but vae latent_channels = 16"
    ]


def test_dif020_sd3_vae_with_sd1_scaling(tmp_path: Path) -> None:
    sd3 = sd3_pipeline(tmp_path / "sd3")
    edit_json(sd3 / "vae/config.json", lambda d: d.update(scaling_factor=0.18215))
    edit_json(sd3 / "vae/config.json", without("shift_factor"))
    assert messages(sd3, "diffusion", "DIF020") == [
        "vae scaling_factor = 0.18215 but SD3 uses 1.5305",
        "vae shift_factor = None but SD3 uses 0.0609",
    ]


@pytest.mark.parametrize("t5", [False, True])
def test_dif030_sd3_joint_narrower_than_the_clips(tmp_path: Path, t5: bool) -> None:
    sd3 = sd3_pipeline(tmp_path / "sd3", t5=t5)
    edit_json(sd3 / "transformer/config.json", lambda d: d.update(joint_attention_dim=1024))
    found = messages(sd3, "diffusion", "DIF030")
    assert (
        "transformer.joint_attention_dim = 1024 is narrower than the CLIP hidden states side by "
        "side (text_encoder 768 + text_encoder_2 1280 = 2048): the pipeline crops them to 1024"
    ) in found
    assert len(found) == (2 if t5 else 1)  # with T5, also joint != d_model


def test_dif030_sd3_pooled_is_the_clip_projections(tmp_path: Path) -> None:
    sd3 = sd3_pipeline(tmp_path / "sd3")
    edit_json(sd3 / "text_encoder_2/config.json", lambda d: d.update(projection_dim=1024))
    assert messages(sd3, "diffusion", "DIF030") == [
        "transformer.pooled_projection_dim = 2048 but the CLIP encoders give 768 + 1024"
    ]


@pytest.mark.torch
def test_real_tiny_sd3_pipeline(tiny_diffusion_sd3: Path, tmp_path: Path) -> None:
    import shutil

    assert problems(tiny_diffusion_sd3, "diffusion") == []
    sd1_vae = Path(shutil.copytree(tiny_diffusion_sd3, tmp_path / "sd1_vae"))
    edit_json(sd1_vae / "vae/config.json", lambda d: d.update(scaling_factor=0.18215))
    assert codes(sd1_vae, "diffusion") == ["DIF003", "DIF020"]  # DIF003: saved without T5
    four = Path(shutil.copytree(tiny_diffusion_sd3, tmp_path / "four"))
    edit_json(four / "vae/config.json", lambda d: d.update(latent_channels=4))
    # transformer in_channels and out_channels vs 4, and the VAE decoder's weights vs its config
    assert codes(four, "diffusion") == ["DIF003", "DIF010", "DIF010", "DIF011"]
    narrow = Path(shutil.copytree(tiny_diffusion_sd3, tmp_path / "narrow"))
    edit_json(narrow / "transformer/config.json", lambda d: d.update(joint_attention_dim=64))
    assert codes(narrow, "diffusion") == ["DIF003", "DIF030"]  # 64 < CLIP 32 + 48


def qwen_image_edit_pipeline(root: Path) -> Path:
    """Qwen-Image-Edit's layout (model_index.json as Qwen publishes it): a transformers processor
    (Qwen2VLProcessor) saved as its parts (preprocessor_config.json, video_preprocessor_config.json
    and the tokenizer files: no processor_config.json, no config.json), a Qwen2.5-VL text encoder,
    a guider saved as guider_config.json."""
    write(
        root / "model_index.json",
        {
            "_class_name": "QwenImageEditPipeline",
            "_diffusers_version": "0.35.0.dev0",
            "processor": ["transformers", "Qwen2VLProcessor"],
            "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
            "text_encoder": ["transformers", "Qwen2_5_VLForConditionalGeneration"],
            "tokenizer": ["transformers", "Qwen2Tokenizer"],
            "transformer": ["diffusers", "QwenImageTransformer2DModel"],
            "vae": ["diffusers", "AutoencoderKLQwenImage"],
            "feature_extractor": ["transformers", "CLIPImageProcessor"],
            "guider": ["diffusers", "ClassifierFreeGuidance"],
        },
    )
    write(root / "transformer/config.json", {"_class_name": "QwenImageTransformer2DModel"})
    write(root / "vae/config.json", {"_class_name": "AutoencoderKLQwenImage", "z_dim": 16})
    write(root / "text_encoder/config.json", {"model_type": "qwen2_5_vl", "hidden_size": 64})
    for folder in ("tokenizer", "processor"):
        write(root / folder / "tokenizer_config.json", {"model_max_length": 512})
        write(root / folder / "vocab.json", {"a": 0})
        (root / folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    write(
        root / "processor/preprocessor_config.json",
        {"image_processor_type": "Qwen2VLImageProcessor"},
    )
    write(root / "processor/video_preprocessor_config.json", {"temporal_patch_size": 2})
    (root / "processor/chat_template.jinja").write_text("{{ messages }}", encoding="utf-8")
    write(root / "feature_extractor/preprocessor_config.json", {"crop_size": 224})
    write(root / "guider/guider_config.json", {"_class_name": "ClassifierFreeGuidance"})
    write(
        root / "scheduler/scheduler_config.json",
        {"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 1.0},
    )
    return root


def test_dif002_processors_and_guiders_are_judged_by_their_own_files(tmp_path: Path) -> None:
    root = qwen_image_edit_pipeline(tmp_path / "qwen")
    assert "DIF002" not in codes(root, "diffusion")
    for name in (
        "preprocessor_config.json",
        "video_preprocessor_config.json",
        "tokenizer_config.json",
        "vocab.json",
    ):
        (root / "processor" / name).unlink()
    (root / "feature_extractor/preprocessor_config.json").unlink()
    write(root / "feature_extractor/config.json", {})  # not what an image processor reads
    found = messages(root, "diffusion", "DIF002")
    assert len(found) == 2, found
    assert any("'processor'" in m and "processor_config.json" in m for m in found)
    assert any("'feature_extractor'" in m and "preprocessor_config.json" in m for m in found)


# quantization_config as diffusers 0.42 writes it into a component's config.json
# (BitsAndBytesConfig.to_dict, SDNQConfig: quant_method beside the method's own fields), and as
# transformers writes it into a text encoder's
BNB_NF4 = {
    "_load_in_4bit": True,
    "_load_in_8bit": False,
    "bnb_4bit_compute_dtype": "bfloat16",
    "bnb_4bit_quant_storage": "uint8",
    "bnb_4bit_quant_type": "nf4",
    "bnb_4bit_use_double_quant": False,
    "llm_int8_enable_fp32_cpu_offload": False,
    "llm_int8_has_fp16_weight": False,
    "llm_int8_skip_modules": None,
    "llm_int8_threshold": 6.0,
    "load_in_4bit": True,
    "load_in_8bit": False,
    "quant_method": "bitsandbytes",
}
SDNQ = {"quant_method": "sdnq", "weights_dtype": "int8", "group_size": 0, "use_svd": False}


def test_dif070_non_mlx_quantization_in_any_component(flux: Path) -> None:
    assert "DIF070" not in codes(flux, "diffusion")
    edit_json(flux / "transformer/config.json", lambda d: d.update(quantization_config=BNB_NF4))
    edit_json(flux / "vae/config.json", lambda d: d.update(quantization_config=SDNQ))
    edit_json(
        flux / "text_encoder_2/config.json",
        lambda d: d.update(quantization_config={"quant_method": "gptq", "bits": 4}),
    )
    found = {f.file: f for f in run(flux, "diffusion") if f.code == "DIF070"}
    assert sorted(found) == [
        "text_encoder_2/config.json",
        "transformer/config.json",
        "vae/config.json",
    ]
    bnb = found["transformer/config.json"]
    assert "'bitsandbytes' (nf4 4-bit)" in bnb.message
    assert "bitsandbytes, accelerate, a CUDA, XPU or MPS device" in bnb.message
    import importlib.util

    # an error exactly when a package the quantizer imports is missing here
    for f, packages in (
        (bnb, ("bitsandbytes", "accelerate")),
        (found["vae/config.json"], ("sdnq",)),
    ):
        absent = [p for p in packages if importlib.util.find_spec(p) is None]
        assert f.severity == ("error" if absent else "warning"), f
        for p in absent:
            assert p in f.message.rpartition("not installed here: ")[2]


def test_dif004_component_folders_without_model_index(flux: Path) -> None:
    """A Flux pipeline's folders (as diffusers saves them: each config with _class_name and
    _diffusers_version) whose model_index.json was lost: still a diffusion pipeline, the missing
    file named, and the components still judged against each other from their own configs."""
    from genai_common.doctor import diagnose

    index = json.loads((flux / "model_index.json").read_text(encoding="utf-8"))
    for name, (lib, cls) in ((k, v) for k, v in index.items() if not k.startswith("_")):
        if lib == "diffusers":
            config = "scheduler_config.json" if name == "scheduler" else "config.json"
            edit_json(
                flux / name / config,
                lambda d, c=cls: d.update(_class_name=c, _diffusers_version="0.32.0"),
            )
        elif name.startswith("text_encoder"):
            edit_json(flux / name / "config.json", lambda d, c=cls: d.update(architectures=[c]))
    (flux / "model_index.json").unlink()
    report = diagnose(flux)
    assert report.kind == "diffusion"
    found = [f for f in report.findings if f.code == "DIF004"]
    assert len(found) == 1 and found[0].severity == "error" and found[0].file == "model_index.json"
    for part in (
        "transformer/ (FluxTransformer2DModel)",
        "vae/ (AutoencoderKL)",
        "text_encoder_2/ (T5EncoderModel)",
    ):
        assert part in found[0].message
    edit_json(flux / "vae/config.json", lambda d: d.update(latent_channels=4))
    assert "DIF010" in codes(flux, "diffusion")  # 64 != 4 x 4: still compared


def test_two_plain_folders_are_not_a_pipeline(tmp_path: Path) -> None:
    write(tmp_path / "a/config.json", {"model_type": "llama"})
    write(tmp_path / "b/tokenizer_config.json", {})
    from genai_common.model import ModelDir

    assert ModelDir.open(tmp_path).kind == "unknown"


@pytest.mark.torch
def test_dif005_classes_the_installed_libraries_do_not_have(flux: Path) -> None:
    """A pipeline, component or text-encoder class the installed diffusers / transformers lacks:
    DiffusionPipeline.from_pretrained fails on it. Found from the libraries' source, not imported."""
    pytest.importorskip("diffusers", reason="diffusers is not installed (genai-common[diffusion])")
    assert codes(flux, "diffusion") == []
    edit_json(
        flux / "model_index.json",
        lambda d: d.update(
            _class_name="FluxUltraPipeline",
            transformer=["diffusers", "FluxTransformer3DModel"],
            text_encoder_2=["transformers", "T5EncoderModelV2"],
            safety_checker=["stable_diffusion", "StableDiffusionSafetyCheckerV9"],
        ),
    )
    (flux / "safety_checker").mkdir()
    write(flux / "safety_checker/config.json", {})
    found = messages(flux, "diffusion", "DIF005")
    assert len(found) == 4, found
    for name in ("FluxUltraPipeline", "FluxTransformer3DModel", "T5EncoderModelV2", "V9"):
        assert any(name in m for m in found), (name, found)


def test_dif003_null_components_from_the_pipelines_own_signature(flux: Path) -> None:
    """[null, null] for a component FluxPipeline.__init__ takes without a default (and does not
    list in _optional_components): from_pretrained(path) raises; one it may go without is fine.
    Read from the installed diffusers' source (without diffusers: DIF006 says it was not read)."""
    import importlib.util

    edit_json(flux / "model_index.json", lambda d: d.update(image_encoder=[None, None]))
    assert codes(flux, "diffusion") == []  # image_encoder=None is a default of FluxPipeline
    edit_json(
        flux / "model_index.json",
        lambda d: d.update(text_encoder_2=[None, None], tokenizer_2=[None, None]),
    )
    found = messages(flux, "diffusion", "DIF003")
    if importlib.util.find_spec("diffusers") is None:
        assert found == [] and "DIF006" in all_codes(flux, "diffusion")
    else:
        assert len(found) == 1 and "text_encoder_2, tokenizer_2" in found[0], found
        assert "text_encoder_2=None, tokenizer_2=None" in found[0]


@pytest.mark.torch
def test_the_class_index_is_what_diffusers_exports() -> None:
    """diffusers_names (read from __init__ texts) holds every name the installed diffusers'
    lazy module maps to a real (not dummy) submodule."""
    diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed")
    from genai_common.model.loaders import diffusers_names

    names = diffusers_names()
    lazy = diffusers._class_to_module
    assert [k for k, v in lazy.items() if k not in names and "dummy" not in v] == []


def test_dif006_says_when_diffusers_is_not_installed(sd: Path) -> None:
    import importlib.util

    found = messages(sd, "diffusion", "DIF006")
    assert (found != []) == (importlib.util.find_spec("diffusers") is None)


def test_dif007_component_config_value_of_the_wrong_type(sd: Path) -> None:
    """ "in_channels": "four" reaches UNet2DConditionModel(in_channels="four") unchanged: judged
    against the class's own __init__ annotations when diffusers is installed, else against
    diffusers' naming conventions; the published layout (nulls included) is clean."""
    import importlib.util

    edit_json(
        sd / "unet/config.json",
        lambda d: d.update(time_cond_proj_dim=None, num_attention_heads=None, act_fn="silu"),
    )
    assert "DIF007" not in codes(sd, "diffusion")
    edit_json(sd / "unet/config.json", lambda d: d.update(in_channels="four"))
    edit_json(sd / "vae/config.json", lambda d: d.update(act_fn=3))
    found = messages(sd, "diffusion", "DIF007")
    assert len(found) == 2, found
    assert any("unet/config.json: in_channels = 'four' is a string" in m for m in found)
    assert any("vae/config.json: act_fn = 3 is a number" in m for m in found)
    source = (
        "UNet2DConditionModel.__init__ (diffusers)"
        if importlib.util.find_spec("diffusers")
        else "diffusers' naming conventions"
    )
    assert any(source in m for m in found), found
