"""Code a model folder names for a loader to run: the trust boundary of --load, --infer,
`genai diagnostics` and `genai bench` (issue 15).

    scan(root) -> list[CustomCode]    every place a loader would import Python from the folder

What runs what (mlx-lm 0.32.2, mlx-vlm 0.7.10, transformers 5.25, diffusers 0.42.1, read in their
source):

- config.json `model_file`: mlx-vlm's get_model_and_args imports it on load WITHOUT asking
  (relative to the folder, or any absolute path); mlx-lm imports it with trust_remote_code=True.
- `auto_map` in config.json, tokenizer_config.json, processor_config.json,
  preprocessor_config.json (any *config*.json of the folder or of a diffusers component):
  transformers imports the named module when trust_remote_code is True; mlx-vlm's
  load_image_processor passes trust_remote_code=True on its own, and mlx-lm's sharded load
  gives the tokenizer trust_remote_code=True by default.
- model_index.json: a `_class_name` given as [module, class] (a custom pipeline) or a component
  whose library is neither diffusers nor transformers nor a null: diffusers imports that module
  from the folder (trust_remote_code).

Nothing here imports or runs anything: it reads small JSON files (capped, never FIFOs or
devices) and names the files. Values are shown with repr() and cut, so a hostile name cannot
inject control characters or flood the output.
"""

from __future__ import annotations

import json
import os
import stat
from collections import namedtuple

CONFIG_CAP = 8 * 1024 * 1024  # a config is KBs; a bigger one is judged by the static pass
MAX_FILES = 64  # config files looked at per folder, and component folders
SHOWN = 120  # characters of a value shown in a message
LIBRARIES = ("diffusers", "transformers", "mlx", "mlx_lm", "mlx_vlm", "torch", None)


# file: the config that names the code (relative to the model folder); key: model_file,
# auto_map[...], _class_name or a component; target: the Python file (or remote module) it
# names; loader: who would run it, and when
CustomCode = namedtuple("CustomCode", "file key target loader")


def message(code: CustomCode) -> str:
    """One line: which config names which file, and which loader would run it."""
    return f"{code.file} {code.key} -> {_show(code.target)}: {code.loader}"


def _show(value: object) -> str:
    text = repr(value) if not isinstance(value, str) else repr(value)[1:-1]
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."


def _read_json(path: str) -> object:
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > CONFIG_CAP:
            return None
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            raw = fh.read(CONFIG_CAP + 1)
        return json.loads(raw)
    except (OSError, ValueError, RecursionError, UnicodeDecodeError):
        return None


def _module_file(folder: str, rel_folder: str, reference: object) -> str | None:
    """The file an auto_map reference ("module.Class", "repo--module.Class") names."""
    if isinstance(reference, (list, tuple)):
        reference = next((r for r in reference if isinstance(r, str) and r), None)
    if not isinstance(reference, str) or "." not in reference:
        return None
    repo, _, ref = reference.rpartition("--")
    module = ref.rpartition(".")[0]
    if repo:
        return f"{module}.py from the hub repo {repo}"
    return os.path.join(rel_folder, module + ".py") if rel_folder else module + ".py"


def _auto_map(root: str, rel_folder: str, name: str, data: dict) -> list:
    auto_map = data.get("auto_map")
    if not auto_map:
        return []
    rel = os.path.join(rel_folder, name) if rel_folder else name
    if isinstance(auto_map, dict):
        entries = auto_map.items()
    elif isinstance(auto_map, list):
        entries = enumerate(auto_map)
    else:  # not a map transformers reads: nothing names a module
        return []
    targets: dict[str, str] = {}
    for i, (cls, reference) in enumerate(entries):
        if i >= MAX_FILES:
            break
        target = _module_file(root, rel_folder, reference)
        if target is not None:
            targets.setdefault(target, str(cls))
    if not targets and isinstance(auto_map, (dict, list)):
        targets[_show(auto_map)] = "auto_map"
    loader = "transformers imports it (trust_remote_code); mlx-vlm's load asks for that on its own"
    return [
        CustomCode(rel, f"auto_map[{_show(cls)}]", target, loader)
        for target, cls in list(targets.items())[:8]
    ]


# The configs the loaders read by name: looked at whatever the listing holds (64 junk
# "*config*.json" files listed first must not hide them)
READ_BY_NAME = (
    "config.json",
    "tokenizer_config.json",
    "processor_config.json",
    "preprocessor_config.json",
)


def _config_names(folder: str) -> list[str]:
    """The folder's *config*.json names: the ones loaders read by name first, then up to
    MAX_FILES others; a final None when more were left out."""
    names = [n for n in READ_BY_NAME if os.path.isfile(os.path.join(folder, n))]
    try:
        with os.scandir(folder) as it:
            for entry in it:
                if entry.name.endswith(".json") and "config" in entry.name:
                    if entry.name in names:
                        continue
                    if len(names) >= MAX_FILES:
                        return [*names, None]  # type: ignore[list-item]
                    names.append(entry.name)
    except OSError:
        return names
    return names


def _unchecked(rel: str, path: str) -> CustomCode | None:
    """An entry for a config that could not be read for what code it names while a loader would
    still read it: a regular file over CONFIG_CAP (Python's json reads any size). None when it
    is absent, not a regular file, or small (then JSON the loaders cannot parse either)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_size <= CONFIG_CAP:
        return None
    return CustomCode(
        rel,
        "(not checked)",
        f"{st.st_size:,} bytes, over the {CONFIG_CAP:,} read",
        "too large to check for model_file/auto_map, and a loader reads it whole",
    )


def _too_many(rel_folder: str) -> CustomCode:
    return CustomCode(
        rel_folder or ".",
        "(not checked)",
        f"more than {MAX_FILES} *config*.json files",
        "not all could be checked for model_file/auto_map",
    )


def scan(root: str | os.PathLike[str], md: object = None) -> list:
    """Every piece of code the folder names for a loader to run (empty: none). With `md` (the
    doctor's ModelDir of `root`), its listing and its cached JSON are used: nothing is read
    twice."""
    root = os.fspath(root)
    if os.path.isfile(root):  # a single weights file: nothing names code
        return []
    found: list = []
    names = _config_names(root)
    if names and names[-1] is None:
        found.append(_too_many(""))
        names = names[:-1]
    for name in names:
        data = md.json(name) if md is not None else None
        if data is None:  # no ModelDir, or one that did not read it (malformed, cut listing)
            data = _read_json(os.path.join(root, name))
        if not isinstance(data, dict):
            unchecked = _unchecked(name, os.path.join(root, name))
            if unchecked is not None:
                found.append(unchecked)
            continue
        model_file = data.get("model_file") if name == "config.json" else None
        if model_file is not None:
            target = str(model_file)
            where = target if os.path.isabs(target) else os.path.join(root, target)
            found.append(
                CustomCode(
                    name,
                    "model_file",
                    os.path.normpath(where),
                    "mlx-vlm imports and runs it on load without asking "
                    "(mlx-lm with trust_remote_code)",
                )
            )
        found.extend(_auto_map(root, "", name, data))
    index = _read_json(os.path.join(root, "model_index.json"))
    if isinstance(index, dict):
        found.extend(_diffusers(root, index))
    else:
        unchecked = _unchecked("model_index.json", os.path.join(root, "model_index.json"))
        if unchecked is not None:
            found.append(unchecked)
    return found


def _diffusers(root: str, index: dict) -> list:
    found = []
    loader = "diffusers imports it from the folder (trust_remote_code)"
    cls = index.get("_class_name")
    if isinstance(cls, list) and cls and isinstance(cls[0], str):
        found.append(CustomCode("model_index.json", "_class_name", cls[0] + ".py", loader))
    for i, (component, value) in enumerate(index.items()):
        if i >= MAX_FILES:
            break
        if component.startswith("_") or not isinstance(value, list) or len(value) != 2:
            continue
        library = value[0]
        if library not in LIBRARIES and isinstance(library, str):
            target = os.path.join(component, library + ".py")
            found.append(CustomCode("model_index.json", _show(component), target, loader))
        if "/" in component or "\\" in component or component in (".", ".."):
            continue
        folder = os.path.join(root, component)
        if not os.path.isdir(folder) or os.path.islink(folder):
            continue
        names = _config_names(folder)
        if names and names[-1] is None:
            found.append(_too_many(component))
            names = names[:-1]
        for name in names:
            data = _read_json(os.path.join(folder, name))
            if isinstance(data, dict):
                found.extend(_auto_map(root, component, name, data))
            else:
                unchecked = _unchecked(f"{component}/{name}", os.path.join(folder, name))
                if unchecked is not None:
                    found.append(unchecked)
    return found
