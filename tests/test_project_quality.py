"""`genai quality` (`nox -s verify` in a generated project, issue 10 part 8): the reply check
passes on the trained tiny model, fails on a scrambled copy, and each run adds a RESULTS.md row."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from genai_common.project.core import find_project
from genai_common.project.quality import RESULTS_HEADING, add_arguments, reference_for, run


def _project(tmp_path: Path, model: Path, source: str = "") -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    shutil.copytree(model, root / "model")
    (root / "pyproject.toml").write_text(
        '[project]\nname = "proj"\nversion = "0"\n\n[tool.genai]\nkind = "llm"\n'
        f'model = "./model"\nsource = "{source}"\n'
    )
    return root


def _run(root: Path, *extra: str) -> int:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return run(parser.parse_args(["--project", str(root), "--record", *extra]))


def test_quality_passes_and_records(tiny_llm: Path, tmp_path: Path, capsys) -> None:
    root = _project(tmp_path, tiny_llm)
    assert _run(root) == 0, capsys.readouterr().out
    text = (root / "reference" / "RESULTS.md").read_text()
    assert RESULTS_HEADING in text
    assert _run(root) == 0
    rows = [
        line
        for line in (root / "reference" / "RESULTS.md").read_text().splitlines()
        if line.startswith("| 20")
    ]
    assert len(rows) == 2 and "| ok |" in rows[0]


def test_quality_fails_on_scrambled_weights(tiny_llm: Path, tmp_path: Path, capsys) -> None:
    from test_inference_quality import _scrambled

    bad = _scrambled(tiny_llm, tmp_path)
    root = _project(tmp_path, bad)
    assert _run(root) == 1
    out = capsys.readouterr().out
    assert "[FAIL] reply" in out and "garbage reply" in out
    assert "FAIL: garbage reply" in (root / "reference" / "RESULTS.md").read_text()


def test_reference_default_is_recorded_source(tiny_llm: Path, tmp_path: Path) -> None:
    root = _project(tmp_path, tiny_llm, source="./model")
    project = find_project(root)
    assert reference_for(project) == str(root / "model")
    assert reference_for(project, "org/other") == "org/other"
    root2 = tmp_path / "p2"
    root2.mkdir()
    (root2 / "pyproject.toml").write_text('[tool.genai]\nkind = "ml"\nmodel = ""\n')
    assert reference_for(find_project(root2)) is None


def test_vlm_project_verifies_against_its_source(tiny_vlm: Path, tmp_path: Path, capsys) -> None:
    """kind vlm: `genai quality` compares with [tool.genai] source through verify.kinds; a
    reference whose vision tower differs fails with QLT310 and names the vision features."""
    import mlx.core as mx

    other = tmp_path / "other"
    shutil.copytree(tiny_vlm, other)
    root = _project(tmp_path, tiny_vlm, source=str(tiny_vlm))
    text = (root / "pyproject.toml").read_text().replace('kind = "llm"', 'kind = "vlm"')
    (root / "pyproject.toml").write_text(text)
    assert _run(root) == 0, capsys.readouterr().out
    assert "[PASS] verify" in capsys.readouterr().out
    for f in sorted(other.glob("*.safetensors")):
        arrays, meta = mx.load(str(f), return_metadata=True)
        for k in arrays:
            if "patch_embed" in k:
                arrays[k] = arrays[k] * -3
        mx.save_safetensors(str(f), arrays, metadata=meta)
    assert _run(root, "--against", str(other)) == 1
    out = capsys.readouterr().out
    assert "[FAIL] verify" in out and "vision features" in out, out
