"""QLT: output quality against a reference (`genai verify`). Each rule judges the metrics dict
that verify() computed. Thresholds: calibrated on the tiny llama's pairs (below)."""

from __future__ import annotations

from genai_common.findings import finding, rule

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from genai_common.findings import Finding

# Calibrated on the good and broken pairs of testing/broken.py (tiny llama, seeds 0-2, 4,096
# positions; reference/DIAGNOSTICS.md, "Issue 10: calibration of QLT thresholds"): each fail line
# sits between the worst good pair (4-bit g64) and the mildest broken one (a dropped LoRA).
KL_MEAN_FAIL = 0.1  # good <= 0.054, broken >= 0.14 nats
KL_MEAN_WARN = 0.02  # 8-bit 0.0002, 4-bit 0.045-0.054: 4-bit warns
KL_P99_FAIL = 0.5  # good <= 0.25, broken >= 0.93 nats (kl_max overlaps: reported, not judged)
TOP1_FAIL = 0.65  # good >= 0.724, broken <= 0.604
TOP5_FAIL = 0.75  # good >= 0.804, broken <= 0.719
PPL_REL_FAIL = 0.10  # |ppl_cand / ppl_ref - 1|: good <= 6.8%, broken >= 16%


def failing(metrics: dict[str, Any]) -> list[str]:
    """The metrics beyond their fail lines, each with its value and line."""
    rel = metrics["ppl_candidate"] / metrics["ppl_reference"] - 1
    checks = [
        (metrics["kl_mean"] > KL_MEAN_FAIL, f"KL mean {metrics['kl_mean']:.3f} > {KL_MEAN_FAIL}"),
        (metrics["kl_p99"] > KL_P99_FAIL, f"KL p99 {metrics['kl_p99']:.3f} > {KL_P99_FAIL}"),
        (
            metrics["top1_agreement"] < TOP1_FAIL,
            f"top-1 {metrics['top1_agreement']:.1%} < {TOP1_FAIL:.0%}",
        ),
        (
            metrics["top5_overlap"] < TOP5_FAIL,
            f"top-5 {metrics['top5_overlap']:.1%} < {TOP5_FAIL:.0%}",
        ),
        (abs(rel) > PPL_REL_FAIL, f"perplexity {rel:+.1%} (|delta| > {PPL_REL_FAIL:.0%})"),
    ]
    return [text for bad, text in checks if bad]


@rule(
    "QLT001",
    "Candidate's next-token distributions differ from the reference",
    severity="error",
    fix="Re-convert the candidate from its source; compare layer by layer to find the layer.",
    compares=f"KL(reference||candidate) mean > {KL_MEAN_FAIL} or p99 > {KL_P99_FAIL} nats, top-1 "
    f"agreement < {TOP1_FAIL}, top-5 overlap < {TOP5_FAIL} or |perplexity delta| > "
    f"{PPL_REL_FAIL:.0%} of the reference's",
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
    if bad := failing(metrics):
        yield finding(
            "QLT001",
            f"KL(ref||cand) mean {kl:.3f} nats, top-1 agreement {top1:.1%} over "
            f"{metrics['positions']} positions; beyond the fail lines: {'; '.join(bad)}",
        )
    elif kl > KL_MEAN_WARN:
        yield finding("QLT002", f"KL(ref||cand) mean {kl:.3f} nats (warn above {KL_MEAN_WARN})")
