"""measure_stream: arrival-time metrics on a synthetic stream and on mlx-lm's real stream."""

from __future__ import annotations

import json
import time

import pytest

from genai_common.runtime.stream import measure_stream


def _tokens(first_delay: float, gap: float, n: int):
    time.sleep(first_delay)
    yield "t0"
    for i in range(1, n):
        time.sleep(gap)
        yield f" t{i}"


def test_known_sleeps_give_known_ttft_and_rate():
    metrics = measure_stream(_tokens(0.10, 0.02, 11))
    assert metrics.n_tokens == 11
    assert 0.10 <= metrics.ttft < 0.5
    # 10 gaps of at least 20 ms after the first token: at most 50 tokens/s, not far below
    assert 15 < metrics.decode_tps <= 50
    assert 0.02 <= metrics.itl_p50 < 0.07
    assert metrics.itl_p50 <= metrics.itl_p90 <= metrics.itl_p99
    assert metrics.e2e == pytest.approx(metrics.ttft + metrics.decode_time)
    assert metrics.text == "t0 t1 t2 t3 t4 t5 t6 t7 t8 t9 t10"
    assert json.loads(json.dumps(metrics.to_json()))["n_tokens"] == 11


def test_start_is_taken_from_the_caller():
    start = time.perf_counter() - 1.0
    metrics = measure_stream(iter(["a", "b"]), start=start)
    assert metrics.ttft >= 1.0


def test_empty_and_single_token_streams():
    empty = measure_stream(iter([]))
    assert empty.n_tokens == 0 and empty.ttft is None and empty.decode_tps is None
    assert empty.itl_p50 is None
    one = measure_stream(iter(["x"]))
    assert one.n_tokens == 1 and one.ttft is not None and one.decode_tps is None


def test_mlx_lm_stream_with_library_figures(tiny_llm):
    mlx_lm = pytest.importorskip("mlx_lm", reason="needs mlx-lm")
    model, tokenizer = mlx_lm.load(str(tiny_llm))
    stream = mlx_lm.stream_generate(model, tokenizer, "hello there", max_tokens=8)
    metrics = measure_stream(stream)
    lib = metrics.library
    assert {
        "prompt_tokens",
        "prompt_tps",
        "generation_tokens",
        "generation_tps",
        "peak_memory",
    } <= set(lib)
    assert metrics.n_tokens == lib["generation_tokens"]
    assert metrics.finish_reason in {"length", "stop"}
    assert metrics.ttft > 0
    if metrics.n_tokens > 1:
        assert metrics.decode_tps > 0


def test_mlx_vlm_stream_counts_each_token_once(tiny_vlm, tmp_path):
    mlx_vlm = pytest.importorskip("mlx_vlm", reason="needs mlx-vlm")
    from mlx_vlm.prompt_utils import apply_chat_template
    from PIL import Image

    image = tmp_path / "red.png"
    Image.new("RGB", (64, 64), (200, 30, 30)).save(image)
    model, processor = mlx_vlm.load(str(tiny_vlm))
    prompt = apply_chat_template(processor, model.config, "What is this?", num_images=1)
    stream = mlx_vlm.stream_generate(model, processor, prompt, image=[str(image)], max_tokens=6)
    metrics = measure_stream(stream)
    # mlx-vlm yields its last token twice (the second time with the finish reason)
    assert metrics.n_tokens == metrics.library["generation_tokens"] >= 1
    assert metrics.finish_reason in {"length", "stop"}


class _Item:
    def __init__(self, text: str, generation_tokens: int):
        self.text, self.generation_tokens = text, generation_tokens


def test_items_that_add_no_token_are_not_arrivals():
    items = [_Item("a", 1), _Item("b", 2), _Item("c", 2)]
    metrics = measure_stream(iter(items))
    assert metrics.n_tokens == 2 and metrics.text == "abc"
    assert metrics.library["generation_tokens"] == 2
