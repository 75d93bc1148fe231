"""The generated project: one home for what genai-common does inside a rendered project.

    core          the one Project (root, kind, model, pyproject, living documents, git) and
                  find_project (the folder whose pyproject.toml has [tool.genai])
    diagnostics   the steps test/check_*.py and `genai diagnostics` run: check_config,
                  check_model, load_test, inference_test; the RESULTS.md row
    session       `genai session start|end`: the session protocol (and how start reads)
    todo          TODO.md's Session End blocks, written without touching a user byte
    docs          what each living document carries (LEARNINGS entries, DIAGNOSTICS tools, ...)
    checks        the review's rules (GD, GT, GE, GR, GA, GU) in the one rule framework
    review        `genai review`: the runner over checks, its JSON and its renderers
    envcheck      is the running environment the one the project declares?
    update        `genai update`: copier update, then fail loudly on any conflict left
    repo_review_plugin   the checks as a repo-review plugin (`repo-review .`)

The Markdown primitives are in genai_common.formats.markdown, the [tool.genai] reader in
genai_common.formats.pyproject, the git runner in genai_common.runtime.git: the layers below.

The names below are re-exported because every generated project's test/check_*.py imports them
from here (`from genai_common.project import assert_step, check_config, ...`): they keep working
for projects rendered from any template version.
"""

from __future__ import annotations

from genai_common.project.core import Project, ProjectError, find_project
from genai_common.project.diagnostics import (
    RESULTS_COLUMNS,
    STEPS,
    Step,
    assert_findings_clear,
    assert_step,
    check_config,
    check_model,
    format_step,
    inference_test,
    load_test,
    model_path,
    record_results,
    results_row,
    run_steps,
    standalone,
)

__all__ = [
    "RESULTS_COLUMNS",
    "STEPS",
    "Project",
    "ProjectError",
    "Step",
    "assert_findings_clear",
    "assert_step",
    "check_config",
    "check_model",
    "find_project",
    "format_step",
    "inference_test",
    "load_test",
    "model_path",
    "record_results",
    "results_row",
    "run_steps",
    "standalone",
]
