"""Helpers of the template tests: committed, tagged snapshots of this template, and renders.

The snapshot and render functions live in tools/templating.py (the demo uses them too);
every test renders from a snapshot committed (and tagged) in a temp repository, so nothing
depends on this repository's own history or on uncommitted state.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from genai_common.findings import PROJECT_KINDS
from tools.templating import GIT_ENV, commit_all, git, render, repo_files
from tools.templating import snapshot as _snapshot

REPO = Path(__file__).resolve().parents[1]
KINDS = PROJECT_KINDS
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
__all__ = ["GIT_ENV", "commit_all", "git", "render", "repo_files"]


def hermetic_env(tmp: Path) -> dict[str, str]:
    """Environment variables for copier and git in tests (pass to monkeypatch or subprocess)."""
    settings = tmp / "copier-settings.yml"
    settings.write_text("{}\n")  # an empty file crashes copier 9.19; "{}" is an empty mapping
    return {**GIT_ENV, "COPIER_SETTINGS_PATH": str(settings)}


def snapshot_template(dest: Path, *, tag: str | None = None, template_only: bool = True) -> Path:
    """This template (copier.yml and templates/, or the whole repository) committed in `dest`."""
    return _snapshot(dest, repo=REPO, tag=tag, template_only=template_only)


def run_genai(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`genai ARGS` in a child process (same interpreter), output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "genai_common", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,  # a command that would prompt fails instead of waiting
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
        "test/check_quality.py",
        *LIVING_DOCS,
    }
    if kind in ("llm", "vlm"):
        files.add("test/check_tokenizer.py")
    if kind == "llm":  # issue 11: fine-tuning samples for nox -s finetune
        files.update({"data/train.jsonl", "data/valid.jsonl"})
    if kind == "vlm":  # issue 11: image + text samples for nox -s finetune (mlx-vlm's trainer)
        files.update({"data/train.jsonl", "data/valid.jsonl"})
        files.update(f"data/{c}.png" for c in ("red", "green", "blue", "yellow"))
    if kind == "diffusion":
        files.add("test/check_pipeline.py")
    if kind == "ml":  # issue 16: the project's own MLX module and its PyTorch original
        files.update({f"src/{package}/model.py", f"src/{package}/torch_reference.py"})
    if env_manager == "conda":
        files.add("environment.yml")
    agent_files = {
        "claude": "CLAUDE.md",
        "cursor": ".cursor/rules/methodology.mdc",
        "windsurf": ".windsurf/rules/methodology.md",
        "copilot": ".github/copilot-instructions.md",
    }
    files |= {agent_files[a] for a in agents}
    return files | vendored_files()


def vendored_files() -> set[str]:
    """vendor/genai-common in a render: this repository's genai_common package (what git lists),
    its pyproject.toml and LICENSE, and the README the template writes (issue 16)."""
    base = "vendor/genai-common/"
    package = {f for f in repo_files(REPO) if f.startswith("genai_common/")}
    return {base + f for f in package | {"pyproject.toml", "LICENSE", "README.md"}}


def tree(path: Path) -> set[str]:
    return {
        str(p.relative_to(path))
        for p in path.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(path).parts
    }
