"""QNT: MLX quantization metadata and packed shapes, on broken copies of the tiny 4-bit Llama."""

from __future__ import annotations

from pathlib import Path

import pytest
from checks_helpers import codes, edit_json, messages, problems, rewrite_tensors, without

Q = "model.layers.0.self_attn.q_proj"


def set_config(model: Path, **values) -> None:
    edit_json(model / "config.json", lambda d: d.update(values))


def set_quant(model: Path, **values) -> None:
    edit_json(model / "config.json", lambda d: d["quantization"].update(values))


def store_q_proj_at_8_bits(model: Path) -> None:
    rewrite_tensors(
        model,
        lambda s: s.update(
            {
                f"{Q}.weight": ("U32", (64, 16)),
                f"{Q}.scales": ("F16", (64, 1)),
                f"{Q}.biases": ("F16", (64, 1)),
            }
        ),
    )


@pytest.mark.parametrize("fixture", ["tiny_llm", "tiny_llm_4bit", "tiny_llm_gemma", "tiny_vlm"])
def test_clean_tiny_models_pass(fixture: str, request: pytest.FixtureRequest) -> None:
    assert problems(request.getfixturevalue(fixture), "quant") == []


def test_qnt001_malformed_block(llama4: Path) -> None:
    set_quant(llama4, bits="4")
    assert messages(llama4, "quant", "QNT001") == [
        "quantization.bits = '4' is not a positive integer"
    ]
    set_config(llama4, quantization=4)
    assert "quantization = 4 is not an object" in messages(llama4, "quant", "QNT001")


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"bits": 7}, "affine bits = 7, MLX accepts [1, 2, 3, 4, 5, 6, 8]"),
        ({"group_size": 48}, "affine group_size = 48, MLX accepts [32, 64, 128]"),
        ({"mode": "int4"}, "mode 'int4' is not one of"),
        ({"mode": "nvfp4", "group_size": 32}, "nvfp4 group_size = 32, MLX accepts [16]"),
    ],
)
def test_qnt010_parameters_mlx_rejects(llama4: Path, change: dict, text: str) -> None:
    set_quant(llama4, **change)
    assert any(text in m for m in messages(llama4, "quant", "QNT010"))


def test_qnt010_per_layer_entry(llama4: Path) -> None:
    set_quant(llama4, **{Q: {"bits": 9, "group_size": 64}})
    assert any(f"quantization['{Q}']" in m for m in messages(llama4, "quant", "QNT010"))


def test_qnt020_packed_width_vs_config_in_features(llama4: Path) -> None:
    set_config(llama4, intermediate_size=96)  # down_proj packs 16 columns: 16*32/96 bits
    found = messages(llama4, "quant", "QNT020")
    assert any("down_proj.weight has 16 packed columns: in_features = 96" in m for m in found)


def test_qnt021_scales_shape(llama4: Path) -> None:
    rewrite_tensors(
        llama4,
        lambda s: s.update({f"{Q}.scales": ("F16", (64, 3)), f"{Q}.biases": ("F16", (64, 3))}),
    )
    assert any("3 groups" in m for m in messages(llama4, "quant", "QNT021"))


def test_qnt021_biases_differ_from_scales(llama4: Path) -> None:
    rewrite_tensors(llama4, lambda s: s.update({f"{Q}.biases": ("F16", (64, 2))}))
    assert messages(llama4, "quant", "QNT021") == [f"{Q}.biases is [64, 2] but .scales is [64, 1]"]


def test_qnt021_shape_only_when_in_features_unknown(llama4: Path) -> None:
    # a module the config does not size (no known suffix): only bits*group_size is checkable
    rewrite_tensors(
        llama4,
        lambda s: s.update(
            {
                "model.extra.proj.weight": ("U32", (8, 8)),
                "model.extra.proj.scales": ("F16", (8, 3)),
                "model.extra.proj.biases": ("F16", (8, 3)),
            }
        ),
    )
    assert any("model.extra.proj" in m for m in messages(llama4, "quant", "QNT021"))


def test_qnt022_affine_without_biases(llama4: Path) -> None:
    rewrite_tensors(llama4, without(f"{Q}.biases"))
    assert messages(llama4, "quant", "QNT022") == [f"{Q} has F16 scales (affine) but no .biases"]


def test_qnt022_weight_without_scales(llama4: Path) -> None:
    rewrite_tensors(llama4, without(f"{Q}.scales", f"{Q}.biases"))
    assert any("scales is missing" in m for m in messages(llama4, "quant", "QNT022"))


def test_mxfp4_layout_and_qnt022_biases(tmp_path: Path) -> None:
    from checks_helpers import write_safetensors

    from genai_common.testing._files import write_json

    model = tmp_path / "mx"
    write_json(
        model / "config.json",
        {
            "model_type": "llama",
            "hidden_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "vocab_size": 32,
            "intermediate_size": 128,
            "max_position_embeddings": 64,
            "quantization": {"mode": "mxfp4", "group_size": 32, "bits": 4},
        },
    )
    spec = {f"{Q}.weight": ("U32", (64, 8)), f"{Q}.scales": ("U8", (64, 2))}
    write_safetensors(model / "model.safetensors", spec)
    assert problems(model, "quant") == []
    write_safetensors(model / "model.safetensors", {**spec, f"{Q}.biases": ("F16", (64, 2))})
    assert codes(model, "quant") == ["QNT022"]


def test_qnt023_quantized_tensors_without_block(llama4: Path) -> None:
    edit_json(
        llama4 / "config.json",
        without("quantization", "quantization_config"),
    )
    assert "QNT023" in codes(llama4, "quant")


def test_qnt024_block_without_quantized_tensors(llama: Path) -> None:
    set_config(llama, quantization={"group_size": 64, "bits": 4})
    assert codes(llama, "quant") == ["QNT024"]


def test_qnt030_override_names_no_module(llama4: Path) -> None:
    set_quant(llama4, **{"model.layers.0.self_attn.qproj": {"bits": 4, "group_size": 64}})
    assert messages(llama4, "quant", "QNT030") == [
        "quantization['model.layers.0.self_attn.qproj'] names no stored module"
    ]


def test_qnt030_override_in_another_key_form(llama4: Path) -> None:
    # mlx-lm#1214 / mlx-vlm#1079: override keys in a form the loader's module tree does not use
    set_quant(llama4, **{f"language_model.{Q}": {"bits": 4, "group_size": 64}})
    [message] = messages(llama4, "quant", "QNT030")
    assert f"the weights spell it '{Q}'" in message


def test_qnt031_and_qnt040_stored_bits_differ_without_entry(llama4: Path) -> None:
    store_q_proj_at_8_bits(llama4)
    assert messages(llama4, "quant", "QNT031") == [
        f"{Q} is stored at bits=8, group_size=64 but the default says bits=4, group_size=64"
    ]
    assert messages(llama4, "quant", "QNT040") == ["mixed precision: 15 at 4 bits, 1 at 8 bits"]


def test_qnt031_silenced_by_matching_entry(llama4: Path) -> None:
    store_q_proj_at_8_bits(llama4)
    set_quant(llama4, **{Q: {"bits": 8, "group_size": 64}})
    assert problems(llama4, "quant") == []


def test_qnt032_entry_disagrees_with_stored(llama4: Path) -> None:
    store_q_proj_at_8_bits(llama4)
    set_quant(llama4, **{Q: {"bits": 6, "group_size": 64}})
    assert messages(llama4, "quant", "QNT032") == [
        f"{Q} is stored at bits=8, group_size=64 but the per-layer entry says bits=6, group_size=64"
    ]


@pytest.mark.parametrize(
    ("qc", "severity"),
    [
        ({"quant_method": "gptq", "bits": 4}, "warning"),
        ({"quant_method": "gptq", "bits": 8}, "error"),
        ({"quant_method": "awq", "bits": 4}, "warning"),
        ({"quant_method": "bitsandbytes", "load_in_4bit": True}, "error"),
        ({"quant_method": "compressed-tensors", "format": "float-quantized"}, "warning"),
        ({"quant_method": "compressed-tensors", "format": "pack-quantized"}, "info"),
        ({"quant_method": "fp8", "weight_block_size": [128, 128]}, "warning"),
    ],
)
def test_qnt050_foreign_formats(llama: Path, qc: dict, severity: str) -> None:
    set_config(llama, quantization_config=qc)
    from checks_helpers import run

    [f] = [f for f in run(llama, "quant") if f.code == "QNT050"]
    assert f.severity == severity and qc["quant_method"] in f.message


def test_qnt050_sidecar(llama: Path) -> None:
    (llama / "quantize_config.json").write_text('{"bits": 4, "group_size": 128}', encoding="utf-8")
    assert "QNT050" in codes(llama, "quant")


def test_qnt060_width_not_divisible_by_group_size(llama: Path) -> None:
    assert "QNT060" not in codes(llama, "quant")  # every width is 64 or 128
    rewrite_tensors(
        llama, lambda s: s.update({"model.layers.0.mlp.down_proj.weight": ("F16", (64, 100))})
    )
    [message] = messages(llama, "quant", "QNT060")
    assert "model.layers.0.mlp.down_proj.weight (100)" in message


def test_qnt070_f8_tensors(llama: Path) -> None:
    rewrite_tensors(
        llama, lambda s: s.update({"model.layers.0.mlp.up_proj.weight": ("F8_E4M3", (128, 64))})
    )
    assert messages(llama, "quant", "QNT070") == [
        "tensors with low-precision float dtypes: 1 F8_E4M3 (read as raw uint8)"
    ]


def test_qnt070_says_what_mx_load_does_per_dtype(llama: Path) -> None:
    rewrite_tensors(
        llama,
        lambda s: s.update(
            {
                "model.layers.0.mlp.up_proj.weight": ("F8_E5M2", (128, 64)),
                "model.layers.0.mlp.gate_proj.weight": ("F8_E8M0", (128, 64)),
            }
        ),
    )
    assert messages(llama, "quant", "QNT070") == [
        "tensors with low-precision float dtypes: 1 F8_E5M2 (refused), 1 F8_E8M0 (read as raw uint8)"
    ]


def test_qnt070_matches_what_mx_load_does(tmp_path: Path) -> None:
    """The per-dtype words of QNT070 are what the installed mx.load does with a tiny file."""
    import json
    import struct

    mx = pytest.importorskip("mlx.core", reason="mlx is not installed")
    from genai_common.doctor.rules.quant import F8_DTYPES

    for dtype, behaviour in F8_DTYPES.items():
        header = json.dumps({"t": {"dtype": dtype, "shape": [4], "data_offsets": [0, 4]}}).encode()
        path = tmp_path / f"{dtype}.safetensors"
        path.write_bytes(struct.pack("<Q", len(header)) + header + bytes([1, 2, 3, 4]))
        try:
            array = mx.load(str(path))["t"]
        except RuntimeError as exc:
            assert behaviour == "refused", (dtype, str(exc))
            assert "unsupported dtype" in str(exc)
        else:
            assert behaviour == "read as raw uint8", (dtype, array.dtype)
            assert array.dtype == mx.uint8 and array.tolist() == [1, 2, 3, 4]


def test_qnt061_head_dim_vs_kv_group_size(llama: Path) -> None:
    assert "QNT061" not in codes(llama, "quant")  # head_dim 16: below one group, not reported
    set_config(llama, head_dim=96, num_attention_heads=4)  # Phi-3's head_dim (Rapid-MLX#1294)
    assert messages(llama, "quant", "QNT061") == [
        "head_dim = 96 is not a multiple of kv_group_size 64 (32 divides it)"
    ]

    # multi-head latent attention caches the latent and the rope key, not head_dim-wide heads
    set_config(llama, kv_lora_rank=96, qk_rope_head_dim=64, qk_nope_head_dim=128, v_head_dim=128)
    assert messages(llama, "quant", "QNT061") == [
        "cached width = 96 is not a multiple of kv_group_size 64 (32 divides it) "
        "(MLA latent as mlx-lm caches it: kv_lora_rank 96 + rope 64)"
    ]
    set_config(llama, kv_lora_rank=512)  # DeepSeek-V3's: head_dim 192 no longer matters
    assert "QNT061" not in codes(llama, "quant")


def test_qnt032_entry_false_for_a_quantized_module(llama4: Path) -> None:
    set_quant(llama4, **{Q: False})
    assert messages(llama4, "quant", "QNT032") == [
        f"quantization['{Q}'] is false (keep float) but {Q} is stored quantized"
    ]


def test_qnt032_entry_quantizes_a_float_module(llama4: Path) -> None:
    # mlx-examples#367: lm_head left in float by an older converter, the config says quantize it
    def float_head(spec: dict) -> None:
        del spec["lm_head.scales"], spec["lm_head.biases"]
        spec["lm_head.weight"] = ("F16", (512, 64))

    rewrite_tensors(llama4, float_head)
    set_quant(llama4, lm_head={"bits": 4, "group_size": 64})
    assert messages(llama4, "quant", "QNT032") == [
        "quantization['lm_head'] quantizes lm_head but it is stored in float (no .scales)"
    ]


@pytest.mark.parametrize(("key", "value"), [("group_size", 32), ("group_size", 48), ("bits", 8)])
def test_qnt031_a_wrong_block_is_one_finding_with_its_remedy(
    llama4: Path, key: str, value: int
) -> None:
    """The block's group_size (or bits) edited on a real 4-bit model: every module disagrees
    the same way. One finding, on config.json, that says which value to set back (not one
    'add a per-layer entry' per module)."""
    stored = {"group_size": 64, "bits": 4}[key]
    set_quant(llama4, **{key: value})
    from checks_helpers import run

    found = [f for f in run(llama4, "quant") if f.code == "QNT031"]
    assert len(found) == 1, [f.message for f in found]
    assert found[0].file == "config.json" and found[0].severity == "warning"
    assert f"block's {key} ({value}) disagrees with every quantized module" in found[0].message
    assert f"set it back to {key} = {stored}" in found[0].message
    assert "Per-layer entries are not the remedy" in found[0].hint
    assert f"{key} = {stored}" in found[0].hint


def test_qnt031_modules_of_one_cause_are_one_finding(llama4: Path) -> None:
    k = "model.layers.1.self_attn.q_proj"

    def two_at_8_bits(spec: dict) -> None:
        for module in (Q, k):
            spec[f"{module}.weight"] = ("U32", (64, 16))
            spec[f"{module}.scales"] = ("F16", (64, 1))
            spec[f"{module}.biases"] = ("F16", (64, 1))

    rewrite_tensors(llama4, two_at_8_bits)
    assert messages(llama4, "quant", "QNT031") == [
        "2 modules are stored at bits=8, group_size=64 but the default says bits=4, "
        f"group_size=64: {Q}, {k}"
    ]


def test_qnt022_one_finding_per_cause(llama4: Path) -> None:
    def no_biases(spec: dict) -> None:
        for name in [n for n in spec if n.endswith(".biases")]:
            del spec[name]

    rewrite_tensors(llama4, no_biases)
    (msg,) = messages(llama4, "quant", "QNT022")
    assert msg.startswith("16 modules: each has F16 scales (affine) but no .biases: ")
