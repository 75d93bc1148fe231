"""WGT: weight values (`genai doctor --weights`, issue 10 part 5).

Not a static family: the static pass never imports this module (numpy is needed to read values).
`weight_findings(md)` streams every safetensors tensor once through
genai_common.model.weight_values.tensor_stats (one tensor at a time, bounded chunks) and runs the
rules below over the collected statistics (a `WeightScan`: numbers only, a few floats per tensor).
"""

from __future__ import annotations

import re
from types import SimpleNamespace

from genai_common.findings import Finding, finding, rule, run_rule

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from genai_common.model import ModelDir
    from genai_common.model.weight_values import TensorStats

# A tensor whose RMS is this many times above (or below 1/this of) the median RMS of its layer
# group is an outlier. Calibrated on the tiny trained models and random-init checkpoints (max
# ratio 1.6 across layers.N.* groups, reference/DIAGNOSTICS.md); a layer scaled by 10 or more is
# flagged.
GROUP_RATIO = 8.0
MIN_GROUP = 4  # layers needed before a group has a meaningful median
_LAYER = re.compile(r"\.(\d+)\.")
_LIST = 5  # names listed in one message


class WeightScan(SimpleNamespace):
    """The subject of the WGT rules: the model dir and the statistics of each tensor."""

    md: ModelDir
    stats: list[TensorStats]


def _names(items: list[str]) -> str:
    more = len(items) - _LIST
    return ", ".join(items[:_LIST]) + (f" and {more} more" if more > 0 else "")


@rule(
    "WGT001",
    "Tensor holds NaN or Inf values",
    severity="error",
    fix="The checkpoint is corrupt or a conversion/quantization overflowed (float16 range is "
    "±65504): reconvert from the source in float32 or bfloat16, or re-download the shard.",
    compares="every value of every float tensor (NaN and ±Inf counts)",
)
def non_finite(scan: WeightScan) -> Iterator[Finding]:
    for s in scan.stats:
        if s.nan or s.inf:
            yield finding(
                "WGT001",
                f"{s.name} ({s.dtype}{list(s.shape or ())}) has {s.nan:,} NaN and {s.inf:,} Inf "
                f"of {s.numel:,} values",
                file=s.file,
            )


def _is_matrix(s: TensorStats) -> bool:
    return s.checked and s.shape is not None and len(s.shape) >= 2 and s.numel > 1


@rule(
    "WGT002",
    "Weight matrix is all zeros",
    severity="error",
    fix="A zeroed matrix outputs nothing (a zeroed lm_head gives uniform logits): the tensor "
    "was lost in a conversion, fuse or save; rebuild it from the source checkpoint.",
    compares="count of zero values == number of values, tensors of 2 or more dimensions",
)
def all_zero(scan: WeightScan) -> Iterator[Finding]:
    for s in scan.stats:
        if _is_matrix(s) and s.zeros == s.numel and not s.name.endswith((".scales", ".biases")):
            yield finding(
                "WGT002", f"{s.name} {list(s.shape)} is all zeros ({s.dtype})", file=s.file
            )


@rule(
    "WGT003",
    "Weight matrix is constant",
    severity="warning",
    fix="Every value is the same: the tensor was filled by an initialiser (never trained or "
    "never loaded) or overwritten; compare it with the source checkpoint.",
    compares="finite min == finite max != 0, tensors of 2 or more dimensions",
)
def constant(scan: WeightScan) -> Iterator[Finding]:
    for s in scan.stats:
        if (
            _is_matrix(s)
            and s.vmin is not None
            and s.vmin == s.vmax
            and s.zeros == 0
            and s.nan + s.inf == 0
            and not s.name.endswith(".biases")
        ):
            yield finding(
                "WGT003", f"{s.name} {list(s.shape)} has every value = {s.vmin:g}", file=s.file
            )


@rule(
    "WGT010",
    "Quantization scales are zero",
    severity="error",
    fix="A zero scale dequantizes its whole group to the bias: those weights are lost. "
    "Re-quantize from the float source (mlx_lm.convert -q); a group of all-equal weights "
    "should give a tiny, not a zero, scale.",
    compares="zero values in each MLX `.scales` tensor (quantized groups)",
)
def zero_scales(scan: WeightScan) -> Iterator[Finding]:
    for s in scan.stats:
        if s.checked and s.is_float and s.name.endswith(".scales") and s.zeros:
            yield finding(
                "WGT010",
                f"{s.name}: {s.zeros:,} of {s.numel:,} quantization scales are 0 "
                f"({s.zeros / max(s.numel, 1):.1%} of the groups)",
                file=s.file,
            )


@rule(
    "WGT020",
    "Tensor norm far outside its layer group",
    severity="warning",
    fix="One layer's tensor is scaled unlike the same tensor in the other layers: a transform "
    "applied twice (norm offset, scale), a wrong dtype cast or a corrupt shard. Compare that "
    "layer with the source checkpoint; `genai verify` names the layer where outputs diverge.",
    compares=f"RMS of layers.N.<name> vs the median over N (ratio > {GROUP_RATIO:g} or "
    f"< 1/{GROUP_RATIO:g}, groups of {MIN_GROUP}+ layers)",
)
def group_outlier(scan: WeightScan) -> Iterator[Finding]:
    groups: dict[str, list[tuple[TensorStats, float]]] = {}
    for s in scan.stats:
        rms = s.rms
        if not s.is_float or rms is None or s.numel < 2:
            continue
        key = _LAYER.sub(".N.", s.name, count=1)
        if key != s.name:
            groups.setdefault(key, []).append((s, rms))
    for key, members in groups.items():
        if len(members) < MIN_GROUP:
            continue
        values = sorted(r for _, r in members)
        median = values[len(values) // 2]
        if median <= 0:
            continue
        for s, rms in members:
            ratio = rms / median
            if ratio > GROUP_RATIO or ratio < 1 / GROUP_RATIO:
                yield finding(
                    "WGT020",
                    f"{s.name}: RMS {rms:.4g} is {ratio:.3g}x the median {median:.4g} of "
                    f"{key} over {len(members)} layers",
                    file=s.file,
                )


@rule(
    "WGT090",
    "Tensors whose values were not read",
    severity="info",
    fix="Their dtype (float8 and sub-byte floats) is not decoded by the value scan; the other "
    "tensors were checked.",
    compares="safetensors dtype vs the dtypes the scan decodes",
)
def unchecked(scan: WeightScan) -> Iterator[Finding]:
    skipped = [f"{s.name} ({s.dtype})" for s in scan.stats if not s.checked]
    if skipped:
        yield finding("WGT090", f"{len(skipped)} tensors not read: {_names(skipped)}")


RULES = (non_finite, all_zero, constant, zero_scales, group_outlier, unchecked)


def weight_findings(md: ModelDir, *, chunk_bytes: int | None = None) -> list[Finding]:
    """Stream md's tensors once and return the WGT findings (`genai doctor --weights`)."""
    from genai_common.model.weight_values import CHUNK_BYTES, tensor_stats

    stats = list(tensor_stats(md, chunk_bytes=chunk_bytes or CHUNK_BYTES))
    scan = WeightScan(md=md, stats=stats)
    out: list[Finding] = []
    for func in RULES:
        out.extend(run_rule(func, scan))
    return out
