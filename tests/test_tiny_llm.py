"""The tiny DeepSeek-V3 (multi-head latent attention + mixture of experts): DeepSeek's published
layout on disk, and mlx-lm loads it, generates with it and converts it to 4-bit."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from pathlib import Path

import pytest

from genai_common.testing.tiny import build


def _header(path: Path) -> dict:
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    header.pop("__metadata__", None)
    return header


def _config(path: Path) -> dict:
    return json.loads((path / "config.json").read_text())


def _greedy_tokens(model_dir: Path, max_tokens: int) -> tuple[list, object]:
    from mlx_lm import load, stream_generate

    model, tokenizer = load(str(model_dir))
    messages = [{"role": "user", "content": "Hello! How are you today?"}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = tokenizer.encode(prompt, add_special_tokens=False)
    return list(stream_generate(model, tokenizer, ids, max_tokens=max_tokens)), model


def test_config_is_deepseek_v3_as_published(tiny_llm_deepseek_v3: Path) -> None:
    c = _config(tiny_llm_deepseek_v3)
    assert c["architectures"] == ["DeepseekV3ForCausalLM"] and c["model_type"] == "deepseek_v3"
    assert (c["topk_method"], c["scoring_func"]) == ("noaux_tc", "sigmoid")
    assert c["norm_topk_prob"] is True and c["routed_scaling_factor"] == 2.5
    assert c["tie_word_embeddings"] is False
    assert c["num_key_value_heads"] == c["num_attention_heads"]  # MLA: every head reads the latent
    assert c["v_head_dim"] != c["qk_nope_head_dim"]  # o_proj's width is heads x v_head_dim
    assert 0 < c["first_k_dense_replace"] < c["num_hidden_layers"]  # dense first, then MoE
    assert c["n_routed_experts"] % c["n_group"] == 0 and c["topk_group"] < c["n_group"]
    per_group = c["n_routed_experts"] // c["n_group"]
    assert 2 <= c["num_experts_per_tok"] <= per_group * c["topk_group"]
    rope = c["rope_scaling"]
    assert rope["type"] == "yarn" and rope["mscale_all_dim"] == 1.0
    assert c["max_position_embeddings"] == rope["factor"] * rope["original_max_position_embeddings"]
    for name in ("generation_config.json", "tokenizer.json", "chat_template.jinja"):
        assert (tiny_llm_deepseek_v3 / name).is_file()


def test_weights_are_in_deepseeks_layout(tiny_llm_deepseek_v3: Path) -> None:
    c = _config(tiny_llm_deepseek_v3)
    header = _header(tiny_llm_deepseek_v3 / "model.safetensors")
    heads, nope, rope = c["num_attention_heads"], c["qk_nope_head_dim"], c["qk_rope_head_dim"]
    hidden, experts = c["hidden_size"], c["n_routed_experts"]
    for i in range(c["num_hidden_layers"]):
        a = f"model.layers.{i}.self_attn."
        assert header[a + "q_a_proj.weight"]["shape"] == [c["q_lora_rank"], hidden]
        assert header[a + "q_b_proj.weight"]["shape"] == [heads * (nope + rope), c["q_lora_rank"]]
        assert header[a + "kv_a_proj_with_mqa.weight"]["shape"] == [
            c["kv_lora_rank"] + rope,
            hidden,
        ]
        assert header[a + "kv_b_proj.weight"]["shape"] == [
            heads * (nope + c["v_head_dim"]),
            c["kv_lora_rank"],
        ]
        assert header[a + "o_proj.weight"]["shape"] == [hidden, heads * c["v_head_dim"]]
        m = f"model.layers.{i}.mlp."
        if i < c["first_k_dense_replace"]:
            assert header[m + "gate_proj.weight"]["shape"] == [c["intermediate_size"], hidden]
            assert not any(k.startswith(m + "experts.") for k in header)
            continue
        assert header[m + "gate.weight"]["shape"] == [experts, hidden]
        bias = header[m + "gate.e_score_correction_bias"]
        assert bias == {**bias, "dtype": "F32", "shape": [experts]}
        for e in range(experts):
            shape = header[f"{m}experts.{e}.down_proj.weight"]["shape"]
            assert shape == [hidden, c["moe_intermediate_size"]]
        shared = c["moe_intermediate_size"] * c["n_shared_experts"]
        assert header[m + "shared_experts.up_proj.weight"]["shape"] == [shared, hidden]
    # what mlx-lm's sanitize makes, and no multi-token-prediction layer
    assert not any(s in k for k in header for s in ("switch_mlp", "embed_q", "unembed_out"))
    assert not any(k.startswith(f"model.layers.{c['num_hidden_layers']}.") for k in header)
    # every input width mlx-lm's 4-bit convert groups (2-D last axes, embed_q's qk_nope_head_dim)
    assert all(h["shape"][-1] % 64 == 0 for h in header.values() if len(h["shape"]) == 2)
    assert nope % 64 == 0
    assert {h["dtype"] for h in header.values()} == {"F32"} and c["torch_dtype"] == "float32"
    assert (tiny_llm_deepseek_v3 / "model.safetensors").stat().st_size < 1.5 * 2**20


def test_mlx_lm_loads_it_as_mla_and_moe_and_generates_max_tokens(
    tiny_llm_deepseek_v3: Path,
) -> None:
    pytest.importorskip("mlx_lm", reason="needs mlx-lm")
    c = _config(tiny_llm_deepseek_v3)
    responses, model = _greedy_tokens(tiny_llm_deepseek_v3, max_tokens=16)
    assert len(responses) == 16 and responses[-1].finish_reason == "length"
    dense, moe = model.model.layers[0].mlp, model.model.layers[1].mlp
    assert type(dense).__name__ == "DeepseekV3MLP" and type(moe).__name__ == "DeepseekV3MoE"
    # sanitize stacked the experts and split kv_b_proj into per-head matrices
    experts = (c["n_routed_experts"], c["moe_intermediate_size"], c["hidden_size"])
    assert moe.switch_mlp.gate_proj.weight.shape == experts
    attn = model.model.layers[0].self_attn
    heads, rank = c["num_attention_heads"], c["kv_lora_rank"]
    assert attn.embed_q.weight.shape == (heads, rank, c["qk_nope_head_dim"])
    assert attn.unembed_out.weight.shape == (heads, c["v_head_dim"], rank)


def test_deterministic_per_seed(tmp_path: Path) -> None:
    def digest(path: Path) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in path.iterdir()}

    # seed 0: the fixture's, cached; cold builds are compared in test_tiny_trained.py
    a = digest(build("llm", tmp_path / "a", variant="deepseek_v3", seed=0))
    b = digest(build("llm", tmp_path / "b", variant="deepseek_v3", seed=0))
    c = digest(build("llm", tmp_path / "c", variant="deepseek_v3", seed=1))
    assert a == b
    assert a["model.safetensors"] != c["model.safetensors"]
    seeded = ("model.safetensors", ".genai-tiny")  # the weights and the marker naming the seed
    assert {k: v for k, v in a.items() if k not in seeded} == {
        k: v for k, v in c.items() if k not in seeded
    }


def test_mlx_lm_4bit_convert_quantizes_every_projection_and_loads(
    tiny_llm_deepseek_v3: Path, tmp_path: Path
) -> None:
    pytest.importorskip("mlx_lm", reason="needs mlx-lm")
    from mlx_lm.convert import convert

    from genai_common.doctor import diagnose

    out = tmp_path / "q4"
    with contextlib.redirect_stdout(io.StringIO()):  # convert prints progress
        convert(str(tiny_llm_deepseek_v3), str(out), quantize=True, q_bits=4, q_group_size=64)
    header = _header(out / "model.safetensors")
    weights = {k: h for k, h in header.items() if k.endswith(".weight") and len(h["shape"]) >= 2}
    unquantized = sorted(k for k, h in weights.items() if h["dtype"] != "U32")
    assert unquantized == ["model.layers.1.mlp.gate.weight"]  # the router: an array, not a layer
    for name in ("switch_mlp.down_proj", "self_attn.embed_q", "self_attn.unembed_out"):
        assert any(name in k and h["dtype"] == "U32" for k, h in weights.items()), name
    responses, _ = _greedy_tokens(out, max_tokens=8)
    assert len(responses) == 8
    report = diagnose(out)
    assert [f.code for f in report.findings if f.severity != "info"] == []
