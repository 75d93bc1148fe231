"""Is the running environment the one the project declares?

Declared: `requires-python` and `[project] dependencies` in pyproject.toml, `.python-version`,
environment.yml (python pin and its pip list), and the pins of a lock file when there is one
(uv.lock, pylock.toml). Installed: the running interpreter's package metadata (no imports).
`packaging` is used when installed to evaluate specifiers and markers; without it only presence
and exact pins are compared.
"""

from __future__ import annotations

import platform
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from genai_common.project.core import Project
from genai_common.runtime.envinfo import installed_version

LOCK_FILES = ("uv.lock", "pylock.toml", "conda-lock.yml")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Declared:
    requires_python: str | None = None
    python_pins: dict[str, str] = field(default_factory=dict)  # source -> "3.11"
    requirements: list[str] = field(default_factory=list)  # PEP 508 strings
    lock_pins: dict[str, str] = field(default_factory=dict)  # canonical name -> version
    lock_file: str | None = None
    exported: list[str] = field(default_factory=list)  # files that state the environment


@dataclass
class EnvCheck:
    python: str
    declared: Declared
    in_project_env: bool
    problems: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    checked: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "requires_python": self.declared.requires_python,
            "python_pins": self.declared.python_pins,
            "exported": self.declared.exported,
            "lock_file": self.declared.lock_file,
            "in_project_env": self.in_project_env,
            "checked": self.checked,
            "problems": self.problems,
            "missing": self.missing,
        }


def environment_yml(text: str) -> tuple[str | None, list[str]]:
    """(python pin, pip requirements) from a conda environment.yml, read without a YAML library."""
    python, pip_reqs = None, []
    in_deps, pip_indent = False, None
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        s = line.strip()
        if indent == 0:
            in_deps = s.startswith("dependencies:")
            pip_indent = None
            continue
        if not in_deps or not s.startswith("- "):
            continue
        value = s[2:].strip().strip("'\"")
        if pip_indent is not None and indent > pip_indent:
            if not value.startswith("-"):
                pip_reqs.append(value)
            continue
        pip_indent = None
        if value.rstrip(":") == "pip" and value.endswith(":"):
            pip_indent = indent
        elif re.match(r"python\s*[=<>]", value):
            python = re.sub(r"^python\s*=*\s*", "", value).strip()
    return python, pip_reqs


def declared(project: Project) -> Declared:
    """What the project declares; read once per Project (GE101 and GE102 both ask, and a lock
    file can be large)."""
    if "declared" not in project.memo:
        project.memo["declared"] = _read_declared(project)
    return project.memo["declared"]


def _read_declared(project: Project) -> Declared:
    out = Declared()
    pyproject = project.pyproject.get("project", {})
    if project.exists("pyproject.toml"):
        out.requires_python = pyproject.get("requires-python")
        out.requirements += list(pyproject.get("dependencies", []))
        if pyproject.get("dependencies"):
            out.exported.append("pyproject.toml")
    pv = project.text(".python-version")
    if pv and pv.strip():
        out.python_pins[".python-version"] = pv.strip().splitlines()[0]
    env_yml = project.text("environment.yml")
    if env_yml is not None:
        python, pip_reqs = environment_yml(env_yml)
        if python:
            out.python_pins["environment.yml"] = python
        out.requirements += [r for r in pip_reqs if not r.startswith((".", "-"))]
        out.exported.append("environment.yml")
    for name in ("uv.lock", "pylock.toml"):
        text = project.text(name)
        if text is None:
            continue
        out.lock_file = name
        out.exported.append(name)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            continue
        for pkg in data.get("package", data.get("packages", [])):
            if pkg.get("name") and pkg.get("version") and "editable" not in pkg.get("source", {}):
                out.lock_pins[canonical(pkg["name"])] = str(pkg["version"])
    return out


def _python_matches(pin: str, version: str) -> bool:
    pin = pin.strip().lstrip("=").split(",")[0].strip()
    if pin.startswith((">", "<", "~", "!")):
        return True  # a range: judged with requires-python
    parts = pin.split(".")
    return version.split(".")[: len(parts)] == parts


def check(project: Project) -> EnvCheck:
    """Compare the running interpreter with what the project declares."""
    dec = declared(project)
    py = platform.python_version()
    name = project.pyproject.get("project", {}).get("name")
    in_env = bool(name) and installed_version(name) is not None
    result = EnvCheck(py, dec, in_env)
    try:
        from packaging.requirements import InvalidRequirement, Requirement
        from packaging.specifiers import SpecifierSet
    except ImportError:  # pragma: no cover - packaging is nearly always there
        Requirement = None  # type: ignore[assignment,misc]

    if (
        dec.requires_python
        and Requirement is not None
        and py not in SpecifierSet(dec.requires_python)
    ):
        result.problems.append(
            f"Python {py} does not satisfy requires-python {dec.requires_python}"
        )
    for source, pin in dec.python_pins.items():
        if not _python_matches(pin, py):
            result.problems.append(f"Python {py} differs from {source} ({pin})")

    for text in dec.requirements:
        if Requirement is None:
            m = _NAME.match(text)
            if m and installed_version(m.group(1)) is None:
                result.missing.append(m.group(1))
            continue
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if req.marker is not None and not req.marker.evaluate():
            continue
        have = installed_version(req.name)
        result.checked += 1
        if have is None:
            result.missing.append(req.name)
        elif req.specifier and not req.specifier.contains(have, prereleases=True):
            result.problems.append(f"{req.name} {have} does not satisfy {req.specifier}")
    for pkg, pinned in sorted(dec.lock_pins.items()):
        have = installed_version(pkg)
        if have is None:
            continue
        result.checked += 1
        if canonical(have) != canonical(pinned):
            result.problems.append(f"{pkg} {have} installed, {dec.lock_file} pins {pinned}")
    if in_env and result.missing:
        result.problems += [f"{m} is declared but not installed" for m in result.missing]
    return result
