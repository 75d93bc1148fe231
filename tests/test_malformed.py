"""Every malformed input in the corpus gives its code, never a traceback; errors exit 1."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from malformed_corpus import CASES, base_llm, sharded_llm

from genai_common.checks import get
from genai_common.cli import main
from genai_common.doctor import diagnose


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len({name for name, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("name", "build", "code"), CASES, ids=[c[0] for c in CASES])
def test_malformed_input_gives_its_code(tmp_path: Path, name: str, build, code: str) -> None:
    target = build(tmp_path / name)
    report = diagnose(target)
    codes = report.codes()
    assert code in codes, f"{name}: expected {code}, got {codes}"
    assert "DOC001" not in codes, [f.message for f in report.findings if f.code == "DOC001"]
    out = io.StringIO()
    with redirect_stdout(out):
        rc = main(["doctor", str(target), "--json"])
    data = json.loads(out.getvalue())
    assert code in [f["code"] for f in data["findings"]]
    expected_rc = 1 if get(code).severity == "error" or report.count("error") else 0
    assert rc == expected_rc


@pytest.mark.parametrize("layout", ["single", "sharded"])
def test_valid_bases_have_no_file_or_format_findings(tmp_path: Path, layout: str) -> None:
    """The corpus breaks one thing at a time: its bases must be clean for these families."""
    if layout == "single":
        base_llm(tmp_path)
    else:
        sharded_llm(tmp_path)
    report = diagnose(tmp_path)
    mine = [f for f in report.findings if f.code.startswith(("FILE", "HDR", "JSON", "IDX", "DOC"))]
    assert mine == []
    assert report.count("error") == 0, [(f.code, f.message) for f in report.findings]
