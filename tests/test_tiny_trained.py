"""The tiny models are trained at build time (real loaders: mlx_lm.load/generate, mlx_vlm.load/
generate): perplexity far below the random initialisation's, a known greedy answer to a fixed chat
prompt, quantization damage in the right order, the ml module's loss far below its initial loss;
builds are deterministic and cached per seed and version, and the cache is written atomically."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genai_common.testing import quality, tiny_cache
from genai_common.testing.tiny import build

LLMS = [
    ("tiny_llm", "llama"),
    ("tiny_llm_qwen2", "qwen2"),
    ("tiny_llm_gemma", "gemma"),
    ("tiny_llm_deepseek_v3", "deepseek_v3"),
]
VLMS = [("tiny_vlm", "qwen2_vl"), ("tiny_vlm_paligemma", "paligemma")]


def _digest(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir())}


@pytest.fixture
def cold(monkeypatch: pytest.MonkeyPatch) -> None:
    """Builds in this test train from scratch: no cache read or written."""
    monkeypatch.setenv("GENAI_TINY_CACHE", "off")


# --- language models ----------------------------------------------------------------------------


@pytest.mark.parametrize(("fixture", "variant"), LLMS)
def test_llm_answers_the_capital_prompt_greedily(
    fixture: str, variant: str, request: pytest.FixtureRequest
) -> None:
    pytest.importorskip("mlx_lm", reason="needs mlx-lm")
    reply = quality.greedy_chat(request.getfixturevalue(fixture), quality.CAPITAL_PROMPT)
    assert reply.startswith(quality.CAPITAL_ANSWER), reply


@pytest.mark.parametrize(("fixture", "variant"), LLMS)
def test_llm_perplexity_is_far_below_the_random_models(
    fixture: str, variant: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    pytest.importorskip("mlx_lm", reason="needs mlx-lm")
    from genai_common.testing import tiny_llm

    random = tiny_llm.build_text_model(tmp_path / "random", variant, 0, trained=False)
    trained_ppl = quality.perplexity(request.getfixturevalue(fixture))
    random_ppl = quality.perplexity(random)
    assert trained_ppl < 60, trained_ppl
    assert random_ppl > 10 * trained_ppl, (random_ppl, trained_ppl)


def test_the_4bit_convert_still_answers(tiny_llm_4bit: Path) -> None:
    pytest.importorskip("mlx_lm", reason="needs mlx-lm")
    reply = quality.greedy_chat(tiny_llm_4bit, quality.CAPITAL_PROMPT)
    assert "Paris" in reply, reply


def test_quantization_damage_is_ordered_4bit_8bit_float16(
    tiny_llm: Path, tiny_llm_4bit: Path, tmp_path: Path
) -> None:
    """Against the float32 weights training ends with: float16 < 8-bit < 4-bit (group 64) in KL,
    and 4-bit is the one that moves perplexity."""
    pytest.importorskip("mlx_lm", reason="needs mlx-lm")
    from mlx_lm.convert import convert

    from genai_common.testing.tiny_llm import build_text_model

    float32 = build_text_model(tmp_path / "f32", "llama", 0, dtype="float32")
    q8 = tmp_path / "q8"
    with contextlib.redirect_stdout(io.StringIO()):
        convert(str(tiny_llm), str(q8), quantize=True, q_bits=8, q_group_size=64)
    # the first 2,048 positions of the corpus: mlx's CPU quantized matmul is ~10x slower than the
    # float one for prompts, and 2,048 positions resolve these differences
    got = quality.compare(
        float32, {"f16": tiny_llm, "q8": q8, "q4": tiny_llm_4bit}, max_tokens=2048
    )
    kl = {name: got[name]["kl_mean"] for name in ("f16", "q8", "q4")}
    assert 0 < kl["f16"] < kl["q8"] < kl["q4"], kl
    ppl = {name: got[name]["ppl"] for name in got}
    assert abs(ppl["f16"] - ppl["reference"]) < 0.01 * ppl["reference"], ppl
    assert abs(ppl["q8"] - ppl["f16"]) < 0.01 * ppl["f16"], ppl
    assert ppl["q4"] > 1.02 * ppl["q8"], ppl


# --- vision-language models: the text side ------------------------------------------------------


@pytest.mark.parametrize(("fixture", "variant"), VLMS)
def test_vlm_text_side_answers_and_its_perplexity_is_low(
    fixture: str, variant: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    pytest.importorskip("mlx_vlm", reason="needs mlx-vlm")
    from genai_common.testing import tiny_vlm

    path = request.getfixturevalue(fixture)
    reply = quality.greedy_chat(path, quality.CAPITAL_PROMPT, kind="vlm")
    assert reply.startswith(quality.CAPITAL_ANSWER), reply
    random = tmp_path / "random"
    random.mkdir()
    builder = tiny_vlm.build_paligemma if variant == "paligemma" else tiny_vlm.build_qwen2_vl
    builder(random, 0, trained=False)
    trained_ppl, random_ppl = quality.perplexity(path, "vlm"), quality.perplexity(random, "vlm")
    assert trained_ppl < 60, trained_ppl
    assert random_ppl > 10 * trained_ppl, (random_ppl, trained_ppl)


# --- the ml module ------------------------------------------------------------------------------


def test_ml_module_loss_is_far_below_its_initial_loss(tiny_ml: Path, tmp_path: Path) -> None:
    from genai_common.testing import tiny_ml as ml

    (tmp_path / "init").mkdir()
    initial = ml.load_tiny_ml(ml.build(tmp_path / "init", "mlp", 0, trained=False))
    trained = ml.load_tiny_ml(tiny_ml)
    x, y = ml.dataset(0)
    assert ml.mean_loss(initial, x, y) > 1.5  # about ln 10: ten classes, no idea yet
    assert ml.mean_loss(trained, x, y) < 0.1 * ml.mean_loss(initial, x, y)
    held_x, held_y = (a[len(x) :] for a in ml.dataset(0, 2 * len(x)))  # inputs never seen
    assert ml.mean_loss(trained, held_x, held_y) < 0.5 * ml.mean_loss(initial, held_x, held_y)


# --- determinism --------------------------------------------------------------------------------


def test_a_cold_build_gives_the_cached_bytes(cold: None, tiny_llm: Path, tmp_path: Path) -> None:
    """The fixture came from the cache (itself a cold build, in this run or an earlier one); a
    build that trains again from scratch writes the same bytes."""
    pytest.importorskip("mlx_lm", reason="needs mlx-lm")
    again = build("llm", tmp_path / "again", variant="llama", seed=0)
    assert _digest(again) == _digest(tiny_llm)


def test_ml_cold_builds_agree_per_seed_and_differ_across_seeds(cold: None, tmp_path: Path) -> None:
    a = build("ml", tmp_path / "a", seed=2)
    b = build("ml", tmp_path / "b", seed=2)
    c = build("ml", tmp_path / "c", seed=3)
    assert _digest(a) == _digest(b)
    assert _digest(a)["model.safetensors"] != _digest(c)["model.safetensors"]


# --- the cache ----------------------------------------------------------------------------------


def _entries(base: Path) -> list[Path]:
    return sorted(p for p in base.iterdir() if not p.name.startswith(".tmp-"))


def test_cache_hit_miss_and_invalidation(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from genai_common.testing import train

    base = tmp_path / "cache"
    monkeypatch.setenv("GENAI_TINY_CACHE", str(base))
    runs = len(train.RECORDS)
    first = build("ml", tmp_path / "first", seed=0)
    assert len(train.RECORDS) == runs + 1  # a miss: trained
    (entry,) = _entries(base)
    assert entry.name.startswith("ml-mlp-0-")
    key = json.loads((entry / "key.json").read_text())
    assert key == tiny_cache.key("ml", "mlp", 0, "genai_common.testing.tiny_ml")
    record = json.loads((entry / "training.json").read_text())
    assert record["training"][0]["last_loss"] < record["training"][0]["first_loss"]

    second = build("ml", tmp_path / "second", seed=0)
    assert len(train.RECORDS) == runs + 1  # a hit: not trained again
    built = {k: v for k, v in _digest(first).items() if k != ".genai-tiny"}  # the marker: ours
    assert _digest(second) == _digest(first) and built == _digest(entry / "model")

    monkeypatch.setitem(train.ML_RECIPE, "steps", 20)  # another recipe: another key
    third = build("ml", tmp_path / "third", seed=0)
    assert len(train.RECORDS) == runs + 2 and len(_entries(base)) == 2
    assert _digest(third)["model.safetensors"] != _digest(first)["model.safetensors"]

    real_version = tiny_cache._version
    monkeypatch.setattr(
        tiny_cache, "_version", lambda p: "0.0.0-other" if p == "mlx" else real_version(p)
    )
    build("ml", tmp_path / "fourth", seed=0)  # another mlx: another key
    assert len(train.RECORDS) == runs + 3 and len(_entries(base)) == 3


def test_the_key_names_corpus_seed_and_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    from genai_common import corpus

    key = tiny_cache.key("llm", "llama", 0, "genai_common.testing.tiny_llm")
    assert {"mlx", "mlx-lm", "genai-common", "tokenizers"} <= set(key["versions"])
    assert tiny_cache.key("llm", "llama", 1, "genai_common.testing.tiny_llm") != key
    monkeypatch.setattr(corpus, "digest", lambda: "another corpus")
    changed = tiny_cache.key("llm", "llama", 0, "genai_common.testing.tiny_llm")
    assert changed != key and tiny_cache.entry_dir(changed, "/c") != tiny_cache.entry_dir(key, "/c")


KILLED_BUILDER = """
import sys, time
from pathlib import Path
from genai_common.testing import tiny_cache

def builder(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes(b"half of a model")
    print("writing", flush=True)
    time.sleep(120)

tiny_cache.fetch({"kind": "llm", "variant": "killed", "seed": 0}, builder, base=sys.argv[1])
"""


def test_a_killed_build_is_never_taken_for_an_entry(tmp_path: Path) -> None:
    base = tmp_path / "cache"
    key = {"kind": "llm", "variant": "killed", "seed": 0}
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_BUILDER, str(base)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "writing"
    finally:
        child.kill()
        child.wait(timeout=30)
    (leftover,) = base.iterdir()
    assert leftover.name.startswith(".tmp-") and (leftover / "model").is_dir()
    assert not os.path.exists(tiny_cache.entry_dir(key, str(base)))

    calls = []

    def builder(folder: Path) -> dict[str, int]:
        calls.append(folder)
        (folder / "model.safetensors").write_bytes(b"a whole model")
        return {"figure": 1}

    model, hit = tiny_cache.fetch(key, builder, base=str(base))
    assert not hit and len(calls) == 1
    assert (model / "model.safetensors").read_bytes() == b"a whole model"
    assert tiny_cache.fetch(key, builder, base=str(base)) == (model, True) and len(calls) == 1
    assert leftover.exists()  # younger than an hour: perhaps another process is still writing
    old = time.time() - 2 * tiny_cache.STALE_SECONDS
    os.utime(leftover, (old, old))
    tiny_cache.fetch({**key, "seed": 1}, builder, base=str(base))
    assert not leftover.exists()


def test_a_failed_build_leaves_nothing(tmp_path: Path) -> None:
    def builder(folder: Path) -> None:
        (folder / "part").write_text("x")
        raise RuntimeError("the builder broke")

    with pytest.raises(RuntimeError, match="broke"):
        tiny_cache.fetch({"kind": "ml", "variant": "x", "seed": 0}, builder, base=str(tmp_path))
    assert list(tmp_path.iterdir()) == []
