"""genai review: each check on a valid project and on one broken the way the check names.

Projects are built inline in tmp dirs and committed with git (as sp-repo-review's tests build
theirs): `make_project` writes a project that passes every check; each test breaks one thing.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest
from templates_helpers import run_genai

from genai_common.project import review
from tools.templating import GIT_ENV

FILES = {
    "pyproject.toml": """\
        [project]
        name = "demo-project"
        version = "0.1.0"
        requires-python = ">=3.11"
        dependencies = ["numpy>=1.26"]

        [tool.genai]
        kind = "llm"
        model = ""
        """,
    ".gitignore": "models/\n",
    "README.md": "# Demo\n\n## Setup\n\n`nox -s diagnostics`\n\n## Update a project\n\n`genai update`\n",
    "TODO.md": """\
        # TODO

        ## Objective

        Run a tiny model.

        ## Current Status

        - [x] Environment setup
        - [/] Initial research
        - [ ] Implementation

        ## Session Log
        """,
    "reference/LEARNINGS.md": "# Learnings\n\n## Tokenizer\n\n_Nothing yet._\n",
    "reference/DIAGNOSTICS.md": """\
        # Diagnostics

        - `python test/check_config.py`: validates config.json against the weights
        - `nox -s diagnostics`: doctor, load test, quick inference
        """,
    "reference/RESULTS.md": """\
        # Results

        ## Diagnostics runs

        | Date | Model | Load s |
        |---|---|---|
        """,
    "test/README.md": """\
        # Tests

        | Script | What it checks |
        |---|---|
        | `check_config.py` | config.json against the weights |
        """,
    "test/check_config.py": "def test_config():\n    assert True\n",
    "src/demo/__init__.py": "",
    "AGENTS.md": """\
        # Agent instructions

        ## Session continuity

        Run `genai session start` first and `genai session end` last; `genai review` checks the
        living documents, test/README.md, the environment, RESULTS.md and these files.

        ## Living documents

        Keep TODO.md and reference/ current.
        """,
    "CLAUDE.md": "@AGENTS.md\n",
}


def git(root: Path, *args: str, date: str | None = None) -> str:
    """templating.git's isolated environment (no developer configuration, a fixed identity), with
    an optional author and committer date."""
    env = {**os.environ, **GIT_ENV}
    if date:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
    out = subprocess.run(
        ["git", *args], cwd=root, env=env, capture_output=True, text=True, check=True
    )
    return out.stdout


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def commit(root: Path, message: str = "change", date: str | None = None) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "--allow-empty", "-m", message, date=date)


def make_project(
    root: Path, *, drop: tuple[str, ...] = (), date: str = "2026-01-01T10:00:00", **files: str
) -> Path:
    """A project that passes every check; `files` (a/b.md spelled a__b_md) replace or add files."""
    root.mkdir(parents=True, exist_ok=True)
    content = dict(FILES)
    for key, text in files.items():
        content[key.replace("__", "/").replace("_md", ".md").replace("_py", ".py")] = text
    for rel, text in content.items():
        if rel not in drop:
            write(root, rel, text)
    git(root, "init", "-q", "-b", "main")
    commit(root, "render", date=date)
    return root


def outcome(root: Path, code: str) -> review.Result:
    (result,) = review.review(root, select={code})
    return result


def assert_pass(root: Path, code: str) -> None:
    result = outcome(root, code)
    assert result.status == "pass", (result.problems, result.reason)


def assert_fail(root: Path, code: str, *needles: str) -> review.Result:
    result = outcome(root, code)
    assert result.status == "fail", result
    text = " ".join(result.problems)
    for needle in needles:
        assert needle in text, text
    assert result.fix and result.url
    return result


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "proj")


def test_valid_project_has_no_failures(project: Path) -> None:
    results = review.review(project)
    assert [r.code for r in results if r.status == "fail"] == []
    assert review.exit_code(results) == 0
    codes = {r.code for r in results}
    assert {"GD101", "GT101", "GE101", "GR101", "GA101", "GU101"} <= codes


# -- GD ------------------------------------------------------------------------------------


def test_gd101_missing_living_document(project: Path) -> None:
    assert_pass(project, "GD101")
    (project / "reference/LEARNINGS.md").unlink()
    assert_fail(project, "GD101", "reference/LEARNINGS.md is missing")


def test_gd102_todo_sections(project: Path) -> None:
    assert_pass(project, "GD102")
    write(project, "TODO.md", "# TODO\n\n## Objective\n\nx\n\n## Current Status\n\nnothing\n")
    assert_fail(project, "GD102", "no `## Session Log` section", "has no checklist item")


def test_gd102_accepts_the_sessions_heading(project: Path) -> None:
    text = (project / "TODO.md").read_text().replace("## Sessions", "## Session Log")
    text = text.replace("## Session Log", "## Sessions")
    write(project, "TODO.md", text)
    assert_pass(project, "GD102")


def test_gd103_results_table(project: Path) -> None:
    assert_pass(project, "GD103")
    write(project, "reference/RESULTS.md", "# Results\n\nIt was fast.\n")
    assert_fail(project, "GD103", "no Markdown table")


def test_gd104_diagnostics_tools(project: Path) -> None:
    assert_pass(project, "GD104")
    write(project, "reference/DIAGNOSTICS.md", "# Diagnostics\n\nWe will add tools.\n")
    assert_fail(project, "GD104", "names no command")


def test_gd105_empty_session_block(project: Path) -> None:
    assert_pass(project, "GD105")
    with (project / "TODO.md").open("a") as fh:
        fh.write("\n### Session End: 2026-01-02 10:00\n\nnothing written\n")
    result = assert_fail(project, "GD105", "is empty")
    assert result.severity == "warning"
    assert review.exit_code([result], "error") == 0
    assert review.exit_code([result], "warning") == 1


def test_gd203_a_session_end_without_a_date_is_an_error(project: Path) -> None:
    """Issue 16: `Session End: yesterday` passed (a warning) and then showed as the last
    session; without a date nothing can order the sessions or find what changed since."""
    assert_pass(project, "GD203")
    with (project / "TODO.md").open("a") as fh:
        fh.write(
            "\n### Session End: yesterday\n\n**Completed:**\n- [x] a\n\n**Next Steps:**\n- [ ] b\n"
        )
    result = assert_fail(project, "GD203", "`Session End: yesterday` has no date")
    assert result.severity == "error" and review.exit_code([result], "error") == 1
    proc = run_genai(project, "session", "start", str(project))
    assert "GD203" in proc.stdout and "has no date" in proc.stdout, proc.stdout


def test_gd204_the_newest_session_end_names_next_steps(project: Path) -> None:
    block = "\n### Session End: 2026-01-0{d} 10:00\n\n**Completed:**\n- [x] a\n"
    with (project / "TODO.md").open("a") as fh:
        fh.write(block.format(d=2) + "\n**Next Steps:**\n- [ ] b\n")
    assert_pass(project, "GD204")
    with (project / "TODO.md").open("a") as fh:  # the newest one lost its Next Steps
        fh.write(block.format(d=3))
    result = assert_fail(project, "GD204", "2026-01-03 10:00` has no Next Steps")
    assert result.severity == "warning"


def test_gd202_sections_the_tools_use_in_a_rendered_project(project: Path) -> None:
    """Issue 16: renaming a heading the tools write under or link to went unnoticed."""
    assert outcome(project, "GD202").status == "skip"  # hand-made: its headings are its own
    write(project, ".copier-answers.yml", "_src_path: /somewhere\n_commit: v0.1.0\n")
    write(project, "reference/LEARNINGS.md", "# L\n\n## Decisions\n\n## Failed approaches\n")
    own = {rel: textwrap.dedent(FILES[rel]) for rel in ("test/README.md", "README.md", "AGENTS.md")}
    write(project, "test/README.md", own["test/README.md"] + "\n## Adding a diagnostic\n")
    write(project, "README.md", own["README.md"] + "\n## Updating from the template\n")
    agents = own["AGENTS.md"] + "\n### What `genai review` enforces\n\nGD.\n"
    write(project, "AGENTS.md", agents)
    assert_pass(project, "GD202")
    write(project, "AGENTS.md", agents.replace("## Session continuity", "## Sessions"))
    results = project / "reference/RESULTS.md"
    results.write_text(results.read_text().replace("## Diagnostics runs", "## Runs"))
    result = assert_fail(project, "GD202", "AGENTS.md has no `Session continuity` section")
    assert any("RESULTS.md has no `Diagnostics runs`" in p for p in result.problems)
    assert result.severity == "warning"


def test_summary_and_exit_code_agree_on_a_failed_warning(project: Path) -> None:
    """Issue 16: "15 passed, 1 failed" with exit 0 read as a contradiction."""
    with (project / "TODO.md").open("a") as fh:
        fh.write("\n### Session End: 2026-01-02 10:00\n\n**Completed:**\n- [x] something\n")
    proc = run_genai(project, "review", str(project), "--select", "GD")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert "1 warning," in last and "0 failed" in last and "exit 0" in last, last
    assert "WARN GD204" in proc.stdout and "has no Next Steps" in proc.stdout
    proc = run_genai(project, "review", str(project), "--select", "GD", "--fail-on", "warning")
    assert proc.returncode == 1
    last = proc.stdout.strip().splitlines()[-1]
    assert "1 failed" in last and "warning" not in last.split("(")[0] and "exit 1" in last, last


# -- GT ------------------------------------------------------------------------------------


def test_gt101_undocumented_script(project: Path) -> None:
    assert_pass(project, "GT101")
    write(project, "test/check_shapes.py", "")
    write(project, "test/conftest.py", "")  # support files need no entry
    assert_fail(project, "GT101", "test/check_shapes.py is not documented")


def test_gt102_documented_script_missing(project: Path) -> None:
    assert_pass(project, "GT102")
    text = (project / "test/README.md").read_text() + "| `check_load.py` | loads the model |\n"
    write(project, "test/README.md", text)
    assert_fail(project, "GT102", "`check_load.py`")


def test_gt102_ignores_mentions_in_prose_and_code(project: Path) -> None:
    text = (project / "test/README.md").read_text()
    text += "\nRun them with `nox -s tests` (see noxfile.py).\n\n```\npython test/old.py\n```\n"
    write(project, "test/README.md", text)
    assert_pass(project, "GT102")


# -- GE ------------------------------------------------------------------------------------


def test_ge101_declared_environment(project: Path) -> None:
    assert_pass(project, "GE101")
    text = (project / "pyproject.toml").read_text().replace('requires-python = ">=3.11"\n', "")
    write(project, "pyproject.toml", text)
    assert_fail(project, "GE101", "no `requires-python`")


def test_ge101_conda_needs_python_pin(project: Path) -> None:
    write(project, "environment.yml", "name: demo\ndependencies:\n  - python=3.11\n  - pip\n")
    assert_pass(project, "GE101")
    write(project, "environment.yml", "name: demo\ndependencies:\n  - pip\n")
    assert_fail(project, "GE101", "environment.yml pins no python")


def _as_installed_project(project: Path, deps: str) -> None:
    """Name the project after a distribution installed here, so this interpreter is its env."""
    text = textwrap.dedent(FILES["pyproject.toml"])
    text = text.replace('name = "demo-project"', 'name = "genai-common"')
    text = text.replace('dependencies = ["numpy>=1.26"]', f"dependencies = [{deps}]")
    write(project, "pyproject.toml", text)


def test_ge102_skips_outside_the_project_environment(project: Path) -> None:
    result = outcome(project, "GE102")
    assert result.status == "skip" and "project's environment" in result.reason


def test_ge102_installed_versus_declared(project: Path) -> None:
    _as_installed_project(project, '"packaging>=1"')
    assert_pass(project, "GE102")
    _as_installed_project(project, '"packaging>=1000", "surely-not-installed-pkg>=1"')
    assert_fail(
        project,
        "GE102",
        "does not satisfy >=1000",
        "surely-not-installed-pkg is declared but not installed",
    )


def test_ge102_lock_pins_and_python(project: Path) -> None:
    _as_installed_project(project, '"packaging>=1"')
    write(project, "uv.lock", 'version = 1\n\n[[package]]\nname = "packaging"\nversion = "0.0.1"\n')
    write(project, ".python-version", "3.9\n")
    assert_fail(project, "GE102", "uv.lock pins 0.0.1", "differs from .python-version (3.9)")


# -- GR ------------------------------------------------------------------------------------

ROW = "| {date} | tiny-llm | 0.10 |\n"


def _record(project: Path, date: str) -> None:
    with (project / "reference/RESULTS.md").open("a") as fh:
        fh.write(ROW.format(date=date))


def test_gr101_fresh_project_without_results_is_skipped(project: Path) -> None:
    result = outcome(project, "GR101")
    assert result.status == "skip" and "no results yet" in result.reason


def test_gr101_code_changed_and_no_results(project: Path) -> None:
    write(project, "src/demo/model.py", "X = 1\n")
    commit(project, "code", date="2026-01-05T10:00:00")
    assert_fail(project, "GR101", "no results recorded", "src/demo/model.py")


def test_gr101_results_newer_than_code(project: Path) -> None:
    write(project, "src/demo/model.py", "X = 1\n")
    commit(project, "code", date="2026-01-05T10:00:00")
    _record(project, "2026-01-06 09:00")
    commit(project, "results", date="2026-01-06T09:01:00")
    assert_pass(project, "GR101")


def test_gr101_code_changed_after_the_last_result(project: Path) -> None:
    _record(project, "2026-01-02 09:00")
    commit(project, "results", date="2026-01-02T09:01:00")
    write(project, "src/demo/model.py", "X = 2\n")
    commit(project, "code", date="2026-01-05T10:00:00")
    assert_fail(project, "GR101", "newest result is from 2026-01-02 09:00", "src/demo/model.py")


def test_gr101_uncommitted_code_counts(project: Path) -> None:
    _record(project, "2026-01-02 09:00")
    commit(project, "results", date="2026-01-02T09:01:00")
    write(project, "src/demo/__init__.py", "# edited now\n")  # mtime: now, after the result
    assert_fail(project, "GR101", "src/demo/__init__.py")


def test_gr101_model_config_outside_git(project: Path) -> None:
    _record(project, "2026-01-02 09:00")
    commit(project, "results", date="2026-01-02T09:01:00")
    assert_pass(project, "GR101")
    write(project, "models/tiny-llm/config.json", '{"vocab_size": 8}\n')  # ignored by git
    assert_fail(project, "GR101", "models/tiny-llm/config.json")


# -- GA ------------------------------------------------------------------------------------


def test_ga101_agents_protocol(project: Path) -> None:
    assert_pass(project, "GA101")
    write(project, "AGENTS.md", "# Agent instructions\n\nRead TODO.md.\n")
    assert_fail(project, "GA101", "`genai session start`", "`genai review`")


def test_ga102_claude_must_import_agents(project: Path) -> None:
    assert_pass(project, "GA102")
    write(project, "CLAUDE.md", "# Claude\n\nBe nice.\n")
    assert_fail(project, "GA102", "CLAUDE.md does not import AGENTS.md")


def _copy_with_front_matter(project: Path, rel: str, front: str) -> None:
    write(project, rel, f"---\n{front}\n---\n\n" + (project / "AGENTS.md").read_text())


def test_ga102_copies_must_match_agents(project: Path) -> None:
    _copy_with_front_matter(project, ".windsurf/rules/methodology.md", "trigger: always_on")
    _copy_with_front_matter(project, ".cursor/rules/methodology.mdc", "alwaysApply: true")
    write(project, ".github/copilot-instructions.md", "Follow AGENTS.md in this repository.\n")
    assert_pass(project, "GA102")
    agents = (project / "AGENTS.md").read_text()
    write(project, "AGENTS.md", agents.replace("Keep TODO.md", "Always keep TODO.md"))
    write(project, "AGENTS.md", (project / "AGENTS.md").read_text() + "\n## Environment\n\nuv\n")
    assert_fail(
        project,
        "GA102",
        "section `Living documents` differs from AGENTS.md",
        "lacks AGENTS.md's section `Environment`",
    )


def test_ga103_rules_front_matter(project: Path) -> None:
    assert outcome(project, "GA103").status == "skip"
    _copy_with_front_matter(project, ".windsurf/rules/methodology.md", "trigger: always_on")
    _copy_with_front_matter(project, ".cursor/rules/methodology.mdc", "alwaysApply: true")
    assert_pass(project, "GA103")
    _copy_with_front_matter(project, ".windsurf/rules/methodology.md", "trigger: manual")
    assert_fail(project, "GA103", "trigger: always_on")


# -- GU ------------------------------------------------------------------------------------


def test_gu101_conflict_markers(project: Path) -> None:
    assert_pass(project, "GU101")
    text = (project / "README.md").read_text()
    marked = "<<<<<<< before updating\nmine\n=======\ntheirs\n>>>>>>> after updating\n"
    write(project, "README.md", text + marked)
    assert_fail(project, "GU101", "README.md:")


def test_gu101_setext_underline_is_not_a_marker(project: Path) -> None:
    write(project, "README.md", "Demo\n=======\n\ntext\n")
    assert_pass(project, "GU101")


def test_gu102_rej_files(project: Path) -> None:
    assert_pass(project, "GU102")
    write(project, "TODO.md.rej", "@@ -1 +1 @@\n")
    assert_fail(project, "GU102", "TODO.md.rej")


def test_gu103_unmerged_paths(project: Path) -> None:
    assert_pass(project, "GU103")
    git(project, "checkout", "-q", "-b", "other")
    write(project, "README.md", "# Other\n")
    commit(project, "other")
    git(project, "checkout", "-q", "main")
    write(project, "README.md", "# Main\n")
    commit(project, "main")
    subprocess.run(["git", "merge", "-q", "other"], cwd=project, capture_output=True, check=False)
    assert_fail(project, "GU103", "README.md")


# -- command line, JSON, repo-review -------------------------------------------------------


def test_cli_json_and_exit_codes(project: Path, tmp_path: Path) -> None:
    proc = run_genai(project, "review", str(project), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert data["schema"] == 1 and data["summary"]["fail"] == 0
    (project / "test/README.md").unlink()
    proc = run_genai(project, "review", str(project))
    assert proc.returncode == 1
    assert (
        "FAIL GD101" in proc.stdout and "fix:" in proc.stdout and "see: AGENTS.md#" in proc.stdout
    )
    assert run_genai(project, "review", str(project), "--ignore", "GD,GT").returncode == 0
    assert run_genai(project, "review", str(tmp_path / "nowhere")).returncode == 2


def test_terminal_table_shows_bracketed_texts_verbatim(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """GD102's fix names `- [/]` items: rich must print it, not parse it as a closing tag."""
    write(project, "TODO.md", "# TODO\n")
    review._print_rich(review.review(project, select={"GD102"}), verbose=False)
    out = capsys.readouterr().out
    assert "[/]`" in out and "1 failed" in out


def test_cli_list_names_every_check(tmp_path: Path) -> None:
    proc = run_genai(tmp_path, "review", "--list")
    assert proc.returncode == 0
    from genai_common.project.checks import CHECKS

    for code in CHECKS:
        assert code in proc.stdout


def test_repo_review_runs_the_same_checks(project: Path) -> None:
    pytest.importorskip("repo_review", reason="repo-review is not installed (dev extra)")
    from importlib.metadata import entry_points

    if not any(
        ep.value.startswith("genai_common") for ep in entry_points(group="repo_review.checks")
    ):
        pytest.skip("genai-common's repo-review entry points are not installed (reinstall it)")
    from repo_review.processor import process

    (project / "test/check_shapes.py").write_text("")
    _, results = process(project)
    ours = {
        r.name: r
        for r in results
        if r.family.startswith("G") and r.name[:2] in {"GD", "GT", "GE", "GR", "GA", "GU"}
    }
    assert ours["GT101"].result is False and "check_shapes.py" in ours["GT101"].err_msg
    assert "**Fix:**" in ours["GT101"].err_msg
    assert ours["GD101"].result is True
    assert ours["GE102"].result is None  # skipped: not the project's environment


def test_repo_review_ignores_projects_without_tool_genai(tmp_path: Path) -> None:
    pytest.importorskip("repo_review", reason="repo-review is not installed (dev extra)")
    from genai_common.project import Project
    from genai_common.project.repo_review_plugin import repo_review_checks

    other = tmp_path / "other"
    write(other, "pyproject.toml", '[project]\nname = "x"\n')
    assert repo_review_checks(Project(other)) == {}
    assert repo_review_checks(None, list_all=True)


def test_pyproject_ignore_with_a_reason_shows_as_skipped(project: Path) -> None:
    (project / "test/README.md").unlink()
    text = (project / "pyproject.toml").read_text()
    text += '\n[tool.repo-review]\nignore = {GT = "tests documented elsewhere", GD101 = "no"}\n'
    write(project, "pyproject.toml", text)
    commit(project, "configure the review", date="2026-01-01T10:00:30")
    results = {r.code: r for r in review.review(project)}
    assert results["GT101"].status == "skip" and "documented elsewhere" in results["GT101"].reason
    assert results["GD101"].status == "skip"
    assert [r.code for r in results.values() if r.status == "fail"] == []


def test_rich_table_of_failures(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "test/README.md").unlink()
    review._print_rich(review.review(project), verbose=False)
    out = capsys.readouterr().out
    assert "GD101" in out and "fix:" in out and "GU101" not in out  # passing checks hidden
