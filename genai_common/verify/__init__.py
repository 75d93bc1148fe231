"""`genai verify`: a candidate model's outputs against a reference, teacher-forced over the
shipped corpus (issue 10). llm: MLX against MLX (same tokenizer); vlm and diffusion: verify/kinds.py.

    verify(candidate, reference, ...) -> VerifyResult

Light at import: mlx, mlx_lm and numpy are imported inside the functions that use them.
Thresholds are provisional (not yet calibrated; see TODO.md, issue 10).
"""

from __future__ import annotations

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


def _localise(candidate: str, reference: str, ids: list[int] | None, **adapters: Any) -> Any:
    """verify/localise.py's first_bad_layer when that module exists (it is optional): the
    name of the first layer that differs, or (name, findings); None when it cannot say."""
    try:
        from genai_common.verify import localise
    except ImportError:
        return None
    first_bad_layer = getattr(localise, "first_bad_layer", None)
    if first_bad_layer is None:
        return None
    return first_bad_layer(candidate, reference, ids=ids, **adapters)


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
) -> VerifyResult:
    """Compare `candidate` with `reference`, teacher-forced over the same tokens (llm: the
    shipped corpus or `text`; see verify/llm.py). isolated: None plans the mode from the weight
    bytes, True / False force it."""
    if kind is None:
        from genai_common.model import ModelDir

        kind = ModelDir.open(reference).kind
    if kind in ("vlm", "diffusion"):  # the other kinds: verify/kinds.py (no text or KV options)
        from genai_common.verify.kinds import verify_kind

        done = verify_kind(kind, candidate, reference)
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
        raise ValueError(f"genai verify: kind {kind!r} is not supported yet (llm, vlm, diffusion)")
    from genai_common.verify.kinds import verdict_of
    from genai_common.verify.llm import SideSpec, verify_llm

    chunked = bool(kv_bits)  # the float reference is fed through its cache in the same chunks
    cand = SideSpec(
        str(candidate),
        candidate_adapter,
        kv_bits,
        kv_group_size,
        quantized_kv_start,
        chunked=chunked,
    )
    ref = SideSpec(str(reference), reference_adapter, chunked=chunked)
    findings, metrics, mode, ids = verify_llm(
        cand, ref, text=text, context=context, isolated=isolated, seed=seed
    )
    verdict = verdict_of(findings)
    first_bad = None
    if verdict == "fail" and localise and not kv_bits and ids is not None:
        where = _localise(
            str(candidate),
            str(reference),
            ids,
            candidate_adapter=candidate_adapter,
            reference_adapter=reference_adapter,
        )
        if isinstance(where, tuple):
            first_bad, more = where
            findings = [*findings, *more]
        else:
            first_bad = where
    return VerifyResult(str(candidate), str(reference), verdict, findings, metrics, first_bad, mode)
