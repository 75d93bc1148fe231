"""`kind` dispatch for the vlm, diffusion and ml comparisons (issue 10 part 6).

The verify entry point (genai_common.verify.verify, the llm core) calls `verify_kind` for
kind "vlm", "diffusion" and "ml" (an MLX module against its PyTorch state dict: verify/ml.py);
`genai quality` in a generated project calls it directly.
"""

from __future__ import annotations

from types import SimpleNamespace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

KINDS = ("vlm", "diffusion", "ml")


def verdict_of(findings: list[Any]) -> str:
    """fail when an error was found, warn for warnings only, else pass."""
    severities = {f.severity for f in findings}
    return "fail" if "error" in severities else "warn" if "warning" in severities else "pass"


def verify_kind(
    kind: str,
    candidate: str,
    reference: str,
    *,
    candidate_dtype: str | None = None,
    reference_dtype: str | None = None,
    reference_backend: str = "mlx",
) -> SimpleNamespace:
    """Compare two vlm or diffusion models (or an MLX module with its PyTorch state dict): an
    object with candidate, reference, verdict, findings, metrics, first_bad_layer (the component
    or layer that differs) and mode. vlm: reference_backend "transformers" runs the reference
    in transformers (the candidate always in mlx-vlm)."""
    if kind == "vlm":
        from genai_common.verify.vlm import verify_vlm as run
    elif kind == "diffusion":
        from genai_common.verify.diffusion import verify_diffusion as run
    elif kind == "ml":
        from genai_common.verify.ml import verify_ml as run
    else:
        raise ValueError(f"verify_kind handles {', '.join(KINDS)}, not {kind!r}")
    dtypes = {"candidate_dtype": candidate_dtype, "reference_dtype": reference_dtype}
    if kind == "vlm":  # the one kind with a transformers reference here (verify/vlm.py)
        findings, metrics = run(candidate, reference, reference_backend=reference_backend, **dtypes)
    else:
        findings, metrics = run(candidate, reference, **dtypes)
    where = {"QLT301": "vae", "QLT302": "vae", "QLT303": "unet"}
    bad = next((where[f.code] for f in findings if f.code in where), None)
    if kind in ("vlm", "ml"):  # the stage their own walk named
        bad = metrics.get("first_bad_layer")
    return SimpleNamespace(
        candidate=candidate,
        reference=reference,
        verdict=verdict_of(findings),
        findings=findings,
        metrics=metrics,
        first_bad_layer=bad,
        mode="in-process",
    )
