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


def _model_class(config: dict[str, Any], model_class: Any) -> Any:
    if model_class is not None:
        return model_class
    model_type = config.get("model_type")
    target = ML_MODEL_TYPES.get(str(model_type))
    if target is None:
        known = ", ".join(sorted(ML_MODEL_TYPES))
        raise ValueError(
            f"no MLX module registered for model_type {model_type!r} (known: {known}); "
            "pass model_class="
        )
    module_name, _, attr = target.partition(":")
    obj = getattr(importlib.import_module(module_name), attr)
    return obj if inspect.isclass(obj) else obj()


def _constructor_kwargs(cls: Any, config: dict[str, Any]) -> dict[str, Any]:
    params = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return {k: v for k, v in config.items() if k != "model_type"}
    return {k: v for k, v in config.items() if k in params}


def load_ml(
    path: str | Path,
    model_class: Any = None,
    *,
    strict: bool = True,
    lazy: bool = False,
    trust_remote_code: bool = False,
) -> Loaded:
    """An MLX module from ``path/config.json`` and ``path/*.safetensors``.

    model_class: the nn.Module class (its constructor gets the config entries whose names it
    accepts, all of them if it takes ``**kwargs``); by default looked up by the config's
    model_type in ``ML_MODEL_TYPES``. strict: every weight must match a parameter and back.
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
    cls = _model_class(config, model_class)

    def build() -> Any:
        model = cls(**_constructor_kwargs(cls, config))
        loaded: list[tuple[str, Any]] = []
        for file in weights:
            loaded.extend(mx.load(file).items())
        model.load_weights(loaded, strict=strict)
        if not lazy:
            mx.eval(model.parameters())
        model.eval()
        return model

    model, record = _timed_load(f"{cls.__name__} + load_weights", path, import_seconds, build)
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
