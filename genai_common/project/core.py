"""The one Project: a generated project's root, kind, model, pyproject, living documents and git.

Two ways to get one:

    find_project(start)   strict: the folder of the first pyproject.toml with a [tool.genai]
                          table above `start`, its kind checked (ProjectError otherwise). What the
                          diagnostics and the generated test/check_*.py use.
    Project.open(path)    lenient: the first folder above `path` with a pyproject.toml or a
                          TODO.md (else `path` itself). What the session and the review use: they
                          judge any folder, and say what is missing.

A Project reads nothing until asked and each file at most once (`text`, `pyproject`); results
that several checks need are kept in `memo`. Two projects are equal when their roots are.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from genai_common.findings import PROJECT_KINDS
from genai_common.formats import markdown
from genai_common.formats import pyproject as pyproject_toml
from genai_common.project.docs import LIVING_DOCS
from genai_common.runtime import git

STATE_DIR = ".genai"

# Files that describe a model rather than hold its weights: an edit here changes what loads.
MODEL_CONFIG_NAMES = {
    "config.json",
    "generation_config.json",
    "tokenizer_config.json",
    "tokenizer.json",
    "special_tokens_map.json",
    "preprocessor_config.json",
    "processor_config.json",
    "image_processor_config.json",
    "chat_template.json",
    "chat_template.jinja",
    "model_index.json",
    "scheduler_config.json",
    "adapter_config.json",
    "model.safetensors.index.json",
}


class ProjectError(Exception):
    """No usable [tool.genai] table: the project cannot be diagnosed (exit code 2)."""


class Project:
    """A generated project (or any folder the review is asked about), rooted at `root`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._texts: dict[str, str | None] = {}
        self.memo: dict[str, Any] = {}  # results computed once (envcheck, update conflicts)

    @classmethod
    def open(cls, path: str | Path = ".") -> Project:
        start = Path(path).resolve()
        for candidate in (start, *start.parents):
            if (candidate / "pyproject.toml").is_file() or (candidate / "TODO.md").is_file():
                return cls(candidate)
        return cls(start)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Project) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r}, kind={self.kind!r}, model={self.model!r})"

    # -- files ------------------------------------------------------------------------------

    def text(self, rel: str) -> str | None:
        """A file's text (None when absent), read once."""
        if rel not in self._texts:
            self._texts[rel] = markdown.read(self.root / rel)
        return self._texts[rel]

    def exists(self, rel: str) -> bool:
        return (self.root / rel).exists()

    @cached_property
    def pyproject(self) -> dict[str, Any]:
        """pyproject.toml parsed ({} when missing or not valid TOML)."""
        text = self.text("pyproject.toml")
        if not text:
            return {}
        import tomllib

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return {}

    @property
    def genai(self) -> dict[str, Any]:
        """The [tool.genai] table ({} when there is none)."""
        return pyproject_toml.genai_table(self.pyproject) or {}

    @property
    def is_genai_project(self) -> bool:
        return "genai" in self.pyproject.get("tool", {})

    @property
    def kind(self) -> str | None:
        """[tool.genai] kind when it is one of PROJECT_KINDS, else None."""
        kind = self.genai.get("kind")
        return kind if kind in PROJECT_KINDS else None

    @property
    def model(self) -> str:
        """[tool.genai] model as written: a hub id or a path; empty = the embedded tiny model."""
        return str(self.genai.get("model") or "")

    @property
    def uses_tiny(self) -> bool:
        return not self.model.strip()

    @property
    def tiny_dir(self) -> Path:
        return pyproject_toml.tiny_dir(self.root, self.kind or "unknown")

    @property
    def env_manager(self) -> str:
        return "conda" if self.exists("environment.yml") else "uv"

    @cached_property
    def model_path(self) -> str | None:
        """The model as the diagnostics resolve it, nothing built: a local path or a hub id (None:
        no kind); resolved once (is_model_config asks for every changed file)."""
        if self.kind is None:
            return None
        return pyproject_toml.model_location(self.root, self.kind, self.model)[0]

    @property
    def model_is_local(self) -> bool:
        return bool(self.model_path) and Path(str(self.model_path)).is_absolute()

    @cached_property
    def model_dir_rel(self) -> str | None:
        """The model directory relative to the root when it lies inside the project."""
        if not self.model_is_local:
            return None
        try:
            return Path(str(self.model_path)).relative_to(self.root).as_posix()
        except ValueError:
            return None

    # -- git --------------------------------------------------------------------------------

    @cached_property
    def is_git(self) -> bool:
        return git.is_repo(self.root)

    @cached_property
    def tracked(self) -> list[str]:
        return git.tracked_files(self.root) if self.is_git else []

    def is_model_config(self, rel: str) -> bool:
        name = rel.rsplit("/", 1)[-1]
        model_dir = self.model_dir_rel
        inside_model = bool(model_dir) and rel.startswith(model_dir + "/")
        return name in MODEL_CONFIG_NAMES and (inside_model or rel.startswith("models/"))

    def is_living_doc(self, rel: str) -> bool:
        return rel in LIVING_DOCS

    def code_files(self) -> list[str]:
        """Tracked Python code and the project's configuration (what results depend on)."""
        return [
            p
            for p in self.tracked
            if (p.endswith(".py") and not p.startswith(("docs/", "."))) or p == "pyproject.toml"
        ]

    def model_config_files(self) -> list[Path]:
        """Config files of the project's local model (weights never count)."""
        if not self.model_is_local:
            return []
        base = Path(str(self.model_path))
        if not base.is_dir():
            return []
        return sorted(p for p in base.rglob("*") if p.name in MODEL_CONFIG_NAMES and p.is_file())


def find_project(start: str | Path | None = None) -> Project:
    """The project whose pyproject.toml (with [tool.genai]) holds `start` (a file or folder);
    ProjectError when there is none or its kind is not one of PROJECT_KINDS."""
    try:
        table = pyproject_toml.find_genai(start)
    except pyproject_toml.GenaiConfigError as exc:
        raise ProjectError(str(exc)) from exc
    project = Project(table.root)
    project.__dict__["pyproject"] = table.pyproject  # read once: the cached_property's slot
    return project
