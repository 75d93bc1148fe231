"""The methodology checks of `genai review`: stable codes, a title, a fix, a link to the section
of the generated AGENTS.md or README that explains the rule.

Families (letters) and numbers never change meaning once released:

    GD  living documents       GT  test scripts        GE  environment
    GR  results                GA  agent instructions  GU  template updates

Each check is a rule in the one rule framework (genai_common.findings): a plain function over a
`Project`, its metadata on the function (`@rule(code, title, severity=..., fix=..., url=...)`),
returning or yielding one message per problem (an empty result passes) or raising `Skip` with
the reason it cannot judge. `findings.run_rule` runs one; `genai review` (project.review) runs
them all; `repo-review` runs them through project.repo_review_plugin. A new check is one
function here (and a test); a new family is one row of FAMILIES.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from genai_common.findings import PROJECT_KINDS, Family, Rule, Skip, declared, rule, rule_functions
from genai_common.formats import markdown
from genai_common.project import docs, facts, todo
from genai_common.project.core import Project
from genai_common.runtime import git

# The review's families: what repo-review shows as the family's name, the code prefix, a one-line
# description, the project kinds (all), and the module that defines its rules (this one).
FAMILIES: tuple[Family, ...] = (
    Family(
        "Living documents",
        ("GD",),
        "README, TODO and the reference documents the methodology keeps.",
        PROJECT_KINDS,
        __name__,
    ),
    Family(
        "Test scripts",
        ("GT",),
        "Every diagnostic under test/ is documented, and only those.",
        PROJECT_KINDS,
        __name__,
    ),
    Family(
        "Environment",
        ("GE",),
        "The environment is written down and is the one installed.",
        PROJECT_KINDS,
        __name__,
    ),
    Family("Results", ("GR",), "RESULTS.md follows what changed.", PROJECT_KINDS, __name__),
    Family(
        "Agent instructions",
        ("GA",),
        "AGENTS.md carries the session protocol; agent files agree.",
        PROJECT_KINDS,
        __name__,
    ),
    Family(
        "Template updates",
        ("GU",),
        "Nothing left behind by `copier update`.",
        PROJECT_KINDS,
        __name__,
    ),
)

# Where each rule is explained in a generated project (headings of AGENTS.md / README.md).
DOCS_URL = "AGENTS.md#what-genai-review-enforces"
TESTS_URL = "test/README.md#adding-a-diagnostic"
SESSION_URL = "AGENTS.md#session-continuity"
UPDATE_URL = "README.md#updating-from-the-template"


def family_of(code: str) -> Family:
    """The family that owns a code's prefix (KeyError for a code of no review family)."""
    prefix = code.rstrip("0123456789")
    for family in FAMILIES:
        if prefix in family.prefixes:
            return family
    raise KeyError(code)


def _require(project: Project, rel: str) -> str:
    text = project.text(rel)
    if text is None:
        raise Skip(f"{rel} is missing (GD101 reports it)")
    return text


# -- GD: living documents --------------------------------------------------------------------

TODO_SECTIONS = (("Objective",), ("Current Status", "Status"), todo.SESSION_LOG_NAMES)


@rule(
    "GD101",
    "The living documents exist",
    fix="Create the missing files (README.md, TODO.md, reference/LEARNINGS.md, "
    "reference/DIAGNOSTICS.md, reference/RESULTS.md, test/README.md); `genai update --restore "
    "PATH` copies the template's version back (copier update does not: a deletion is your "
    "change).",
    severity="error",
    url=DOCS_URL,
)
def living_docs_exist(project: Project) -> list[str]:
    return [f"{rel} is missing" for rel in docs.LIVING_DOCS if not project.exists(rel)]


@rule(
    "GD102",
    "TODO.md has Objective, Current Status and Session Log sections",
    fix="Add the missing headings: `## Objective`, `## Current Status` (a checklist of `- [ ]`, "
    "`- [/]`, `- [x]` items) and `## Session Log` (where `genai session end` writes).",
    severity="error",
    url=DOCS_URL,
)
def todo_sections(project: Project) -> list[str]:
    text = _require(project, "TODO.md")
    problems = [
        f"TODO.md has no `## {names[0]}` section"
        for names in TODO_SECTIONS
        if markdown.find_section(text, *names) is None
    ]
    status = markdown.find_section(text, "Current Status", "Status")
    if status is not None:
        lines = text.splitlines()
        if not any(i.line in range(status.line, status.end) for i in markdown.checklist(text)):
            problems.append(f"TODO.md's `{lines[status.line].strip()}` has no checklist item")
    return problems


@rule(
    "GD103",
    "RESULTS.md has a results table",
    fix="Keep a Markdown table in reference/RESULTS.md (a header row, a `|---|` row, one row "
    "per run); `nox -s diagnostics` adds its rows under `## Diagnostics runs`.",
    severity="error",
    url=DOCS_URL,
)
def results_table(project: Project) -> list[str]:
    text = _require(project, "reference/RESULTS.md")
    return [] if markdown.tables(text) else ["reference/RESULTS.md has no Markdown table"]


@rule(
    "GD104",
    "DIAGNOSTICS.md lists the diagnostic tools",
    fix="List each tool in reference/DIAGNOSTICS.md with the command that runs it in backticks, "
    "e.g. `- `python test/check_config.py`: validates config.json`.",
    severity="error",
    url=DOCS_URL,
)
def diagnostics_tools(project: Project) -> list[str]:
    text = _require(project, "reference/DIAGNOSTICS.md")
    return [] if docs.tools(text) else ["reference/DIAGNOSTICS.md names no command or script"]


@rule(
    "GD105",
    "Session End blocks in TODO.md are complete",
    fix="Give each `Session End: DATE` block its **Completed**, **In Progress** or **Next "
    "Steps** items; `genai session end --completed ... --next ...` writes them.",
    url=SESSION_URL,
    severity="warning",
)
def session_blocks(project: Project) -> list[str]:
    text = _require(project, "TODO.md")
    out = []
    for block in todo.blocks(text):
        if not any(block.items.get(k) for k in todo.CATEGORIES):
            out.append(f"TODO.md line {block.start + 1}: `Session End: {block.title}` is empty")
    return out


@rule(
    "GD200",
    "The documents name the project's model",
    fix="Name the model of `[tool.genai]` (or drop the line: the facts block between "
    "`<!-- genai:facts -->` markers says what the model is, and `genai session start` keeps it "
    "current).",
    severity="warning",
    url=DOCS_URL,
)
def documents_name_the_model(project: Project) -> list[str]:
    if project.kind is None:
        raise Skip("no [tool.genai] kind in pyproject.toml")
    want = facts.model_label(project)
    out = []
    for rel in facts.NAMING_DOCS:
        text = project.text(rel)
        for line, named in facts.named_models(text or "", project.kind):
            if not facts.same_model(project, named):
                said = "the embedded tiny model" if named == facts.TINY else f"`{named}`"
                out.append(f"{rel} line {line} names {said}; the project's model is `{want}`")
    return out


@rule(
    "GD201",
    "The facts block says what the doctor says about the model",
    fix="Run `genai session start` (or `nox -s diagnostics`): it rewrites the lines between "
    "`<!-- genai:facts -->` and `<!-- /genai:facts -->` and nothing else.",
    severity="warning",
    url=DOCS_URL,
)
def facts_block_current(project: Project) -> list[str]:
    if project.kind is None:
        raise Skip("no [tool.genai] kind in pyproject.toml")
    blocks = {rel: facts.block_text(project.text(rel) or "") for rel in facts.FACT_DOCS}
    blocks = {rel: b for rel, b in blocks.items() if b is not None}
    if not blocks:
        raise Skip("no document has a facts block")
    found = facts.doctor_facts(project)
    want = facts.lines(project, found)
    out = []
    for rel, have in blocks.items():
        if found is None:  # the model is not there: only its name can be judged
            model_line = [ln for ln in have if ln.startswith("- Model:")][:1]
            if model_line and not model_line[0].startswith(want[2].split(" (")[0]):
                out.append(f"{rel}: the facts block is about another model ({model_line[0]})")
        elif have != want:
            label = facts.model_label(project)
            out.append(f"{rel}: the facts block differs from what the doctor says of `{label}`")
    return out


# Issue 16: the sections a rendered project's tools write under or link to, beyond TODO.md's
# (GD102). Judged only in a rendered project (.copier-answers.yml): a hand-made one chooses its
# own headings. Each entry: the document, then the accepted titles of one section.
REQUIRED_SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("reference/RESULTS.md", ("Diagnostics runs",)),  # `nox -s diagnostics` writes rows there
    ("reference/LEARNINGS.md", ("Decisions",)),
    ("reference/LEARNINGS.md", ("Failed approaches",)),
    ("test/README.md", ("Adding a diagnostic",)),  # TESTS_URL
    ("README.md", ("Updating from the template",)),  # UPDATE_URL
    ("AGENTS.md", ("Session continuity",)),  # SESSION_URL
    ("AGENTS.md", ("What `genai review` enforces", "What genai review enforces")),  # DOCS_URL
)


@rule(
    "GD202",
    "The living documents keep the sections the tools write under and link to",
    fix="Restore the heading (the template's title, e.g. `## Diagnostics runs` in "
    "reference/RESULTS.md): `genai diagnostics` writes under it and the review's links point at "
    "it. Add your own sections beside it rather than renaming it.",
    severity="warning",
    url=DOCS_URL,
)
def required_sections(project: Project) -> list[str]:
    if not project.exists(".copier-answers.yml"):
        raise Skip("not rendered from the template: the headings are the project's own")
    out = []
    for rel, names in REQUIRED_SECTIONS:
        text = project.text(rel)
        if text is not None and markdown.find_section(text, *names) is None:
            out.append(f"{rel} has no `{names[0]}` section (renamed or deleted?)")
    return out


@rule(
    "GD203",
    "Session End titles carry a date",
    fix="Write the date as `### Session End: YYYY-MM-DD HH:MM` (`genai session end` does): "
    "`session start` orders sessions and finds what changed since the last one by it.",
    severity="error",
    url=SESSION_URL,
)
def session_dates(project: Project) -> list[str]:
    text = _require(project, "TODO.md")
    return [
        f"TODO.md line {b.start + 1}: `Session End: {b.title}` has no date (YYYY-MM-DD)"
        for b in todo.blocks(text)
        if markdown.parse_date(b.title) is None
    ]


@rule(
    "GD204",
    "The newest Session End names the next steps",
    fix="Add `**Next Steps:**` with at least one `- [ ]` item to the newest Session End block "
    '(`genai session end --next "..."`): the next session starts from it.',
    severity="warning",
    url=SESSION_URL,
)
def next_steps(project: Project) -> list[str]:
    text = _require(project, "TODO.md")
    found = todo.blocks(text)
    if not found:
        raise Skip("no Session End block yet")
    newest = found[-1]
    if newest.items.get("next"):
        return []
    return [f"TODO.md line {newest.start + 1}: `Session End: {newest.title}` has no Next Steps"]


# -- GT: test scripts ------------------------------------------------------------------------

_SUPPORT = {"__init__.py", "conftest.py"}


def test_scripts(project: Project) -> list[str]:
    base = project.root / "test"
    if not base.is_dir():
        return []
    return sorted(
        p.relative_to(base).as_posix()
        for p in base.rglob("*")
        if p.is_file()
        and p.suffix in {".py", ".sh"}
        and p.name not in _SUPPORT
        and "__pycache__" not in p.parts
    )


@rule(
    "GT101",
    "Every script in test/ is documented in test/README.md",
    fix="Add an entry for each script to test/README.md: what it checks, how to run it "
    "standalone and under pytest, and what a failure means.",
    severity="error",
    url=TESTS_URL,
)
def scripts_documented(project: Project) -> list[str]:
    text = _require(project, "test/README.md")
    mentioned, _ = docs.documented_scripts(text)
    names = {m.rsplit("/", 1)[-1] for m in mentioned} | mentioned
    return [
        f"test/{s} is not documented in test/README.md"
        for s in test_scripts(project)
        if s not in names and s.rsplit("/", 1)[-1] not in names
    ]


@rule(
    "GT102",
    "Every script test/README.md documents exists",
    fix="Remove or rename the entry in test/README.md, or restore the script.",
    severity="error",
    url=TESTS_URL,
)
def documented_exist(project: Project) -> list[str]:
    text = _require(project, "test/README.md")
    _, entries = docs.documented_scripts(text)
    have = set(test_scripts(project))
    return [
        f"test/README.md documents `{e}`, which is not in test/"
        for e in sorted(entries)
        if e not in have and not (project.root / "test" / e).exists() and not project.exists(e)
    ]


# -- GE: environment -------------------------------------------------------------------------


@rule(
    "GE101",
    "The environment is exported",
    fix="Declare `requires-python` and the dependencies in pyproject.toml; for conda keep "
    "environment.yml (python pin, pip list) beside it (`conda env export --from-history`).",
    severity="error",
    url=DOCS_URL,
)
def env_exported(project: Project) -> list[str]:
    from genai_common.project import envcheck

    dec = envcheck.declared(project)
    problems = []
    if not project.exists("pyproject.toml"):
        problems.append("pyproject.toml is missing")
    else:
        if not dec.requires_python:
            problems.append("pyproject.toml has no `requires-python`")
        if not project.pyproject.get("project", {}).get("dependencies"):
            problems.append("pyproject.toml declares no dependencies")
    if project.exists("environment.yml") and "environment.yml" not in dec.python_pins:
        problems.append("environment.yml pins no python version")
    return problems


@rule(
    "GE102",
    "The installed environment matches the declared one",
    fix="Reinstall from the declaration (`nox -s diagnostics` rebuilds its environment; by "
    "hand `uv pip install -e .[dev]` or `conda env update -f environment.yml`), or update the "
    "declaration and write down why in reference/LEARNINGS.md.",
    severity="error",
    url=DOCS_URL,
)
def env_matches(project: Project) -> list[str]:
    from genai_common.project import envcheck

    result = envcheck.check(project)
    if not result.in_project_env:
        raise Skip("not running in the project's environment (run `nox -s review`)")
    return result.problems


# -- GR: results -----------------------------------------------------------------------------


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def last_change(project: Project) -> tuple[float, str] | None:
    """When code, pyproject.toml or the model's configuration last changed, and which file."""
    newest: tuple[float, str] | None = None

    def see(when: float | None, what: str) -> None:
        nonlocal newest
        if when is not None and (newest is None or when > newest[0]):
            newest = (when, what)

    code = project.code_files()
    committed: dict[str, float] = {}
    dirty: set[str] = set()
    if project.is_git:  # one `git log` and one `git diff` for every file below
        committed = git.last_commit_times(project.root)
        dirty = set(git.dirty_files(project.root))
        for rel in code:
            see(committed.get(rel), rel)
        for rel in dirty | set(git.untracked_files(project.root)):
            if rel in code or (rel.endswith(".py") and not rel.startswith(".")):
                see(_mtime(project.root / rel), rel)
    tracked = set(project.tracked)  # empty outside git
    for path in project.model_config_files():
        rel = os.path.relpath(path, project.root)
        if rel in tracked and rel not in dirty:
            see(committed.get(rel), rel)
        else:
            see(_mtime(path), rel)
    return newest


def results_time(rows: list[dict[str, str]]) -> float | None:
    """When the newest of the RESULTS.md `rows` was recorded (a date without time counts to the
    day's end)."""
    best = None
    for row in rows:
        found = markdown.row_time(row)
        if found is None:
            continue
        when, has_time = found
        stamp = (when if has_time else when + timedelta(days=1) - timedelta(seconds=1)).timestamp()
        best = stamp if best is None or stamp > best else best
    return best


def _fmt(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


@rule(
    "GR101",
    "RESULTS.md has an entry newer than the last change to the model configuration or code",
    fix="Run `nox -s diagnostics` (it records a row in reference/RESULTS.md), or add a dated "
    "row for the run that measured the change.",
    severity="error",
    url=DOCS_URL,
)
def results_fresh(project: Project) -> list[str]:
    text = _require(project, "reference/RESULTS.md")
    if not project.is_git:
        raise Skip("not a git repository: change dates are unknown")
    change = last_change(project)
    if change is None:
        raise Skip("no code or model configuration to compare with")
    rows = markdown.result_rows(text)
    recorded = results_time(rows)
    if not rows:
        created = git.first_commit_time(project.root)
        if created is not None and change[0] <= created + 60:
            raise Skip("no results yet, and nothing changed since the project was created")
        return [f"no results recorded, but `{change[1]}` changed on {_fmt(change[0])}"]
    if recorded is None:
        return ["reference/RESULTS.md rows carry no date (a `Date` column, YYYY-MM-DD HH:MM)"]
    if change[0] > recorded + 60:
        return [
            f"the newest result is from {_fmt(recorded)}, but `{change[1]}` changed on "
            f"{_fmt(change[0])}"
        ]
    return []


# -- GA: agent instructions ------------------------------------------------------------------

SESSION_COMMANDS = ("genai session start", "genai session end", "genai review")


def agent_files(project: Project) -> list[str]:
    found = [
        rel
        for rel in ("CLAUDE.md", ".github/copilot-instructions.md", "GEMINI.md")
        if project.exists(rel)
    ]
    for folder, pattern in ((".cursor/rules", "*.mdc"), (".windsurf/rules", "*.md")):
        base = project.root / folder
        if base.is_dir():
            found += sorted(p.relative_to(project.root).as_posix() for p in base.glob(pattern))
    return found


def front_matter(text: str) -> tuple[dict[str, str], str]:
    """(simple key: value front matter, body) of a Markdown file."""
    if not text.startswith("---"):
        return {}, text
    end = text.find("\n---", 3)
    if end < 0:
        return {}, text
    meta = {}
    for line in text[3:end].splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            meta[key.strip()] = value.strip().strip("'\"")
    return meta, text[end + 4 :].lstrip("\n")


def _squash(text: str) -> str:
    return " ".join(text.split())


@rule(
    "GA101",
    "AGENTS.md tells agents to start and end sessions with genai and what review enforces",
    fix="Keep AGENTS.md's `Session continuity` section: run `genai session start` first, "
    "`genai session end` last, and `genai review` (what it enforces) before committing.",
    severity="error",
    url=SESSION_URL,
)
def agents_protocol(project: Project) -> list[str]:
    if not project.exists("AGENTS.md"):
        return ["AGENTS.md is missing"]
    text = _squash(project.text("AGENTS.md") or "")
    return [f"AGENTS.md never mentions `{c}`" for c in SESSION_COMMANDS if c not in text]


@rule(
    "GA102",
    "Agent files agree with AGENTS.md",
    fix="CLAUDE.md imports AGENTS.md (`@AGENTS.md`); the other agent files carry AGENTS.md's "
    "text unchanged (after their front matter) or point to it. Copy AGENTS.md over them again "
    "after editing it (`copier update` regenerates them).",
    severity="error",
    url=SESSION_URL,
)
def agents_agree(project: Project) -> list[str]:
    files = agent_files(project)
    if not files:
        raise Skip("no agent files besides AGENTS.md")
    agents = project.text("AGENTS.md")
    if agents is None:
        return [f"{rel} exists but AGENTS.md is missing" for rel in files]
    reference = {
        s.title: _section_text(agents, s) for s in markdown.sections(agents) if s.level == 2
    }
    problems = []
    for rel in files:
        _, body = front_matter(project.text(rel) or "")
        if rel == "CLAUDE.md":
            if not re.search(r"(?m)^\s*@AGENTS\.md\b", body):
                problems.append("CLAUDE.md does not import AGENTS.md (a line `@AGENTS.md`)")
            continue
        if re.search(r"(?m)^\s*@AGENTS\.md\b", body) or (
            "AGENTS.md" in body and not markdown.sections(body)
        ):
            continue  # a pointer to AGENTS.md
        mine = {s.title: _section_text(body, s) for s in markdown.sections(body) if s.level == 2}
        for title, text in reference.items():
            if title not in mine:
                problems.append(f"{rel} lacks AGENTS.md's section `{title}`")
            elif _squash(mine[title]) != _squash(text):
                problems.append(f"{rel}: section `{title}` differs from AGENTS.md")
    return problems


def _section_text(text: str, sec: markdown.Section) -> str:
    return "\n".join(text.splitlines()[sec.line + 1 : sec.end])


@rule(
    "GA103",
    "Rule files load in every session",
    fix="Windsurf rules need front matter `trigger: always_on`; Cursor rules `alwaysApply: true`.",
    severity="error",
    url=SESSION_URL,
)
def rules_always_on(project: Project) -> list[str]:
    problems = []
    files = [f for f in agent_files(project) if f.startswith((".cursor/", ".windsurf/"))]
    if not files:
        raise Skip("no Cursor or Windsurf rule files")
    for rel in files:
        meta, _ = front_matter(project.text(rel) or "")
        if rel.startswith(".windsurf/") and meta.get("trigger") != "always_on":
            problems.append(f"{rel}: front matter lacks `trigger: always_on`")
        if rel.startswith(".cursor/") and meta.get("alwaysApply", "").lower() != "true":
            problems.append(f"{rel}: front matter lacks `alwaysApply: true`")
    return problems


# -- GU: template updates --------------------------------------------------------------------


def _conflicts(project: Project, kind: str) -> list[str]:
    if "conflicts" not in project.memo:
        from genai_common.project.update import find_conflicts

        project.memo["conflicts"] = find_conflicts(project.root)
    return [str(c) for c in project.memo["conflicts"] if c.kind == kind]


@rule(
    "GU101",
    "No conflict markers are left in the project",
    fix="Resolve each `<<<<<<< before updating` ... `>>>>>>> after updating` region by hand "
    "(keep your lines and the template's), then run `genai update --check`.",
    severity="error",
    url=UPDATE_URL,
)
def no_markers(project: Project) -> list[str]:
    return _conflicts(project, "marker")


@rule(
    "GU102",
    "No .rej files are left from an update",
    fix="Apply the rejected hunks of each .rej file by hand, then delete the .rej file.",
    severity="error",
    url=UPDATE_URL,
)
def no_rej(project: Project) -> list[str]:
    return _conflicts(project, "rej")


@rule(
    "GU103",
    "No unmerged paths in git",
    fix="Resolve the conflicts, then `git add` each file (see `git status`).",
    severity="error",
    url=UPDATE_URL,
)
def no_unmerged(project: Project) -> list[str]:
    if not project.is_git:
        raise Skip("not a git repository")
    return _conflicts(project, "unmerged")


# -- the table of checks, in the order they are defined ----------------------------------------

# code -> the function that raises it (one code per function), and code -> its declared Rule.
FUNCTIONS: dict[str, Callable[[Project], list[str]]] = {
    code: func for func in rule_functions(sys.modules[__name__]) for code in declared(func)
}
CHECKS: dict[str, Rule] = {code: declared(func)[code] for code, func in FUNCTIONS.items()}
