"""A freshly rendered project of every kind passes `genai review`, and its links resolve.

Needs only copier (dev extra): the render goes through the template tests' snapshot helpers, so
the committed template and the work in progress render the same way.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("copier", reason="copier is not installed (dev extra)")

from templates_helpers import (
    AGENTS,
    KINDS,
    commit_all,
    git,
    hermetic_env,
    render,
    snapshot_template,
)

from genai_common.formats import markdown
from genai_common.project import review, session, todo
from genai_common.project.checks import CHECKS


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # templating.git runs git with GIT_ENV: no developer configuration, a fixed identity
    return snapshot_template(tmp_path_factory.mktemp("review-template") / "template", tag="v0.1.0")


@pytest.fixture
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in hermetic_env(tmp_path).items():
        monkeypatch.setenv(key, value)


def _project(template: Path, dst: Path, **answers: object) -> Path:
    render(template, dst, **answers)
    git(dst, "init", "-q", "-b", "main")
    commit_all(dst, "render")
    return dst


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("env_manager", ["uv", "conda"])
def test_fresh_project_passes_review(
    template: Path, tmp_path: Path, hermetic: None, kind: str, env_manager: str
) -> None:
    project = _project(
        template,
        tmp_path / "p",
        project_kind=kind,
        env_manager=env_manager,
        agent_files=list(AGENTS),
    )
    results = review.review(project)
    failed = {r.code: r.problems for r in results if r.status == "fail"}
    assert failed == {}
    assert {r.code for r in results if r.status == "pass"} >= {"GD101", "GT101", "GA102", "GA103"}


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_check_links_to_a_real_section(
    template: Path, tmp_path: Path, hermetic: None
) -> None:
    project = _project(template, tmp_path / "p", agent_files=list(AGENTS))
    for chk in CHECKS.values():
        rel, _, anchor = chk.url.partition("#")
        text = (project / rel).read_text()
        anchors = {_slug(s.title) for s in markdown.sections(text)}
        assert anchor in anchors, f"{chk.code}: {chk.url} not in {sorted(anchors)}"


def test_a_session_in_a_rendered_project(template: Path, tmp_path: Path, hermetic: None) -> None:
    project = _project(template, tmp_path / "p", project_kind="llm")
    original = (project / "TODO.md").read_bytes()
    report = session.start(project, doctor=False)
    assert "Environment set up (`nox -s diagnostics` runs)" in report["todo"]["open"]
    assert "python test/check_config.py" in report["tools"]
    assert report["learnings"] == []  # the template's empty fields are not learnings
    session.end(project, completed=["read the docs"], next_steps=["run nox -s diagnostics"])
    new = (project / "TODO.md").read_bytes()
    assert new.startswith(original)
    block = todo.blocks(new.decode())[-1]
    assert block.level == 3 and block.items["next"] == ["run nox -s diagnostics"]
    # The block sits in the Session Log, the last section, and the review still passes.
    log = markdown.find_section(new.decode(), "Session Log")
    assert log is not None and log.line < block.start
    assert [r.code for r in review.review(project) if r.status == "fail"] == []


def test_breaking_the_methodology_is_named(template: Path, tmp_path: Path, hermetic: None) -> None:
    project = _project(template, tmp_path / "p", project_kind="vlm", agent_files=list(AGENTS))
    (project / "test" / "check_projector.py").write_text("def test_projector():\n    pass\n")
    agents = project / ".cursor/rules/methodology.mdc"
    agents.write_text(agents.read_text().replace("genai session start", "nothing"))
    (project / "reference" / "DIAGNOSTICS.md").write_text("# Diagnostics\n\nSoon.\n")
    (project / "README.md").write_text(
        (project / "README.md").read_text()
        + "<<<<<<< before updating\nx\n=======\ny\n>>>>>>> after\n"
    )
    failed = {r.code for r in review.review(project) if r.status == "fail"}
    assert failed == {"GT101", "GA102", "GD104", "GU101"}


def test_generated_pre_commit_runs_the_review(
    template: Path, tmp_path: Path, hermetic: None
) -> None:
    import yaml

    project = _project(template, tmp_path / "p")
    config = yaml.safe_load((project / ".pre-commit-config.yaml").read_text())
    hooks = {h["id"]: h for repo in config["repos"] for h in repo["hooks"]}
    hook = hooks["genai-review"]
    # the project's own nox session: it installs the vendored genai-common (a pre-commit
    # environment cannot install a path relative to the project; issue 16)
    assert hook["entry"] == "nox -s review --" and hook["pass_filenames"] is False
    assert hook["language"] == "system" and "additional_dependencies" not in hook
    assert config["exclude"] == "^vendor/"


def test_this_repository_offers_the_hook() -> None:
    import yaml

    root = Path(__file__).resolve().parents[1]
    (hook,) = yaml.safe_load((root / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "genai-review" and hook["entry"] == "genai review"
    assert hook["language"] == "python" and hook["pass_filenames"] is False
