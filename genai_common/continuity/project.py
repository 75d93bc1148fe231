"""A generated project as continuity sees it: its root, `[tool.genai]`, living documents and git.

`Project.open(path)` walks up from `path` to the directory that holds pyproject.toml or TODO.md
(the project root) and reads nothing else until asked.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from genai_common.continuity import docs, git
from genai_common.project import KINDS

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


@dataclass(eq=False)
class Project:
    """Equal when the roots are: the caches below never change what a project is."""

    root: Path
    _texts: dict[str, str | None] = field(default_factory=dict, repr=False)
    memo: dict[str, Any] = field(default_factory=dict, repr=False)  # results computed once

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

    # -- files ------------------------------------------------------------------------------

    def text(self, rel: str) -> str | None:
        """A file's text (None when absent), read once."""
        if rel not in self._texts:
            self._texts[rel] = docs.read(self.root / rel)
        return self._texts[rel]

    def exists(self, rel: str) -> bool:
        return (self.root / rel).exists()

    @cached_property
    def pyproject(self) -> dict[str, Any]:
        text = self.text("pyproject.toml")
        if not text:
            return {}
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return {}

    @property
    def genai(self) -> dict[str, Any]:
        return self.pyproject.get("tool", {}).get("genai", {}) or {}

    @property
    def is_genai_project(self) -> bool:
        return "genai" in self.pyproject.get("tool", {})

    @property
    def kind(self) -> str | None:
        kind = self.genai.get("kind")
        return kind if kind in KINDS else None

    @property
    def env_manager(self) -> str:
        return "conda" if self.exists("environment.yml") else "uv"

    @cached_property
    def model(self) -> str | None:
        """The model as the diagnostics resolve it: a local path or a hub id (None: no kind);
        resolved once (is_model_config asks for every changed file)."""
        if self.kind is None:
            return None
        from genai_common import project as diagnostics

        value = str(self.genai.get("model") or "")
        where = diagnostics.Project(root=self.root, kind=self.kind, model=value)
        return diagnostics.model_path(where, build=False)

    @property
    def model_is_local(self) -> bool:
        return bool(self.model) and Path(str(self.model)).is_absolute()

    @cached_property
    def model_dir_rel(self) -> str | None:
        """The model directory relative to the root when it lies inside the project."""
        if not self.model_is_local:
            return None
        try:
            return Path(str(self.model)).relative_to(self.root).as_posix()
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
        return rel in docs.LIVING_DOCS

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
        base = Path(str(self.model))
        if not base.is_dir():
            return []
        return sorted(p for p in base.rglob("*") if p.name in MODEL_CONFIG_NAMES and p.is_file())
