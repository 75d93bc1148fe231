"""CFG: each check passes on the clean tiny models and fires on a broken private copy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from checks_helpers import (
    CLEAN_TINY,
    LINEAR_ATTENTION,
    Spec,
    codes,
    edit_json,
    messages,
    problems,
    read_json,
    rewrite_tensors,
    run,
    without,
    write_safetensors,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from public_configs import MODELS, write_metadata_only


def set_config(model: Path, **values) -> None:
    edit_json(model / "config.json", lambda d: d.update(values))


def drop_config(model: Path, *keys: str) -> None:
    edit_json(model / "config.json", without(*keys))


@pytest.mark.parametrize("fixture", CLEAN_TINY)
def test_clean_tiny_models_pass(fixture: str, request: pytest.FixtureRequest) -> None:
    assert problems(request.getfixturevalue(fixture), "config") == []


def test_cfg001_missing_and_mistyped_required_keys(llama: Path) -> None:
    drop_config(llama, "hidden_size")
    set_config(llama, num_hidden_layers="2")
    found = messages(llama, "config", "CFG001")
    assert any("hidden_size" in m for m in found)
    assert any("num_hidden_layers = '2'" in m for m in found)


def test_cfg002_optional_value_of_wrong_type(llama: Path) -> None:
    set_config(llama, num_key_value_heads="2", tie_word_embeddings="no")
    found = messages(llama, "config", "CFG002")
    assert len(found) == 2


def test_cfg010_vocab_size_differs_from_embedding_rows(llama: Path) -> None:
    set_config(llama, vocab_size=600)
    assert messages(llama, "config", "CFG010") == [
        "model.embed_tokens.weight has 512 rows but vocab_size = 600"
    ]


def test_cfg011_embedding_columns(llama: Path) -> None:
    rewrite_tensors(llama, lambda s: s.update({"model.embed_tokens.weight": ("F16", (512, 32))}))
    assert messages(llama, "config", "CFG011") == [
        "model.embed_tokens.weight has 32 columns but hidden_size = 64"
    ]


def test_cfg011_quantized_embedding_is_unpacked(llama4: Path) -> None:
    assert "CFG011" not in codes(llama4, "config")  # (512, 8) uint32 at 4 bits = 64 columns
    set_config(llama4, hidden_size=96)  # 8 * 32 / 96 is no bit width at all
    assert "CFG011" in codes(llama4, "config")


def test_cfg012_lm_head_shape(llama: Path) -> None:
    rewrite_tensors(llama, lambda s: s.update({"lm_head.weight": ("F16", (500, 64))}))
    assert messages(llama, "config", "CFG012") == [
        "lm_head.weight is 500 x 64 but (vocab_size, hidden_size) = (512, 64)"
    ]


def test_cfg020_missing_layer(llama: Path) -> None:
    rewrite_tensors(llama, lambda s: {k: v for k, v in s.items() if ".layers.1." not in k})
    [message] = messages(llama, "config", "CFG020")
    assert "missing [1]" in message and "num_hidden_layers = 2" in message


def test_cfg020_extra_layer(llama: Path) -> None:
    set_config(llama, num_hidden_layers=1)
    [message] = messages(llama, "config", "CFG020")
    assert "extra [1]" in message


def test_cfg030_kv_heads_disagree_with_k_proj(llama: Path) -> None:
    set_config(llama, num_key_value_heads=4)  # k/v_proj store 2 heads x 16
    found = messages(llama, "config", "CFG030")
    assert found and "expected 64" in found[0]


def test_cfg030_head_dim_may_differ_from_hidden_over_heads(llama: Path) -> None:
    # q_proj (64 out) = 4 heads x 16; declare head_dim 32 and q_proj no longer fits
    set_config(llama, head_dim=32)
    assert "CFG030" in codes(llama, "config")
    set_config(llama, head_dim=16)
    assert "CFG030" not in codes(llama, "config")


def test_cfg031_heads_not_multiple_of_kv_heads(llama: Path) -> None:
    set_config(llama, num_key_value_heads=3)
    assert "CFG031" in codes(llama, "config")


def test_cfg032_hidden_not_divisible_without_head_dim(llama: Path) -> None:
    drop_config(llama, "head_dim")
    set_config(llama, num_attention_heads=5, num_key_value_heads=5)
    assert "CFG032" in codes(llama, "config")


def test_cfg040_tied_but_head_stored(llama: Path) -> None:
    set_config(llama, tie_word_embeddings=True)
    assert codes(llama, "config") == ["CFG040"]


def test_cfg041_untied_without_head(llama: Path) -> None:
    rewrite_tensors(llama, without("lm_head.weight"))
    assert codes(llama, "config") == ["CFG041"]
    set_config(llama, tie_word_embeddings=True)
    assert codes(llama, "config") == []


def test_cfg041_family_default_when_absent(tiny_llm_gemma: Path, tmp_path: Path) -> None:
    gemma = Path(shutil.copytree(tiny_llm_gemma, tmp_path / "gemma"))
    drop_config(gemma, "tie_word_embeddings")
    assert codes(gemma, "config") == []  # gemma ties by default; no lm_head stored
    set_config(gemma, model_type="qwen2")  # qwen2 unties by default (transformers)
    assert "CFG041" in codes(gemma, "config")


def test_cfg041_unknown_model_type_takes_its_architectures_family(
    tiny_llm_gemma: Path, tmp_path: Path
) -> None:
    """A fine-tune that renamed its model_type keeps its base family's default: Gemma's class
    name in `architectures` says it ties (no lm_head stored is right). A family that unties by
    default is still an error; a family nothing knows is a warning to declare the tie."""
    gemma = Path(shutil.copytree(tiny_llm_gemma, tmp_path / "gemma"))
    drop_config(gemma, "tie_word_embeddings")
    set_config(gemma, model_type="acme_gemma_chat", architectures=["GemmaForCausalLM"])
    assert [f"{f.code}: {f.message}" for f in run(gemma, "config")] == []
    set_config(gemma, architectures=["Qwen2ForCausalLM"])
    found = [f for f in run(gemma, "config") if f.code == "CFG041"]
    assert [f.severity for f in found] == ["error"]
    assert "architectures 'Qwen2ForCausalLM' defaults to False" in found[0].message
    set_config(gemma, architectures=["AcmeForCausalLM"])
    found = [f for f in run(gemma, "config") if f.code == "CFG041"]
    assert [f.severity for f in found] == ["warning"], found
    assert "cannot be told" in found[0].message


def test_tied_by_default_is_what_transformers_config_classes_declare() -> None:
    """TIED_BY_DEFAULT holds every model_type whose config class in the installed transformers
    declares tie_word_embeddings = True (and T5, which ties through its shared embedding)."""
    import ast
    import importlib.util

    from genai_common.model.text import TIED_BY_DEFAULT

    spec = importlib.util.find_spec("transformers")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("transformers is not installed: no config classes to compare with")
    models = Path(next(iter(spec.submodule_search_locations))) / "models"
    tied: set[str] = set()
    for path in models.glob("*/configuration_*.py"):
        for cls in ast.parse(path.read_text(encoding="utf-8")).body:
            if not isinstance(cls, ast.ClassDef):
                continue
            model_type, default = None, None
            for item in cls.body:
                if isinstance(item, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "model_type" for t in item.targets
                ):
                    model_type = getattr(item.value, "value", None)
                if (
                    isinstance(item, ast.AnnAssign)
                    and isinstance(item.target, ast.Name)
                    and item.target.id == "tie_word_embeddings"
                ):
                    default = getattr(item.value, "value", None)
                if (
                    isinstance(item, ast.FunctionDef)
                    and item.name == "__init__"
                    and default is None
                ):
                    args = item.args
                    named = [a.arg for a in args.args][len(args.args) - len(args.defaults) :]
                    pairs = [
                        *zip(named, args.defaults, strict=True),
                        *zip([a.arg for a in args.kwonlyargs], args.kw_defaults, strict=True),
                    ]
                    for name, value in pairs:
                        if name == "tie_word_embeddings":
                            default = getattr(value, "value", None)
            if isinstance(model_type, str) and default is True:
                tied.add(model_type)
    assert tied - TIED_BY_DEFAULT == set()


def test_cfg042_loaders_disagree_on_absent_tie(llama: Path) -> None:
    drop_config(llama, "tie_word_embeddings")
    assert "CFG042" in codes(llama, "config")


def test_cfg042_mistral3_text_config_without_tie(tiny_vlm_paligemma: Path, tmp_path: Path) -> None:
    # mlx-lm#648: Ministral-3 ties at the top level; mlx-lm reads text_config and unties
    model = Path(shutil.copytree(tiny_vlm_paligemma, tmp_path / "m3"))
    set_config(model, model_type="mistral3", tie_word_embeddings=True)
    assert "CFG042" in codes(model, "config")
    edit_json(model / "config.json", lambda d: d["text_config"].update(tie_word_embeddings=True))
    assert "CFG042" not in codes(model, "config")


def test_cfg050_layer_types_length(llama: Path) -> None:
    set_config(llama, layer_types=["full_attention"])
    assert messages(llama, "config", "CFG050") == [
        "layer_types has 1 entries but num_hidden_layers = 2"
    ]
    set_config(llama, layer_types=["full_attention", "sliding_attention"])
    assert codes(llama, "config") == []


def test_cfg051_unknown_layer_type(llama: Path) -> None:
    set_config(llama, layer_types=["full_attention", "slidng_attention"])
    assert codes(llama, "config") == ["CFG051"]


def test_cfg060_unsupported_rope_type(llama: Path) -> None:
    set_config(llama, rope_scaling={"rope_type": "xpos", "factor": 2.0})
    assert "CFG060" in codes(llama, "config")


@pytest.mark.parametrize(
    "rope",
    [
        {"type": "linear", "factor": 2.0},
        {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 1024,
        },
        {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 512},
        {"type": "dynamic", "factor": 2.0},
    ],
)
def test_cfg06x_valid_rope_in_both_spellings(llama: Path, rope: dict) -> None:
    set_config(llama, rope_scaling=rope)
    assert codes(llama, "config") == []


def test_rope_parameters_per_layer_type(llama: Path) -> None:
    """transformers 5 keys rope_parameters by layer type, each type with its own rope_type
    (Gemma 3's config: linear x8 on full attention, default on sliding attention). Each is judged
    as a RoPE dict of its own, and named in the message."""
    drop_config(llama, "rope_scaling", "rope_theta")
    n = read_json(llama / "config.json")["num_hidden_layers"]
    set_config(
        llama,
        layer_types=(["sliding_attention", "full_attention"] * n)[:n],
        rope_parameters={
            "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
        },
    )
    found = [f"{f.code}: {f.message}" for f in problems(llama, "config")]
    # mlx-lm's llama reads no rope_parameters: the linear x8 of full attention is lost (CFG064)
    assert len(found) == 1 and found[0].startswith("CFG064") and "'linear'" in found[0], found
    set_config(
        llama,
        rope_parameters={
            "full_attention": {"rope_type": "yarn", "rope_theta": 1000000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
        },
    )
    found = messages(llama, "config", "CFG061")
    assert len(found) == 1 and "rope_parameters['full_attention']" in found[0], found


LLAMA31_ROPE_V5 = {  # Llama 3.1's RoPE as transformers 5 saves it: no top-level keys
    "rope_theta": 500000.0,
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 1024,
}


def test_cfg064_rope_only_in_rope_parameters_that_the_module_never_reads(llama: Path) -> None:
    drop_config(llama, "rope_scaling", "rope_theta")
    set_config(llama, rope_parameters=LLAMA31_ROPE_V5)
    [message] = messages(llama, "config", "CFG064")
    assert "rope_theta 500000 (the module will use 10000)" in message
    assert "'llama3' RoPE scaling" in message
    # the same dict at the top level, as transformers 4 wrote it: read, nothing lost
    set_config(llama, rope_theta=500000.0, rope_scaling=dict(LLAMA31_ROPE_V5))
    assert "CFG064" not in codes(llama, "config")
    # a plain theta equal to the module's default loses nothing
    drop_config(llama, "rope_scaling", "rope_theta")
    set_config(llama, rope_parameters={"rope_theta": 10000.0, "rope_type": "default"})
    assert "CFG064" not in codes(llama, "config")


def test_cfg064_not_raised_for_a_module_that_reads_rope_parameters(llama: Path) -> None:
    """mlx-lm's qwen3 reads rope_parameters (0.32); the same config is fine there."""
    drop_config(llama, "rope_scaling", "rope_theta")
    set_config(
        llama, model_type="qwen3", rope_parameters={"rope_theta": 1e6, "rope_type": "default"}
    )
    assert "CFG064" not in codes(llama, "config")


def test_cfg064_premise_holds_for_the_installed_mlx_lm(llama: Path) -> None:
    """What the rule says is what mlx-lm does: loading the transformers-5 spelling gives the
    module's default theta, not the config's (so the rule fires); the top-level spelling
    gives the config's (so it does not)."""
    pytest.importorskip("mlx_lm", reason="needs mlx-lm (genai-common[llm])")
    from mlx_lm.utils import load_model

    drop_config(llama, "rope_scaling", "rope_theta")
    set_config(llama, rope_parameters={"rope_theta": 123456.0, "rope_type": "default"})
    model, _ = load_model(llama, lazy=True)
    fires = "CFG064" in codes(llama, "config")
    assert fires == (model.args.rope_theta != 123456.0)
    set_config(llama, rope_theta=123456.0)
    model, _ = load_model(llama, lazy=True)
    assert model.args.rope_theta == 123456.0 and "CFG064" not in codes(llama, "config")


def test_cfg061_rope_missing_required_key(llama: Path) -> None:
    set_config(llama, rope_scaling={"rope_type": "llama3", "factor": 8.0})
    [message] = messages(llama, "config", "CFG061")
    assert "original_max_position_embeddings" in message and "low_freq_factor" in message


def test_cfg062_rope_values_out_of_range(llama: Path) -> None:
    set_config(
        llama,
        rope_scaling={
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 4.0,
            "high_freq_factor": 1.0,
            "original_max_position_embeddings": 4096,
        },
    )
    found = messages(llama, "config", "CFG062")
    assert any("high_freq_factor" in m for m in found)
    assert any(
        "original_max_position_embeddings = 4096 >= max_position_embeddings = 2048" in m
        for m in found
    )


def test_cfg062_longrope_factor_length(llama: Path) -> None:
    set_config(
        llama,
        rope_scaling={
            "type": "longrope",
            "short_factor": [1.0] * 8,
            "long_factor": [1.0] * 7,
            "original_max_position_embeddings": 1024,
        },
    )  # head_dim 16: rotary_dim / 2 = 8
    assert messages(llama, "config", "CFG062") == [
        "rope_scaling (longrope): long_factor has 7 entries, rotary_dim/2 = 8"
    ]


def test_cfg063_rope_without_type(llama: Path) -> None:
    set_config(llama, rope_scaling={"factor": 2.0})
    assert codes(llama, "config") == ["CFG063"]


def test_cfg070_no_context_length(llama: Path) -> None:
    drop_config(llama, "max_position_embeddings")
    assert codes(llama, "config") == ["CFG070"]


def test_cfg071_original_context_beyond_max(llama: Path) -> None:
    set_config(
        llama,
        rope_scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 4096},
    )
    assert "CFG071" in codes(llama, "config")


def test_cfg080_experts_missing(tmp_path: Path) -> None:
    from checks_helpers import write_safetensors

    from genai_common.testing._files import write_json

    model = tmp_path / "moe"
    write_json(
        model / "config.json",
        {
            "model_type": "mixtral",
            "hidden_size": 8,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "vocab_size": 16,
            "intermediate_size": 16,
            "max_position_embeddings": 64,
            "num_local_experts": 4,
            "tie_word_embeddings": True,
        },
    )
    spec = {"model.embed_tokens.weight": ("F16", (16, 8))}
    for e in range(3):
        spec[f"model.layers.0.block_sparse_moe.experts.{e}.w1.weight"] = ("F16", (16, 8))
    write_safetensors(model / "model.safetensors", spec)
    [message] = messages(model, "config", "CFG080")
    assert "(3)" in message and "sets 4" in message


def test_cfg090_bf16_model_stored_as_f16(llama: Path) -> None:
    assert "CFG090" not in codes(llama, "config")  # torch_dtype float16, stored F16
    set_config(llama, torch_dtype="bfloat16")  # mlx-vlm PR#293: Gemma 3 overflows in float16
    [f] = [f for f in run(llama, "config") if f.code == "CFG090"]
    assert (
        f.severity == "warning"
        and f.message == "torch_dtype = bfloat16 but most weights are stored as F16"
    )


# ---------------------------------------------------------------------------------------------
# Robustness: whatever the config holds, every family of this catalogue returns findings and
# never raises (a raise would surface as DOC001).

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=8,
)
KEYS = [
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "vocab_size",
    "intermediate_size",
    "max_position_embeddings",
    "rope_scaling",
    "rope_parameters",
    "layer_types",
    "tie_word_embeddings",
    "quantization",
    "quantization_config",
    "text_config",
    "vision_config",
    "eos_token_id",
    "pad_token_id",
    "image_token_id",
    "image_token_index",
    "model_type",
    "auto_map",
    "model_file",
    "sliding_window",
    "num_local_experts",
    "torch_dtype",
    "mm_tokens_per_image",
    "mm_hidden_size",
]
FAMILIES = ("config", "tokenizer", "quant", "vlm", "compat", "memory")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(changes=st.dictionaries(st.sampled_from(KEYS), JSON_VALUES, min_size=1, max_size=5))
def test_no_family_raises_on_any_config(tiny_llm_4bit: Path, changes: dict) -> None:
    import tempfile

    from genai_common.doctor.registry import check_family
    from genai_common.model import ModelDir

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(shutil.copytree(tiny_llm_4bit, Path(tmp) / "m"))
        edit_json(model / "config.json", lambda d: d.update(changes))
        md = ModelDir.open(model)
        for family in FAMILIES:
            found = check_family(family, md)
            assert not [f for f in found if f.code == "DOC001"], (family, found)


VISION_KEYS = [
    "hidden_size",
    "embed_dim",
    "intermediate_size",
    "mlp_ratio",
    "num_hidden_layers",
    "depth",
    "image_size",
    "patch_size",
    "spatial_merge_size",
    "projection_dim",
    "num_image_tokens",
]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    vision=st.dictionaries(st.sampled_from(VISION_KEYS), JSON_VALUES, min_size=1, max_size=4),
    text=st.dictionaries(st.sampled_from(KEYS[:9]), JSON_VALUES, max_size=3),
    size=JSON_VALUES,
)
def test_no_family_raises_on_any_vlm_config(
    tiny_vlm_paligemma: Path, vision: dict, text: dict, size: object
) -> None:
    import tempfile

    from genai_common.doctor.registry import check_family
    from genai_common.model import ModelDir

    def change(d: dict) -> None:
        d["vision_config"].update(vision)
        d["text_config"].update(text)

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(shutil.copytree(tiny_vlm_paligemma, Path(tmp) / "m"))
        edit_json(model / "config.json", change)
        edit_json(model / "preprocessor_config.json", lambda d: d.update(size=size))
        md = ModelDir.open(model)
        for family in FAMILIES:
            found = check_family(family, md)
            assert not [f for f in found if f.code == "DOC001"], (family, found)


# ---------------------------------------------------------------------------------------------
# Published configs of public models, judged before download (--metadata-only): no false alarm.


def test_mla_o_proj_takes_heads_times_v_head_dim(tmp_path: Path) -> None:
    # DeepSeek V2/V3: o_proj takes heads x v_head_dim, not heads x hidden/heads (a false CFG030
    # on every MLA checkpoint before); a config whose v_head_dim disagrees is still caught
    from checks_helpers import MLA_CONFIG, mlx_lm_checkpoint

    model = mlx_lm_checkpoint(tmp_path / "mla", MLA_CONFIG)
    assert problems(model, "config") == []
    edit_json(model / "config.json", lambda c: c.update(v_head_dim=16))
    assert messages(model, "config", "CFG030") == [
        "model.layers.0.self_attn.o_proj.weight has 128 inputs, expected 64 from "
        "num_attention_heads = 4, v_head_dim = 16"
    ]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_public_configs_raise_no_false_alarm(name: str, tmp_path: Path) -> None:
    from genai_common.doctor.registry import check_family
    from genai_common.model import ModelDir

    md = ModelDir.open(write_metadata_only(tmp_path, name), metadata_only=True)
    found = [
        f
        for family in FAMILIES
        if family != "memory"  # judged against this machine: see test_checks_memory.py
        for f in check_family(family, md)
        if f.severity != "info" and f.code != "TOK001"  # no tokenizer files written here
    ]
    assert found == []


def test_public_config_with_a_real_defect(tmp_path: Path) -> None:
    # Qwen2-VL whose index lost the last vision block (a stale or partial download)
    from checks_helpers import run as run_family

    def drop_last_block(index: dict) -> None:
        for name in ("visual.blocks.31.mlp.fc1.weight", "visual.blocks.31.mlp.fc2.weight"):
            del index["weight_map"][name]

    model = write_metadata_only(tmp_path, "Qwen2-VL-7B-Instruct")
    edit_json(model / "model.safetensors.index.json", drop_last_block)
    found = run_family(model, "vlm", metadata_only=True)
    assert [f.code for f in found] == ["VLM010"]
    assert "missing [31]" in found[0].message


def test_index_helpers_do_not_enumerate_the_configured_count() -> None:
    from genai_common.model.values import first_missing, is_range

    assert first_missing({0, 1, 3}, 2**40, limit=3) == [2, 4, 5]
    assert first_missing({0, 1, 2}, 3, limit=8) == []
    assert first_missing(set(), 2, limit=8) == [0, 1]
    assert is_range({0, 1, 2}, 3)
    assert not is_range({0, 1, 2}, 2**40)
    assert not is_range({1, 2, 3}, 3)
    assert not is_range({0, 2}, 2)
    assert is_range(set(), 0)


TRICKY_NAMES = [
    "model.layers.0.self_attn.q_proj.weight",
    "model.layers.12.mlp.experts.layers.3.w1.weight",  # the first layers.N counts
    "layers.7.attention.wq.weight",  # at the start of the name
    "transformer.h.3.attn.c_attn.weight",
    "model.blocks.2.x.weight",
    "model.mylayers.5.x.weight",  # not after a dot: no layer
    "model.layers.x.9.weight",  # no number after layers.: no layer
    "model.layers.4",  # no dot after the number: no layer
    "model.layers.44x.layers.6.y.weight",  # the first candidate fails, the second counts
    "vision_tower.encoder.layers.30.mlp.fc1.weight",  # not a text tensor
    "model.Visual.blocks.1.weight",  # marker in another case: not a text tensor
    "multi_modal_projector.linear_1.weight",
]


def test_text_tensors_and_layer_indices_match_the_per_name_rules(tmp_path: Path) -> None:
    """Without an embedding to anchor the language model on, the one-pass versions (names joined
    by newlines) agree with is_text_tensor and re.search(LAYER_PATTERN, name) applied name by
    name."""
    import re

    from checks_helpers import write_safetensors

    from genai_common.model import ModelDir
    from genai_common.model.text import LAYER_PATTERN, is_text_tensor

    write_safetensors(tmp_path / "model.safetensors", {n: ("F16", (2,)) for n in TRICKY_NAMES})
    md = ModelDir.open(tmp_path / "model.safetensors")
    assert set(md.text.tensors) == {n for n in TRICKY_NAMES if is_text_tensor(n)}
    expected = {
        int(m.group(1))
        for n in TRICKY_NAMES
        if is_text_tensor(n) and (m := re.search(LAYER_PATTERN, n))
    }
    assert md.text.layer_indices == expected == {0, 12, 7, 3, 2, 6}
    from genai_common.doctor.inspect import facts

    every = [
        int(m.group(1)) for n in TRICKY_NAMES if (m := re.search(r"(?:^|\.)layers\.(\d+)\.", n))
    ]
    assert facts(md)["layers_in_weights"] == max(every) + 1 == 31  # vision layers count here
    text_only = tmp_path / "text"
    write_safetensors(text_only / "model.safetensors", {"model.layers.1.w.weight": ("F16", (2,))})
    md = ModelDir.open(text_only / "model.safetensors")
    assert md.text.tensors is md.tensors  # no marker anywhere: the dict itself, no copy


def test_the_language_model_is_found_from_where_its_embedding_lives(tmp_path: Path) -> None:
    """With an embedding, the stacks directly under its module path are the language model's;
    every other stack is another network's, and so is everything under its own path."""
    from checks_helpers import write_safetensors

    from genai_common.model import ModelDir

    names = [*TRICKY_NAMES, "model.embed_tokens.weight"]
    write_safetensors(tmp_path / "model.safetensors", {n: ("F16", (2,)) for n in names})
    md = ModelDir.open(tmp_path / "model.safetensors")
    assert md.text.anchor == "model."
    assert md.text.text_stacks == {"model.layers.": {0, 12}, "model.blocks.": {2}}
    assert md.text.layer_indices == {0, 12, 2}
    assert md.text.foreign == (
        "layers.",
        "model.Visual.",
        "model.layers.44x.",
        "transformer.",
        "vision_tower.",
    )
    assert set(md.text.tensors) == {
        "model.layers.0.self_attn.q_proj.weight",
        "model.layers.12.mlp.experts.layers.3.w1.weight",
        "model.blocks.2.x.weight",
        "model.mylayers.5.x.weight",
        "model.layers.x.9.weight",
        "model.layers.4",
        "model.embed_tokens.weight",
    }


# One config value changed at a time on the tiny DeepSeek-V3 (DeepSeek's layout) and on mlx-lm's
# converted layout: each makes mlx-lm 0.32.2 fail to load ("Expected shape" or "parameters not in
# model"); the doctor must say which value disagrees with which weight.
MLA_BREAKS = {
    "kv_lora_rank": (32, "CFG033"),
    "q_lora_rank": (64, "CFG033"),
    "qk_nope_head_dim": (16, "CFG033"),
    "qk_rope_head_dim": (8, "CFG033"),
    "moe_intermediate_size": (48, "CFG081"),
    "n_shared_experts": (2, "CFG081"),
    "first_k_dense_replace": (0, "CFG081"),
}


@pytest.mark.parametrize("key", sorted(MLA_BREAKS))
def test_mla_and_moe_config_disagreeing_with_the_weights(
    key: str, tiny_model_factory, tmp_path: Path
) -> None:
    from checks_helpers import MLA_CONFIG, mlx_lm_checkpoint

    value, code = MLA_BREAKS[key]
    published = tiny_model_factory("llm", "deepseek_v3")
    converted = mlx_lm_checkpoint(tmp_path / "mlx", MLA_CONFIG)
    for model in (published, converted):
        assert problems(model, "config") == [], model
        edit_json(model / "config.json", lambda c: c.update({key: value}))
        found = [f for f in run(model, "config") if f.severity == "error"]
        assert code in [f.code for f in found], (model.name, found)


def test_mla_messages_name_the_weight_and_the_values(tiny_model_factory) -> None:
    model = tiny_model_factory("llm", "deepseek_v3")
    edit_json(model / "config.json", lambda c: c.update(kv_lora_rank=32))
    assert messages(model, "config", "CFG033") == [
        "model.layers.0.self_attn.kv_a_proj_with_mqa.weight has 96 outputs, expected 64 from "
        "kv_lora_rank 32 + qk_rope 32",
        "model.layers.0.self_attn.kv_b_proj.weight has 64 inputs, expected 32 from heads 4 x "
        "(qk_nope 64 + v_head_dim 32), from kv_lora_rank 32",
    ]
    edit_json(model / "config.json", lambda c: c.update(kv_lora_rank=64, first_k_dense_replace=2))
    assert messages(model, "config", "CFG081") == [
        "layers [1] hold experts but first_k_dense_replace = 2 (layers below it dense, the rest "
        "experts)"
    ]


QWEN3_NEXT_TEXT = {
    "vocab_size": 64,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "rms_norm_eps": 1e-6,
    "max_position_embeddings": 128,
    "full_attention_interval": 4,
    **LINEAR_ATTENTION,
    "tie_word_embeddings": False,
    "torch_dtype": "float32",
}
GATED = {
    "qwen3_next": {
        **QWEN3_NEXT_TEXT,
        "model_type": "qwen3_next",
        "rope_theta": 10000.0,
        "partial_rotary_factor": 0.5,
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "decoder_sparse_step": 1,
        "shared_expert_intermediate_size": 32,
        "moe_intermediate_size": 32,
        "norm_topk_prob": True,
        "mlp_only_layers": [],
    },
    "qwen3_5": {  # text under text_config, as Qwen3.5 publishes it
        "model_type": "qwen3_5",
        "architectures": ["Qwen3_5ForConditionalGeneration"],
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "text_config": {
            **QWEN3_NEXT_TEXT,
            "model_type": "qwen3_5_text",
            "rope_parameters": {
                "type": "default",
                "mrope_section": [1, 1, 0],
                "rope_theta": 100000,
                "partial_rotary_factor": 0.25,
            },
        },
    },
}


@pytest.mark.parametrize("model_type", sorted(GATED))
def test_gated_query_projection_is_not_a_shape_error(model_type: str, tmp_path: Path) -> None:
    # Qwen3-Next and Qwen3.5 project queries and their output gate together: q_proj is twice
    # heads x head_dim while o_proj takes heads x head_dim (a false CFG030 error before)
    from checks_helpers import mlx_lm_checkpoint

    model = mlx_lm_checkpoint(tmp_path / model_type, GATED[model_type])
    assert problems(model, "config") == []

    def halve_heads(config: dict) -> None:
        (config.get("text_config") or config)["num_attention_heads"] = 2

    edit_json(model / "config.json", halve_heads)  # q_proj and o_proj are both twice as wide
    found = messages(model, "config", "CFG030")
    assert any("q_proj.weight has 128 outputs, expected 32" in m for m in found), found
    assert any("o_proj.weight has 64 inputs, expected 32" in m for m in found), found


# Issue 14: networks beside the language model that have layer stacks of their own, in the
# layouts the published checkpoints store (names from the models' own modeling code and
# mlx-vlm 0.7.10's sanitize(), which maps them). Sizes are tiny; names and nesting are real.
def _linear(out: int, inp: int) -> tuple[str, tuple[int, ...]]:
    return ("BF16", (out, inp))


def _llama_layer(prefix: str, hidden: int, heads: int, kv: int, inter: int | None) -> Spec:
    head_dim = hidden // heads
    spec: Spec = {
        f"{prefix}.self_attn.q_proj.weight": _linear(heads * head_dim, hidden),
        f"{prefix}.self_attn.k_proj.weight": _linear(kv * head_dim, hidden),
        f"{prefix}.self_attn.v_proj.weight": _linear(kv * head_dim, hidden),
        f"{prefix}.self_attn.o_proj.weight": _linear(hidden, heads * head_dim),
        f"{prefix}.input_layernorm.weight": ("BF16", (hidden,)),
        f"{prefix}.post_attention_layernorm.weight": ("BF16", (hidden,)),
    }
    if inter:
        for proj, shape in (("gate", (inter, hidden)), ("up", (inter, hidden))):
            spec[f"{prefix}.mlp.{proj}_proj.weight"] = ("BF16", shape)
        spec[f"{prefix}.mlp.down_proj.weight"] = _linear(hidden, inter)
    return spec


def deepseek_ocr2_layout(root: Path) -> Path:
    """DeepSeek-OCR-2 as deepseek-ai publishes it: a DeepSeek-V2 MoE language model at `model.`
    (layer 0 dense, then routed + shared experts), a SAM ViT at `model.sam_model.blocks.N`, and a
    Qwen2 decoder used as the vision encoder at `model.qwen2_model.model.model.layers.N` (a
    language model inside the vision encoder: its layers have mlp.gate_proj and self_attn.q_proj
    of their own widths)."""
    text = {
        "model_type": "deepseek_v2",
        "vocab_size": 256,
        "hidden_size": 64,
        "intermediate_size": 128,
        "moe_intermediate_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "n_routed_experts": 4,
        "n_shared_experts": 1,
        "num_experts_per_tok": 2,
        "first_k_dense_replace": 1,
        "qk_nope_head_dim": 0,
        "qk_rope_head_dim": 0,
        "kv_lora_rank": None,
        "q_lora_rank": None,
        "use_mla": False,
        "max_position_embeddings": 256,
    }
    config = {
        "model_type": "deepseek_vl_v2",
        "architectures": ["DeepseekOCR2ForCausalLM"],
        "language_config": text,
        "vision_config": {"model_type": "vision", "layers": 3, "width": 32},
        "projector_config": {"projector_type": "linear", "input_dim": 32, "n_embed": 64},
        "tie_word_embeddings": False,
    }
    spec: Spec = {
        "model.embed_tokens.weight": _linear(256, 64),
        "model.norm.weight": ("BF16", (64,)),
        "lm_head.weight": _linear(256, 64),
        **_llama_layer("model.layers.0", 64, 4, 4, 128),
        **_llama_layer("model.layers.1", 64, 4, 4, None),
        "model.layers.1.mlp.gate.weight": _linear(4, 64),
        "model.layers.1.mlp.shared_experts.gate_proj.weight": _linear(32, 64),
        "model.layers.1.mlp.shared_experts.up_proj.weight": _linear(32, 64),
        "model.layers.1.mlp.shared_experts.down_proj.weight": _linear(64, 32),
        "model.projector.layers.weight": _linear(64, 32),
        "model.qwen2_model.query_1024.weight": _linear(16, 32),
    }
    for e in range(4):
        for proj, shape in (("gate", (32, 64)), ("up", (32, 64)), ("down", (64, 32))):
            spec[f"model.layers.1.mlp.experts.{e}.{proj}_proj.weight"] = ("BF16", shape)
    for i in range(3):  # the Qwen2 encoder: 3 layers, hidden 32, 2 heads, its own MLP
        spec.update(_llama_layer(f"model.qwen2_model.model.model.layers.{i}", 32, 2, 1, 48))
        spec[f"model.sam_model.blocks.{i}.mlp.lin1.weight"] = _linear(64, 16)
        spec[f"model.sam_model.blocks.{i}.attn.qkv.weight"] = _linear(48, 16)
    write_safetensors(root / "model.safetensors", spec)
    (root / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return root


def minicpm_o_layout(root: Path) -> Path:
    """MiniCPM-o 2.6 as openbmb publishes it: a Qwen2 language model at `llm.`, SigLIP at
    `vpm.encoder.layers.N`, a Whisper encoder at `apm.layers.N` (its q_proj is d_model wide) and
    a Llama-shaped TTS model at `tts.model.layers.N` with an embedding of its own; the text
    config is config.json's top level."""
    config = {
        "model_type": "minicpmo",
        "architectures": ["MiniCPMO"],
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "num_hidden_layers": 2,
        "vocab_size": 256,
        "max_position_embeddings": 256,
        "tie_word_embeddings": False,
        "vision_config": {
            "model_type": "siglip_vision_model",
            "hidden_size": 32,
            "num_hidden_layers": 3,
        },
        "audio_config": {"model_type": "whisper", "d_model": 48, "encoder_layers": 4},
        "tts_config": {"model_type": "conditional_chattts", "llm_dim": 64, "hidden_size": 40},
    }
    spec: Spec = {
        "llm.model.embed_tokens.weight": _linear(256, 64),
        "llm.model.norm.weight": ("BF16", (64,)),
        "llm.lm_head.weight": _linear(256, 64),
        "tts.model.embed_tokens.weight": _linear(32, 40),
        "resampler.query": ("BF16", (4, 64)),
        "resampler.kv_proj.weight": _linear(64, 32),
        "audio_projection_layer.linear1.weight": _linear(64, 48),
    }
    for i in range(2):
        spec.update(_llama_layer(f"llm.model.layers.{i}", 64, 4, 2, 128))
    for i in range(3):
        spec.update(_llama_layer(f"vpm.encoder.layers.{i}", 32, 2, 2, None))
        spec.update(_llama_layer(f"tts.model.layers.{i}", 40, 2, 2, 80))
    for i in range(4):
        spec.update(_llama_layer(f"apm.layers.{i}", 48, 4, 4, None))
    write_safetensors(root / "model.safetensors", spec)
    (root / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return root


@pytest.mark.parametrize("layout", [deepseek_ocr2_layout, minicpm_o_layout])
def test_other_networks_layers_are_not_the_language_models(layout, tmp_path: Path) -> None:
    model = layout(tmp_path / "m")
    for family in ("config", "vlm"):  # VLM011: a tower under a path no name rule knows
        assert [f"{f.code}: {f.message}" for f in problems(model, family)] == []


@pytest.mark.parametrize(
    ("layout", "key", "value", "code"),
    [
        (deepseek_ocr2_layout, "num_hidden_layers", 3, "CFG020"),
        (deepseek_ocr2_layout, "first_k_dense_replace", 2, "CFG081"),
        (minicpm_o_layout, "num_hidden_layers", 1, "CFG020"),
        (minicpm_o_layout, "num_key_value_heads", 4, "CFG030"),
    ],
)
def test_the_language_models_own_layers_still_judged(
    layout, key: str, value: int, code: str, tmp_path: Path
) -> None:
    model = layout(tmp_path / "m")

    def change(d: dict) -> None:
        d.get("language_config", d)[key] = value

    edit_json(model / "config.json", change)
    found = run(model, "config")
    assert code in {f.code for f in found}, [f"{f.code}: {f.message}" for f in found]
    assert all("qwen2_model" not in f.message and "apm." not in f.message for f in found)


def test_size_spellings_cover_transformers_attribute_maps() -> None:
    """Every key a transformers config's attribute_map spells a text size with is read (the
    families whose config spells heads differently: BART-style encoder/decoder_attention_heads,
    d_model, encoder_layers; GPT-2's n_head...), except a key that is another size's own
    canonical name or spelling (Whisper's num_key_value_heads -> encoder_attention_heads would
    read the query heads of every BART-style config)."""
    import ast
    import importlib.util

    from genai_common.model.text import TEXT_KEY_SPELLINGS

    spec = importlib.util.find_spec("transformers")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("transformers is not installed: no attribute_map to compare with")
    models = Path(next(iter(spec.submodule_search_locations))) / "models"
    other_canonical = set(TEXT_KEY_SPELLINGS) | {"moe_intermediate_size", "qk_rope_head_dim"}
    missing: dict[str, set[str]] = {}
    for path in models.glob("*/configuration_*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            target = (
                node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
            )
            if not (isinstance(target, ast.Name) and target.id == "attribute_map"):
                continue
            try:
                mapping = ast.literal_eval(node.value)
            except ValueError:
                continue
            for canonical, spelling in mapping.items():
                if canonical not in TEXT_KEY_SPELLINGS or spelling in TEXT_KEY_SPELLINGS[canonical]:
                    continue
                others = {s for k, v in TEXT_KEY_SPELLINGS.items() if k != canonical for s in v}
                if spelling in other_canonical | others or canonical == spelling:
                    continue
                missing.setdefault(canonical, set()).add(f"{spelling} ({path.parent.name})")
    assert missing == {}


def test_cfg001_bart_style_text_config_in_a_vlm(tmp_path: Path) -> None:
    """Florence-2's language model is BART: heads as encoder/decoder_attention_heads, hidden as
    d_model, layers as encoder/decoder_layers. No CFG001; a real absence still is one."""
    root = tmp_path / "florence"
    text = {
        "model_type": "florence2_language",
        "d_model": 64,
        "encoder_attention_heads": 4,
        "decoder_attention_heads": 4,
        "encoder_layers": 2,
        "decoder_layers": 2,
        "vocab_size": 256,
        "max_position_embeddings": 256,
    }
    root.mkdir()
    (root / "config.json").write_text(
        json.dumps({"model_type": "florence2", "text_config": text, "vision_config": {}}),
        encoding="utf-8",
    )
    assert "CFG001" not in codes(root, "config", metadata_only=True)
    edit_json(root / "config.json", lambda d: d["text_config"].pop("encoder_attention_heads"))
    edit_json(root / "config.json", lambda d: d["text_config"].pop("decoder_attention_heads"))
    assert "CFG001" in codes(root, "config", metadata_only=True)
