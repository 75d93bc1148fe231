"""The git questions genai-common asks (continuity, `genai update`, the template snapshots,
bench records), answered with the git command line: one place for them all.

Every function returns None (or an empty result) outside a git work tree or when git is missing,
so the callers can say "not a git repository" instead of failing.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def _git(root: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def is_repo(root: Path) -> bool:
    out = _git(root, "rev-parse", "--is-inside-work-tree")
    return out is not None and out.strip() == "true"


def head(root: Path) -> str | None:
    """The full hash of HEAD, or None (no repository, or no commit yet)."""
    out = _git(root, "rev-parse", "--verify", "--quiet", "HEAD")
    return out.strip() or None if out else None


def short(root: Path, commit: str) -> str:
    out = _git(root, "rev-parse", "--short", commit)
    return out.strip() if out else commit[:7]


def commit_label(root: Path) -> str | None:
    """Short hash of HEAD, with '+dirty' when tracked files differ from it (staged or not)."""
    out = _git(root, "rev-parse", "--short", "HEAD")
    if not out:
        return None
    return out.strip() + ("+dirty" if dirty_files(root) else "")


def commit_exists(root: Path, commit: str) -> bool:
    return _git(root, "cat-file", "-e", f"{commit}^{{commit}}") is not None


def first_commit_time(root: Path) -> float | None:
    out = _git(root, "log", "--reverse", "--format=%ct")
    if not out:
        return None
    return float(out.split()[0])


def last_commit_times(root: Path) -> dict[str, float]:
    """Every path git's history names -> Unix time of the newest commit that touched it.

    One `git log` for the whole history instead of one per file.
    """
    out = _git(root, "log", "--format=%x00%ct", "--name-only", "--no-renames")
    times: dict[str, float] = {}
    when = 0.0
    for line in (out or "").splitlines():
        if line.startswith("\0"):
            when = float(line[1:] or 0)
        elif line:
            times.setdefault(line, when)
    return times


def tracked_files(root: Path) -> list[str]:
    out = _git(root, "ls-files", "-z")
    return [p for p in out.split("\0") if p] if out else []


def untracked_files(root: Path) -> list[str]:
    out = _git(root, "ls-files", "-z", "--others", "--exclude-standard")
    return [p for p in out.split("\0") if p] if out else []


def work_files(root: Path) -> list[str] | None:
    """Tracked files and the untracked ones git does not ignore (what a clone plus uncommitted
    work holds), sorted; None outside a git work tree."""
    out = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    return None if out is None else sorted({p for p in out.split("\0") if p})


def unmerged_files(root: Path) -> list[str]:
    """Paths the index marks unmerged (a merge or update stopped on them)."""
    out = _git(root, "ls-files", "-u", "-z")
    return sorted({e.split("\t", 1)[1] for e in (out or "").split("\0") if "\t" in e})


def dirty_files(root: Path) -> list[str]:
    """Tracked files whose working-tree or staged content differs from HEAD."""
    out = _git(root, "diff", "--name-only", "-z", "HEAD")
    return [p for p in out.split("\0") if p] if out else []


def changed_since(root: Path, commit: str) -> list[str]:
    """Files that differ between `commit` and the working tree, plus untracked files."""
    out = _git(root, "diff", "--name-only", "-z", commit)
    changed = {p for p in (out or "").split("\0") if p}
    changed.update(untracked_files(root))
    return sorted(changed)
