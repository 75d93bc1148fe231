"""QLT: output quality against a reference (`genai verify`). Each rule judges the metrics dict
that verify() computed. Thresholds are provisional (calibration: TODO.md, issue 10)."""

from __future__ import annotations

from genai_common.findings import finding, rule

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from genai_common.findings import Finding

KL_MEAN_FAIL = 0.5
KL_MEAN_WARN = 0.05
TOP1_FAIL = 0.7


@rule(
    "QLT001",
    "Candidate's next-token distributions differ from the reference",
    severity="error",
    fix="Re-convert the candidate from its source; compare layer by layer to find the layer.",
    compares=f"KL(reference||candidate) mean > {KL_MEAN_FAIL} nats or top-1 agreement < {TOP1_FAIL}",
)
@rule(
    "QLT002",
    "Candidate drifts from the reference within the failure threshold",
    severity="warning",
    fix="Expected for low-bit quantization; use more bits if the drift is above your budget.",
    compares=f"KL(reference||candidate) mean > {KL_MEAN_WARN} nats",
)
def distribution(metrics: dict[str, Any]) -> Iterator[Finding]:
    kl, top1 = metrics["kl_mean"], metrics["top1_agreement"]
    if kl > KL_MEAN_FAIL or top1 < TOP1_FAIL:
        yield finding(
            "QLT001",
            f"KL(ref||cand) mean {kl:.3f} nats, top-1 agreement {top1:.1%} over "
            f"{metrics['positions']} positions",
        )
    elif kl > KL_MEAN_WARN:
        yield finding("QLT002", f"KL(ref||cand) mean {kl:.3f} nats (warn above {KL_MEAN_WARN})")
