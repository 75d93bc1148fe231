"""The `[tool.genai]` table of a generated project's pyproject.toml: where the model is named.

    [tool.genai]
    kind = "llm"        # llm | vlm | diffusion | ml
    model = ""          # hub id, or a path relative to pyproject.toml; empty = embedded tiny model

`find_genai(start)` walks up from `start` (a file or folder) to the first pyproject.toml with a
`[tool.genai]` table and returns what it says; `model_location(root, kind, model)` says where the
model is without touching it (building the embedded tiny model is genai_common.testing.tiny's
job: `tiny.project_model_path`). The project package (genai_common.project) and `genai bench`
with no path both read the table here.
"""

from __future__ import annotations

import tomllib
from collections import namedtuple
from pathlib import Path

from genai_common.findings import PROJECT_KINDS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class GenaiConfigError(Exception):
    """No usable [tool.genai] table above a path (no pyproject.toml has one, or its kind is not
    one of PROJECT_KINDS)."""


class GenaiTable(namedtuple("GenaiTable", "root kind model pyproject")):
    """root: the folder of the pyproject.toml; kind: one of PROJECT_KINDS; model: as written
    (empty = the embedded tiny model); pyproject: the whole parsed pyproject.toml."""

    __slots__ = ()
    root: Path
    kind: str
    model: str
    pyproject: dict[str, Any]


PYPROJECT_CAP = 16 * 1024 * 1024


def load(path: str | Path) -> dict[str, Any]:
    """A pyproject.toml parsed; {} when it is missing or not valid TOML."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def genai_table(pyproject: dict[str, Any]) -> dict[str, Any] | None:
    """The [tool.genai] table of a parsed pyproject.toml, None when it has none."""
    tool = pyproject.get("tool")
    table = tool.get("genai") if isinstance(tool, dict) else None
    return table if isinstance(table, dict) else None


def find_genai(start: str | Path | None = None) -> GenaiTable:
    """The [tool.genai] table of the project holding `start` (default: the current folder).

    Raises GenaiConfigError when no pyproject.toml above `start` has the table, or when its kind
    is not one of PROJECT_KINDS, or a pyproject.toml cannot be read as TOML (the message names
    the line)."""
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in [here, *here.parents] if here.is_dir() else list(here.parents):
        pyproject = folder / "pyproject.toml"
        if not pyproject.is_file():  # follows links; never a FIFO or device
            continue
        try:
            with pyproject.open("rb") as fh:
                data = tomllib.loads(fh.read(PYPROJECT_CAP).decode("utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
            raise GenaiConfigError(f"{pyproject} cannot be read as TOML: {exc}") from None
        table = genai_table(data)
        if table is None:
            continue
        kind = str(table.get("kind", ""))
        if kind not in PROJECT_KINDS:
            raise GenaiConfigError(
                f"{pyproject}: [tool.genai] kind must be one of {PROJECT_KINDS}, not {kind!r}"
            )
        return GenaiTable(folder, kind, str(table.get("model", "") or ""), data)
    raise GenaiConfigError(f"no pyproject.toml with a [tool.genai] table above {here}")


def tiny_dir(root: str | Path, kind: str) -> Path:
    """Where the embedded tiny model of a project of `kind` is built: models/tiny-<kind>."""
    return Path(root) / "models" / f"tiny-{kind}"


def model_location(root: str | Path, kind: str, model: str) -> tuple[str, bool]:
    """(where the model is, whether it is the embedded tiny model), nothing read or built.

    Empty `model`: the tiny model's folder. A path that exists, or one written as a path
    (./, /, ~): that path, relative to `root`. Anything else is a hub id, passed on as written
    (the doctor looks it up in the local Hugging Face cache)."""
    if not model.strip():
        return str(tiny_dir(root, kind)), True
    local = (Path(root) / model).expanduser()
    if local.exists() or model.startswith((".", "/", "~")):
        return str(local), False
    return model, False
