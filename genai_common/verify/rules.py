"""QLT: output quality against a reference (`genai verify`). Each rule judges the metrics dict
that verify() computed. Thresholds: calibrated on the tiny llama's pairs (below)."""

from __future__ import annotations

from genai_common.findings import finding, rule

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from genai_common.findings import Finding

# Calibrated on the good and broken pairs of testing/broken.py (tiny llama, seeds 0-2, context
# 4,096, the whole shipped corpus: 7,350 positions; reference/DIAGNOSTICS.md, "Issue 10:
# calibration of QLT thresholds"): each fail line sits between the worst good pair (4-bit g64)
# and the mildest broken one (a dropped or unscaled LoRA).
KL_MEAN_FAIL = 0.15  # good <= 0.084, broken >= 0.249 nats
KL_MEAN_WARN = 0.02  # bf16/8-bit <= 0.0003, 4-bit 0.073-0.084: 4-bit warns
KL_P99_FAIL = 1.0  # good <= 0.566, broken >= 1.652 nats (kl_max overlaps: reported, not judged)
TOP1_FAIL = 0.6  # good >= 0.691, broken <= 0.542
TOP5_FAIL = 0.72  # good >= 0.782, broken <= 0.672
# |ppl_cand / ppl_ref - 1|: good <= 6.4%; the line catches a model whose perplexity moved, but
# perplexity alone does not separate the pairs (a reversed q/k permutation +4.1% on one seed; a
# dropped random adapter lowers it): the distribution lines above do
PPL_REL_FAIL = 0.10
# perplexity: warn when the candidate's is this much higher (relative) and the bootstrap 95%
# interval of the delta lies above zero (reference/DIAGNOSTICS.md, issue 10: verify options)
PPL_REL_WARN = 0.05


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
    if "kl_mean" not in metrics:  # nothing scored (QLT008 says why)
        return
    kl, top1 = metrics["kl_mean"], metrics["top1_agreement"]
    if bad := failing(metrics):
        yield finding(
            "QLT001",
            f"KL(ref||cand) mean {kl:.3f} nats, top-1 agreement {top1:.1%} over "
            f"{metrics['positions']} positions; beyond the fail lines: {'; '.join(bad)}",
        )
    elif kl > KL_MEAN_WARN:
        yield finding("QLT002", f"KL(ref||cand) mean {kl:.3f} nats (warn above {KL_MEAN_WARN})")


@rule(
    "QLT003",
    "Candidate breaks after N tokens",
    severity="error",
    fix="Agreement holds early in the context and collapses later: check rope_theta, "
    "rope_scaling and max_position_embeddings against the reference's config, a sliding window "
    "or attention-sink setting, and a quantized KV cache's start offset (--quantized-kv-start).",
    compares=f"top-1 agreement per window of positions (metrics.curve): the first window below "
    f"{TOP1_FAIL} after windows that passed",
)
def breaks(metrics: dict[str, Any]) -> Iterator[Finding]:
    at = metrics.get("breaks_after")
    if at is None:
        return
    curve = metrics.get("curve", [])
    before = [w["top1_confident"] for w in curve if w["end"] <= at]
    after = next(w for w in curve if w["start"] == at)
    yield finding(
        "QLT003",
        f"breaks after {at} tokens: top-1 agreement {min(before):.1%} or better in positions "
        f"0-{at}, {after['top1_confident']:.1%} in {after['start']}-{after['end']} (KL mean "
        f"{after['kl_mean']:.3g})",
    )


@rule(
    "QLT004",
    "Candidate is not deterministic",
    severity="warning",
    fix="Two teacher-forced runs of the same tokens gave different log-probabilities: a "
    "non-deterministic kernel or a stateful layer (a cache that is not reset). Compare "
    "numbers from one run only, and report it upstream with the model and backend.",
    compares="the candidate's log-probs of one window (the shortest), two runs, bit for bit",
)
def determinism(metrics: dict[str, Any]) -> Iterator[Finding]:
    if metrics.get("deterministic") is False:
        yield finding("QLT004", "two runs of the candidate on the same window differ")


@rule(
    "QLT005",
    "KV cache quantization cannot run on this model",
    severity="error",
    fix="Pick a --kv-group-size that divides the model's head_dim and that mx.quantize supports "
    "(32, 64 or 128), or leave the KV cache in float (this model cannot use --kv-bits as asked).",
    compares="--kv-bits / --kv-group-size against head_dim, mx.quantize and the model's caches",
)
def kv_unsupported(metrics: dict[str, Any]) -> Iterator[Finding]:
    if metrics.get("kv_error"):
        yield finding(
            "QLT005",
            f"--kv-bits {metrics.get('kv_bits')} --kv-group-size {metrics.get('kv_group_size')}: "
            f"{metrics['kv_error']}",
        )


@rule(
    "QLT006",
    "Candidate's perplexity is higher than the reference's",
    severity="warning",
    fix="Expected for low-bit quantization within a budget; above it, quantize with more bits "
    "or a smaller group, or keep the embedding and lm_head in higher precision.",
    compares=f"ppl_candidate / ppl_reference - 1 > {PPL_REL_WARN:.0%} with the bootstrap 95% "
    "interval of the delta above 0",
)
def perplexity(metrics: dict[str, Any]) -> Iterator[Finding]:
    if "ppl_reference" not in metrics:
        return
    r, c = metrics["ppl_reference"], metrics["ppl_candidate"]
    lo, hi = metrics["ppl_delta_ci95"]
    if c > r * (1 + PPL_REL_WARN) and lo > 0:
        yield finding(
            "QLT006",
            f"perplexity {c:.4g} vs reference {r:.4g} (+{c / r - 1:.1%}; delta 95% interval "
            f"{lo:.3g} to {hi:.3g})",
        )


@rule(
    "QLT007",
    "Candidate's log-probabilities hold NaN or Inf",
    severity="error",
    fix="An overflow in reduced precision or corrupt weights: run `genai doctor --weights` on the "
    "candidate and try it in float32.",
    compares="NaN/Inf count over the candidate's log-prob rows",
)
def nonfinite(metrics: dict[str, Any]) -> Iterator[Finding]:
    if metrics.get("nonfinite_candidate"):
        yield finding(
            "QLT007", f"{metrics['nonfinite_candidate']:,} NaN/Inf values in the candidate's rows"
        )


@rule(
    "QLT008",
    "No positions to compare",
    severity="error",
    fix="The text gave fewer than two tokens (or only special tokens): pass a longer --text.",
    compares="scored positions of the text after tokenization",
)
def no_text(metrics: dict[str, Any]) -> Iterator[Finding]:
    if not metrics.get("positions"):
        yield finding("QLT008", f"no scored positions in {metrics.get('text', 'the text')}")


LLM_RULES = (no_text, nonfinite, distribution, breaks, perplexity, determinism)


@rule(
    "QLT009",
    "Candidate's tokenizer encodes the text differently",
    severity="warning",
    fix="Both sides were fed the reference's token ids; the candidate's own tokenizer (or chat "
    "template) gives other ids, so users of the candidate see other inputs: copy tokenizer.json, "
    "tokenizer_config.json and chat_template.jinja from the reference, or re-convert.",
    compares="the text's documents tokenized by each side's own tokenizer and chat template",
)
def tokenizer(metrics: dict[str, Any]) -> Iterator[Finding]:
    d = metrics.get("tokenizer_difference")
    if d:
        yield finding(
            "QLT009",
            f"{d['differ']} of {d['documents']} documents tokenize differently with the "
            f"candidate's tokenizer (first: document {d['first']}, token {d['at_token']})",
        )
