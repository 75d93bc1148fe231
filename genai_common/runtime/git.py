"""The one git runner: every question genai-common asks git (the project's session and review,
`genai update`, bench records) and the commands this repository's tools run (template snapshots).

`git(root, ARGS)` runs `git -C root ARGS`. By default it answers None when git fails, is missing
or takes too long, so the query functions below return None (or an empty result) outside a git
work tree and their callers can say "not a git repository" instead of failing; `check=True`
raises GitError with git's message instead (for commands that must succeed).
"""

from __future__ import annotations

import os
import subprocess

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

QUERY_TIMEOUT_S = 30.0


class GitError(RuntimeError):
    """A git command run with check=True failed (the message holds git's stderr)."""


def git(
    root: str | Path,
    *args: str,
    check: bool = False,
    env: dict[str, str] | None = None,
    timeout: float | None = QUERY_TIMEOUT_S,
) -> str | None:
    """stdout of `git -C root ARGS`; None when it fails (GitError with check=True).

    env: variables set on top of this process's environment (e.g. an identity for commits)."""
    cmd = ["git", "-C", str(root), *args]
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, **env} if env else None,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        if check:
            raise GitError(f"git {' '.join(args)} could not run in {root}: {exc}") from exc
        return None
    if proc.returncode != 0:
        if check:
            raise GitError(f"git {' '.join(args)} failed in {root}:\n{proc.stderr}")
        return None
    return proc.stdout


def is_repo(root: Path) -> bool:
    out = git(root, "rev-parse", "--is-inside-work-tree")
    return out is not None and out.strip() == "true"


def index_lock(root: Path) -> Path | None:
    """The repository's index.lock when one is left (an interrupted git or copier run, or one
    running now): the next command that writes the index fails until it is gone."""
    out = git(root, "rev-parse", "--git-path", "index.lock")
    if out is None:
        return None
    from pathlib import Path

    lock = Path(root) / out.strip()
    return lock if lock.exists() else None


def head(root: Path) -> str | None:
    """The full hash of HEAD, or None (no repository, or no commit yet)."""
    out = git(root, "rev-parse", "--verify", "--quiet", "HEAD")
    return out.strip() or None if out else None


def short(root: Path, commit: str) -> str:
    out = git(root, "rev-parse", "--short", commit)
    return out.strip() if out else commit[:7]


def commit_label(root: Path) -> str | None:
    """Short hash of HEAD, with '+dirty' when tracked files differ from it (staged or not)."""
    out = git(root, "rev-parse", "--short", "HEAD")
    if not out:
        return None
    return out.strip() + ("+dirty" if dirty_files(root) else "")


def commit_exists(root: Path, commit: str) -> bool:
    return git(root, "cat-file", "-e", f"{commit}^{{commit}}") is not None


def first_commit_time(root: Path) -> float | None:
    out = git(root, "log", "--reverse", "--format=%ct")
    if not out:
        return None
    return float(out.split()[0])


def last_commit_times(root: Path) -> dict[str, float]:
    """Every path git's history names -> Unix time of the newest commit that touched it.

    One `git log` for the whole history instead of one per file.
    """
    out = git(root, "log", "--format=%x00%ct", "--name-only", "--no-renames")
    times: dict[str, float] = {}
    when = 0.0
    for line in (out or "").splitlines():
        if line.startswith("\0"):
            when = float(line[1:] or 0)
        elif line:
            times.setdefault(line, when)
    return times


def tracked_files(root: Path) -> list[str]:
    out = git(root, "ls-files", "-z")
    return [p for p in out.split("\0") if p] if out else []


def untracked_files(root: Path) -> list[str]:
    out = git(root, "ls-files", "-z", "--others", "--exclude-standard")
    return [p for p in out.split("\0") if p] if out else []


def work_files(root: Path) -> list[str] | None:
    """Tracked files and the untracked ones git does not ignore (what a clone plus uncommitted
    work holds), sorted; None outside a git work tree."""
    out = git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    return None if out is None else sorted({p for p in out.split("\0") if p})


def unmerged_files(root: Path) -> list[str]:
    """Paths the index marks unmerged (a merge or update stopped on them)."""
    out = git(root, "ls-files", "-u", "-z")
    return sorted({e.split("\t", 1)[1] for e in (out or "").split("\0") if "\t" in e})


def dirty_files(root: Path) -> list[str]:
    """Tracked files whose working-tree or staged content differs from HEAD."""
    out = git(root, "diff", "--name-only", "-z", "HEAD")
    return [p for p in out.split("\0") if p] if out else []


def changed_since(root: Path, commit: str) -> list[str]:
    """Files that differ between `commit` and the working tree, plus untracked files."""
    out = git(root, "diff", "--name-only", "-z", commit)
    changed = {p for p in (out or "").split("\0") if p}
    changed.update(untracked_files(root))
    return sorted(changed)


def blob_hashes(root: Path, paths: list[str]) -> dict[str, str | None]:
    """Git's blob hash of each path's current content (None: the file is not there)."""
    present = [p for p in paths if os.path.isfile(os.path.join(root, p))]
    out: dict[str, str | None] = dict.fromkeys(paths)
    if present:
        text = git(root, "hash-object", "--", *present)
        hashes = (text or "").split()
        if len(hashes) == len(present):
            out.update(zip(present, hashes, strict=True))
    return out
