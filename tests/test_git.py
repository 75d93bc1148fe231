"""genai_common.runtime.git: the one place genai-common asks git (real repositories)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from genai_common.runtime import git
from tools.templating import GIT_ENV, commit_all


def test_outside_a_repository_everything_is_none_or_empty(tmp_path: Path) -> None:
    assert git.work_files(tmp_path) is None
    assert git.commit_label(tmp_path) is None and git.unmerged_files(tmp_path) == []
    assert not git.is_repo(tmp_path)


def test_work_files_and_commit_label(tmp_path: Path, monkeypatch) -> None:
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    subprocess.run(["git", "init", "-q", "-b", "main", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("*.log\n")
    (tmp_path / "a.txt").write_text("a\n")
    assert git.commit_label(tmp_path) is None  # no commit yet
    head = commit_all(tmp_path, "first")
    (tmp_path / "new.txt").write_text("untracked\n")
    (tmp_path / "run.log").write_text("ignored\n")
    assert git.work_files(tmp_path) == [".gitignore", "a.txt", "new.txt"]
    assert head.startswith(git.commit_label(tmp_path))  # untracked files are not "dirty"
    (tmp_path / "a.txt").write_text("changed\n")
    assert git.commit_label(tmp_path) == git.short(tmp_path, head) + "+dirty"
