"""Memory plan per rank from the checkpoint's headers only (no weights read).

Which modes a model supports, and what its `shard()` splits, are read from the installed mlx-lm
model module's source (never imported): `def shard(` means tensor parallel (sharded_load's
`hasattr(model, "shard")`), `PipelineMixin` / `def pipeline(` means pipeline parallel. The
projections shard() passes to `shard_linear(..., "all-to-sharded" | "sharded-to-all")` or
`shard_inplace` hold 1/N of their bytes per rank (a sharded-to-all bias stays whole); every other
tensor is replicated. Pipeline parallel splits the layers as mlx-lm's PipelineMixin.pipeline
does: an even split, the low ranks take the extra layers, rank 0 runs the LAST layers; the
non-layer tensors (embeddings, final norm, head) are on every rank.

Per rank: weights + KV cache at `context` (tensor parallel: n_kv_heads // N per rank; pipeline:
the rank's layers) + activations of one prefill step (mlx-lm's prefill_step_size 2048 tokens:
step x (4 x hidden + 2 x intermediate / N) x 4 bytes, a bound, not a measurement).
"""

from __future__ import annotations

import os
import re
from typing import Any, NamedTuple

from genai_common.distributed import checks
from genai_common.findings import Finding

PREFILL_STEP = 2048
_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")
_SHARD_LINEAR = re.compile(r"([\w.]+)\s*=\s*shard_linear\(\s*[\w.]+\s*,\s*\"([\w-]+)\"")
_SHARD_INPLACE = re.compile(r"shard_inplace\(\s*([\w.]+)\s*,\s*\"([\w-]+)\"")


class Support(NamedTuple):
    module: str | None  # mlx_lm.models.<name>, None when mlx-lm has no module for it
    tensor: bool
    pipeline: bool
    sharded: dict[str, str]  # attribute path suffix (self_attn.q_proj) -> sharding


class RankPlan(NamedTuple):
    rank: int
    layers: tuple[int, int]  # [start, end)
    weights: int
    kv_cache: int
    activations: int

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.activations


class Plan(NamedTuple):
    mode: str  # "tensor" | "pipeline"
    ranks: tuple[RankPlan, ...]
    context: int
    support: Support

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "context": self.context,
            "ranks": [r._asdict() | {"total": r.total} for r in self.ranks],
        }


def _mlx_lm_dir() -> str | None:
    from importlib.util import find_spec

    spec = find_spec("mlx_lm")
    if spec is None or not spec.submodule_search_locations:
        return None
    return next(iter(spec.submodule_search_locations))


def support(model_type: str | None) -> Support:
    """What the installed mlx-lm's module for model_type implements (from its source)."""
    root = _mlx_lm_dir()
    if root is None or not model_type:
        return Support(None, False, False, {})
    try:
        with open(os.path.join(root, "utils.py"), encoding="utf-8") as f:
            utils = f.read()
        m = re.search(rf'^\s*"{re.escape(model_type)}":\s*"(\w+)"', utils, re.M)
        if m:
            model_type = m.group(1)
    except OSError:
        pass
    path = os.path.join(root, "models", model_type.replace("-", "_") + ".py")
    try:
        with open(path, encoding="utf-8") as f:
            src = f.read()
    except OSError:
        return Support(None, False, False, {})
    sharded: dict[str, str] = {}
    for target, how in (*_SHARD_LINEAR.findall(src), *_SHARD_INPLACE.findall(src)):
        parts = target.split(".")
        suffix = ".".join(parts[1:]) if parts[0] in {"layer", "self", "l"} else target
        sharded[suffix] = how
    pipeline = "PipelineMixin" in src or re.search(r"def pipeline\(", src) is not None
    return Support(f"mlx_lm.models.{model_type}", "def shard(" in src, pipeline, sharded)


def _sharding(name: str, sharded: dict[str, str]) -> str | None:
    for suffix, how in sharded.items():
        if f".{suffix}." in f".{name}":
            return how
    return None


def pipeline_split(layers: int, ranks: int) -> list[tuple[int, int]]:
    """[start, end) of each rank as mlx-lm's PipelineMixin.pipeline assigns them."""
    base, extra = divmod(layers, ranks)
    split = [base + (1 if r < extra else 0) for r in range(ranks)]
    out = []
    for r in range(ranks):
        start = sum(split[r + 1 :])
        out.append((start, start + split[r]))
    return out


def plan(
    md: Any, ranks: int, mode: str = "auto", context: int = 4096
) -> tuple[Plan | None, list[Finding]]:
    """The plan of md over `ranks` ranks (mode tensor, pipeline or auto as sharded_load picks:
    tensor parallel when the model has shard()), and DST010/DST011 findings."""
    from genai_common.model.memory import tensor_bytes

    sup = support(md.model_type)
    found: list[Finding] = []
    mt = md.model_type or "unknown"
    if mode == "auto":
        mode = "tensor" if sup.tensor else "pipeline"
    if not sup.tensor and not sup.pipeline:
        return None, [checks.unsupported(mt, "any sharding (neither shard nor pipeline)")]
    if mode == "tensor" and not sup.tensor:
        return None, [checks.unsupported(mt, "tensor parallelism (no shard())")]
    if mode == "pipeline" and not sup.pipeline:
        return None, [checks.unsupported(mt, "pipelining (no pipeline())")]
    dims = md.text.dims
    if mode == "tensor":
        for what, count in (
            ("num_attention_heads", dims.heads),
            ("num_key_value_heads", dims.kv_heads),
        ):
            if count and count % ranks:
                found.append(checks.heads(what, count, ranks))
    layers = dims.layers or 0
    kv = md.memory.kv_bytes(context)
    kv_total = kv[1] if kv else 0
    wide = 4
    step = min(context, PREFILL_STEP)
    hidden, inter = dims.hidden or 0, dims.intermediate or 0
    rows: list[RankPlan] = []
    if mode == "tensor":
        weights = 0
        for t in md.tensors.values():
            n = tensor_bytes(t) or 0
            how = _sharding(t.name, sup.sharded)
            if how and not (how == "sharded-to-all" and t.name.endswith(".bias")):
                weights += n // ranks
            else:
                weights += n
        act = step * (4 * hidden + 2 * inter // ranks) * wide
        for r in range(ranks):
            rows.append(RankPlan(r, (0, layers), weights, kv_total // ranks, act))
    else:
        spans = pipeline_split(layers, ranks) if layers >= ranks else []
        if not spans:
            return None, [
                checks.unsupported(mt, f"pipelining over {ranks} ranks ({layers} layers)")
            ]
        per_layer = [0] * layers
        shared = 0
        for t in md.tensors.values():
            n = tensor_bytes(t) or 0
            m = _LAYER.search(t.name)
            if m and int(m.group(1)) < layers:
                per_layer[int(m.group(1))] += n
            else:
                shared += n
        act = step * (4 * hidden + 2 * inter) * wide
        for r, (a, b) in enumerate(spans):
            kv_r = kv_total * (b - a) // layers if layers else 0
            rows.append(RankPlan(r, (a, b), shared + sum(per_layer[a:b]), kv_r, act))
    return Plan(mode, tuple(rows), context, sup), found


def fits(p: Plan, budgets: list[int]) -> list[Finding]:
    """DST012 for each rank above its host's budget (budgets[i] for rank i, cycled)."""
    out = []
    for r in p.ranks:
        b = budgets[r.rank % len(budgets)]
        if r.total > b:
            out.append(checks.does_not_fit(r.rank, r.total, b, f"{p.mode} parallel"))
    return out


def smallest_fit(
    md: Any, budget: int, mode: str = "auto", context: int = 4096, most: int = 64
) -> int | None:
    """The smallest rank count (hosts of `budget` bytes each) whose every rank fits, or None."""
    for n in range(1, most + 1):
        p, found = plan(md, n, mode, context)
        if p is None:
            return None
        if any(f.code == "DST011" for f in found):
            continue
        if all(r.total <= budget for r in p.ranks):
            return n
    return None


def render(p: Plan) -> str:
    return render_json(p.to_json())


def render_json(p: dict[str, Any]) -> str:
    """The plan (Plan.to_json()) as plain lines, one per rank."""

    from genai_common.model.values import gib as size  # the one byte formatter

    lines = [
        f"memory plan: {p['mode']} parallel over {len(p['ranks'])} ranks, context {p['context']}"
    ]
    for r in p["ranks"]:
        a, b = r["layers"]
        lines.append(
            f"  rank {r['rank']}: layers {a}-{b - 1}  weights {size(r['weights'])}"
            f"  kv {size(r['kv_cache'])}  activations {size(r['activations'])}"
            f"  total {size(r['total'])}"
        )
    return "\n".join(lines)
