"""The corpus shipped in the package: its documents, their headers, the chat exchanges, and that it
travels as package data and is the tokenizers' training text (one corpus, one place)."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from genai_common import corpus

ROOT = Path(__file__).resolve().parents[1]


def test_every_document_has_a_source_header_and_a_body() -> None:
    assert set(corpus.texts()) == set(corpus.names())
    for name in corpus.names():
        header, body = corpus.source(name), corpus.text(name)
        assert "License" in header or "Public domain" in header, name
        assert not body.startswith("#") or name == "code", name
        assert body.strip() and not body.startswith("\n"), name
        assert header.splitlines()[0] not in body, name
    for name in corpus.PROSE:
        if name != "notes":  # our own text; the others expired long ago
            assert "Public domain" in corpus.source(name), name


def test_the_corpus_holds_prose_code_numbers_and_chat() -> None:
    texts = corpus.texts()
    assert "Four score and seven years ago" in texts["lincoln"]
    assert "It is a truth universally acknowledged" in texts["austen"]
    assert "def " in texts["code"] and "$ " in texts["code"]
    assert "7 x 8 = 56" in texts["numbers"]
    size = len(corpus.training_text().encode())
    assert 10_000 < size < 60_000  # tens of KB: a few thousand tokens


def test_chats_are_pairs_and_hold_the_prompts_the_package_sends() -> None:
    from genai_common.testing import quality

    chats = dict(corpus.chats())
    assert chats[quality.CAPITAL_PROMPT] == quality.CAPITAL_ANSWER
    assert "Hello! Who are you?" in chats  # the demo's default prompt
    assert "Hello! How are you today?" in chats  # the token-count tests'
    assert all(prompt and answer for prompt, answer in chats.items())


def test_a_malformed_exchange_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corpus, "text", lambda name: "user: only a question\n")
    with pytest.raises(ValueError, match="malformed exchange"):
        corpus.chats()


def test_digest_follows_the_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    before = corpus.digest()
    assert before == corpus.digest() and len(before) == 64
    raw = corpus._raw
    monkeypatch.setattr(corpus, "_raw", lambda name: raw(name) + ("x" if name == "code" else ""))
    assert corpus.digest() != before
    with pytest.raises(KeyError, match="no corpus document"):
        corpus.text("shakespeare")


def test_the_tokenizers_learn_from_the_corpus() -> None:
    from genai_common.testing.corpus import CORPUS

    assert corpus.training_text() == CORPUS


def test_the_wheel_ships_the_text_files(tmp_path: Path) -> None:
    """hatch's wheel target takes every file of the package folder: the .txt files go with it."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH: it builds the wheel")
    done = subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0 and "hatchling" in done.stderr and "network" in done.stderr.lower():
        pytest.skip("uv cannot fetch hatchling (offline, not cached)")
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for name in corpus.names():
        assert f"genai_common/corpus/{name}.txt" in names, name
