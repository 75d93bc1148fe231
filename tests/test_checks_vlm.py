"""VLM: vision tower, projector and image tokens, on broken copies of the tiny Qwen2-VL and PaliGemma."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from checks_helpers import codes, edit_json, messages, problems, rewrite_tensors, without


@pytest.fixture
def qwen(tiny_vlm: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_vlm, tmp_path / "qwen2_vl"))


@pytest.fixture
def pali(tiny_vlm_paligemma: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_vlm_paligemma, tmp_path / "paligemma"))


def set_vision(model: Path, **values) -> None:
    edit_json(model / "config.json", lambda d: d["vision_config"].update(values))


def set_config(model: Path, **values) -> None:
    edit_json(model / "config.json", lambda d: d.update(values))


def drop_token_counts(model: Path) -> None:
    """Remove PaliGemma's own image-token counts (to stand in for a family that pools)."""

    def config(d: dict) -> None:
        d["text_config"].pop("num_image_tokens")
        d["vision_config"].pop("num_image_tokens")

    edit_json(model / "config.json", config)
    for name in ("preprocessor_config.json", "processor_config.json"):
        edit_json(model / name, without("image_seq_length"))


@pytest.mark.parametrize("fixture", ["tiny_vlm", "tiny_vlm_paligemma"])
def test_clean_tiny_vlms_pass(fixture: str, request: pytest.FixtureRequest) -> None:
    assert problems(request.getfixturevalue(fixture), "vlm") == []


def test_vlm010_config_depth_above_stored_blocks(qwen: Path) -> None:
    set_vision(qwen, depth=3)
    assert messages(qwen, "vlm", "VLM010") == [
        "vision weights hold 2 blocks but vision_config depth = 3 (missing [2])"
    ]


def test_vlm010_missing_vision_layer(pali: Path) -> None:
    rewrite_tensors(pali, lambda s: {k: v for k, v in s.items() if "encoder.layers.1." not in k})
    [message] = messages(pali, "vlm", "VLM010")
    assert "1 blocks" in message and "depth = 2" in message


def test_vlm011_vision_config_without_vision_weights(qwen: Path) -> None:
    rewrite_tensors(qwen, lambda s: {k: v for k, v in s.items() if not k.startswith("visual.")})
    assert codes(qwen, "vlm") == ["VLM011"]


def test_vlm020_vision_width(pali: Path) -> None:
    set_vision(pali, hidden_size=48)  # SigLIP-vs-CLIP style mix-up (VLM-3R#18)
    found = messages(pali, "vlm", "VLM020")
    assert any("takes 32 inputs but the vision hidden size is 48" in m for m in found)


def test_vlm020_qwen_embed_dim(qwen: Path) -> None:
    set_vision(qwen, embed_dim=48)
    assert "VLM020" in codes(qwen, "vlm")


def test_vlm021_vision_intermediate(pali: Path) -> None:
    set_vision(pali, intermediate_size=96)
    [message] = messages(pali, "vlm", "VLM021")
    assert "64 outputs but the vision intermediate size is 96" in message


def test_vlm021_mlp_ratio(qwen: Path) -> None:
    set_vision(qwen, mlp_ratio=4)  # fc1 stores 32 * 2 = 64 rows
    assert "VLM021" in codes(qwen, "vlm")


def test_vlm030_projector_input_with_merge_factor(qwen: Path) -> None:
    set_vision(qwen, spatial_merge_size=1)
    [message] = messages(qwen, "vlm", "VLM030")
    assert "visual.merger.mlp.0.weight takes 128 inputs, expected 32" in message


def test_vlm030_mm_hidden_size(pali: Path) -> None:
    set_config(pali, mm_hidden_size=1152)
    assert messages(pali, "vlm", "VLM030") == [
        "mm_hidden_size = 1152 but the vision hidden size is 32"
    ]


def test_vlm031_projector_output(pali: Path) -> None:
    set_vision(pali, projection_dim=48)
    [message] = messages(pali, "vlm", "VLM031")
    assert "multi_modal_projector.linear.weight has 64 outputs" in message


def test_vlm031_merger_output_vs_text_hidden(qwen: Path) -> None:
    set_vision(qwen, hidden_size=48)
    assert "VLM031" in codes(qwen, "vlm")


def test_vlm040_num_image_tokens(pali: Path) -> None:
    edit_json(pali / "config.json", lambda d: d["text_config"].update(num_image_tokens=64))
    [message] = messages(pali, "vlm", "VLM040")
    assert message == "text_config.num_image_tokens = 64 but (image_size 56 / patch_size 14)^2 = 16"


def test_vlm040_position_embeddings_vs_image_size(pali: Path) -> None:
    # paligemma2-896 vs 224 (mlx-engine#129): tokens for one size, position table for another
    set_vision(pali, image_size=112)
    found = messages(pali, "vlm", "VLM040")
    assert any("position_embedding.weight has 16 rows" in m and "= 64" in m for m in found)


def test_vlm040_pooled_tokens(pali: Path) -> None:
    drop_token_counts(pali)
    set_config(pali, mm_tokens_per_image=4)  # 16 patches pooled 2x2: fine
    assert "VLM040" not in codes(pali, "vlm")
    set_config(pali, mm_tokens_per_image=5)
    assert "VLM040" in codes(pali, "vlm")


def test_vlm041_preprocessor_size(pali: Path) -> None:
    edit_json(
        pali / "preprocessor_config.json", lambda d: d.update(size={"height": 224, "width": 224})
    )
    [message] = messages(pali, "vlm", "VLM041")
    assert "vision_config.image_size = 56" in message


def test_vlm041_dynamic_resolution_is_not_judged(qwen: Path) -> None:
    set_vision(qwen, image_size=224)
    assert "VLM041" not in codes(qwen, "vlm")  # Qwen2-VL: min/max_pixels


def test_vlm050_image_token_fields_disagree(qwen: Path) -> None:
    set_config(qwen, image_token_index=7)
    assert messages(qwen, "vlm", "VLM050") == [
        "image token ids disagree: image_token_id = 6, image_token_index = 7"
    ]


def test_vlm051_image_token_is_a_wrapper(qwen: Path) -> None:
    set_config(qwen, image_token_id=3)
    [message] = messages(qwen, "vlm", "VLM051")
    assert "'<|vision_start|>'" in message


def test_vlm051_image_token_is_text(pali: Path) -> None:
    set_config(pali, image_token_index=2)
    [message] = messages(pali, "vlm", "VLM051")
    assert "'<bos>'" in message


def test_vlm040_pooled_processor_count(pali: Path) -> None:
    # Gemma 3: 896/14 = 64^2 patches pooled to mm_tokens_per_image 256; the processor says 256
    drop_token_counts(pali)
    set_vision(pali, image_size=896)
    set_config(pali, mm_tokens_per_image=256)
    edit_json(pali / "processor_config.json", lambda d: d.update(image_seq_length=256))
    edit_json(
        pali / "preprocessor_config.json", lambda d: d.update(size={"height": 896, "width": 896})
    )
    assert messages(pali, "vlm", "VLM040") == [
        "vision_tower.vision_model.embeddings.position_embedding.weight has 16 rows but "
        "(image_size 896 / patch_size 14)^2 = 4096"
    ]


def test_vlm040_pixel_shuffle(pali: Path) -> None:
    # Idefics3/SmolVLM: tokens = patches / scale_factor^2 (16 / 2^2 = 4)
    drop_token_counts(pali)
    set_config(pali, scale_factor=2, image_seq_length=4)
    assert "VLM040" not in codes(pali, "vlm")
    set_config(pali, image_seq_length=16)
    assert messages(pali, "vlm", "VLM040") == [
        "image_seq_length = 16 but (image_size 56 / patch_size 14)^2 = 16 / scale_factor 2^2 = 4"
    ]


@pytest.mark.parametrize("key", ["mlp_ratio", "spatial_merge_size", "depth", "image_size"])
def test_absurd_vision_sizes_are_unknown_not_a_crash(qwen: Path, key: str) -> None:
    """A 4001-digit vision size (json reads up to 4300 digits) reaches no float() and no message:
    every vision size above MAX_COUNT is treated as unknown."""
    import json
    import sys

    from genai_common.doctor import diagnose

    config = json.loads((qwen / "config.json").read_text())
    config["vision_config"][key] = 10**4000
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        (qwen / "config.json").write_text(json.dumps(config))
    finally:
        sys.set_int_max_str_digits(limit)
    report = diagnose(qwen)
    assert [f.message for f in report.findings if f.code == "DOC001"] == []
