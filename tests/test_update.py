"""`copier update` through `genai update` loses nothing.

Each test builds its own template history: this template committed and tagged v0.1.0 in a temp
repository, then a template change committed and tagged v0.2.0. A project is rendered at v0.1.0,
committed, edited by "the user" in every living document and in code, committed again, and
updated to v0.2.0. Then: every user line is still there, the template's changes arrived, the
v0.2.0 migration ran, and where both sides changed the same lines the conflict is reported with
exit 1 (copier itself exits 0) while both sides' lines stay in the file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("copier", reason="copier (dev extra) is needed to render and update")

from templates_helpers import (
    LIVING_DOCS,
    commit_all,
    git,
    hermetic_env,
    render,
    run_genai,
    snapshot_template,
    tree,
)

yaml = pytest.importorskip("yaml", reason="PyYAML (a copier dependency) reads the answers file")

# The template change between v0.1.0 and v0.2.0: (file in the template, old text, new text).
TEMPLATE_CHANGES = [
    (
        "templates/partials/methodology.md.jinja",
        "- On Linux MLX needs a backend extra",
        "- V2-NOTE: evaluate before you time, clear the cache between runs.\n"
        "- On Linux MLX needs a backend extra",
    ),
    (
        "templates/project/TODO.md.jinja",
        "- [ ] Implementation\n",
        "- [ ] Implementation, one component at a time (V2-STATUS)\n",
    ),
    (
        "templates/project/reference/DIAGNOSTICS.md.jinja",
        "| Environment: frameworks, versions, backend, memory | `genai env` |\n",
        "| Environment: frameworks, versions, backend, memory | `genai env` |\n"
        "| V2-TOOL: benchmarks of the model | `nox -s bench` |\n",
    ),
    (
        "templates/project/test/README.md.jinja",
        "Every `check_*.py` here is both a pytest module and a script:\n",
        "Every `check_*.py` here is both a pytest module and a script (V2-TESTS):\n",
    ),
]
TEMPLATE_MARKS = {
    "AGENTS.md": "- V2-NOTE: evaluate before you time, clear the cache between runs.",
    "TODO.md": "- [ ] Implementation, one component at a time (V2-STATUS)",
    "reference/DIAGNOSTICS.md": "| V2-TOOL: benchmarks of the model | `nox -s bench` |",
    "test/README.md": "Every `check_*.py` here is both a pytest module and a script (V2-TESTS):",
}
RUNTIME_MARK = "# V2-RUNTIME: genai-common changed with the template"
NEW_FILE = ("templates/project/test/check_memory.py", '"""V2: a new diagnostic."""\n')


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = hermetic_env(tmp_path)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.fixture
def template(tmp_path: Path, env: dict[str, str]) -> Path:
    """Template history: v0.1.0 = this template, v0.2.0 = with TEMPLATE_CHANGES and NEW_FILE."""
    src = snapshot_template(tmp_path / "template", tag="v0.1.0")
    for rel, old, new in TEMPLATE_CHANGES:
        path = src / rel
        text = path.read_text()
        assert text.count(old) == 1, f"{old!r} must occur once in {rel} (update the test)"
        path.write_text(text.replace(old, new))
    (src / NEW_FILE[0]).write_text(NEW_FILE[1])
    # the runtime changes too: projects carry it in vendor/genai-common (issue 16)
    with (src / "genai_common/findings.py").open("a") as fh:
        fh.write(RUNTIME_MARK + "\n")
    commit_all(src, "template v0.2.0")
    git(src, "tag", "v0.2.0")
    return src


def _project_at_v1(template: Path, tmp_path: Path) -> Path:
    project = render(template, tmp_path / "proj", vcs_ref="v0.1.0", project_kind="llm")
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "render v0.1.0")
    return project


def _edit(project: Path, rel: str, old: str | None, new: str) -> list[str]:
    """Replace `old` (or append when None) in a project file; returns the user's new lines."""
    path = project / rel
    text = path.read_text()
    if old is None:
        text = text.rstrip("\n") + "\n" + new
    else:
        assert text.count(old) == 1, f"{old!r} must occur once in {rel}"
        text = text.replace(old, new)
    path.write_text(text)
    return [line for line in new.splitlines() if line.strip()]


def _user_edits(project: Path) -> dict[str, list[str]]:
    """Edits in every living document, in pyproject.toml and in two code files."""
    pkg = "src/demo_project/__init__.py"
    edits = {
        "README.md": _edit(
            project,
            "README.md",
            "<!-- What this project is for, in two or three sentences: the model, the target, the constraint. -->",
            "USER: converts a Llama checkpoint to 4-bit MLX and serves it.",
        ),
        "TODO.md": _edit(
            project,
            "TODO.md",
            "<!-- What are we trying to achieve? One paragraph: model, target, constraints (memory, speed). -->",
            "USER: a 4-bit model under 5 GB at 30 tokens/s.",
        )
        + _edit(
            project,
            "TODO.md",
            None,
            "\n### Session End: 2026-11-27 18:00\n\n**Completed:**\n- [x] USER: converter runs\n\n"
            "**In Progress:**\n- [/] USER: quantization\n\n**Next Steps:**\n- [ ] USER: benchmark\n",
        ),
        "AGENTS.md": _edit(
            project,
            "AGENTS.md",
            None,
            "\n## USER project notes\n\n- USER: never quantize lm_head.\n",
        ),
        "reference/LEARNINGS.md": _edit(
            project,
            "reference/LEARNINGS.md",
            None,
            "\n## 2026-11-27: USER finding\n\n- USER: vocab 32000 vs 32001 rows: added pad token.\n",
        ),
        "reference/DIAGNOSTICS.md": _edit(
            project,
            "reference/DIAGNOSTICS.md",
            None,
            "\n## USER tools\n\n- `python scripts/compare.py`: USER logits against PyTorch.\n",
        ),
        "reference/RESULTS.md": _edit(
            project,
            "reference/RESULTS.md",
            "## Known Issues",
            "| 2026-11-27 | USER-llama | decode | 31 tok/s | `nox -s bench` | mlx 0.29 | M2 |\n\n"
            "## Known Issues",
        )
        + _edit(
            project, "reference/RESULTS.md", None, "| USER-row | tiny-llm | ok | 0.1 | 0.2 |\n"
        ),
        "test/README.md": _edit(
            project, "test/README.md", None, "\n## USER checks\n\n- USER: check_logits.py\n"
        ),
        "pyproject.toml": _edit(
            project, "pyproject.toml", 'model = ""', 'model = "models/user-llama"'
        ),
        pkg: _edit(project, pkg, None, "\n\ndef user_helper() -> int:\n    return 42  # USER\n"),
        "test/check_config.py": _edit(
            project,
            "test/check_config.py",
            "\n\nif __name__",
            "\n\ndef test_user_extra() -> None:\n    assert True  # USER\n\n\nif __name__",
        )[:-1],  # the last line is the template's own `if __name__` fragment
    }
    assert set(LIVING_DOCS) <= set(edits)
    return edits


def _assert_user_lines_kept(project: Path, edits: dict[str, list[str]]) -> None:
    for rel, lines in edits.items():
        text = (project / rel).read_text().splitlines()
        for line in lines:
            assert line in text, f"user line lost from {rel}: {line!r}"


def test_update_keeps_every_user_line_and_brings_template_changes(
    template: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    project = _project_at_v1(template, tmp_path)
    edits = _user_edits(project)
    commit_all(project, "user work")
    # The layout before v0.2.0 kept the tiny model in models/tiny (git-ignored, not merged).
    (project / "models/tiny").mkdir(parents=True)
    (project / "models/tiny/config.json").write_text("{}")

    refused = run_genai(project, "update", "--vcs-ref", "v0.2.0", env=env)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "--trust" in refused.stderr
    assert git(project, "status", "--porcelain") == "", "a refused update must change nothing"

    done = run_genai(project, "update", "--vcs-ref", "v0.2.0", "--trust", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no conflicts" in done.stdout

    _assert_user_lines_kept(project, edits)
    for rel, mark in TEMPLATE_MARKS.items():
        assert mark in (project / rel).read_text().splitlines(), f"template change missing: {rel}"
    assert (project / "test/check_memory.py").read_text() == NEW_FILE[1]
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_commit"] == "v0.2.0"
    # the vendored genai-common is the new template commit's (issue 16)
    sha = git(template, "rev-parse", "v0.2.0").strip()
    assert f"`{sha[:12]}`" in (project / "vendor/genai-common/README.md").read_text()
    vendored = project / "vendor/genai-common/genai_common/findings.py"
    assert vendored.read_text() == git(template, "show", "v0.2.0:genai_common/findings.py")
    assert RUNTIME_MARK in vendored.read_text().splitlines()
    # the migration moved the old tiny model instead of leaving it behind
    assert (project / "models/tiny-llm/config.json").is_file()
    assert not (project / "models/tiny").exists()
    assert run_genai(project, "update", "--check").returncode == 0


def test_overlapping_edits_as_rej_files_fail_loudly(
    template: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    project = _project_at_v1(template, tmp_path)
    mine = _edit(project, "TODO.md", "- [ ] Implementation\n", "- [x] USER: implementation done\n")
    commit_all(project, "user marks a status line that the template also changes")
    args = ("update", "--vcs-ref", "v0.2.0", "--trust", "--conflict", "rej")
    done = run_genai(project, *args, env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "TODO.md.rej: rejected hunks" in done.stdout
    # In rej mode the file takes the template's side and the user's line survives only in the
    # .rej hunk: the reason `genai update` defaults to inline markers, and refuses to pass.
    assert TEMPLATE_MARKS["TODO.md"] in (project / "TODO.md").read_text().splitlines()
    assert "+" + mine[0] in (project / "TODO.md.rej").read_text().splitlines()


def test_overlapping_edits_fail_loudly_and_lose_nothing(
    template: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    project = _project_at_v1(template, tmp_path)
    mine = _edit(project, "TODO.md", "- [ ] Implementation\n", "- [x] USER: implementation done\n")
    commit_all(project, "user marks a status line that the template also changes")

    done = run_genai(project, "update", "--vcs-ref", "v0.2.0", "--trust", env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "TODO.md" in done.stdout and "conflict marker" in done.stdout
    todo = (project / "TODO.md").read_text().splitlines()
    assert mine[0] in todo and TEMPLATE_MARKS["TODO.md"] in todo  # both sides kept
    assert any(line.startswith("<<<<<<< ") for line in todo)

    checked = run_genai(project, "update", "--check")
    assert checked.returncode == 1 and "TODO.md" in checked.stdout
    again = run_genai(project, "update", "--vcs-ref", "v0.2.0", "--trust", env=env)
    assert again.returncode == 1 and "resolve these before updating" in again.stdout

    resolved = [line for line in todo if not line.startswith(("<<<<<<<", "=======", ">>>>>>>"))]
    resolved.remove(TEMPLATE_MARKS["TODO.md"])
    (project / "TODO.md").write_text("\n".join(resolved) + "\n")
    git(project, "add", "TODO.md")
    assert run_genai(project, "update", "--check").returncode == 0


def test_update_within_one_version_needs_no_trust(
    template: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    """From v0.2.0 to a later v0.2.1 no migration applies: a plain update, no --trust."""
    project = render(template, tmp_path / "proj", vcs_ref="v0.2.0", project_kind="ml")
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "render v0.2.0")
    readme = template / "templates/project/README.md.jinja"
    readme.write_text(readme.read_text() + "\nV021-LINE\n")
    commit_all(template, "v0.2.1")
    git(template, "tag", "v0.2.1")
    done = run_genai(project, "update", env=env)  # no --vcs-ref: copier takes the newest tag
    assert done.returncode == 0, done.stdout + done.stderr
    assert "V021-LINE" in (project / "README.md").read_text()
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"] == "v0.2.1"


def test_update_without_edits_equals_a_fresh_render(
    template: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    """Copy at v0.1.0 then update to v0.2.0 gives byte for byte what a copy at v0.2.0 gives."""
    project = _project_at_v1(template, tmp_path)
    done = run_genai(project, "update", "--vcs-ref", "v0.2.0", "--trust", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    fresh = render(template, tmp_path / "fresh", vcs_ref="v0.2.0", project_kind="llm")
    updated_files = tree(project)
    assert updated_files == tree(fresh)
    for rel in sorted(updated_files):
        assert (project / rel).read_bytes() == (fresh / rel).read_bytes(), rel


# The generated noxfile's bench session before `genai bench` read [tool.genai] itself: it asked
# `genai diagnostics --model-path` for the model and parsed the last line of that output.
OLD_BENCH_SESSION = '''@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks of the project's model with `genai bench`."""
    _install(session)
    args = list(session.posargs)
    if not args or args[0].startswith("-"):  # no model given: the project's own
        out = session.run("genai", "diagnostics", "--model-path", silent=True, env=RUN_ENV)
        args.insert(0, str(out).strip().splitlines()[-1])
    session.run("genai", "bench", *args, env=RUN_ENV)
'''
NEW_BENCH_SESSION = '''@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks with `genai bench` (no path given: the model [tool.genai] names)."""
    _install(session)
    session.run("genai", "bench", *session.posargs, env=RUN_ENV)
'''


def test_update_across_the_project_package_move(tmp_path: Path, env: dict[str, str]) -> None:
    """A project rendered before genai_common.project became a package (v0.1.0 here: its noxfile
    asks `genai diagnostics --model-path`, its test/check_*.py import from genai_common.project)
    runs with this genai-common before and after `genai update` brings the new noxfile."""
    pytest.importorskip("mlx.core", reason="mlx builds and loads the tiny ml model")
    src = snapshot_template(tmp_path / "template")
    noxfile = src / "templates/project/noxfile.py.jinja"
    current = noxfile.read_text()
    assert current.count(NEW_BENCH_SESSION) == 1, "the bench session changed: update this test"
    noxfile.write_text(current.replace(NEW_BENCH_SESSION, OLD_BENCH_SESSION))
    commit_all(src, "template v0.1.0: the bench session parses `genai diagnostics --model-path`")
    git(src, "tag", "v0.1.0")
    noxfile.write_text(current)
    commit_all(src, "template v0.2.0: `genai bench` reads [tool.genai] itself")
    git(src, "tag", "v0.2.0")

    project = render(src, tmp_path / "proj", vcs_ref="v0.1.0", project_kind="ml")
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "render v0.1.0")
    run_env = {**env, "HF_HUB_OFFLINE": "1", "MLX_DISABLE_COMPILE": "1"}

    def check(script: str) -> None:
        done = subprocess.run(
            [sys.executable, f"test/{script}"],
            cwd=project,
            capture_output=True,
            text=True,
            env={**os.environ, **run_env},
            timeout=600,
        )
        assert done.returncode == 0 and "PASS" in done.stdout, done.stdout + done.stderr

    # the old project with this genai-common: its checks and what its noxfile asks
    for script in ("check_config.py", "check_shapes.py"):
        check(script)
    asked = run_genai(project, "diagnostics", "--model-path", env=run_env)
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.strip().splitlines()[-1] == str(project / "models/tiny-ml")
    commit_all(project, "user work")

    done = run_genai(project, "update", "--vcs-ref", "v0.2.0", "--trust", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert NEW_BENCH_SESSION in (project / "noxfile.py").read_text()
    assert "--model-path" not in (project / "noxfile.py").read_text()
    for script in ("check_config.py", "check_shapes.py", "check_load.py"):
        check(script)
    # what the new `nox -s bench` runs: `genai bench` with no path, in the project
    bench = run_genai(
        project, "bench", "--trials", "1", "--batch-size", "2", "--no-record", "--json", env=run_env
    )
    assert bench.returncode == 0, bench.stdout[-3000:] + bench.stderr[-3000:]
    record = json.loads(bench.stdout)
    assert record["kind"] == "ml" and record["model"] == str(project / "models/tiny-ml")


def test_a_left_index_lock_is_named_before_copier_runs(tmp_path: Path, env: dict[str, str]) -> None:
    """An interrupted update leaves .git/index.lock; the next one says so instead of failing in
    copier with git's message (issue 15, item 12)."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / ".copier-answers.yml").write_text("_src_path: /nowhere\n_commit: v0.1.0\n")
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "render")
    (project / ".git" / "index.lock").write_text("")
    done = run_genai(project, "update", env=env)
    assert done.returncode == 2
    assert "index.lock" in done.stderr and "interrupted" in done.stderr
    (project / ".git" / "index.lock").unlink()
    assert "index.lock" not in run_genai(project, "update", env=env).stderr


def test_a_moved_template_clone_is_named_and_the_new_path_works(
    template: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    """Issue 16: the project builds without the clone (vendor/genai-common); an update needs it,
    and says where it was looked for and what to change, in one line."""
    project = _project_at_v1(template, tmp_path)
    moved = template.rename(tmp_path / "template-moved")
    done = run_genai(project, "update", "--vcs-ref", "v0.2.0", "--trust", env=env)
    assert done.returncode == 2 and done.stdout.count("\n") <= 1, done.stdout + done.stderr
    assert f"no longer at {template}" in done.stderr and "_src_path" in done.stderr
    answers = project / ".copier-answers.yml"
    answers.write_text(answers.read_text().replace(str(template), str(moved)))
    commit_all(project, "the template clone moved")
    done = run_genai(project, "update", "--vcs-ref", "v0.2.0", "--trust", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert RUNTIME_MARK in (project / "vendor/genai-common/genai_common/findings.py").read_text()
