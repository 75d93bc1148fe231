"""Fixtures shared by the check-family tests: private copies of the tiny models to break.

The plugin's session fixtures (tiny_llm, ...) are shared by the whole run and must stay intact;
a test that edits files takes one of these copies (a fresh directory per test).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def llama(tiny_llm: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny Llama."""
    return Path(shutil.copytree(tiny_llm, tmp_path / "llama"))


@pytest.fixture
def llama4(tiny_llm_4bit: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny 4-bit Llama."""
    return Path(shutil.copytree(tiny_llm_4bit, tmp_path / "llama4"))
