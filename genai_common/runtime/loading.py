"""Loading helpers: the model, what it needs to run, and a record of time and memory.

    load_llm(path, **kw)        mlx_lm.load          -> model, tokenizer, config
    load_vlm(path, **kw)        mlx_vlm.load         -> model, processor, config
    load_diffusion(path, **kw)  diffusers DiffusionPipeline.from_pretrained -> pipeline (torch)
    load_ml(path, model_class=None, **kw)  an MLX module from config.json + *.safetensors

Each returns a ``Loaded`` whose ``record`` (``LoadRecord``) holds the load seconds (the library
import is timed apart: mlx-lm imports transformers, seconds on its own), and the memory before,
after and at the peak of the load (MLX peak scoped to the load; sampled RSS peak).

Loads are not lazy by default (``lazy=False`` in mlx-lm and mlx-vlm evaluates the weights), so the
time includes reading them. ``load_summary(kind, path)`` returns a plain dict for use in a child
process: ``run_isolated("genai_common.runtime.loading:load_summary", "llm", path)``.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from genai_common.runtime.memory import MemorySnapshot, track_memory

# model_type -> "module:attr": an MLX nn.Module class, or a zero-argument function returning one.
# Its constructor receives the config.json entries whose names it accepts.
ML_MODEL_TYPES: dict[str, str] = {
    "tiny_mlp": "genai_common.testing.tiny_ml:module_class",
}


@dataclasses.dataclass(frozen=True)
class LoadRecord:
    loader: str
    path: str
    seconds: float
    import_seconds: float
    memory_before: MemorySnapshot | None = None
    memory_after: MemorySnapshot | None = None
    mlx_peak: int | None = None
    mlx_peak_delta: int | None = None
    rss_peak: int | None = None
    rss_peak_delta: int | None = None

    @property
    def mlx_added(self) -> int | None:
        """MLX active bytes the load left allocated (roughly the weights)."""
        before = self.memory_before.mlx_active if self.memory_before else None
        after = self.memory_after.mlx_active if self.memory_after else None
        return None if before is None or after is None else after - before

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["mlx_added"] = self.mlx_added
        return data


@dataclasses.dataclass
class Loaded:
    """A loaded model. ``tokenizer`` (llm), ``processor`` (vlm) or ``pipeline`` (diffusion) is
    what runs it; ``config`` is its config.json as a dict where there is one."""

    kind: str
    model: Any
    record: LoadRecord
    tokenizer: Any = None
    processor: Any = None
    pipeline: Any = None
    config: dict[str, Any] | None = None


class CustomCodeRefused(PermissionError):
    """The model folder names Python code a loader would run, and trust_remote_code was not
    given for this load: refused before any loader library is imported (issue 15)."""


TRUST_FLAG = "--trust-remote-code"


def refuse_custom_code(path: str | Path, trust: bool = False) -> None:
    """Raise CustomCodeRefused when `path` names code a loader would run and `trust` is False.
    Runs before the loader library is imported: nothing of the folder executes."""
    if trust:
        return
    from genai_common.model import custom_code

    where = str(path)
    if not os.path.exists(where):  # a hub id: judge its snapshot in the local cache
        from genai_common.model.hub import resolve_hub_cache, split_hub_id

        hub = split_hub_id(where)
        snapshot = resolve_hub_cache(*hub) if hub else None
        if hub and snapshot is None:
            # Not downloaded: the loader would fetch the repository and could import code it
            # names before anything here has read it (mlx-vlm imports model_file unasked).
            raise CustomCodeRefused(
                f"not loaded: {where} is neither a local path nor in the local Hugging Face cache, "
                "so what code it "
                "names cannot be read before a loader downloads and runs it. Download it first "
                f"(`hf download {hub[0]}"
                + (f" --revision {hub[1]}" if hub[1] else "")
                + f"`), then run again; or pass {TRUST_FLAG} (this run only)"
            )
        where = str(snapshot) if snapshot is not None else where
    found = custom_code.scan(where)
    if found:
        named = "; ".join(custom_code.message(c) for c in found[:4])
        more = f" (and {len(found) - 4} more)" if len(found) > 4 else ""
        raise CustomCodeRefused(
            f"not loaded: the model folder names code a loader would run: {named}{more}. "
            f"Read it; if you trust it, run again with {TRUST_FLAG} (this run only)"
        )


def _trust(kwargs: dict[str, Any], path: str | Path) -> bool:
    """Pop our trust flag, check the folder, and tell the library exactly what was decided."""
    trust = kwargs.pop("trust_remote_code", False) is True
    refuse_custom_code(path, trust)
    return trust


def _timed_import(name: str) -> tuple[Any, float]:
    start = time.perf_counter()
    module = importlib.import_module(name)
    return module, time.perf_counter() - start


def _read_config(path: str | Path) -> dict[str, Any] | None:
    config = Path(path) / "config.json"
    if not config.is_file():
        return None
    try:
        return json.loads(config.read_text())
    except (OSError, ValueError):
        return None


read_config = _read_config  # config.json as a dict, None when missing or unreadable


def _timed_load(
    loader: str, path: str | Path, import_seconds: float, fn: Callable[[], Any]
) -> tuple[Any, LoadRecord]:
    """Run the loader call `fn` under track_memory and a clock: (its result, the load record)."""
    with track_memory() as track:
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
    record = LoadRecord(
        loader=loader,
        path=str(path),
        seconds=seconds,
        import_seconds=import_seconds,
        memory_before=track.before,
        memory_after=track.after,
        mlx_peak=track.mlx_peak,
        mlx_peak_delta=track.mlx_peak_delta,
        rss_peak=track.rss_peak,
        rss_peak_delta=track.rss_peak_delta,
    )
    return result, record


def load_llm(path: str | Path, **kwargs: Any) -> Loaded:
    """``mlx_lm.load(path, **kwargs)``: model and tokenizer (a TokenizerWrapper). Refused
    (CustomCodeRefused) when the folder names code, unless ``trust_remote_code=True``."""
    trust = _trust(kwargs, path)
    kwargs["trust_remote_code"] = trust
    if not trust:
        kwargs.setdefault("tokenizer_config", {"trust_remote_code": False})
    mlx_lm, import_seconds = _timed_import("mlx_lm")
    kwargs.setdefault("return_config", True)
    result, record = _timed_load(
        "mlx_lm.load", path, import_seconds, lambda: mlx_lm.load(str(path), **kwargs)
    )
    model, tokenizer, *rest = result
    config = rest[0] if rest else _read_config(path)
    return Loaded(
        kind="llm",
        model=model,
        tokenizer=tokenizer,
        config=config,
        record=record,
    )


def load_vlm(path: str | Path, **kwargs: Any) -> Loaded:
    """``mlx_vlm.load(path, **kwargs)``: model and processor. Refused (CustomCodeRefused) when
    the folder names code (mlx-vlm imports model_file without asking), unless
    ``trust_remote_code=True``."""
    kwargs["trust_remote_code"] = _trust(kwargs, path)
    mlx_vlm, import_seconds = _timed_import("mlx_vlm")
    (model, processor), record = _timed_load(
        "mlx_vlm.load", path, import_seconds, lambda: mlx_vlm.load(str(path), **kwargs)
    )
    return Loaded(
        kind="vlm",
        model=model,
        processor=processor,
        config=_read_config(path),
        record=record,
    )


def load_diffusion(path: str | Path, **kwargs: Any) -> Loaded:
    """``diffusers.DiffusionPipeline.from_pretrained(path, **kwargs)`` (PyTorch), with every
    component that model_index.json sets to [null, null] passed as None; model is the pipeline's
    denoiser (unet or transformer), pipeline is the whole pipeline. Refused
    (CustomCodeRefused) when the folder names code, unless ``trust_remote_code=True``."""
    kwargs["trust_remote_code"] = _trust(kwargs, path)
    diffusers, import_seconds = _timed_import("diffusers")
    index = Path(path) / "model_index.json"
    config = json.loads(index.read_text()) if index.is_file() else None
    # A component saved as [null, null] that the class requires (SD3 without T5: text_encoder_3,
    # tokenizer_3) loads only when passed as None, as users do; else diffusers raises "expected".
    entries = config.items() if isinstance(config, dict) else ()
    nulls = {k: None for k, v in entries if v == [None, None] and not k.startswith("_")}
    pipeline, record = _timed_load(
        "DiffusionPipeline.from_pretrained",
        path,
        import_seconds,
        lambda: diffusers.DiffusionPipeline.from_pretrained(str(path), **(nulls | kwargs)),
    )
    model = getattr(pipeline, "unet", None) or getattr(pipeline, "transformer", None) or pipeline
    return Loaded(
        kind="diffusion",
        model=model,
        pipeline=pipeline,
        config=config,
        record=record,
    )


class ModuleLoadError(ValueError):
    """An ml model that could not be built or loaded, with the LOAD05x code(s) that say why.

    The message is one line per problem, each ``CODE: text``, so that it survives a child process
    (``run_isolated`` returns "ModuleLoadError: <message>") and the doctor turns each line into
    its finding (genai_common.doctor.rules.load, LOAD050-LOAD059)."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = list(problems)
        self.codes = [code for code, _ in problems]
        super().__init__("\n".join(f"{code}: {text}" for code, text in problems))


MODULE_PATH_FORM = "package.module:ClassName"
MAX_NAMES = 6


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMES])
    return shown + (f" (and {len(names) - MAX_NAMES} more)" if len(names) > MAX_NAMES else "")


def _genai_key(start: str | Path | None, key: str) -> tuple[str, Path] | None:
    """(the [tool.genai] `key` value, the project root) of the project holding `start` (None:
    the current folder), None when it has no such non-empty string."""
    from genai_common.formats.pyproject import GenaiConfigError, find_genai, genai_table

    try:
        table = find_genai(start)
    except (GenaiConfigError, OSError, ValueError):
        return None
    value = (genai_table(table.pyproject) or {}).get(key)
    if isinstance(value, str) and value.strip():
        return value.strip(), Path(table.root)
    return None


def project_module(
    path: str | Path | None = None, *, trust: bool = False, key: str = "module"
) -> tuple[str, Path] | None:
    """(``[tool.genai] module``, the project root) of the current folder's project.

    The project holding `path` counts only when it is that project, or with `trust`: naming a
    model folder inside someone else's project must not import that project's code (the trust
    boundary of issue 15). Otherwise ModuleLoadError LOAD057 says where to run from. None when no
    project names a module. `key` reads another entry the same way (torch_module)."""
    here = _genai_key(None, key)
    if here is not None:
        return here
    there = _genai_key(path, key) if path is not None else None
    if there is None or trust:
        return there
    value, root = there
    raise ModuleLoadError(
        [
            (
                "LOAD057",
                f"{root / 'pyproject.toml'} names {key} {value!r}, but it is not the project of "
                f"the current folder: its code is imported only from inside it (cd {root}) or "
                "with --trust-remote-code",
            )
        ]
    )


def import_module_class(spec: str, root: str | Path | None = None) -> Any:
    """The class named by ``"pkg.mod:Class"``, imported with the project's ``src/`` (and root)
    on sys.path. ModuleLoadError LOAD050 (malformed), LOAD051 (import fails: the exception's
    first line), LOAD052 (no such class in the module)."""
    import re
    import sys

    module_name, sep, attr = spec.partition(":")
    dotted = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
    if not sep or not re.fullmatch(dotted, module_name) or not re.fullmatch(dotted, attr):
        raise ModuleLoadError(
            [("LOAD050", f"module {spec!r} is not of the form {MODULE_PATH_FORM!r}")]
        )
    if root is not None:
        for extra in (Path(root), Path(root) / "src"):  # src/ ends first on the path
            if extra.is_dir() and str(extra) not in sys.path:
                sys.path.insert(0, str(extra))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import-time error of the user's code is the finding
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ModuleLoadError(
            [("LOAD051", f"import {module_name} failed: {type(exc).__name__}: {first}")]
        ) from None
    obj = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            found = sorted(n for n, v in vars(module).items() if inspect.isclass(v))
            raise ModuleLoadError(
                [
                    (
                        "LOAD052",
                        f"{module_name} has no {attr!r} (its classes: {_names(found) or 'none'})",
                    )
                ]
            )
    return obj


def module_class_for(
    config: dict[str, Any], model_class: Any, path: Path, *, trust: bool = False
) -> Any:
    """The class to build: `model_class` when given (a class, or a "pkg.mod:Class" string),
    else the [tool.genai] module of the current folder's project (of the project holding `path`
    only with `trust`: project_module), else the class registered for the config's model_type
    in ML_MODEL_TYPES."""
    named = project_module(path, trust=trust)
    if isinstance(model_class, str):
        return import_module_class(model_class, named[1] if named else None)
    if model_class is not None:
        return model_class
    if named is not None:
        return import_module_class(*named)
    model_type = config.get("model_type")
    target = ML_MODEL_TYPES.get(str(model_type))
    if target is None:
        known = ", ".join(sorted(ML_MODEL_TYPES))
        raise ModuleLoadError(
            [
                (
                    "LOAD057",
                    f"no MLX module for model_type {model_type!r} (built in: {known}): set "
                    f'[tool.genai] module = "{MODULE_PATH_FORM}" in pyproject.toml, or pass '
                    "model_class=",
                )
            ]
        )
    module_name, _, attr = target.partition(":")
    obj = getattr(importlib.import_module(module_name), attr)
    return obj if inspect.isclass(obj) else obj()


def _constructor_kwargs(cls: Any, config: dict[str, Any]) -> dict[str, Any]:
    params = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return {k: v for k, v in config.items() if k != "model_type"}
    return {k: v for k, v in config.items() if k in params}


def build_module(cls: Any, config: dict[str, Any]) -> Any:
    """An instance of `cls` from a config dict: ``cls.from_config(config)`` when the class has
    that classmethod, else ``cls(**the config keys its constructor accepts)``. ModuleLoadError
    LOAD053 names the required arguments the config lacks, or the constructor's own error."""
    name = getattr(cls, "__name__", repr(cls))
    if callable(getattr(cls, "from_config", None)):
        try:
            return cls.from_config(dict(config))
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            raise ModuleLoadError(
                [
                    (
                        "LOAD053",
                        f"{name}.from_config(config.json) raised {type(exc).__name__}: {first}",
                    )
                ]
            ) from None
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        params = {}
    required = [
        n
        for n, p in params.items()
        if p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    missing = [n for n in required if n not in config]
    if missing:
        given = sorted(k for k in config if k != "model_type")
        raise ModuleLoadError(
            [
                (
                    "LOAD053",
                    f"{name}() needs {_names(missing)}, which config.json does not give "
                    f"(it gives: {_names(given) or 'nothing'})",
                )
            ]
        )
    kwargs = _constructor_kwargs(cls, config) if params else {}
    try:
        return cls(**kwargs)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ModuleLoadError(
            [
                (
                    "LOAD053",
                    f"{name}({_names(sorted(kwargs))}) from config.json raised "
                    f"{type(exc).__name__}: {first}",
                )
            ]
        ) from None


def _layout_hint(module: Any, name: str, have: tuple[int, ...], want: tuple[int, ...]) -> str:
    """Why a weight's shape differs, when a layout explains it: a PyTorch convolution or
    transposed convolution weight not moved to MLX's (out, *kernel, in); a transposed Linear."""
    import mlx.nn as nn

    owner = module
    for part in name.split(".")[:-1]:
        owner = owner[int(part)] if isinstance(owner, list) else getattr(owner, part, None)
        if owner is None:
            return ""
    leaf = name.rsplit(".", 1)[-1]
    kind = type(owner).__name__
    if leaf == "weight" and kind.startswith("ConvTranspose") and len(want) >= 3:
        torch_shape = (want[-1], want[0], *want[1:-1])  # PyTorch (in, out, *k)
        if have == torch_shape:
            return (
                f"; PyTorch {kind} layout (in, out, *k): MLX wants (out, *k, in): convert with "
                "w.transpose(1, 2, ..., 0) (genai_common.workflows.port.port_state_dict does it)"
            )
    if leaf == "weight" and kind.startswith("Conv") and len(want) >= 3:
        torch_shape = (want[0], want[-1], *want[1:-1])  # PyTorch (out, in, *k)
        if have == torch_shape:
            return (
                f"; PyTorch {kind} layout (out, in, *k): MLX wants (out, *k, in): convert with "
                "np.moveaxis(w, 1, -1) (genai_common.workflows.port.port_state_dict does it)"
            )
    if isinstance(owner, nn.Linear) and have == want[::-1]:
        return "; it is the transpose: a Linear weight is (out, in) in MLX and PyTorch"
    return ""


def match_weights(module: Any, weights: dict[str, Any]) -> list[tuple[str, str]]:
    """The strict name and shape comparison of `weights` against `module`'s parameters:
    (code, text) for missing (LOAD054), unexpected (LOAD055) and mismatched shapes (LOAD056)."""
    from mlx.utils import tree_flatten

    params = {n: tuple(p.shape) for n, p in tree_flatten(module.parameters())}
    have = {n: tuple(w.shape) for n, w in weights.items()}
    problems: list[tuple[str, str]] = []
    missing = sorted(set(params) - set(have))
    extra = sorted(set(have) - set(params))
    if missing:
        problems.append(
            (
                "LOAD054",
                f"{len(missing)} parameter(s) of the module not in the weights: {_names(missing)}",
            )
        )
    if extra:
        problems.append(
            (
                "LOAD055",
                f"{len(extra)} tensor(s) in the weights the module does not have: {_names(extra)}",
            )
        )
    shapes = [
        f"{n} {have[n]} vs module {params[n]}{_layout_hint(module, n, have[n], params[n])}"
        for n in sorted(set(params) & set(have))
        if have[n] != params[n]
    ]
    if shapes:
        problems.append(("LOAD056", f"{len(shapes)} shape mismatch(es): {_names(shapes)}"))
    return problems


def load_ml(
    path: str | Path,
    model_class: Any = None,
    *,
    strict: bool = True,
    lazy: bool = False,
    trust_remote_code: bool = False,
) -> Loaded:
    """An MLX module from ``path/config.json`` and ``path/*.safetensors``.

    model_class: the nn.Module class or a ``"pkg.mod:Class"`` string; by default the
    ``[tool.genai] module`` of the current folder's project (its src/ goes on sys.path; the
    project holding `path` only when it is that one, or with trust_remote_code), else the class registered for the config's model_type in ``ML_MODEL_TYPES``.
    The module is built with ``from_config(config)`` when the class has it, else with the config
    entries its constructor accepts (all of them if it takes ``**kwargs``). strict: every weight
    must match a parameter by name and shape and back. Failures raise ModuleLoadError (a
    ValueError) whose lines carry the LOAD05x codes.
    """
    refuse_custom_code(path, trust_remote_code is True)
    mx, import_seconds = _timed_import("mlx.core")
    path = Path(path)
    config = _read_config(path)
    if config is None:
        raise FileNotFoundError(f"{path}: no readable config.json")
    weights = sorted(str(p) for p in path.glob("*.safetensors"))
    if not weights:
        raise FileNotFoundError(f"{path}: no *.safetensors file")
    cls = module_class_for(config, model_class, path, trust=trust_remote_code is True)

    def build() -> Any:
        model = build_module(cls, config)
        loaded: dict[str, Any] = {}
        for file in weights:
            loaded.update(mx.load(file))
        if strict:
            problems = match_weights(model, loaded)
            if problems:
                raise ModuleLoadError(problems)
        model.load_weights(list(loaded.items()), strict=strict)
        if not lazy:
            mx.eval(model.parameters())
        model.eval()
        return model

    name = getattr(cls, "__name__", "module")
    model, record = _timed_load(f"{name} + load_weights", path, import_seconds, build)
    return Loaded(kind="ml", model=model, config=config, record=record)


LOADERS: dict[str, Callable[..., Loaded]] = {
    "llm": load_llm,
    "vlm": load_vlm,
    "diffusion": load_diffusion,
    "ml": load_ml,
}


def load_summary(kind: str, path: str | Path, **kwargs: Any) -> dict[str, Any]:
    """Load and return the record as a plain dict (picklable: for ``run_isolated``)."""
    loaded = LOADERS[kind](path, **kwargs)
    summary = loaded.record.to_json()
    summary["kind"] = kind
    summary["model_type"] = (loaded.config or {}).get("model_type")
    return summary
