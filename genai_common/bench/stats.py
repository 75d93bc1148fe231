"""Statistics on raw samples: summaries with spread, bootstrap intervals, a rank test.

Pure Python (no numpy, no scipy): the samples of a benchmark are tens, not millions, and
`genai bench --compare` must run in an environment that has neither.

Conventions
- Every summary comes from the raw samples of the timed trials only (warm-up and cold runs are
  kept apart by the caller).
- Spread is shown three ways: min-max, IQR (q1..q3) and the coefficient of variation. A figure is
  called noisy when IQR/median > 10% (the threshold torch.utils.benchmark warns at) or when the
  extreme samples lie more than 50% from the median (pyperf's check).
- `compare` answers "is B different from A?" with a two-sided Mann-Whitney U test on the raw
  samples (exact for small samples without ties, normal approximation with tie correction
  otherwise) and a percentile-bootstrap interval for the ratio of medians B/A.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from genai_common.runtime.timing import sorted_quantile

NOISY_IQR = 0.10
NOISY_EXTREME = 0.50


def quantile(samples: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default 'linear' method)."""
    if not samples:
        raise ValueError("quantile of no samples")
    return sorted_quantile(sorted(samples), q)


def median(samples: Sequence[float]) -> float:
    return quantile(samples, 0.5)


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    mean: float
    min: float
    max: float
    q1: float
    q3: float
    iqr: float
    stdev: float
    cv: float  # stdev / mean
    rel_iqr: float  # iqr / median
    noisy: bool
    noise: str | None  # why it is called noisy

    def to_json(self) -> dict:
        return asdict(self)


def summarize(samples: Sequence[float]) -> Summary:
    """Median, mean, min-max, IQR, stdev, CV and a noise verdict of raw samples."""
    xs = [float(x) for x in samples]
    if not xs:
        raise ValueError("summarize needs at least one sample")
    n = len(xs)
    ordered = sorted(xs)  # once, for the median, the quartiles and the extremes
    med = sorted_quantile(ordered, 0.5)
    mean = sum(xs) / n
    q1, q3 = sorted_quantile(ordered, 0.25), sorted_quantile(ordered, 0.75)
    lo, hi = ordered[0], ordered[-1]
    stdev = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    cv = stdev / mean if mean else 0.0
    rel_iqr = (q3 - q1) / abs(med) if med else 0.0
    reasons = []
    if rel_iqr > NOISY_IQR:
        reasons.append(f"IQR is {rel_iqr:.0%} of the median")
    if med and max(abs(lo - med), abs(hi - med)) / abs(med) > NOISY_EXTREME:
        reasons.append("an extreme sample lies more than 50% from the median")
    return Summary(
        n=n,
        median=med,
        mean=mean,
        min=lo,
        max=hi,
        q1=q1,
        q3=q3,
        iqr=q3 - q1,
        stdev=stdev,
        cv=cv,
        rel_iqr=rel_iqr,
        noisy=bool(reasons),
        noise="; ".join(reasons) or None,
    )


def bootstrap_ratio_ci(
    a: Sequence[float],
    b: Sequence[float],
    *,
    level: float = 0.95,
    resamples: int = 4000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of median(b) / median(a), resampling each side."""
    if not a or not b:
        raise ValueError("bootstrap needs samples on both sides")
    rng = random.Random(seed)
    ratios = []
    for _ in range(resamples):
        ma = median(rng.choices(a, k=len(a)))
        mb = median(rng.choices(b, k=len(b)))
        ratios.append(mb / ma if ma else math.inf)
    tail = (1 - level) / 2
    return quantile(ratios, tail), quantile(ratios, 1 - tail)


def _ranks(values: Sequence[float]) -> tuple[list[float], list[int]]:
    """Mid-ranks (1-based) of values, and the sizes of the tie groups."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    ties = []
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        ties.append(j - i + 1)
        i = j + 1
    return ranks, ties


def _exact_u_cdf(n1: int, n2: int) -> list[float]:
    """P(U <= u) for u = 0..n1*n2 under H0 (no ties), by counting rank arrangements."""
    # counts[i][j][u]: arrangements of i x-values and j y-values with U = u; rolled per (i, j).
    size = n1 * n2 + 1
    prev = [[0] * size for _ in range(n2 + 1)]
    for j in range(n2 + 1):
        prev[j][0] = 1
    for _ in range(1, n1 + 1):
        cur = [[0] * size for _ in range(n2 + 1)]
        cur[0][0] = 1
        for j in range(1, n2 + 1):
            for u in range(size):
                # the largest element is an x (adds j to U) or a y (adds nothing)
                cur[j][u] = (prev[j][u - j] if u >= j else 0) + cur[j - 1][u]
        prev = cur
    counts = prev[n2]
    total = sum(counts)
    cdf, acc = [], 0
    for c in counts:
        acc += c
        cdf.append(acc / total)
    return cdf


def mann_whitney_u(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test: returns (U of a, p-value).

    Exact null distribution when both samples are small (n1*n2 <= 400) and have no ties; the
    normal approximation with tie and continuity correction otherwise.
    """
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        raise ValueError("Mann-Whitney U needs samples on both sides")
    ranks, ties = _ranks(list(a) + list(b))
    r1 = sum(ranks[:n1])
    u1 = r1 - n1 * (n1 + 1) / 2
    has_ties = any(t > 1 for t in ties)
    if not has_ties and n1 * n2 <= 400:
        cdf = _exact_u_cdf(n1, n2)
        lo = min(u1, n1 * n2 - u1)
        p = 2 * cdf[round(lo)]
        return u1, min(1.0, p)
    n = n1 + n2
    mu = n1 * n2 / 2
    tie_term = sum(t**3 - t for t in ties) / (n * (n - 1)) if n > 1 else 0.0
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term))
    if sigma == 0:
        return u1, 1.0
    z = (abs(u1 - mu) - 0.5) / sigma
    p = math.erfc(max(z, 0.0) / math.sqrt(2))
    return u1, min(1.0, p)


def trials_to_decide(alpha: float = 0.05) -> int:
    """The fewest trials per side at which the two-sided exact rank test can reach p < alpha at
    all (no overlap between the samples gives the smallest p, 2 / C(2n, n)): 4 at 0.05."""
    n = 1
    while 2 / math.comb(2 * n, n) >= alpha:
        n += 1
    return n


@dataclass(frozen=True)
class Comparison:
    metric: str
    n_a: int
    n_b: int
    median_a: float
    median_b: float
    ratio: float  # median_b / median_a
    ci_low: float
    ci_high: float
    p_value: float
    different: bool
    verdict: str

    def to_json(self) -> dict:
        return asdict(self)


def compare(
    a: Sequence[float],
    b: Sequence[float],
    *,
    metric: str = "value",
    alpha: float = 0.05,
    level: float = 0.95,
    seed: int = 0,
) -> Comparison:
    """Is B different from A? Rank test on the raw samples plus a bootstrap ratio interval.

    The difference is called real only when the rank test rejects at `alpha` AND the bootstrap
    interval of the median ratio excludes 1: two medians side by side say nothing about noise.
    """
    med_a, med_b = median(a), median(b)
    ratio = med_b / med_a if med_a else math.inf
    lo, hi = bootstrap_ratio_ci(a, b, level=level, seed=seed)
    _, p = mann_whitney_u(a, b)
    different = p < alpha and not (lo <= 1.0 <= hi)
    change = f"{(ratio - 1):+.1%}"
    if different:
        verdict = f"different: B/A = {ratio:.3f} ({change}), {level:.0%} CI {lo:.3f}..{hi:.3f}, p = {p:.3g}"
    elif p < alpha or not (lo <= 1.0 <= hi):
        verdict = (
            f"inconclusive: B/A = {ratio:.3f} ({change}), {level:.0%} CI {lo:.3f}..{hi:.3f}, "
            f"p = {p:.3g}; take more trials"
        )
        need = trials_to_decide(alpha)
        if min(len(a), len(b)) < need:
            # issue 16: a 20x gap at 3 trials is "inconclusive" only because 3 cannot decide
            verdict += (
                f" (at least {need} per side: with {min(len(a), len(b))} even samples that do not "
                f"overlap give p >= {2 / math.comb(len(a) + len(b), min(len(a), len(b))):.2g})"
            )
    else:
        verdict = (
            f"no real difference: B/A = {ratio:.3f}, {level:.0%} CI {lo:.3f}..{hi:.3f}, p = {p:.3g}"
        )
    if min(len(a), len(b)) < 4:
        verdict += f" (only {min(len(a), len(b))} samples on one side: the test has little power)"
    return Comparison(
        metric=metric,
        n_a=len(a),
        n_b=len(b),
        median_a=med_a,
        median_b=med_b,
        ratio=ratio,
        ci_low=lo,
        ci_high=hi,
        p_value=p,
        different=different,
        verdict=verdict,
    )
