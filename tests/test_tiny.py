"""Tiny real-format models (MLX stack): each loads with its real loader and produces output."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from checks_helpers import CLEAN_TINY

from genai_common.testing.tiny import build


def _digest(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def _safetensors_header(path: Path) -> dict:
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + n])


def _count_tokens(model_dir: Path, max_tokens: int) -> tuple[int, object]:
    from mlx_lm import load, stream_generate

    model, tokenizer = load(str(model_dir))
    messages = [{"role": "user", "content": "Hello! How are you today?"}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = tokenizer.encode(prompt, add_special_tokens=False)
    tokens = [r.token for r in stream_generate(model, tokenizer, ids, max_tokens=max_tokens)]
    return len(tokens), tokenizer


# --- llm ---------------------------------------------------------------------------------------


def test_llama_config_and_tensor_names(tiny_llm: Path) -> None:
    config = json.loads((tiny_llm / "config.json").read_text())
    assert config["model_type"] == "llama"
    assert config["num_key_value_heads"] < config["num_attention_heads"]
    assert config["tie_word_embeddings"] is False
    header = _safetensors_header(tiny_llm / "model.safetensors")
    vocab, hidden = config["vocab_size"], config["hidden_size"]
    assert header["model.embed_tokens.weight"]["shape"] == [vocab, hidden]
    assert header["lm_head.weight"]["shape"] == [vocab, hidden]
    kv = config["num_key_value_heads"] * config["head_dim"]
    assert header["model.layers.0.self_attn.k_proj.weight"]["shape"] == [kv, hidden]
    last = config["num_hidden_layers"] - 1
    assert f"model.layers.{last}.mlp.down_proj.weight" in header
    for name in ("generation_config.json", "special_tokens_map.json", "tokenizer_config.json"):
        assert (tiny_llm / name).is_file()
    assert "chat_template" in json.loads((tiny_llm / "tokenizer_config.json").read_text())


@pytest.mark.parametrize(
    "fixture", ["tiny_llm", "tiny_llm_qwen2", "tiny_llm_gemma", "tiny_llm_4bit"]
)
def test_llm_generates_max_tokens_from_chat_prompt(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    model_dir = request.getfixturevalue(fixture)
    n, _ = _count_tokens(model_dir, max_tokens=12)
    assert n == 12


def test_tokenizer_round_trips_and_fits_embedding(tiny_llm: Path) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tiny_llm / "tokenizer.json"))
    text = "The quick brown fox, héllo 123! ✓"
    ids = tok.encode(text, add_special_tokens=False).ids
    assert tok.decode(ids) == text
    assert len(ids) < len(text.encode())  # merges were learned
    config = json.loads((tiny_llm / "config.json").read_text())
    size = tok.get_vocab_size(with_added_tokens=True)
    assert 256 < size <= config["vocab_size"]
    for role in ("<s>", "</s>", "<pad>", "<|user|>", "<|assistant|>", "<|system|>"):
        assert tok.token_to_id(role) is not None
    assert tok.token_to_id("</s>") == config["eos_token_id"]


def test_gemma_head_dim_differs_and_embeddings_tied(tiny_llm_gemma: Path) -> None:
    config = json.loads((tiny_llm_gemma / "config.json").read_text())
    assert config["head_dim"] != config["hidden_size"] // config["num_attention_heads"]
    header = _safetensors_header(tiny_llm_gemma / "model.safetensors")
    assert "lm_head.weight" not in header


def test_qwen2_has_qkv_biases(tiny_llm_qwen2: Path) -> None:
    header = _safetensors_header(tiny_llm_qwen2 / "model.safetensors")
    assert "model.layers.0.self_attn.q_proj.bias" in header
    assert "model.layers.0.self_attn.o_proj.bias" not in header


def test_4bit_is_quantized_by_mlx_lm(tiny_llm_4bit: Path) -> None:
    config = json.loads((tiny_llm_4bit / "config.json").read_text())
    assert config["quantization"]["bits"] == 4
    header = _safetensors_header(tiny_llm_4bit / "model.safetensors")
    assert header["model.layers.0.mlp.down_proj.weight"]["dtype"] == "U32"
    assert "model.layers.0.mlp.down_proj.scales" in header


def test_llm_is_deterministic_per_seed(tmp_path: Path) -> None:
    # seed 0 comes from the cache the fixtures fill; two cold builds are compared in
    # test_tiny_trained.py (training costs seconds per seed)
    a = build("llm", tmp_path / "a", seed=0)
    b = build("llm", tmp_path / "b", seed=0)
    c = build("llm", tmp_path / "c", seed=1)
    assert _digest(a) == _digest(b)
    assert _digest(a)["model.safetensors"] != _digest(c)["model.safetensors"]
    assert _digest(a)["tokenizer.json"] == _digest(c)["tokenizer.json"]


@pytest.mark.parametrize(
    ("kind", "variant"),
    [
        ("llm", "qwen2"),
        ("llm", "gemma"),
        ("llm", "llama-4bit"),
        ("vlm", "qwen2_vl"),
        ("vlm", "paligemma"),
    ],
)
def test_variants_are_deterministic(kind: str, variant: str, tmp_path: Path) -> None:
    a = build(kind, tmp_path / "a", variant=variant, seed=0)  # the fixtures' seed: cached
    b = build(kind, tmp_path / "b", variant=variant, seed=0)
    assert _digest(a) == _digest(b)


@pytest.mark.parametrize("fixture", CLEAN_TINY)
def test_tokenizer_fits_embedding_and_specials_agree(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    from tokenizers import Tokenizer

    path = request.getfixturevalue(fixture)
    config = json.loads((path / "config.json").read_text())
    text = config.get("text_config", config)
    tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    assert tok.get_vocab_size(with_added_tokens=True) <= text["vocab_size"]
    header = _safetensors_header(path / "model.safetensors")
    embed = next(k for k in header if k.endswith("embed_tokens.weight"))
    assert header[embed]["shape"][0] == text["vocab_size"]
    tok_config = json.loads((path / "tokenizer_config.json").read_text())
    assert tok.token_to_id(tok_config["eos_token"]) == config["eos_token_id"]
    template = (path / "chat_template.jinja").read_text()
    assert template == tok_config["chat_template"]


# --- ml ----------------------------------------------------------------------------------------


def test_ml_loads_and_runs_forward(tiny_ml: Path) -> None:
    import mlx.core as mx

    from genai_common.testing.tiny_ml import load_tiny_ml

    model = load_tiny_ml(tiny_ml)
    config = json.loads((tiny_ml / "config.json").read_text())
    out = model(mx.ones((5, config["input_dims"])))
    assert out.shape == (5, config["output_dims"])
    assert bool(mx.all(mx.isfinite(out)))


def test_ml_is_deterministic_and_loader_rejects_other_types(tmp_path: Path) -> None:
    from genai_common.testing.tiny_ml import load_tiny_ml

    a = build("ml", tmp_path / "a", seed=1)
    b = build("ml", tmp_path / "b", seed=1)
    assert _digest(a) == _digest(b)
    config = json.loads((a / "config.json").read_text())
    config["model_type"] = "llama"
    (a / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="model_type"):
        load_tiny_ml(a)


# --- build() and the CLI -----------------------------------------------------------------------


def test_build_rejects_unknown_kind_and_variant(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        build("audio", tmp_path / "x")
    with pytest.raises(ValueError, match="unknown llm variant"):
        build("llm", tmp_path / "x", variant="mistral")


def test_factory_gives_fresh_directories(tiny_model_factory) -> None:
    a = tiny_model_factory("ml")
    b = tiny_model_factory("ml")
    assert a != b and (a / "model.safetensors").is_file() and (b / "model.safetensors").is_file()


def _genai(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "genai_common.cli", "tiny", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_cli_writes_and_refuses_to_overwrite(tmp_path: Path) -> None:
    dest = tmp_path / "m"
    first = _genai("ml", str(dest))
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[0] == str(dest)
    assert (dest / "model.safetensors").is_file()
    again = _genai("ml", str(dest))
    assert again.returncode == 2
    assert "not empty" in again.stderr
    forced = _genai("ml", str(dest), "--force", "--seed", "5")
    assert forced.returncode == 0, forced.stderr
    bad = _genai("ml", str(tmp_path / "n"), "--variant", "nope")
    assert bad.returncode == 2
    assert not (tmp_path / "n").exists()


# --- vlm ---------------------------------------------------------------------------------------


def _vlm_generate(model_dir: Path, pixel: int) -> object:
    import numpy as np
    from mlx_vlm import generate, load
    from mlx_vlm.prompt_utils import apply_chat_template
    from mlx_vlm.utils import load_config
    from PIL import Image

    model, processor = load(str(model_dir))
    config = load_config(str(model_dir))
    image = Image.fromarray(np.full((64, 64, 3), pixel, dtype=np.uint8))
    prompt = apply_chat_template(processor, config, "Describe the image.", num_images=1)
    return generate(model, processor, prompt, image=[image], max_tokens=4, verbose=False)


@pytest.mark.parametrize(("fixture", "image_tokens"), [("tiny_vlm", 4), ("tiny_vlm_paligemma", 16)])
def test_vlm_generates_from_an_image(
    fixture: str, image_tokens: int, request: pytest.FixtureRequest
) -> None:
    import numpy as np

    model_dir = request.getfixturevalue(fixture)
    dark = _vlm_generate(model_dir, 10)
    assert dark.generation_tokens == 4
    assert len(dark.token_ids) == 4
    assert dark.prompt_tokens > image_tokens  # the image token was expanded to its patches
    bright = _vlm_generate(model_dir, 240)
    # the image reaches the language model: another image gives other next-token scores
    assert not np.allclose(np.array(dark.logprobs), np.array(bright.logprobs))


def test_vlm_image_token_ids_agree(tiny_vlm: Path, tiny_vlm_paligemma: Path) -> None:
    from tokenizers import Tokenizer

    qwen = json.loads((tiny_vlm / "config.json").read_text())
    tok = Tokenizer.from_file(str(tiny_vlm / "tokenizer.json"))
    assert tok.token_to_id("<|image_pad|>") == qwen["image_token_id"]
    assert tok.get_vocab_size(with_added_tokens=True) <= qwen["vocab_size"]
    pali = json.loads((tiny_vlm_paligemma / "config.json").read_text())
    tok = Tokenizer.from_file(str(tiny_vlm_paligemma / "tokenizer.json"))
    assert tok.token_to_id("<image>") == pali["image_token_index"]
    assert tok.token_to_id("<loc1023>") is not None
    assert tok.get_vocab_size(with_added_tokens=True) <= pali["text_config"]["vocab_size"]
    pre = json.loads((tiny_vlm_paligemma / "preprocessor_config.json").read_text())
    vision = pali["vision_config"]
    assert pre["image_seq_length"] == (vision["image_size"] // vision["patch_size"]) ** 2


# --- --force and half-built folders (issue 15, items 3 and 7) ---------------------------------


def test_force_never_replaces_a_project_or_a_folder_it_did_not_make(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / "notes.md").write_text("months of notes\n")
    refused = _genai("ml", str(project), "--force")
    assert refused.returncode == 2 and ".git" in refused.stderr
    assert (project / "notes.md").read_text() == "months of notes\n"
    (project / ".git").rmdir()
    (project / "pyproject.toml").write_text("[project]\n")
    assert "pyproject.toml" in _genai("ml", str(project), "--force").stderr
    (project / "pyproject.toml").unlink()
    unmarked = _genai("ml", str(project), "--force")
    assert unmarked.returncode == 2 and "not made by genai tiny" in unmarked.stderr
    assert (project / "notes.md").is_file()
    link = tmp_path / "link"
    link.symlink_to(project)
    assert "symlink" in _genai("ml", str(link), "--force").stderr
    here = subprocess.run(
        [sys.executable, "-m", "genai_common.cli", "tiny", "ml", ".", "--force"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert here.returncode == 2 and "current" in here.stderr
    assert (project / "notes.md").is_file()


def test_a_half_built_project_model_is_rebuilt_and_concurrent_first_runs_agree(
    tmp_path: Path,
) -> None:
    import multiprocessing

    from genai_common.testing.tiny import MARKER, project_model_path

    where = tmp_path / "models" / "tiny-ml"
    where.mkdir(parents=True)
    (where / "config.json").write_text("{")  # what a killed build leaves
    assert project_model_path(tmp_path, "ml", "") == str(where)
    assert (where / MARKER).is_file() and (where / "model.safetensors").is_file()
    assert json.loads((where / "config.json").read_text())

    fresh = tmp_path / "fresh"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=project_model_path, args=(fresh, "ml", "")) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    built = fresh / "models" / "tiny-ml"
    assert (built / MARKER).is_file()
    assert sorted(p.name for p in (fresh / "models").iterdir()) == ["tiny-ml"]
