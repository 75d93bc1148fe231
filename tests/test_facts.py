"""Documents that follow the model (issue 16): the facts block `genai session start` and
`genai diagnostics --record` rewrite, GD200 (a document names another model) and GD201 (the
block no longer says what the doctor says)."""

from __future__ import annotations

import shutil
from pathlib import Path

from genai_common.doctor import diagnose
from genai_common.findings import run_rule
from genai_common.project import checks, facts, session
from genai_common.project.core import Project

BEFORE = "# Demo\r\n\r\nMy own words, with CRLF.\r\n\r\n"
AFTER = "\n## Overview\n\nThe user's lines after the block.\n"
OLD_BLOCK = f"{facts.START}\n- Model: `models/tiny-llm` (llm)\n{facts.END}\n"


def _project(root: Path, model: str, readme: str) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "demo"\n\n[tool.genai]\nkind = "llm"\nmodel = "{model}"\n'
    )
    (root / "README.md").write_bytes(readme.encode())
    return Project.open(root)


def _problems(project: Project, code: str) -> list[str]:
    return [f.message for f in run_rule(checks.FUNCTIONS[code], Project.open(project.root))]


def test_session_start_rewrites_the_block_and_nothing_else(tmp_path: Path, tiny_llm: Path) -> None:
    shutil.copytree(tiny_llm, tmp_path / "p/models/mine")
    project = _project(tmp_path / "p", "models/mine", BEFORE + OLD_BLOCK + AFTER)
    (tmp_path / "p/reference").mkdir()
    (tmp_path / "p/reference/LEARNINGS.md").write_text("# L\n\nNo block here.\n")

    assert _problems(project, "GD201") == [
        "README.md: the facts block differs from what the doctor says of `models/mine`"
    ]
    report = session.start(project.root, doctor=False)
    assert report["facts_refreshed"] == ["README.md"]
    assert ("Facts block rewritten", ["README.md"]) in session.start_lines(report)
    text = (tmp_path / "p/README.md").read_bytes().decode()
    assert text.startswith(BEFORE) and text.endswith(AFTER)  # byte for byte, CRLF kept
    assert (tmp_path / "p/reference/LEARNINGS.md").read_text() == "# L\n\nNo block here.\n"
    block = facts.block_text(text)
    assert block is not None
    # the doctor's own figures, not ones written here
    f = diagnose(str(tmp_path / "p/models/mine"), kind="llm").facts
    body = "\n".join(block)
    assert "- Model: `models/mine` (llm, model_type `llama`" in body
    assert f"vocab {f['vocab_size']}," in body and f"layers {f['num_hidden_layers']}," in body
    assert f"attention heads {f['num_attention_heads']}," in body
    assert f"- Context: {f['max_position_embeddings']:,} tokens" in body
    assert "- Quantization: none" in body
    assert _problems(project, "GD201") == []
    # a second start changes nothing
    assert session.start(project.root, doctor=False)["facts_refreshed"] == []


def test_a_changed_model_is_noticed_until_the_documents_follow(
    tmp_path: Path, tiny_llm: Path, tiny_llm_4bit: Path
) -> None:
    """The model changed in [tool.genai]: a README line still naming the embedded tiny model is
    GD200, the block GD201; `session start` fixes the block, the user's line stays flagged."""
    root = tmp_path / "p"
    shutil.copytree(tiny_llm, root / "models/tiny-llm")
    shutil.copytree(tiny_llm_4bit, root / "models/q4")
    readme = "# Demo\n\nAn LLM project. Model: the embedded tiny llm model.\n\n" + OLD_BLOCK
    project = _project(root, "", readme)
    session.start(root, doctor=False)
    assert _problems(project, "GD200") == [] and _problems(project, "GD201") == []

    text = (root / "pyproject.toml").read_text()
    (root / "pyproject.toml").write_text(text.replace('model = ""', 'model = "models/q4"'))
    project = Project.open(root)
    assert _problems(project, "GD200") == [
        "README.md line 3 names the embedded tiny model; the project's model is `models/q4`"
    ]
    assert _problems(project, "GD201") == [
        "README.md: the facts block differs from what the doctor says of `models/q4`"
    ]
    report = session.start(root, doctor=False)
    assert _problems(project, "GD201") == []
    assert "- Quantization: 4-bit, group size 64" in (root / "README.md").read_text()
    assert any(a.startswith("GD200 README.md line 3") for a in report["attention"])
    assert len(_problems(project, "GD200")) == 1  # the user's own line is theirs to fix
    # naming the model (however the path is written) passes
    text = (root / "README.md").read_text()
    (root / "README.md").write_text(text.replace("the embedded tiny llm model", "`./models/q4/`"))
    assert _problems(project, "GD200") == []


def test_a_model_that_is_not_there_is_judged_by_its_name_only(tmp_path: Path) -> None:
    project = _project(tmp_path / "p", "org/not-in-the-cache", "# D\n\n" + OLD_BLOCK)
    assert _problems(project, "GD201") == [
        "README.md: the facts block is about another model (- Model: `models/tiny-llm` (llm))"
    ]
    session.start(project.root, doctor=False)
    block = facts.block_text((tmp_path / "p/README.md").read_text())
    assert block == facts.lines(project, None)
    assert "- Model: `org/not-in-the-cache` (llm)" in block
    assert _problems(project, "GD201") == []


def test_broken_markers_are_left_alone(tmp_path: Path) -> None:
    twice = "# D\n\n" + OLD_BLOCK + OLD_BLOCK
    reversed_ = f"# D\n\n{facts.END}\n- x\n{facts.START}\n"
    for i, text in enumerate((twice, reversed_, "# D\n\nno markers\n")):
        project = _project(tmp_path / f"p{i}", "", text)
        assert facts.refresh(project) == []
        assert (tmp_path / f"p{i}/README.md").read_text() == text
