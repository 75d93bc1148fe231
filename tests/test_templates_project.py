"""What generated projects call in genai-common: genai_common.project (their diagnostics and the
RESULTS.md row) and genai_common.project.update.find_conflicts (the loud half of `genai update`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from templates_helpers import GIT_ENV, git

from genai_common.project import (
    RESULTS_COLUMNS,
    Project,
    ProjectError,
    check_model,
    find_project,
    inference_test,
    load_test,
    model_path,
    record_results,
    results_row,
    run_steps,
)
from genai_common.project.update import find_conflicts


def _project(root: Path, kind: str, model: str = "") -> Project:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "p"\n\n[tool.genai]\nkind = "{kind}"\nmodel = "{model}"\n'
    )
    return find_project(root)


def test_find_project_reads_tool_genai_from_below(tmp_path: Path) -> None:
    project = _project(tmp_path / "p", "vlm", "org/name")
    (tmp_path / "p/test").mkdir()
    found = find_project(tmp_path / "p/test/check_config.py")
    assert found == project and found.kind == "vlm" and found.model == "org/name"
    assert model_path(found, build=False) == "org/name"  # a hub id is passed on as written
    (tmp_path / "q").mkdir()
    (tmp_path / "q/pyproject.toml").write_text('[tool.genai]\nkind = "gpt"\n')
    with pytest.raises(ProjectError, match="kind must be one of"):
        find_project(tmp_path / "q")


def test_empty_model_builds_the_tiny_model_once(tmp_path: Path) -> None:
    pytest.importorskip("mlx.core", reason="mlx builds the tiny ml model")
    project = _project(tmp_path / "p", "ml")
    path = Path(model_path(project))
    assert path == tmp_path / "p/models/tiny-ml" and (path / "config.json").is_file()
    stamp = (path / "config.json").stat().st_mtime_ns
    assert model_path(project) == str(path)
    assert (path / "config.json").stat().st_mtime_ns == stamp  # not rebuilt


def test_steps_pass_on_a_good_model_and_fail_on_a_broken_one(
    tmp_path: Path, tiny_model_factory
) -> None:
    pytest.importorskip("mlx_lm", reason="mlx-lm loads the tiny llm")
    model = tiny_model_factory("llm")
    project = _project(tmp_path / "p", "llm", str(model))
    steps = run_steps(project)
    assert [s.name for s in steps] == ["config", "model", "load", "inference"]
    assert all(s.ok for s in steps), [s.summary for s in steps]
    assert steps[3].value["output"].startswith("generated ")

    config = json.loads((model / "config.json").read_text())
    config["hidden_size"] = config["hidden_size"] * 2  # the weights no longer fit the config
    (model / "config.json").write_text(json.dumps(config))
    shapes = check_model(project)  # the safetensors headers disagree with the config
    assert not shapes.ok and any(line.startswith("ERROR") for line in shapes.details)
    loaded = load_test(project, timeout=120)
    assert not loaded.ok and loaded.summary.startswith("failed")
    assert not inference_test(project, timeout=120).ok


def test_record_results_only_inserts(tmp_path: Path) -> None:
    project = _project(tmp_path / "p", "llm")
    results = tmp_path / "p/reference/RESULTS.md"
    results.parent.mkdir()
    header = "| " + " | ".join(RESULTS_COLUMNS) + " |"
    original = (
        "# Results\n\nUSER intro\n\n## Diagnostics runs\n\n"
        f"{header}\n|---|---|\n| old | row |\n\nUSER text after the table\n\n## USER section\n"
    )
    results.write_text(original)
    record_results(project.root, ["new", "row|with pipe"])
    lines = results.read_text().splitlines()
    assert lines[lines.index("| old | row |") + 1] == "| new | row\\|with pipe |"
    kept = [line for line in lines if line != "| new | row\\|with pipe |"]
    assert kept == original.splitlines()

    results.write_text("# Results\n\nUSER only\n")  # no heading yet: a table is appended
    record_results(project.root, results_row(project, run_steps(project, ())))
    text = results.read_text()
    assert text.startswith("# Results\n\nUSER only\n") and "## Diagnostics runs" in text
    assert text.rstrip().splitlines()[-1].startswith("| ")


def test_find_conflicts_sees_markers_rej_files_and_unmerged_paths(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "notes.md").write_text("one\n")
    (repo / ".gitignore").write_text("*.rej\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    assert find_conflicts(repo) == []

    (repo / "TODO.md").write_text(
        "a\n<<<<<<< before updating\nb\n=======\nc\n>>>>>>> after updating\n"
    )
    (repo / "sub").mkdir()
    (repo / "sub/pyproject.toml.rej").write_text("@@ -1 +1 @@\n")  # ignored by .gitignore
    found = {(c.path, c.kind, c.line) for c in find_conflicts(repo)}
    assert found == {
        ("TODO.md", "marker", 2),
        ("TODO.md", "marker", 6),
        ("sub/pyproject.toml.rej", "rej", None),
    }

    (repo / "TODO.md").unlink()
    shutil.rmtree(repo / "sub")
    git(repo, "checkout", "-q", "-b", "other")
    (repo / "notes.md").write_text("two\n")
    git(repo, "commit", "-q", "-am", "other")
    git(repo, "checkout", "-q", "main")
    (repo / "notes.md").write_text("three\n")
    git(repo, "commit", "-q", "-am", "main")
    merge = subprocess.run(
        ["git", "merge", "other"], cwd=repo, capture_output=True, env={**os.environ, **GIT_ENV}
    )
    assert merge.returncode != 0
    kinds = {(c.path, c.kind) for c in find_conflicts(repo)}
    assert ("notes.md", "unmerged") in kinds and ("notes.md", "marker") in kinds


def test_diagnostics_accepts_fetch_metadata_and_says_how_to_get_a_model(tmp_path: Path) -> None:
    """Issue 16: the doctor's hint names --fetch-metadata, which `genai diagnostics` refused."""
    import sys

    root = tmp_path / "p"
    _project(root, "llm", "nobody-here/not-a-model")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")}
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "genai_common", "diagnostics"),
            "--fetch-metadata",
            "--steps=config",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # ran, and the step failed
    assert "unrecognized arguments" not in proc.stderr
    assert "could not run" in proc.stdout and "hf download" in proc.stdout, proc.stdout
