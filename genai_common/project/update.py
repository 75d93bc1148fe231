"""`genai update`: pull template changes into a generated project, and fail loudly on conflicts.

`copier update` exits 0 even when it leaves conflicts behind: inline markers
(`<<<<<<< before updating` ... `>>>>>>> after updating`), paths marked unmerged in the git index,
or `.rej` files. This command runs the update and then looks for all three itself; any one of
them makes it exit 1 with the list of places to fix. `genai update --check` only looks (for CI or
a pre-commit hook).

Exit codes: 0 updated (or checked) with no conflict; 1 conflicts left to resolve; 2 could not run
(not a git project, copier missing or failed, the update needs --trust).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from genai_common.runtime import git

ANSWERS_FILE = ".copier-answers.yml"
_MARKER = re.compile(r"^(<<<<<<<|>>>>>>>)( |$)")
_SKIP_DIRS = {".git", ".nox", ".venv", "models", "__pycache__", "node_modules"}
COPIER_UNSAFE_EXIT = 4


@dataclass(frozen=True)
class Conflict:
    path: str  # relative to the project root
    kind: str  # "marker" | "unmerged" | "rej"
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        what = {
            "marker": "conflict marker",
            "unmerged": "unmerged path in the git index",
            "rej": "rejected hunks (.rej file)",
        }[self.kind]
        return f"{where}: {what}"


def _walk(root: Path) -> list[str]:
    """Every file below root, outside the folders no update writes to (.git, .nox, models...)."""
    out = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS]
        out += [str(Path(folder, f).relative_to(root)) for f in files]
    return sorted(out)


def find_conflicts(root: str | Path) -> list[Conflict]:
    """Every conflict a template update can leave in `root`: markers, unmerged paths, .rej files."""
    root = Path(root)
    found = [Conflict(p, "unmerged") for p in git.unmerged_files(root)]
    walked = _walk(root)
    candidates = git.work_files(root)  # tracked plus untracked, not ignored; the walk without git
    for rel in walked if candidates is None else candidates:
        path = root / rel
        if rel.endswith(".rej"):
            found.append(Conflict(rel, "rej"))
            continue
        from genai_common.formats import markdown

        # never a FIFO or device (they block or never end), at most the document cap
        text = markdown.read(path)
        if text is None or "\ufffd" in text:
            continue  # binary, special or vanished: copier writes markers only into text files
        for number, line in enumerate(text.splitlines(), start=1):
            if _MARKER.match(line):
                found.append(Conflict(rel, "marker", number))
    # .rej files are often ignored by a .gitignore; look for them outside git's view too.
    seen = {c.path for c in found if c.kind == "rej"}
    found += [Conflict(rel, "rej") for rel in walked if rel.endswith(".rej") and rel not in seen]
    return found


def copier_update_command(
    *,
    vcs_ref: str | None = None,
    trust: bool = False,
    conflict: str = "inline",
    defaults: bool = True,
) -> list[str]:
    """The `copier update` command line this module runs (same interpreter: copier is a dev dep)."""
    cmd = [sys.executable, "-m", "copier", "update", "--skip-answered", f"--conflict={conflict}"]
    if defaults:
        cmd.append("--defaults")
    if vcs_ref:
        cmd.append(f"--vcs-ref={vcs_ref}")
    if trust:
        cmd.append("--trust")
    return cmd


def restore(root: Path, paths: list[str]) -> list[str]:
    """Render the template at the project's recorded commit, with its recorded answers, into a
    temporary folder and copy back each of `paths` that is missing here; return those restored.
    A file that exists is never touched. RestoreError when copier cannot render."""
    import shutil
    import tempfile

    import yaml
    from copier import run_copy

    answers = yaml.safe_load((root / ANSWERS_FILE).read_text(encoding="utf-8")) or {}
    src, ref = answers.get("_src_path"), answers.get("_commit")
    if not src:
        raise RestoreError(f"{ANSWERS_FILE} names no template (_src_path)")
    data = {k: v for k, v in answers.items() if not k.startswith("_")}
    restored = []
    with tempfile.TemporaryDirectory(prefix="genai-restore-") as tmp:
        try:
            run_copy(src, tmp, data=data, defaults=True, vcs_ref=ref, quiet=True, unsafe=False)
        except Exception as exc:  # copier's own errors: one line for the user
            raise RestoreError(f"copier could not render {src} at {ref}: {exc}") from exc
        for rel in paths:
            here, there = root / rel, Path(tmp) / rel
            if here.exists() or not there.is_file():
                continue
            here.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(there, here)
            restored.append(rel)
    return restored


def missing_template(root: Path) -> str | None:
    """The recorded template source when it is a local path that is not there (issue 16: a
    moved clone); None for a URL or a path that exists."""
    import re

    text = (root / ANSWERS_FILE).read_text(encoding="utf-8", errors="replace")
    m = re.search(r"^_src_path:\s*['\"]?(.*?)['\"]?\s*$", text, re.M)
    if not m:
        return None
    src = m.group(1)
    if "://" in src or src.startswith(("gh:", "gl:", "git@")) or not src:
        return None
    return None if (root / src).exists() else src


class RestoreError(Exception):
    pass


def report_conflicts(conflicts: list[Conflict]) -> str:
    lines = [f"{len(conflicts)} conflict(s) left by the template update:"]
    lines += [f"  {c}" for c in conflicts]
    lines += [
        "",
        "Resolve each one (keep your lines and the template's where both matter), delete the .rej",
        "files, `git add` the files, then run `genai update --check` until it passes.",
    ]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", default=".", help="project folder (default: .)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="only look for conflicts (markers, unmerged paths, .rej); do not update",
    )
    parser.add_argument("--vcs-ref", help="template ref to update to (default: latest tag)")
    parser.add_argument(
        "--trust",
        action="store_true",
        help="let copier run the template's migrations (needed when the update crosses one)",
    )
    parser.add_argument(
        "--conflict",
        choices=("inline", "rej"),
        default="inline",
        help="inline (default): both sides stay in the file between markers; rej: the file takes "
        "the template's side and yours is only in FILE.rej",
    )
    parser.add_argument(
        "--ask", action="store_true", help="ask the questions again instead of keeping answers"
    )
    parser.add_argument(
        "--restore",
        nargs="+",
        metavar="PATH",
        help="copy these files back from the template at the project's recorded commit when "
        "they are missing (a deleted living document); existing files are left alone",
    )


def run(args: argparse.Namespace) -> int:
    root = Path(args.project).resolve()
    if getattr(args, "restore", None):
        if not (root / ANSWERS_FILE).is_file():
            print(
                f"genai update: no {ANSWERS_FILE} in {root}: not a rendered project",
                file=sys.stderr,
            )
            return 2
        try:
            restored = restore(root, args.restore)
        except RestoreError as exc:
            print(f"genai update: {exc}", file=sys.stderr)
            return 2
        for rel in restored:
            print(f"restored {rel} from the template")
        left = [p for p in args.restore if p not in restored and not (root / p).exists()]
        if left:
            print(f"genai update: the template has no {', '.join(left)}", file=sys.stderr)
            return 1
        return 0
    if not args.check:
        if not (root / ANSWERS_FILE).is_file():
            print(
                f"genai update: no {ANSWERS_FILE} in {root}: not a rendered project",
                file=sys.stderr,
            )
            return 2
        if not git.is_repo(root):
            print(
                "genai update: the project must be a git repository (commit it first)",
                file=sys.stderr,
            )
            return 2
        lock = git.index_lock(root)
        if lock is not None:
            print(
                f"genai update: {lock} exists: an earlier git or copier run was interrupted (or "
                "one is running now). If no git process runs in this project, delete that file "
                "and run genai update again.",
                file=sys.stderr,
            )
            return 2
        moved = missing_template(root)
        if moved:
            print(
                f"genai update: the template is no longer at {moved} (moved or deleted). Set "
                f"`_src_path` in {ANSWERS_FILE} to its new path or its git URL, commit, and run "
                "genai update again (the project builds without it: vendor/genai-common).",
                file=sys.stderr,
            )
            return 2
        before = find_conflicts(root)
        if before:
            print("genai update: resolve these before updating:\n" + report_conflicts(before))
            return 1
        cmd = copier_update_command(
            vcs_ref=args.vcs_ref, trust=args.trust, conflict=args.conflict, defaults=not args.ask
        )
        print("$ " + " ".join(cmd[1:]))
        done = subprocess.run(cmd, cwd=root, check=False)
        if done.returncode == COPIER_UNSAFE_EXIT:
            print(
                "genai update: this update runs template migrations; read them in the template's "
                "copier.yml (_migrations) and rerun with --trust.",
                file=sys.stderr,
            )
            return 2
        if done.returncode != 0:
            print(f"genai update: copier update failed (exit {done.returncode})", file=sys.stderr)
            return 2
    conflicts = find_conflicts(root)
    if conflicts:
        print(report_conflicts(conflicts))
        return 1
    print("No conflicts." if args.check else "Updated with no conflicts; review `git diff`.")
    return 0
