"""Issue 11: fine-tuning data diagnostics (DAT codes) on real files and the trained tiny llm's
real tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genai_common.workflows.data import diagnose, diagnose_file

CHAT = {
    "messages": [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "The capital of France is Paris."},
    ]
}


def _write(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def tokenizer(tiny_llm):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_llm))


def _codes(found):
    return sorted({f.code for f in found})


def test_good_chat_data_has_no_error_and_counts_tokens(tmp_path, tokenizer):
    for name in ("train.jsonl", "valid.jsonl"):
        _write(tmp_path / name, [json.dumps(CHAT)] * 3)
    report, facts = diagnose(str(tmp_path), tokenizer, max_seq_length=512)
    assert report.count("error") == 0, report.findings
    assert facts["train.jsonl"]["records"] == 3
    assert facts["train.jsonl"]["formats"] == ["chat"]
    assert facts["train.jsonl"]["tokens"] > 3 * 10


def test_missing_and_empty_files(tmp_path):
    (tmp_path / "train.jsonl").write_text("", encoding="utf-8")
    report, _ = diagnose(str(tmp_path))
    msgs = [f.message for f in report.findings if f.code == "DAT001"]
    assert any("valid.jsonl does not exist" in m for m in msgs)
    assert any("train.jsonl holds no records" in m for m in msgs)


def test_blank_malformed_and_unknown_lines_with_line_numbers(tmp_path):
    path = _write(
        tmp_path / "train.jsonl",
        [
            json.dumps({"text": "a"}),
            "",
            '{"text": "b",}',
            json.dumps({"input": "x", "output": "y"}),
        ],
    )
    found, _ = diagnose_file(path)
    by = {f.code: f.message for f in found}
    assert _codes(found) == ["DAT002", "DAT003", "DAT004"]
    assert "line(s) 2" in by["DAT002"]
    assert "line(s) 3" in by["DAT003"]
    assert "line(s) 4" in by["DAT004"] and "input" in by["DAT004"]


def test_mixed_formats_and_bad_messages(tmp_path):
    path = _write(
        tmp_path / "train.jsonl",
        [json.dumps(CHAT), json.dumps({"text": "plain"}), json.dumps({"messages": []})],
    )
    found, _ = diagnose_file(path)
    by = {f.code: f.message for f in found}
    assert "DAT005" in by and "line(s) 2" in by["DAT005"]
    assert "DAT006" in by and "line(s) 3" in by["DAT006"]


def test_too_long_after_chat_template(tmp_path, tokenizer):
    long = {"prompt": "Paris " * 200, "completion": "France."}
    path = _write(tmp_path / "train.jsonl", [json.dumps(CHAT), json.dumps(long)])
    found, facts = diagnose_file(path, tokenizer, max_seq_length=64)
    too_long = [f for f in found if f.code == "DAT010"]
    assert len(too_long) == 1 and "line(s) 2" in too_long[0].message
    assert facts["max_tokens"] > 200
    found, _ = diagnose_file(path, tokenizer, max_seq_length=4096)
    assert "DAT010" not in _codes(found)


def test_codes_are_in_the_catalogue():
    import genai_common.workflows.data  # noqa: F401
    from genai_common.doctor import registry  # noqa: F401
    from genai_common.findings import RULES

    assert {"DAT001", "DAT005", "DAT010", "DAT011"} <= set(RULES)


def test_a_split_smaller_than_the_batch_is_refused_before_the_trainer(tmp_path, tiny_llm):
    """mlx-lm's trainer refuses a split with fewer records than the batch size (at its first
    batch, after the model loaded); DAT013 says so beforehand, per split, and only then."""
    from mlx_lm.tuner.datasets import CacheDataset, load_dataset
    from mlx_lm.tuner.trainer import iterate_batches
    from mlx_lm.utils import load_tokenizer

    _write(tmp_path / "train.jsonl", [json.dumps(CHAT)] * 5)
    _write(tmp_path / "valid.jsonl", [json.dumps(CHAT)] * 2)
    tok = load_tokenizer(Path(tiny_llm))
    report, _ = diagnose(str(tmp_path), tok, max_seq_length=512, batch_size=4)
    dat = [f for f in report.findings if f.code == "DAT013"]
    assert [(f.file, f.message) for f in dat] == [
        ("valid.jsonl", "valid.jsonl: 2 record(s), batch size 4")
    ]
    assert not [
        f for f in diagnose(str(tmp_path), tok, 512, batch_size=2)[0].findings if f.code == "DAT013"
    ]
    # the premise, on mlx-lm's own loader and batcher (mlx_lm.lora's path)
    args = type(
        "Args",
        (),
        {
            "data": str(tmp_path),
            "train": True,
            "test": False,
            "hf_dataset": None,
            "mask_prompt": False,
        },
    )()
    _, valid, _ = load_dataset(args, tok)
    with pytest.raises(ValueError, match="at least batch_size=4"):
        next(iterate_batches(CacheDataset(valid), 4, 512))  # as mlx_lm.lora wraps it
