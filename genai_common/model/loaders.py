"""What the installed MLX loaders read and support, found WITHOUT importing them.

Importing mlx-lm costs seconds (about 10 s with torch installed), so `find_spec` gives the package
folder without running it, the architectures are the file names under `models/` (mlx-lm: one file
per architecture; mlx-vlm: one package per architecture), and MODEL_REMAPPING is read from
`utils.py` as source text (a dict literal of strings; ast.literal_eval for anything else).
Neither ast nor importlib.util is imported on the common path: each costs about a millisecond of
the doctor's start-up.
"""

from __future__ import annotations

import os
import re
import sys
from functools import cache

# Files under mlx_lm/models that are helpers, not architectures.
_HELPERS = frozenset(
    {
        "__init__",
        "base",
        "cache",
        "rope_utils",
        "switch_layers",
        "activations",
        "pipeline",
        "ssm",
        "gated_delta",
        "bitlinear_layers",
        "mla",
        "attention",
    }
)


def find_spec(name: str):  # -> ModuleSpec | None
    """importlib.util.find_spec for a top-level name (the module if imported, else the import
    system's finders), without importing importlib.util and contextlib."""
    module = sys.modules.get(name)
    if module is not None:
        return getattr(module, "__spec__", None)
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is not None:
            spec = find(name, None)
            if spec is not None:
                return spec
    return None


def installed(name: str) -> bool:
    """Whether a top-level package can be imported here (found, not imported)."""
    try:
        return find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _package_dir(name: str) -> str | None:
    try:
        spec = find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.fspath(next(iter(spec.submodule_search_locations)))


_REMAP_RE = re.compile(r"^MODEL_REMAPPING\s*(?::[^=]*)?=\s*\{", re.MULTILINE)


_HEAD_CHARS = 16_384  # MODEL_REMAPPING sits near the top of utils.py (mlx-lm: line 48 of ~1300)


def _remap_literal(text: str) -> str | None:
    """The `{...}` of the first MODEL_REMAPPING assignment, up to its matching brace; None when
    there is none or it does not close within `text`."""
    found = _REMAP_RE.search(text)
    if found is None:
        return None
    depth = 0
    for i in range(found.end() - 1, len(text)):  # the dict literal: up to its matching brace
        char = text[i]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[found.end() - 1 : i + 1]
    return None


def _remapping(utils_py: str | os.PathLike[str]) -> dict[str, str]:
    """MODEL_REMAPPING's literal from the module's source text (never imported, never parsed whole;
    read whole only when the literal does not close within its first _HEAD_CHARS characters)."""
    try:
        with open(utils_py, encoding="utf-8") as fh:
            text = fh.read(_HEAD_CHARS)
            literal = _remap_literal(text)
            if literal is None and len(text) == _HEAD_CHARS:
                literal = _remap_literal(text + fh.read())
    except (OSError, UnicodeDecodeError):
        return {}
    if literal is None:
        return {}
    value = _string_dict(literal)
    if value is None:  # not a plain dict of strings: let Python's own parser read it
        import ast

        try:
            value = ast.literal_eval(literal)
        except (ValueError, SyntaxError):
            return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


_GAP = re.compile(r"(?:\s|#[^\n]*)*")  # whitespace and comments
# one `"key": "value"` entry, either quote, no escapes (then ast reads the literal instead)
_ENTRY = re.compile(
    r"""(?:"(?P<k1>[^"\\\n]*)"|'(?P<k2>[^'\\\n]*)')\s*:\s*"""
    r"""(?:"(?P<v1>[^"\\\n]*)"|'(?P<v2>[^'\\\n]*)')"""
)


def _string_dict(literal: str) -> dict[str, str] | None:
    """`{"a": "b", 'c': 'd',  # comment}` read exactly as ast.literal_eval reads it, or None when
    the literal holds anything else (escapes, numbers, nesting, expressions)."""
    if not literal.startswith("{"):
        return None
    out: dict[str, str] = {}
    pos = _GAP.match(literal, 1).end()
    while not literal.startswith("}", pos):
        m = _ENTRY.match(literal, pos)
        if m is None:
            return None
        key = m["k1"] if m["k1"] is not None else m["k2"]
        out[key] = m["v1"] if m["v1"] is not None else m["v2"]
        pos = _GAP.match(literal, m.end()).end()
        if literal.startswith(",", pos):
            pos = _GAP.match(literal, pos + 1).end()
        elif not literal.startswith("}", pos):
            return None
    return out if pos == len(literal) - 1 else None


@cache
def supported(package: str) -> tuple[frozenset[str], dict[str, str]] | None:
    """(architectures, remapping) of an installed mlx-lm / mlx-vlm, or None when not installed."""
    root = _package_dir(package)
    models = os.path.join(root, "models") if root is not None else ""
    if root is None or not os.path.isdir(models):
        return None
    # mlx-lm: one file per architecture; mlx-vlm: one package per architecture.
    names: set[str] = set()
    with os.scandir(models) as entries:
        for entry in entries:
            if entry.name.startswith(("_", ".")):
                continue
            if entry.name.endswith(".py"):
                names.add(entry.name[:-3])
            elif entry.is_dir():
                names.add(entry.name)
    names -= _HELPERS
    return frozenset(names), _remapping(os.path.join(root, "utils.py"))


@cache
def transformers_model_types() -> frozenset[str] | None:
    """The model families the installed transformers has a folder for (transformers/models/*,
    listed, not imported), or None when transformers is not installed."""
    root = _package_dir("transformers")
    models = os.path.join(root, "models") if root is not None else ""
    if root is None or not os.path.isdir(models):
        return None
    with os.scandir(models) as entries:
        return frozenset(
            e.name for e in entries if e.is_dir() and not e.name.startswith(("_", "."))
        )


def resolve(package: str, model_type: str) -> str | None:
    """The architecture module the loader would import for model_type, or None if it has none."""
    info = supported(package)
    if info is None:
        return None
    names, remap = info
    key = model_type.lower() if package == "mlx_vlm" else model_type
    target = remap.get(key, key)
    if package == "mlx_vlm":
        target = target.replace("-", "_")
    return target if target in names else None


_FOLLOWS_RE = re.compile(r"""lm_head\.weight["']\s+not\s+in\s""")


@cache
def head_follows_weights(package: str, model_type: str) -> bool:
    """Whether the architecture module the loader builds model_type with drops or fills its
    lm_head by what the checkpoint stores (its sanitize() tests `"lm_head.weight" not in
    weights`: mlx-lm's gemma3_text, minicpm, recurrent_gemma; mlx-vlm's florence2, gemma3...):
    then a stored head and a tied config, or the reverse, both load. Read from the module's
    source text, never imported."""
    arch = resolve(package, model_type)
    root = _package_dir(package)
    if arch is None or root is None:
        return False
    where = os.path.join(root, "models", arch)
    paths = [where + ".py"] if package == "mlx_lm" else []
    if os.path.isdir(where):
        with os.scandir(where) as entries:
            paths += [e.path for e in entries if e.name.endswith(".py")]
    for path in paths:
        try:
            with open(path, encoding="utf-8") as fh:
                if _FOLLOWS_RE.search(fh.read()):
                    return True
        except (OSError, UnicodeDecodeError):
            continue
    return False
