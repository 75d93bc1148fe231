"""VLM fine-tuning data: image+text records judged before training (issue 11 item 3).

A record is a JSON object with `images` (a list of paths, or `image`: one path) and either
`messages` (chat format; an image placeholder is a content item `{"type": "image"}` or the image
token in a string) or `text`/`prompt`. Paths are relative to the data file's folder.

- VDT001 an image file is missing; VDT002 it does not open as an image (PIL verify);
- VDT003 the image placeholders in the text do not match the number of images;
- VDT004 a record without text, or not a JSON object; VDT005 a line that is not JSON.
"""

from __future__ import annotations

import json
import os
from collections import namedtuple
from collections.abc import Iterator

from genai_common.findings import Finding, finding, rule, run_rule

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

VlmData = namedtuple("VlmData", "path root records bad_lines image_token")


def _images(rec: dict[str, Any]) -> list[str]:
    imgs = rec.get("images", rec.get("image", []))
    if isinstance(imgs, str):
        return [imgs]
    return [i for i in imgs if isinstance(i, str)] if isinstance(imgs, list) else []


def _placeholders(rec: dict[str, Any], token: str) -> int | None:
    """Image placeholders in the record's text; None when it has no text."""
    texts: list[str] = []
    count = 0
    msgs = rec.get("messages")
    if isinstance(msgs, list):
        for msg in msgs:
            content = msg.get("content") if isinstance(msg, dict) else None
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                for item in content:
                    if isinstance(item, dict) and item.get("type") == "image":
                        count += 1
                    elif isinstance(item, dict) and isinstance(item.get("text"), str):
                        texts.append(item["text"])
    for key in ("text", "prompt", "question"):
        if isinstance(rec.get(key), str):
            texts.append(rec[key])
    if not texts and not count:
        return None
    return count + sum(t.count(token) for t in texts)


@rule(
    "VDT001",
    "An image file of a record is missing",
    severity="error",
    fix="Fix the path (relative to the data file's folder) or drop the record.",
    compares="each record's image paths vs the files on disk",
)
def missing_images(data: VlmData) -> Iterator[Finding]:
    for line, rec in data.records:
        for img in _images(rec):
            if not os.path.isfile(os.path.join(data.root, img)):
                yield finding("VDT001", f"line {line}: {img} not found", file=data.path)


@rule(
    "VDT002",
    "An image file does not open",
    severity="error",
    fix="Re-export the image (PNG/JPEG) or drop the record; the processor fails on it mid-run.",
    compares="PIL.Image.open(...).verify() on each image",
)
def unreadable_images(data: VlmData) -> Iterator[Finding]:
    from PIL import Image

    for line, rec in data.records:
        for img in _images(rec):
            path = os.path.join(data.root, img)
            if not os.path.isfile(path):
                continue
            try:
                with Image.open(path) as im:
                    im.verify()
            except Exception as exc:  # PIL raises many types for a bad file
                yield finding("VDT002", f"line {line}: {img}: {exc}", file=data.path)


@rule(
    "VDT003",
    "Image placeholders in the text do not match the images",
    severity="error",
    fix="Put one image placeholder (a {'type': 'image'} content item, or the image token) per "
    "image in the record.",
    compares="placeholders in messages/text vs len(images)",
)
def placeholders(data: VlmData) -> Iterator[Finding]:
    for line, rec in data.records:
        n = _placeholders(rec, data.image_token)
        if n is not None and n != len(_images(rec)) and n > 0:
            yield finding(
                "VDT003",
                f"line {line}: {n} placeholders, {len(_images(rec))} images",
                file=data.path,
            )
        elif n == 0 and _images(rec):
            yield finding(
                "VDT003", f"line {line}: {len(_images(rec))} images, no placeholder", file=data.path
            )


@rule(
    "VDT004",
    "A record has no text or is not an object",
    severity="error",
    fix="Give each record `messages` (chat) or `text`.",
    compares="each record's messages/text/prompt keys",
)
def no_text(data: VlmData) -> Iterator[Finding]:
    for line, rec in data.records:
        if not isinstance(rec, dict) or _placeholders(rec, data.image_token) is None:
            yield finding("VDT004", f"line {line}: no messages or text", file=data.path)


@rule(
    "VDT005",
    "A line of the data file is not JSON",
    severity="error",
    fix="One JSON object per line (JSONL).",
    compares="json.loads on each line",
)
def bad_json(data: VlmData) -> Iterator[Finding]:
    for line, err in data.bad_lines:
        yield finding("VDT005", f"line {line}: {err}", file=data.path)


VLM_DATA_RULES = (bad_json, no_text, missing_images, unreadable_images, placeholders)


def check_vlm_data(path: str, image_token: str = "<image>") -> list[Finding]:
    """Judge a JSONL file of image+text records."""
    records: list[tuple[int, Any]] = []
    bad: list[tuple[int, str]] = []
    with open(path, encoding="utf-8") as fh:
        for n, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                records.append((n, json.loads(raw)))
            except json.JSONDecodeError as exc:
                bad.append((n, str(exc)))
    objects = [(n, r) for n, r in records if isinstance(r, dict)]
    data = VlmData(path, os.path.dirname(os.path.abspath(path)), objects, bad, image_token)
    out: list[Finding] = []
    for func in VLM_DATA_RULES:
        out.extend(run_rule(func, data))
    out.extend(
        finding("VDT004", f"line {n}: a record must be a JSON object", file=path)
        for n, r in records
        if not isinstance(r, dict)
    )
    return out
