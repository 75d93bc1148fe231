"""Helpers of the template tests: a committed, tagged snapshot of this template, and renders.

Copier only knows a template's versions through git, and a project rendered from a dirty
working tree records a commit that exists nowhere (its later update fails). So every test renders
from a snapshot: this repository's files (tracked and untracked, not ignored) copied into a fresh
git repository, committed and tagged there. Nothing depends on this repository's own history.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KINDS = ("llm", "vlm", "diffusion", "ml")
AGENTS = ("claude", "cursor", "windsurf", "copilot")
LIVING_DOCS = (
    "README.md",
    "TODO.md",
    "AGENTS.md",
    "reference/LEARNINGS.md",
    "reference/DIAGNOSTICS.md",
    "reference/RESULTS.md",
    "test/README.md",
)
# Git and copier must not read the developer's configuration: fixed identity, no user defaults.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Template Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Template Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def hermetic_env(tmp: Path) -> dict[str, str]:
    """Environment variables for copier and git in tests (pass to monkeypatch or subprocess)."""
    settings = tmp / "copier-settings.yml"
    settings.write_text("{}\n")  # an empty file crashes copier 9.19; "{}" is an empty mapping
    return {**GIT_ENV, "COPIER_SETTINGS_PATH": str(settings)}


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **GIT_ENV}
    )
    assert done.returncode == 0, f"git {' '.join(args)} failed in {cwd}:\n{done.stderr}"
    return done.stdout


def repo_files(*, template_only: bool) -> list[str]:
    """This repository's files as a fresh clone would have them, plus work not yet committed."""
    listed = git(REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    files = [f for f in listed.split("\0") if f and (REPO / f).is_file()]
    if template_only:
        files = [f for f in files if f == "copier.yml" or f.startswith("templates/")]
    return sorted(files)


def snapshot_template(dest: Path, *, tag: str | None = None, template_only: bool = True) -> Path:
    """Copy this template into `dest`, make it a git repository, commit and optionally tag."""
    for rel in repo_files(template_only=template_only):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, target)
    git(dest, "init", "-q", "-b", "main")
    commit_all(dest, "template snapshot")
    if tag:
        git(dest, "tag", tag)
    return dest


def commit_all(path: Path, message: str) -> str:
    git(path, "add", "-A")
    git(path, "commit", "-q", "--allow-empty", "-m", message)
    return git(path, "rev-parse", "HEAD").strip()


def render(src: Path, dst: Path, *, vcs_ref: str | None = "HEAD", **answers: object) -> Path:
    """`copier copy` of the snapshot with --defaults and the given answers (Python API)."""
    from copier import run_copy

    data = {"project_name": "Demo Project", **answers}
    run_copy(str(src), dst, data=data, defaults=True, vcs_ref=vcs_ref, quiet=True)
    return dst


def run_genai(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`genai ARGS` in a child process (same interpreter), output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "genai_common", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


def expected_files(kind: str, env_manager: str, agents: tuple[str, ...], package: str) -> set[str]:
    """The exact file set of a render."""
    files = {
        ".copier-answers.yml",
        ".gitignore",
        ".pre-commit-config.yaml",
        "noxfile.py",
        "pyproject.toml",
        f"src/{package}/__init__.py",
        "test/check_config.py",
        "test/check_shapes.py",
        "test/check_load.py",
        "test/check_inference.py",
        *LIVING_DOCS,
    }
    if kind in ("llm", "vlm"):
        files.add("test/check_tokenizer.py")
    if kind == "diffusion":
        files.add("test/check_pipeline.py")
    if env_manager == "conda":
        files.add("environment.yml")
    agent_files = {
        "claude": "CLAUDE.md",
        "cursor": ".cursor/rules/methodology.mdc",
        "windsurf": ".windsurf/rules/methodology.md",
        "copilot": ".github/copilot-instructions.md",
    }
    files |= {agent_files[a] for a in agents}
    return files


def tree(path: Path) -> set[str]:
    return {
        str(p.relative_to(path))
        for p in path.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(path).parts
    }
