"""The load test's findings read as the loader's message, once: "ValueError: Expected shape ..."."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genai_common.doctor import diagnose
from genai_common.doctor.rules.load import runtime_findings
from genai_common.model import ModelDir


def test_load_error_message_names_the_type_once(tiny_model_factory) -> None:
    pytest.importorskip("mlx_lm", reason="the load test runs mlx-lm")
    path: Path = tiny_model_factory("llm")
    config = json.loads((path / "config.json").read_text())
    config["vocab_size"] += 64
    (path / "config.json").write_text(json.dumps(config))
    (found,) = runtime_findings(diagnose(path), ModelDir.open(path), timeout=120)
    assert found.code == "LOAD012", found
    assert found.message.startswith("ValueError: Expected shape"), found.message
    assert found.message.count("ValueError") == 1, found.message
    assert "; explained by CFG010" in found.message, found.message
