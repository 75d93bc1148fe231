"""The cache of trained tiny models: train once per seed and version, copy afterwards.

    root() -> str                         where entries live
    key(kind, variant, seed, module) -> dict
    entry_dir(key) -> str                 the folder an entry has (or will have)
    fetch(key, builder) -> (path, hit)    the model folder of a complete entry, built if missing

Location: $GENAI_TINY_CACHE when set (the value `off` turns the cache off), else
$XDG_CACHE_HOME/genai-common/tiny, else ~/.cache/genai-common/tiny.

The key names everything the bytes depend on: kind, variant, seed, the versions of genai-common,
mlx, mlx-lm, mlx-vlm, tokenizers, transformers, numpy and safetensors, the platform (the CPU's
arithmetic), a hash of the corpus, and the recipe: its hyperparameters (train.LM_RECIPE,
train.RECIPE_CHANGES, train.ML_RECIPE) and a hash of the source of the builder module and of
the modules it trains and writes with (so any change to a recipe, a shape or a writer is a new
key). An entry is `<kind>-<variant>-<seed>-<hash>/` holding `model/` (the files copied to DEST),
`key.json` and `training.json` (what the builder reported).

Entries are written atomically: the builder writes into a `.tmp-*` folder beside the entry, which
is renamed into place only when complete, so a build killed half-way is never taken for an entry
(leftover temp folders older than an hour are removed by the next store).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

FORMAT = 1
PACKAGES = (
    "genai-common",
    "mlx",
    "mlx-lm",
    "mlx-vlm",
    "tokenizers",
    "transformers",
    "numpy",
    "safetensors",
)
# the modules whose source is part of every key (the builder module's is added)
RECIPE_MODULES = (
    "genai_common.testing._files",
    "genai_common.testing.bpe",
    "genai_common.testing.train",
    "genai_common.testing.tiny_llm",
)
STALE_SECONDS = 3600


def root() -> str | None:
    """The cache folder, or None when $GENAI_TINY_CACHE is `off`."""
    value = os.environ.get("GENAI_TINY_CACHE")
    if value:
        return None if value.lower() in ("off", "0", "no", "false") else value
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "genai-common", "tiny")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _source_hash(modules: list[str]) -> str:
    import importlib.util

    h = hashlib.sha256()
    for name in sorted(set(modules)):
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec else None
        h.update(name.encode() + b"\0")
        if origin and os.path.isfile(origin):
            with open(origin, "rb") as handle:
                h.update(handle.read())
    return h.hexdigest()


def key(kind: str, variant: str, seed: int, module: str) -> dict[str, Any]:
    """Everything the built files depend on (`module`: the builder's module name)."""
    from genai_common import corpus
    from genai_common.testing import train

    return {
        "format": FORMAT,
        "kind": kind,
        "variant": variant,
        "seed": seed,
        "versions": {p: _version(p) for p in PACKAGES},
        "platform": f"{platform.system()}-{platform.machine()}",
        "corpus": corpus.digest(),
        "recipe": {
            "lm": train.LM_RECIPE,
            "lm_changes": train.RECIPE_CHANGES,
            "ml": train.ML_RECIPE,
            "source": _source_hash([*RECIPE_MODULES, module]),
        },
    }


def digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def entry_dir(key: dict[str, Any], base: str | None = None) -> str:
    base = base or root()
    if base is None:
        raise ValueError("the tiny-model cache is off (GENAI_TINY_CACHE=off)")
    name = f"{key['kind']}-{key['variant']}-{key['seed']}-{digest(key)[:16]}"
    return os.path.join(base, name)


def _complete(entry: str, key: dict[str, Any]) -> bool:
    try:
        with open(os.path.join(entry, "key.json")) as handle:
            return json.load(handle) == key and os.path.isdir(os.path.join(entry, "model"))
    except (OSError, ValueError):
        return False


def _remove_stale(base: str) -> None:
    now = time.time()
    for name in os.listdir(base):
        path = os.path.join(base, name)
        if name.startswith(".tmp-") and now - os.path.getmtime(path) > STALE_SECONDS:
            shutil.rmtree(path, ignore_errors=True)


def fetch(
    key: dict[str, Any], builder: Callable[[Path], Any], base: str | None = None
) -> tuple[Path, bool]:
    """(the entry's model folder, whether it was a hit). On a miss, builder(folder) writes the
    model into an empty folder (and may return a dict of figures, kept as training.json); the
    entry appears atomically when the builder has returned."""
    entry = entry_dir(key, base)
    if _complete(entry, key):
        return Path(entry) / "model", True
    parent = os.path.dirname(entry)
    os.makedirs(parent, exist_ok=True)
    _remove_stale(parent)
    tmp = tempfile.mkdtemp(prefix=".tmp-" + os.path.basename(entry) + "-", dir=parent)
    try:
        model = Path(tmp) / "model"
        model.mkdir()
        started = time.perf_counter()
        figures = builder(model)
        record = {"build_seconds": round(time.perf_counter() - started, 3)}
        if isinstance(figures, dict):
            record.update(figures)
        with open(os.path.join(tmp, "training.json"), "w") as handle:
            json.dump(record, handle, indent=2, sort_keys=True)
        with open(os.path.join(tmp, "key.json"), "w") as handle:
            json.dump(key, handle, indent=2, sort_keys=True)
        if os.path.exists(entry) and not _complete(entry, key):
            shutil.rmtree(entry, ignore_errors=True)  # not ours to trust: replace it
        try:
            os.rename(tmp, entry)
        except OSError:  # another process completed the same entry first: keep theirs
            if not _complete(entry, key):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Path(entry) / "model", False
