"""`genai verify`: a candidate model's outputs against a reference (issue 10). llm: teacher-forced
over the same tokens (verify/llm.py), each side in mlx-lm or transformers (verify/reference_hf.py,
GGUF files too), the failing layer named (verify/localise.py); vlm, diffusion and ml:
verify/kinds.py.

    verify(candidate, reference, ...) -> VerifyResult

Light at import: mlx, mlx_lm and numpy are imported inside the functions that use them.
Thresholds and their calibration: verify/rules.py, reference/DIAGNOSTICS.md.
"""

from __future__ import annotations

import os
from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class VerifyResult(
    namedtuple("VerifyResult", "candidate reference verdict findings metrics first_bad_layer mode")
):
    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": 1,
            "candidate": self.candidate,
            "reference": self.reference,
            "verdict": self.verdict,
            "findings": [f.to_json() for f in self.findings],
            "metrics": self.metrics,
            "first_bad_layer": self.first_bad_layer,
        }


# the extra of pyproject.toml that brings each module verify imports (for the exit-2 line)
EXTRAS = {
    "mlx": "llm",
    "mlx_lm": "llm",
    "numpy": "llm",
    "transformers": "llm",
    "tokenizers": "llm",
    "safetensors": "llm",
    "mlx_vlm": "vlm",
    "PIL": "vlm",
    "torch": "diffusion",
    "diffusers": "diffusion",
    "accelerate": "diffusion",
}


def missing_extra(exc: ImportError) -> str:
    """One line naming the extra to install for a missing module."""
    name = (exc.name or str(exc)).split(".")[0]
    extra = EXTRAS.get(name, "all")
    return f"genai verify: needs {name} ({name} is missing): pip install 'genai-common[{extra}]'"


def resolve(where: str, what: str = "model") -> str:
    """A local path as is; a hub id (org/name[@revision]) as its snapshot in the local Hugging
    Face cache. ValueError with one line when it is neither (nothing is downloaded)."""
    if os.path.exists(where):
        return where
    from genai_common.model.hub import hub_cache_dir, resolve_hub_cache, split_hub_id

    hub = split_hub_id(where) if not where.startswith((".", "/", "~")) else None
    if hub is None:
        raise ValueError(f"genai verify: {what} {where} not found")
    snapshot = resolve_hub_cache(*hub)
    if snapshot is None:
        raise ValueError(
            f"genai verify: {what} {where} not found: not a directory and not in the local Hugging "
            f"Face cache ({hub_cache_dir()}); fetch it first: hf download {hub[0]}"
        )
    return str(snapshot)


class LocaliseError(str):
    """Why the localisation hook could not run (recorded in metrics, not a layer name)."""


def _localise(
    candidate: str, reference: str, backends: tuple[str, str], isolated: bool, **adapters: Any
) -> Any:
    """verify/localise.py's (first bad layer, findings) for two checkpoints (MLX, or one side
    run by transformers), or a LocaliseError saying why it could not run (localisation explains
    a failure; it must never hide the verdict)."""
    from genai_common.verify.localise import localise

    if any(adapters.values()):  # its walk reads plain checkpoints: no adapter on a side
        return LocaliseError("not localised: a side carries an adapter")
    try:
        return localise(candidate, reference, backends=backends, isolated=isolated)
    except Exception as exc:
        return LocaliseError(f"{type(exc).__name__}: {exc}"[:200])


def _backends(candidate: str, reference: str, requested: str | None) -> tuple[str, str]:
    """(candidate backend, reference backend): a backend registered in verify.llm.BACKENDS by
    name puts the reference there; "auto", "transformers" (and a GGUF side) are decided by
    verify/reference_hf.py's choose."""
    from genai_common.verify.llm import BACKENDS
    from genai_common.verify.reference_hf import choose

    if requested not in (None, "auto", "transformers") and requested in BACKENDS:
        return "mlx", requested
    return choose(candidate, reference, requested)


def verify(
    candidate: str,
    reference: str,
    *,
    kind: str | None = None,
    text: str | None = None,
    context: int | None = None,
    reference_adapter: str | None = None,
    candidate_adapter: str | None = None,
    kv_bits: int | None = None,
    kv_group_size: int = 64,
    quantized_kv_start: int = 0,
    isolated: bool | None = None,
    localise: bool = True,
    seed: int = 0,
    reference_backend: str | None = "auto",
) -> VerifyResult:
    """Compare `candidate` with `reference`, teacher-forced over the same tokens (llm: the
    shipped corpus or `text`; see verify/llm.py). isolated: None plans the mode from the weight
    bytes, True / False force it. reference_backend: "auto" (verify/reference_hf.py's choice
    when that module is installed, else mlx-lm), or a name in verify.llm.BACKENDS. CANDIDATE and REFERENCE: directories or hub ids in the local
    cache (resolve)."""
    shown = (str(candidate), str(reference))
    candidate, reference = (
        resolve(str(candidate), "candidate"),
        resolve(str(reference), "reference"),
    )
    candidate_adapter = candidate_adapter and resolve(candidate_adapter, "adapter")
    reference_adapter = reference_adapter and resolve(reference_adapter, "reference adapter")
    backends = _backends(str(candidate), str(reference), reference_backend)
    if kind is None and "gguf" in backends:  # a GGUF file: an llm read by transformers
        kind = "llm"
    if kind is None:
        from genai_common.model import ModelDir

        kind = ModelDir.open(reference).kind
    if kind in ("vlm", "diffusion", "ml"):  # the other kinds: verify/kinds.py (no text or KV)
        from genai_common.verify.kinds import verify_kind

        ref_backend = backends[1] if kind == "vlm" else "mlx"
        done = verify_kind(kind, candidate, reference, reference_backend=ref_backend)
        return VerifyResult(
            candidate,
            reference,
            done.verdict,
            list(done.findings),
            dict(done.metrics),
            done.first_bad_layer,
            done.mode,
        )
    if kind != "llm":
        raise ValueError(
            f"genai verify: kind {kind!r} is not supported yet (llm, vlm, diffusion, ml)"
        )
    from genai_common.verify.kinds import verdict_of
    from genai_common.verify.llm import SideSpec, verify_llm

    chunked = bool(kv_bits)  # the float reference is fed through its cache in the same chunks
    cand_backend, ref_backend = backends
    cand = SideSpec(
        str(candidate),
        candidate_adapter,
        kv_bits,
        kv_group_size,
        quantized_kv_start,
        chunked=chunked,
        backend=cand_backend,
    )
    ref = SideSpec(str(reference), reference_adapter, chunked=chunked, backend=ref_backend)
    findings, metrics, mode, ids = verify_llm(
        cand, ref, text=text, context=context, isolated=isolated, seed=seed
    )
    metrics["backends"] = "/".join(backends)  # candidate/reference
    verdict = verdict_of(findings)
    first_bad = None
    # the layer walk: two MLX checkpoints, or one MLX side against transformers (HF or GGUF)
    walkable = "mlx" in backends
    if verdict == "fail" and localise and not kv_bits and ids is not None and walkable:
        where = _localise(
            str(candidate),
            str(reference),
            backends,
            isolated=mode == "isolated",  # the two models do not fit together: one at a time
            candidate_adapter=candidate_adapter,
            reference_adapter=reference_adapter,
        )
        if isinstance(where, LocaliseError):
            metrics["localise_error"] = str(where)
        else:
            first_bad, more = where
            findings = [*findings, *more]
    return VerifyResult(*shown, verdict, findings, metrics, first_bad, mode)
