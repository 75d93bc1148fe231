"""Render a project from this repository's template, for the demo and the template tests.

Copier knows a template's versions only through git, and a project rendered from a dirty
working tree records a commit that exists nowhere (its later `copier update` fails). So renders
here come from a snapshot: the repository's files as a clone would have them plus uncommitted
work (tracked and untracked, not ignored), copied into a fresh git repository and committed
there (and tagged, when asked).

    python -m tools.templating demo DEST [--kind llm]
        snapshot, render a project of that kind into DEST, commit it, run its `nox -s diagnostics`

Repository tooling, not part of the genai-common wheel: the noxfile (`nox -s demo`) and the
template tests use it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from genai_common.findings import PROJECT_KINDS
from genai_common.runtime import git as git_runner

# Git must not read the developer's configuration, and commits need an identity.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "genai-templates",
    "GIT_AUTHOR_EMAIL": "genai-templates@example.invalid",
    "GIT_COMMITTER_NAME": "genai-templates",
    "GIT_COMMITTER_EMAIL": "genai-templates@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


# What a template-only snapshot holds: copier.yml, templates/ and what the links of
# templates/project/vendor/genai-common point at (the package every project vendors).
TEMPLATE_ROOT_FILES = ("copier.yml", "pyproject.toml", "LICENSE")
TEMPLATE_DIRS = ("templates/", "genai_common/")


def template_repo() -> Path:
    """This repository (the template family: copier.yml and templates/ beside tools/)."""
    root = Path(__file__).resolve().parents[1]
    if not (root / "copier.yml").is_file():
        raise FileNotFoundError(
            f"no copier.yml in {root}: tools/ is not in the template repository"
        )
    return root


def git(cwd: Path, *args: str) -> str:
    """`git ARGS` in `cwd` with GIT_ENV (no developer configuration, a fixed identity); its
    stdout, or GitError (a RuntimeError) with git's message."""
    out = git_runner.git(cwd, *args, check=True, env=GIT_ENV, timeout=None)
    assert out is not None  # check=True raises instead of answering None
    return out


def commit_all(path: Path, message: str) -> str:
    git(path, "add", "-A")
    git(path, "commit", "-q", "--allow-empty", "-m", message)
    return git(path, "rev-parse", "HEAD").strip()


def repo_files(repo: Path, *, template_only: bool = False) -> list[str]:
    """Tracked and untracked (not ignored) files; with template_only, copier.yml and templates/."""
    listed = git_runner.work_files(repo)
    if listed is None:
        raise RuntimeError(f"{repo} is not a git work tree: cannot list the template's files")
    files = [f for f in listed if (repo / f).is_file() or (repo / f).is_symlink()]
    if template_only:  # with what the template's links point at (vendor/genai-common)
        files = [f for f in files if f in TEMPLATE_ROOT_FILES or f.startswith(TEMPLATE_DIRS)]
    return sorted(files)


def snapshot(
    dest: Path, *, repo: Path | None = None, tag: str | None = None, template_only: bool = False
) -> Path:
    """Copy the repository into `dest`, make it a git repository, commit, optionally tag."""
    repo = repo or template_repo()
    for rel in repo_files(repo, template_only=template_only):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / rel, target, follow_symlinks=False)  # a link stays a link
    git(dest, "init", "-q", "-b", "main")
    commit_all(dest, "template snapshot")
    if tag:
        git(dest, "tag", tag)
    return dest


def render(template: Path, dest: Path, *, vcs_ref: str | None = "HEAD", **answers: object) -> Path:
    """`copier copy --defaults` of `template` into `dest` with the given answers."""
    from copier import run_copy

    data = {"project_name": "Demo Project", **answers}
    run_copy(str(template), dest, data=data, defaults=True, vcs_ref=vcs_ref, quiet=True)
    return dest


def demo(dest: Path, kind: str = "llm") -> int:
    """Render a `kind` project into `dest` and run its own `nox -s diagnostics`."""
    if dest.exists():
        shutil.rmtree(dest)
    template = snapshot(dest.with_name(dest.name + "-template"), template_only=False)
    settings = dest.with_name(dest.name + "-copier-settings.yml")
    settings.write_text("{}\n")  # no user defaults leak into the render
    os.environ["COPIER_SETTINGS_PATH"] = str(settings)
    project = render(template, dest, project_kind=kind, project_name=f"Demo {kind}")
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "Render genai-templates")
    print(f"Rendered a {kind} project into {project}:")
    print("\n".join(f"  {f}" for f in repo_files(project)))
    print(f"\n$ cd {project} && nox -s diagnostics\n", flush=True)
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    done = subprocess.run([sys.executable, "-m", "nox", "-s", "diagnostics"], cwd=project, env=env)
    results = project / "reference" / "RESULTS.md"
    if results.exists():
        print("\nreference/RESULTS.md, last row:\n" + results.read_text().rstrip().splitlines()[-1])
    return done.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.templating")
    sub = parser.add_subparsers(dest="command", required=True)
    run_demo = sub.add_parser("demo", help="render a project and run its nox -s diagnostics")
    run_demo.add_argument("dest", type=Path)
    run_demo.add_argument("--kind", default="llm", choices=PROJECT_KINDS)
    args = parser.parse_args(argv)
    return demo(args.dest.resolve(), args.kind)


if __name__ == "__main__":
    sys.exit(main())
