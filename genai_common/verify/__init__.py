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


def _log_probs(path: str, max_tokens: int | None) -> tuple[Any, Any, Any]:
    from genai_common.testing.quality import _log_probs as lp

    return lp(path, max_tokens)


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
    localise: bool = True,
    reference_backend: str | None = None,
) -> VerifyResult:
    """Compare `candidate` with `reference` (llm, MLX vs MLX) over the shipped corpus."""
    import numpy as np

    # issue 10 part 1 (verify-reference): a transformers or GGUF side, see verify/reference_hf.py
    from genai_common.verify import reference_hf

    backends = reference_hf.choose(candidate, reference, reference_backend)
    if kind is None and "gguf" in backends:
        kind = "llm"
    if kind is None:
        from genai_common.model import ModelDir

        kind = ModelDir.open(reference).kind
    if kind in ("vlm", "diffusion", "ml"):  # the other kinds: verify/kinds.py (no text or KV)
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
    if text is not None or kv_bits is not None or reference_adapter or candidate_adapter:
        raise ValueError("genai verify: --text, --kv-bits and adapters are not supported yet")
    budget = context if context is not None else 4096
    if backends != ("mlx", "mlx"):  # issue 10 part 1 (verify-reference)
        ref, cand, target, scored = reference_hf.rows(candidate, reference, budget, backends)
    else:
        ref, target, scored = _log_probs(reference, budget)
        cand, _, _ = _log_probs(candidate, budget)
    n = min(len(ref), len(cand))
    ref, cand, target, scored = ref[:n], cand[:n], target[:n], scored[:n]
    rows = np.arange(n)
    kl = (np.exp(ref) * (ref - cand)).sum(axis=-1)[scored]
    top1 = (ref.argmax(-1) == cand.argmax(-1))[scored]
    r5 = np.argsort(-ref, axis=-1)[:, :5]
    c5 = np.argsort(-cand, axis=-1)[:, :5]
    top5 = np.array([len(set(a) & set(b)) / 5 for a, b in zip(r5, c5, strict=True)])[scored]
    nll_r = -ref[rows, target][scored]
    nll_c = -cand[rows, target][scored]
    metrics = {
        "positions": int(scored.sum()),
        "kl_mean": float(kl.mean()),
        "kl_p99": float(np.percentile(kl, 99)),
        "kl_max": float(kl.max()),
        "top1_agreement": float(top1.mean()),
        "top5_overlap": float(top5.mean()),
        "max_abs_dlogprob": float(np.abs(ref - cand)[scored].max()),
        "ppl_reference": float(np.exp(nll_r.mean())),
        "ppl_candidate": float(np.exp(nll_c.mean())),
    }
    metrics["ppl_delta"] = metrics["ppl_candidate"] - metrics["ppl_reference"]
    metrics["backends"] = "/".join(backends)  # candidate/reference (verify-reference)
    from genai_common.findings import run_rule
    from genai_common.verify import rules

    findings = run_rule(rules.distribution, metrics)
    verdict = (
        "fail" if any(f.severity == "error" for f in findings) else "warn" if findings else "pass"
    )
    first_bad_layer = None
    if verdict == "fail" and localise:  # issue 10 part 2: the stage where it broke
        from genai_common.verify.localise import localise as find_stage

        first_bad_layer, more_findings = find_stage(str(candidate), str(reference))
        findings = [*findings, *more_findings]
    return VerifyResult(
        str(candidate), str(reference), verdict, findings, metrics, first_bad_layer, "together"
    )
