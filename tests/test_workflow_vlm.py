"""workflows/vlm.py: image+text records judged before fine-tuning (issue 11 item 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genai_common.workflows import vlm

pytest.importorskip("PIL", reason="pillow is not installed")


def _write(tmp_path: Path, records: list) -> str:
    from PIL import Image

    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "red.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
    return str(path)


def _chat(n_images: int) -> list:
    content = [{"type": "image"}] * n_images + [{"type": "text", "text": "What colour?"}]
    return [{"role": "user", "content": content}, {"role": "assistant", "content": "Red."}]


def test_good_records_are_clean(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            {"images": ["red.png"], "messages": _chat(1)},
            {"image": "red.png", "text": "<image> a red square"},
        ],
    )
    assert vlm.check_vlm_data(path) == []


def test_bad_records_caught(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            {"images": ["nope.png"], "messages": _chat(1)},
            {"images": ["broken.png"], "messages": _chat(1)},
            {"images": ["red.png"], "messages": _chat(2)},
            {"images": ["red.png"], "text": "no placeholder"},
            {"images": ["red.png"]},
            "{not json",
        ],
    )
    found = {(f.code, f.message.split(":")[0]) for f in vlm.check_vlm_data(path)}
    assert found == {
        ("VDT001", "line 1"),
        ("VDT002", "line 2"),
        ("VDT003", "line 3"),
        ("VDT003", "line 4"),
        ("VDT004", "line 5"),
        ("VDT005", "line 6"),
    }
