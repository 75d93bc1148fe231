"""TOK: tokenizer vs embedding and special tokens across files, on broken copies of the tiny models."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from checks_helpers import CLEAN_TINY, codes, edit_json, messages, problems, without


def set_json(model: Path, rel: str, **values) -> None:
    edit_json(model / rel, lambda d: d.update(values))


def add_tokens(model: Path, tokens: dict[int, str]) -> None:
    def change(d: dict) -> None:
        d["added_tokens"] += [
            {
                "id": i,
                "content": c,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
            for i, c in tokens.items()
        ]

    edit_json(model / "tokenizer.json", change)


@pytest.mark.parametrize("fixture", CLEAN_TINY)
def test_clean_tiny_models_pass(fixture: str, request: pytest.FixtureRequest) -> None:
    assert problems(request.getfixturevalue(fixture), "tokenizer") == []


def test_tok001_no_tokenizer_files(llama: Path) -> None:
    for name in (
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "chat_template.jinja",
    ):
        (llama / name).unlink()
    assert codes(llama, "tokenizer") == ["TOK001"]


def test_tok010_tokenizer_larger_than_embedding(llama: Path) -> None:
    add_tokens(llama, {600: "<|tool|>", 601: "<|end_tool|>"})
    [message] = messages(llama, "tokenizer", "TOK010")
    assert message.startswith("tokenizer size 602") and "> 512 rows" in message
    assert "[600, 601]" in message


def test_tok011_padded_embedding_is_info(llama: Path) -> None:
    [message] = messages(llama, "tokenizer", "TOK011")
    assert "512 rows" in message and "128 padding rows" in message
    add_tokens(llama, {511: "<|last|>"})
    assert "TOK011" not in codes(llama, "tokenizer")


def test_tok020_token_ids_outside_embedding(llama: Path) -> None:
    set_json(llama, "config.json", eos_token_id=512)
    set_json(llama, "generation_config.json", eos_token_id=[2, 700])
    found = messages(llama, "tokenizer", "TOK020")
    assert "config.json: eos_token_id = 512 >= 512 rows in model.embed_tokens.weight" in found
    assert any("generation_config.json: eos_token_id = 700" in m for m in found)


def test_tok020_image_token_index(tiny_vlm_paligemma: Path, tmp_path: Path) -> None:
    vlm = Path(shutil.copytree(tiny_vlm_paligemma, tmp_path / "pg"))
    set_json(vlm, "config.json", image_token_index=1600)  # == vocab rows (kongds/E5-V#7)
    assert any("image_token_index = 1600" in m for m in messages(vlm, "tokenizer", "TOK020"))


def test_tok020_metadata_only_uses_vocab_size(llama: Path) -> None:
    set_json(llama, "config.json", bos_token_id=900)
    assert "TOK020" in codes(llama, "tokenizer", metadata_only=True)


def test_tok021_negative_id(llama: Path) -> None:
    set_json(llama, "config.json", pad_token_id=-1)
    assert "TOK021" in codes(llama, "tokenizer")


def test_tok030_config_and_generation_config_disagree(llama: Path) -> None:
    set_json(llama, "generation_config.json", eos_token_id=3)
    found = messages(llama, "tokenizer", "TOK030")
    assert any("config.json [2] vs generation_config.json [3]" in m for m in found)
    # the tokenizer's eos '</s>' (id 2) is not what generation stops on
    assert any("'</s>' is id 2" in m and "[3]" in m for m in found)


def test_tok030_generation_superset_is_fine(llama: Path) -> None:
    set_json(llama, "generation_config.json", eos_token_id=[2, 5])
    assert "TOK030" not in codes(llama, "tokenizer")


def test_tok031_special_token_not_in_vocab(llama: Path) -> None:
    set_json(llama, "tokenizer_config.json", eos_token="<|end|>")
    [message] = messages(llama, "tokenizer", "TOK031")
    assert "'<|end|>'" in message


def test_tok032_pad_is_eos(llama: Path) -> None:
    set_json(llama, "config.json", pad_token_id=2)
    set_json(llama, "generation_config.json", pad_token_id=2)
    assert "TOK032" in codes(llama, "tokenizer")


def test_tok040_no_chat_template(llama: Path) -> None:
    (llama / "chat_template.jinja").unlink()
    edit_json(llama / "tokenizer_config.json", without("chat_template"))
    assert "TOK040" in codes(llama, "tokenizer")


def test_tok041_template_token_not_registered(llama: Path) -> None:
    (llama / "chat_template.jinja").write_text(
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}<|assistant|>\n",
        encoding="utf-8",
    )
    [message] = messages(llama, "tokenizer", "TOK041")
    assert "<|im_end|>" in message and "<|im_start|>" in message and "<|assistant|>" not in message


def test_tok002_deleted_tokenizer_json(tiny_llm: Path, tmp_path: Path) -> None:
    """Only tokenizer_config.json left: transformers cannot build the tokenizer (and says to
    install sentencepiece); the doctor names the file the class is built from."""
    from transformers import AutoTokenizer

    model = Path(shutil.copytree(tiny_llm, tmp_path / "m"))
    assert "TOK002" not in codes(model, "tokenizer")
    (model / "tokenizer.json").unlink()
    with pytest.raises((ValueError, OSError)):
        AutoTokenizer.from_pretrained(str(model))
    found = [f for f in problems(model, "tokenizer")]
    assert [(f.code, f.severity) for f in found] == [("TOK002", "error")], found
    assert "tokenizer.json" in found[0].message and "none is here" in found[0].message


def test_tok002_follows_the_tokenizer_class(tiny_llm: Path, tmp_path: Path) -> None:
    """Qwen2Tokenizer is built from tokenizer.json or from vocab.json + merges.txt (its
    VOCAB_FILES_NAMES in transformers): the slow pair is enough, half of it is not."""
    import json

    model = Path(shutil.copytree(tiny_llm, tmp_path / "m"))
    (model / "tokenizer.json").unlink()
    set_json(model, "tokenizer_config.json", tokenizer_class="Qwen2Tokenizer")
    (model / "vocab.json").write_text(json.dumps({"a": 0, "b": 1}), encoding="utf-8")
    (model / "merges.txt").write_text("#version: 0.2\na b\n", encoding="utf-8")
    assert "TOK002" not in codes(model, "tokenizer")
    (model / "merges.txt").unlink()
    (msg,) = messages(model, "tokenizer", "TOK002")
    assert "Qwen2Tokenizer" in msg and "vocab.json + merges.txt" in msg
