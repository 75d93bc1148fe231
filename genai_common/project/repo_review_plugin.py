"""The methodology checks as a repo-review plugin: `repo-review .` in a generated project.

Registered in genai-common's pyproject.toml under the entry-point groups repo-review reads:
`repo_review.fixtures` (genai_project), `repo_review.checks` (repo_review_checks) and
`repo_review.families` (repo_review_families). The checks are the ones `genai review` runs
(genai_common.project.checks, run with findings.run_rule); this module only adapts them to
repo-review's protocol: the docstring is the title, `url` the explaining section, and `check()`
returns "" (pass), a Markdown message with the problems and the fix (fail) or None (skip).

Checks are offered only for projects with a `[tool.genai]` table, so installing genai-common does
not add them to reviews of unrelated repositories; remote (GitHub) paths are skipped, since the
results check needs git history.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genai_common.findings import Rule, Skip, run_rule
from genai_common.project.checks import CHECKS, FAMILIES, FUNCTIONS
from genai_common.project.core import Project


def genai_project(root: Any) -> Project | None:
    """Fixture: the project at `root` when it is a local folder, else None."""
    return Project(Path(root)) if isinstance(root, Path) else None


class RepoReviewCheck:
    """One methodology check in repo-review's shape."""

    def __init__(self, chk: Rule) -> None:
        self._chk = chk
        self.family = chk.prefix
        self.url = chk.url
        self.requires: frozenset[str] = frozenset()
        self.__doc__ = chk.title

    def check(self, genai_project: Project | None) -> str | None:
        if genai_project is None:
            return None
        try:
            found = run_rule(FUNCTIONS[self._chk.code], genai_project)
        except Skip:
            return None
        if not found:
            return ""
        items = "\n".join(f"- {f.message}" for f in found)
        return f"{items}\n\n**Fix:** {self._chk.fix}"


def repo_review_checks(genai_project: Project | None, list_all: bool = False) -> dict[str, Any]:
    if not list_all and (genai_project is None or not genai_project.is_genai_project):
        return {}
    return {code: RepoReviewCheck(chk) for code, chk in CHECKS.items()}


def repo_review_families() -> dict[str, dict[str, Any]]:
    return {
        prefix: {"name": f"genai: {family.name}", "order": 50 + i, "description": family.title}
        for i, family in enumerate(FAMILIES)
        for prefix in family.prefixes
    }
