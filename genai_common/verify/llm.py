"""The llm core of `genai verify` (issue 10 parts 1, 4 and 9): a candidate against a reference,
teacher-forced over the same token windows, position by position.

    sequences(tokenizer, text, context) -> token windows (the shipped corpus, or --text FILE)
    SideSpec / open_side(spec)          one side: a backend object with .vocab and .rows(ids)
    compare_rows(ref, cand, target)     per-position KL, top-1, top-5, NLL, max |Δ|
    summarise(parts, ...)               the metrics: summary, curve by position, break point,
                                        perplexity with a bootstrap interval
    verify_llm(...)                     both sides in this process ("together") or each in its
                                        own child ("isolated"), planned from the weight bytes

The seam for other reference backends: a backend is an object with `vocab` (the number of real
token ids: the tokenizer's size; embedding rows past it are padding and are excluded) and
`rows(ids) -> numpy float32 [len(ids) - 1, vocab]`, the log-probabilities (normalised over the
real vocabulary) of each next token, teacher-forced. BACKENDS maps a backend name to the
"module:factory" that builds one from a SideSpec; the mlx backend (mlx-lm's load, optional
adapter, optional quantized KV cache fed in chunks) is MlxSide below.

Heavy imports (mlx, mlx_lm, numpy) stay inside the functions.
"""

from __future__ import annotations

import dataclasses
import json
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

DEFAULT_CONTEXT = 4096
KV_CHUNK = 256  # tokens fed per step through the cache when a KV cache is compared
TOPK = 64  # log-probs kept per position when rows travel through files and the vocab is large
FULL_ROWS_MAX_BYTES = 256 << 20  # full rows through files up to this size per window
BOOTSTRAP = 1000
MIN_CURVE_POSITIONS = 8  # scored positions a curve window needs to count
# top-1 agreement is judged where the reference has decided: its top token at least this many
# nats above its second (near-ties flip under any rounding and say nothing about quality)
CONFIDENT_MARGIN = 0.5
BREAK_DROP = 0.1  # a break point: agreement after it this much below agreement before it
# windows that must pass before a break counts: the first positions after a bos are easy, so a
# model broken everywhere can pass its first window alone (RMSNorm + 1 at --context 128)
MIN_WINDOWS_BEFORE_BREAK = 2
BREAK_STAYS = 0.75  # share of the windows from the break on that are below the line
BACKENDS = {
    "mlx": "genai_common.verify.llm:MlxSide",
    "transformers": "genai_common.verify.llm:HfSide",  # torch + transformers
    "gguf": "genai_common.verify.llm:HfSide",  # a GGUF file read by transformers
}


@dataclasses.dataclass(frozen=True)
class SideSpec:
    """One side of a comparison: a model directory, an adapter, a KV cache setting, a backend."""

    path: str
    adapter: str | None = None
    kv_bits: int | None = None
    kv_group_size: int = 64
    quantized_kv_start: int = 0
    chunked: bool = False  # feed through a (float) cache in chunks, as the KV side does
    backend: str = "mlx"

    @property
    def label(self) -> str:
        out = self.path + (f" + adapter {self.adapter}" if self.adapter else "")
        if self.kv_bits:
            out += f" (KV {self.kv_bits}-bit, group {self.kv_group_size}"
            out += f", from {self.quantized_kv_start})" if self.quantized_kv_start else ")"
        return out


class KvUnsupported(Exception):
    """The KV cache setting cannot run on this model (reported as QLT005, not a traceback)."""


def _tokenizer_size(tokenizer: Any) -> int:
    tok = getattr(tokenizer, "_tokenizer", tokenizer)
    try:
        return len(tok)
    except TypeError:
        return int(getattr(tok, "vocab_size", 0))


def head_dim(model: Any) -> int | None:
    args = getattr(model, "args", None)
    dim = getattr(args, "head_dim", None)
    if dim:
        return int(dim)
    hidden, heads = getattr(args, "hidden_size", None), getattr(args, "num_attention_heads", None)
    return int(hidden) // int(heads) if hidden and heads else None


class MlxSide:
    """mlx-lm's model of one side (with its adapter), read through mlx_lm.load."""

    def __init__(self, spec: SideSpec, loaded: tuple[Any, Any] | None = None) -> None:
        from mlx_lm import load

        self.spec = spec
        self.model, self.tokenizer = loaded or load(spec.path, adapter_path=spec.adapter)
        self.vocab = _tokenizer_size(self.tokenizer)
        if spec.kv_bits:
            self._check_kv()

    def _check_kv(self) -> None:
        import mlx.core as mx

        dim = head_dim(self.model) or 0
        g, b = self.spec.kv_group_size, self.spec.kv_bits
        if dim and dim % g:
            raise KvUnsupported(f"KV group size {g} does not divide head_dim {dim}")
        try:  # what mx.quantize accepts (group sizes, bits) on this mlx
            mx.eval(mx.quantize(mx.zeros((1, dim or g)), group_size=g, bits=b)[0])
        except (ValueError, RuntimeError) as exc:
            raise KvUnsupported(f"mx.quantize refuses group {g}, {b} bits: {exc}") from exc
        from mlx_lm.models.cache import make_prompt_cache

        for c in make_prompt_cache(self.model):
            if not hasattr(c, "to_quantized"):
                raise KvUnsupported(f"{type(c).__name__} has no quantized form in mlx-lm")
            try:
                c.to_quantized(group_size=g, bits=b)
            except NotImplementedError as exc:
                raise KvUnsupported(f"{type(c).__name__}: {exc}") from exc

    def _normalised(self, logits: Any) -> Any:
        import mlx.core as mx

        x = logits[0, :, : self.vocab].astype(mx.float32)
        return x - mx.logsumexp(x, axis=-1, keepdims=True)

    def rows(self, ids: list[int]) -> Any:
        """float32 numpy [len(ids) - 1, vocab]: log p(next token) at each position."""
        import mlx.core as mx
        import numpy as np

        inputs = mx.array(np.asarray(ids[:-1], dtype=np.int32))[None]
        spec = self.spec
        if not (spec.kv_bits or spec.chunked):
            out = self._normalised(self.model(inputs))
            mx.eval(out)
            return np.array(out)
        import itertools

        from mlx_lm.generate import maybe_quantize_kv_cache
        from mlx_lm.models.cache import make_prompt_cache

        cache = make_prompt_cache(self.model)
        n = inputs.shape[1]
        cuts = set(range(0, n, KV_CHUNK)) | {n}
        if 0 < spec.quantized_kv_start < n:
            cuts.add(spec.quantized_kv_start)  # positions from the start on see the quantized cache
        cuts_sorted = sorted(cuts)
        parts = []
        for lo, hi in itertools.pairwise(cuts_sorted):
            if spec.kv_bits:  # as mlx_lm.generate does between steps
                maybe_quantize_kv_cache(
                    cache, spec.quantized_kv_start, spec.kv_group_size, spec.kv_bits
                )
            part = self._normalised(self.model(inputs[:, lo:hi], cache=cache))
            mx.eval(part)
            parts.append(np.array(part))
        return np.concatenate(parts)

    def close(self) -> None:
        self.model = None


class HfSide:
    """A transformers side (a Hugging Face folder, or a GGUF file read by transformers), through
    verify/reference_hf.py's hf_log_probs (torch float32 on the CPU).
    Rows are cut to the tokenizer of the side that feeds the ids and renormalised."""

    def __init__(self, spec: SideSpec) -> None:
        from genai_common.verify import reference_hf

        self.spec, self._hf = spec, reference_hf
        self.model = reference_hf.load_hf(spec.path)
        self.vocab = int(self.model.config.vocab_size)

    def rows(self, ids: list[int]) -> Any:
        return self._hf.hf_log_probs(self.spec.path, ids[:-1], model=self.model)

    def close(self) -> None:
        self.model = None


class SideLoadError(ValueError):
    """A side's loader refused its checkpoint: one line naming the side, the loader's own words
    and the command that diagnoses it (genai verify exits 2: it could not run)."""


def open_side(spec: SideSpec, loaded: tuple[Any, Any] | None = None, role: str = "model") -> Any:
    """The backend object of one side (BACKENDS names the factory); SideLoadError when its
    loader cannot load the checkpoint (a tensor of the wrong shape, a missing file)."""
    import importlib
    import textwrap

    target = BACKENDS.get(spec.backend)
    if target is None:
        raise ValueError(
            f"genai verify: no reference backend {spec.backend!r} ({', '.join(sorted(BACKENDS))})"
        )
    module, name = target.split(":")
    factory = getattr(importlib.import_module(module), name)
    try:
        return factory(spec, loaded) if loaded is not None else factory(spec)
    except (ValueError, KeyError, OSError) as exc:
        # one line: a loader's message may run on ("Missing 1 parameters: \n{names}"); the
        # names stay, a long list is cut
        said = textwrap.shorten(str(exc), 400, placeholder=" …")
        raise SideLoadError(
            f"genai verify: the {role} {spec.path} could not be loaded ({spec.backend}): "
            f"{type(exc).__name__}: {said}; `genai doctor {spec.path} --load` diagnoses it"
        ) from exc


# ---------------------------------------------------------------------------------------------
# text


def _read_records(path: str) -> list[dict[str, Any]]:
    records = []
    with open(path, encoding="utf-8") as handle:
        for n, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"genai verify: {path} line {n} is not JSON: {exc.msg}") from exc
            if not isinstance(rec, dict):
                raise ValueError(f"genai verify: {path} line {n} is not a JSON object")
            records.append(rec)
    return records


def _chat(tokenizer: Any, messages: list[dict[str, Any]]) -> list[int]:
    if getattr(tokenizer, "chat_template", None):
        rendered = tokenizer.apply_chat_template(messages, tokenize=False)
        return list(tokenizer.encode(rendered, add_special_tokens=False))
    plain = "\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in messages)
    return list(tokenizer.encode(plain))


def documents(tokenizer: Any, text: str | None = None) -> list[list[int]]:
    """Token ids of each document: the shipped corpus (each prose/code/numbers document as plain
    text, each chat exchange through the chat template), or `text`, a file: plain text, or jsonl
    in mlx-lm's formats (`messages` chat, `prompt` + `completion`, `text`)."""
    if text is None:
        from genai_common import corpus

        docs = [list(tokenizer.encode(corpus.text(n))) for n in corpus.names() if n != "chat"]
        for prompt, answer in corpus.chats():
            msgs = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
            docs.append(_chat(tokenizer, msgs))
        return docs
    if not os.path.isfile(text):
        raise ValueError(f"genai verify: --text {text} is not a file")
    if not text.endswith(".jsonl"):
        with open(text, encoding="utf-8") as handle:
            return [list(tokenizer.encode(handle.read()))]
    docs = []
    for n, rec in enumerate(_read_records(text), 1):
        if isinstance(rec.get("messages"), list):
            docs.append(_chat(tokenizer, rec["messages"]))
        elif "prompt" in rec and "completion" in rec:
            msgs = [
                {"role": "user", "content": str(rec["prompt"])},
                {"role": "assistant", "content": str(rec["completion"])},
            ]
            docs.append(_chat(tokenizer, msgs))
        elif "text" in rec:
            docs.append(list(tokenizer.encode(str(rec["text"]))))
        else:
            raise ValueError(
                f"genai verify: {text} record {n} has none of messages, prompt+completion, text"
            )
    return docs


def windows(docs: list[list[int]], context: int) -> list[list[int]]:
    """The documents as one stream, cut into windows of `context` inputs (+1 for the last
    target); the last window keeps what is left (at least 2 tokens)."""
    stream = [t for d in docs for t in d]
    out = [stream[i : i + context + 1] for i in range(0, max(len(stream) - 1, 0), context)]
    return [w for w in out if len(w) > 1]


def special_ids(tokenizer: Any) -> list[int]:
    from genai_common.testing.quality import _quiet

    return _quiet(tokenizer)


def model_context(path: str) -> int | None:
    """max_position_embeddings (or the text config's) from config.json; None when absent."""
    try:
        with open(os.path.join(path, "config.json"), encoding="utf-8") as handle:
            cfg = json.load(handle)
    except (OSError, ValueError):
        return None
    for c in (cfg, cfg.get("text_config") or {}):
        for key in ("max_position_embeddings", "max_sequence_length", "n_positions", "seq_length"):
            if isinstance(c.get(key), int) and c[key] > 0:
                return int(c[key])
    return None


def default_context(*paths: str) -> int:
    known = [c for c in (model_context(p) for p in paths) if c]
    return min([DEFAULT_CONTEXT, *known])


# ---------------------------------------------------------------------------------------------
# comparison


def compare_rows(ref: Any, cand: Any, target: Any) -> dict[str, Any]:
    """Per-position arrays from two full log-prob row blocks [n, V] (V may differ: the shared
    vocabulary is the smaller; each side renormalised over it when they differ)."""
    import numpy as np

    v = min(ref.shape[-1], cand.shape[-1])

    def cut(x: Any) -> Any:
        if x.shape[-1] == v:
            return x.astype(np.float64)
        x = x[:, :v].astype(np.float64)
        m = x.max(-1, keepdims=True)
        return x - (m + np.log(np.exp(x - m).sum(-1, keepdims=True)))

    r, c = cut(ref), cut(cand)
    n = np.arange(len(target))
    k = min(5, v)
    r5 = np.argpartition(-r, k - 1, axis=-1)[:, :k]
    c5 = np.argpartition(-c, k - 1, axis=-1)[:, :k]
    top5 = (r5[:, :, None] == c5[:, None, :]).any(-1).sum(-1) / k
    two = -np.partition(-r, 1, axis=-1)[:, :2] if v > 1 else np.zeros((len(r), 2))
    return {
        "margin": two[:, 0] - two[:, 1],
        "kl": (np.exp(r) * (r - c)).sum(-1),
        "top1": r.argmax(-1) == c.argmax(-1),
        "top5": top5,
        "nll_r": -r[n, target],
        "nll_c": -c[n, target],
        "dlogit": np.abs(r - c).max(-1),
        "nonfinite": (~np.isfinite(c)).sum(-1),
    }


def topk_of(rows: Any, target: Any, k: int = TOPK) -> dict[str, Any]:
    """What the reference sends through a file for a large vocabulary: its top-k ids and
    log-probs per position, and the log-prob of the target."""
    import numpy as np

    k = min(k, rows.shape[-1])
    idx = np.argpartition(-rows, k - 1, axis=-1)[:, :k]
    vals = np.take_along_axis(rows, idx, -1)
    order = np.argsort(-vals, axis=-1)
    idx, vals = np.take_along_axis(idx, order, -1), np.take_along_axis(vals, order, -1)
    return {"idx": idx, "logp": vals, "target": rows[np.arange(len(target)), target]}


def compare_topk(ref: dict[str, Any], cand: Any, target: Any) -> dict[str, Any]:
    """compare_rows when the reference sent only its top-k: KL over the reference's top-k plus one
    tail bucket (the rest of each side's mass); max |Δ| over the reference's top-k ids."""
    import numpy as np

    cand = cand.astype(np.float64)
    rl = ref["logp"].astype(np.float64)
    cl = np.take_along_axis(cand, ref["idx"], -1)
    pr, pc = np.exp(rl), np.exp(cl)
    tr = np.clip(1 - pr.sum(-1), 1e-12, None)
    tc = np.clip(1 - pc.sum(-1), 1e-12, None)
    kl = (pr * (rl - cl)).sum(-1) + tr * (np.log(tr) - np.log(tc))
    k = min(5, cand.shape[-1])
    c5 = np.argpartition(-cand, k - 1, axis=-1)[:, :k]
    top5 = (ref["idx"][:, :k, None] == c5[:, None, :]).any(-1).sum(-1) / k
    n = np.arange(len(target))
    return {
        "margin": rl[:, 0] - rl[:, 1] if rl.shape[1] > 1 else np.zeros(len(rl)),
        "kl": kl,
        "top1": ref["idx"][:, 0] == cand.argmax(-1),
        "top5": top5,
        "nll_r": -ref["target"].astype(np.float64),
        "nll_c": -cand[n, target],
        "dlogit": np.abs(rl - cl).max(-1),
        "nonfinite": (~np.isfinite(cand)).sum(-1),
    }


def curve_width(context: int) -> int:
    return max(16, context // 16)


def summarise(
    parts: list[dict[str, Any]], context: int, *, seed: int = 0, fail_line: float = 0.7
) -> dict[str, Any]:
    """The metrics from per-window comparisons (each with `scored` and `pos`)."""
    import numpy as np

    def cat(key: str) -> Any:
        return np.concatenate([p[key][p["scored"]] for p in parts]) if parts else np.zeros(0)

    kl, top1, top5 = cat("kl"), cat("top1"), cat("top5")
    nll_r, nll_c, dl, pos = cat("nll_r"), cat("nll_c"), cat("dlogit"), cat("pos")
    sure = cat("margin") > CONFIDENT_MARGIN
    nonfinite = int(sum(int(p["nonfinite"].sum()) for p in parts))
    m: dict[str, Any] = {"positions": len(kl), "context": int(context), "windows": len(parts)}
    if not len(kl):
        return m
    finite = np.isfinite(kl)
    m.update(
        {
            "kl_mean": float(kl[finite].mean()) if finite.any() else float("inf"),
            "kl_p99": float(np.percentile(kl[finite], 99)) if finite.any() else float("inf"),
            "kl_max": float(kl.max()),
            "top1_agreement": float(top1.mean()),
            "top1_confident": float(top1[sure].mean()) if sure.sum() else float(top1.mean()),
            "positions_confident": int(sure.sum()),
            "top5_overlap": float(top5.mean()),
            "max_abs_dlogit": float(dl.max()),
            "nonfinite_candidate": nonfinite,
            "ppl_reference": float(np.exp(nll_r.mean())),
            "ppl_candidate": float(np.exp(nll_c.mean())),
        }
    )
    m["ppl_delta"] = m["ppl_candidate"] - m["ppl_reference"]
    rng = np.random.default_rng(seed)
    deltas = []
    for _ in range(BOOTSTRAP // 100):  # 100 resamples at a time bounds the memory
        idx = rng.integers(0, len(nll_r), size=(100, len(nll_r)))
        deltas.append(np.exp(nll_c[idx].mean(-1)) - np.exp(nll_r[idx].mean(-1)))
    d = np.concatenate(deltas)
    m["ppl_delta_ci95"] = [float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))]
    width = curve_width(context)
    curve = []
    for lo in range(0, int(pos.max()) + 1, width):
        sel = (pos >= lo) & (pos < lo + width)
        if sel.sum() >= MIN_CURVE_POSITIONS:
            judged = sel & sure if (sel & sure).sum() >= MIN_CURVE_POSITIONS else sel
            curve.append(
                {
                    "start": lo,
                    "end": lo + width,
                    "positions": int(sel.sum()),
                    "top1_agreement": float(top1[sel].mean()),
                    "top1_confident": float(top1[judged].mean()),
                    "kl_mean": float(np.nan_to_num(kl[sel], posinf=1e9).mean()),
                }
            )
    m["curve"] = curve
    m["curve_width"] = width
    m["breaks_after"] = break_point(curve, fail_line)
    return m


def break_point(curve: list[dict[str, Any]], fail_line: float) -> int | None:
    """The start of the first curve window from which the (confident) top-1 agreement stays
    below the fail line while every window before it passed, and the agreement after it is at
    least BREAK_DROP below the agreement before it (windows weighted by positions); None when
    there is no such window (noise around the line is not a break; broken from the start is
    QLT001's)."""

    def mean(ws: list[dict[str, Any]]) -> float:
        total = sum(w["positions"] for w in ws)
        return sum(w["top1_confident"] * w["positions"] for w in ws) / total

    for n in range(MIN_WINDOWS_BEFORE_BREAK, len(curve)):
        before, after = curve[:n], curve[n:]
        if curve[n]["top1_confident"] >= fail_line:
            continue
        below = sum(w["top1_confident"] < fail_line for w in after) / len(after)
        if all(w["top1_confident"] >= fail_line for w in before) and (
            below >= BREAK_STAYS
            and mean(after) < fail_line
            and mean(before) - mean(after) >= BREAK_DROP
        ):
            return int(curve[n]["start"])
        return None
    return None


def _window_parts(
    ref_rows: Any, cand_rows: Any, ids: list[int], quiet: Any, topk: bool
) -> dict[str, Any]:
    import numpy as np

    target = np.asarray(ids[1:])
    part = (compare_topk if topk else compare_rows)(ref_rows, cand_rows, target)
    part["scored"] = ~np.isin(target, quiet)
    part["pos"] = np.arange(len(target))
    return part


# ---------------------------------------------------------------------------------------------
# running the two sides


def _same_model(a: SideSpec, b: SideSpec) -> bool:
    return (a.path, a.adapter, a.backend) == (b.path, b.adapter, b.backend)


def _load_text(spec: SideSpec, text: str | None, context: int) -> tuple[list[list[int]], Any]:
    """(windows, special ids) from the reference's tokenizer."""
    wins, quiet, _ = _tokenize(spec, text, context)
    return wins, quiet


def _tokenize(
    spec: SideSpec, text: str | None, context: int
) -> tuple[list[list[int]], Any, list[list[int]]]:
    """(windows, special ids, documents) from the tokenizer of `spec`'s directory."""
    from pathlib import Path

    from mlx_lm.utils import load_tokenizer

    tok = load_tokenizer(Path(spec.path))
    docs = documents(tok, text)
    return windows(docs, context), special_ids(tok), docs


def tokenizer_difference(
    cand: SideSpec, docs: list[list[int]], text: str | None
) -> dict[str, Any] | None:
    """How the candidate's own tokenizer encodes the same text differently from the one that fed
    both sides (None when identical): a conversion that changed the tokenizer or chat template."""
    from pathlib import Path

    from mlx_lm.utils import load_tokenizer

    mine = documents(load_tokenizer(Path(cand.path)), text)
    differ = [n for n, (a, b) in enumerate(zip(docs, mine, strict=False)) if a != b]
    if not differ and len(docs) == len(mine):
        return None
    n = differ[0] if differ else min(len(docs), len(mine))
    a, b = (docs[n] if n < len(docs) else []), (mine[n] if n < len(mine) else [])
    at = next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )
    return {"documents": len(docs), "differ": len(differ), "first": n, "at_token": at}


def _rerun(wins: list[list[int]]) -> int:
    """The window the candidate runs twice (determinism): the shortest, the cheapest."""
    return min(range(len(wins)), key=lambda n: len(wins[n]))


def run_together(
    cand: SideSpec, ref: SideSpec, wins: list[list[int]], quiet: Any
) -> tuple[list[dict[str, Any]], bool]:
    """Both sides in this process: (per-window comparisons, deterministic)."""
    import numpy as np

    r = open_side(ref, role="reference")
    c = (
        open_side(cand, (r.model, r.tokenizer), role="candidate")
        if _same_model(cand, ref)
        else open_side(cand, role="candidate")
    )
    parts, deterministic = [], True
    for n, ids in enumerate(wins):
        rr, cr = r.rows(ids), c.rows(ids)
        if n == _rerun(wins):  # determinism: the candidate's shortest window twice
            deterministic = bool(np.array_equal(cr, c.rows(ids)))
        parts.append(_window_parts(rr, cr, ids, quiet, False))
    return parts, deterministic


def _child_reference(spec: SideSpec, wins: list[list[int]], out: str, full: bool) -> int:
    """Isolated mode, child 1: the reference's rows (full, or top-k) into `out`/ref-N.npz."""
    import numpy as np

    side = open_side(spec, role="reference")
    for n, ids in enumerate(wins):
        rows = side.rows(ids)
        path = os.path.join(out, f"ref-{n}.npz")
        if full:
            np.savez(path, rows=rows)
        else:
            np.savez(path, **topk_of(rows, np.asarray(ids[1:])))
    return side.vocab


def _child_candidate(
    spec: SideSpec, wins: list[list[int]], out: str, full: bool, quiet: list[int]
) -> bool:
    """Isolated mode, child 2: the candidate's rows against the reference's files; the
    per-position comparison into `out`/cmp-N.npz. Returns whether two runs were identical."""
    import numpy as np

    side = open_side(spec, role="candidate")
    deterministic = True
    for n, ids in enumerate(wins):
        rows = side.rows(ids)
        if n == _rerun(wins):
            deterministic = bool(np.array_equal(rows, side.rows(ids)))
        with np.load(os.path.join(out, f"ref-{n}.npz")) as f:
            ref = f["rows"] if full else {k: f[k] for k in ("idx", "logp", "target")}
        part = _window_parts(ref, rows, ids, np.asarray(quiet), not full)
        np.savez(os.path.join(out, f"cmp-{n}.npz"), **part)
    return deterministic


def _child_failed(role: str, error: str | None) -> str:
    """The line for a side's child that failed: the load error as the child said it."""
    said = error or "no result"
    if "SideLoadError: " in said:  # the loader refused the checkpoint: its own line says it all
        return said.split("SideLoadError: ", 1)[1]
    return f"genai verify: the {role} side failed in its child: {said}"


def run_isolated_sides(
    cand: SideSpec,
    ref: SideSpec,
    wins: list[list[int]],
    quiet: Any,
    vocab: int,
    full_rows_max: int | None = None,
) -> tuple[list[dict[str, Any]], bool, bool]:
    """Each side in its own child (runtime.isolate); rows through files: full rows when a window
    is small enough, else the reference's top-k and log-sum-exp-normalised target log-probs.
    Returns (per-window comparisons, deterministic, full rows)."""
    import shutil
    import tempfile

    import numpy as np

    from genai_common.runtime.isolate import run_isolated

    longest = max(len(w) for w in wins)
    limit = FULL_ROWS_MAX_BYTES if full_rows_max is None else full_rows_max
    full = longest * vocab * 4 <= limit
    out = tempfile.mkdtemp(prefix="genai-verify-")
    try:
        res = run_isolated(_child_reference, ref, wins, out, full)
        if not res.ok:
            raise RuntimeError(_child_failed("reference", res.error))
        res2 = run_isolated(_child_candidate, cand, wins, out, full, list(map(int, quiet)))
        if not res2.ok:
            raise RuntimeError(_child_failed("candidate", res2.error))
        parts = []
        for n in range(len(wins)):
            with np.load(os.path.join(out, f"cmp-{n}.npz")) as f:
                parts.append({k: f[k] for k in f.files})
        return parts, bool(res2.value), full
    finally:
        shutil.rmtree(out, ignore_errors=True)


def plan_mode(
    cand: SideSpec, ref: SideSpec, budget: int | None = None
) -> tuple[str, dict[str, Any]]:
    """ "together" when both sides' weights (the doctor's exact bytes) fit in the machine's
    budget with room for activations, else "isolated"; the numbers behind it."""
    from genai_common.model import ModelDir
    from genai_common.runtime.machine import machine

    def weights(spec: SideSpec) -> int:
        try:
            return int(ModelDir.open(spec.path).memory.weights[0])
        except Exception:  # unreadable here: the loader will say why
            return 0

    need = weights(ref) + (0 if _same_model(cand, ref) else weights(cand))
    budget = machine().budget if budget is None else budget
    plan = {"weight_bytes": need, "memory_budget": budget}
    if budget and need * 1.2 > budget:  # 20% for activations, rows and the cache
        return "isolated", plan
    return "together", plan


def verify_llm(
    candidate: SideSpec,
    reference: SideSpec,
    *,
    text: str | None = None,
    context: int | None = None,
    isolated: bool | None = None,
    seed: int = 0,
) -> tuple[list[Any], dict[str, Any], str, list[int] | None]:
    """(findings, metrics, mode, the first window's ids) of one llm comparison."""
    from genai_common.findings import run_rule
    from genai_common.verify import rules

    if context is None:
        context = default_context(reference.path, candidate.path)
    if context < 2:
        raise ValueError(f"genai verify: --context {context} is too small (at least 2)")
    # the tokenizer of the reference (of the candidate when the reference is not an mlx-lm
    # directory, e.g. a GGUF file read by another backend)
    feeder = reference if reference.backend == "mlx" else candidate
    wins, quiet, docs = _tokenize(feeder, text, context)
    metrics: dict[str, Any] = {"text": text or "corpus", "context": context}
    if feeder is reference and candidate.backend == "mlx" and candidate.path != reference.path:
        metrics["tokenizer_difference"] = tokenizer_difference(candidate, docs, text)
    if candidate.kv_bits:
        metrics.update(
            kv_bits=candidate.kv_bits,
            kv_group_size=candidate.kv_group_size,
            quantized_kv_start=candidate.quantized_kv_start,
        )
    if not wins:
        return run_rule(rules.no_text, metrics), metrics, "together", None
    mode, plan = plan_mode(candidate, reference)
    if isolated is not None:
        mode = "isolated" if isolated else "together"
    metrics["plan"] = plan
    try:
        if mode == "together":
            parts, deterministic = run_together(candidate, reference, wins, quiet)
        else:
            vocab = _vocab_of(reference if reference.backend == "mlx" else candidate)
            parts, deterministic, full = run_isolated_sides(
                candidate, reference, wins, quiet, vocab
            )
            metrics["rows_through_files"] = "full" if full else f"top-{TOPK}"
    except KvUnsupported as exc:
        metrics["kv_error"] = str(exc)
        return run_rule(rules.kv_unsupported, metrics), metrics, mode, wins[0]
    except RuntimeError as exc:
        if "KvUnsupported" in str(exc):
            metrics["kv_error"] = str(exc).split("KvUnsupported:")[-1].strip()
            return run_rule(rules.kv_unsupported, metrics), metrics, mode, wins[0]
        raise
    metrics.update(summarise(parts, context, seed=seed, fail_line=rules.TOP1_FAIL))
    metrics["deterministic"] = deterministic
    first = ("kl_mean", "top1_confident", "ppl_delta", "breaks_after", "positions")
    metrics = {k: metrics[k] for k in first if k in metrics} | metrics  # the headline first
    findings = []
    for func in rules.LLM_RULES:
        findings.extend(run_rule(func, metrics))
    findings.extend(run_rule(rules.tokenizer, metrics))
    return findings, metrics, mode, wins[0]


def _vocab_of(spec: SideSpec) -> int:
    from pathlib import Path

    from mlx_lm.utils import load_tokenizer

    return _tokenizer_size(load_tokenizer(Path(spec.path)))


def curve_lines(metrics: dict[str, Any]) -> Iterator[str]:
    """The position curve as text lines (for the plain output)."""
    for w in metrics.get("curve", []):
        yield (
            f"    {w['start']:>6}-{w['end']:<6} top-1 {w['top1_agreement']:.1%} "
            f"(decided {w['top1_confident']:.1%})  "
            f"KL {w['kl_mean']:.3g}  ({w['positions']} positions)"
        )
