"""What training bought the tiny models, measured through the real loaders: perplexity on the
corpus, the greedy answer to a chat prompt, and the KL divergence between two checkpoints of the
same tokenizer (quantization damage). Tests and benchmarks/bench_tiny_trained.py use it; the
general comparison of two models is `genai verify`'s (verify/), not this module's.

    corpus_sequences(kind, model, tokenizer) -> list[list[int]]
    perplexity(path, kind="llm") -> float
    greedy_chat(path, prompt, kind="llm", max_tokens=24) -> str
    compare(reference, {name: candidate}) -> perplexities and KL(reference || candidate)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

CAPITAL_PROMPT = "What is the capital of France?"
CAPITAL_ANSWER = "The capital of France is Paris."


def _load(path: str | Path, kind: str) -> tuple[Any, Any, Any]:
    """(model, tokenizer or processor, forward) through mlx-lm or mlx-vlm."""
    if kind == "llm":
        from mlx_lm import load

        from genai_common.testing.tiny_llm import _forward

        model, tokenizer = load(str(path))
        return model, tokenizer, _forward
    from mlx_vlm import load as load_vlm

    from genai_common.testing.tiny_vlm import language_logits

    model, processor = load_vlm(str(path))
    return model, processor, language_logits


def corpus_sequences(kind: str, model: Any, tokenizer: Any) -> list[list[int]]:
    """The corpus as training sees it (text chunks, then each chat exchange once, whole)."""
    if kind == "llm":
        from genai_common.testing.tiny_llm import chat_examples_mlx_lm

        texts, chats = chat_examples_mlx_lm(tokenizer)
    else:
        from genai_common.testing.tiny_vlm import chat_examples_mlx_vlm

        texts, chats = chat_examples_mlx_vlm(model, tokenizer)
    return texts + [ids for ids, _ in chats]


def _quiet(tokenizer: Any) -> list[int]:
    """The special ids: not scored as targets (training never targets them)."""
    tok = getattr(tokenizer, "tokenizer", tokenizer)  # an mlx-vlm processor's tokenizer
    tok = getattr(tok, "_tokenizer", tok)  # mlx-lm's wrapper around a transformers tokenizer
    specials = set(getattr(tok, "all_special_ids", []) or [])
    specials.update(int(i) for i in getattr(tok, "added_tokens_decoder", {}) or {})
    return sorted(specials)


def perplexity(path: str | Path, kind: str = "llm") -> float:
    """exp(mean next-token loss) of the model at `path` over the corpus (causal)."""
    from genai_common.testing import train

    model, tokenizer, forward = _load(path, kind)
    seqs = corpus_sequences(kind, model, tokenizer)
    return math.exp(train.mean_nll(model, forward, seqs, quiet=_quiet(tokenizer)))


def greedy_chat(path: str | Path, prompt: str, kind: str = "llm", max_tokens: int = 24) -> str:
    """The greedy reply to one user message, through mlx-lm's or mlx-vlm's own generate (for a
    VLM: no image, the text side)."""
    if kind == "llm":
        from mlx_lm import generate, load

        model, tokenizer = load(str(path))
        messages = [{"role": "user", "content": prompt}]
        rendered = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )
        return generate(model, tokenizer, rendered, max_tokens=max_tokens, verbose=False)
    from mlx_vlm import generate as generate_vlm
    from mlx_vlm import load as load_vlm
    from mlx_vlm.prompt_utils import apply_chat_template

    model, processor = load_vlm(str(path))
    rendered = apply_chat_template(processor, model.config, prompt, num_images=0)
    return generate_vlm(model, processor, rendered, max_tokens=max_tokens, verbose=False).text


def _log_probs(path: str | Path, max_tokens: int | None) -> tuple[Any, Any, Any]:
    """(log-probabilities [n, vocab], target ids [n], scored [n] bool) of the llm at `path` over
    the corpus, teacher-forced, the first `max_tokens` positions."""
    import mlx.core as mx
    import numpy as np

    model, tokenizer, forward = _load(path, "llm")
    quiet = np.asarray(_quiet(tokenizer), dtype=np.int32)
    rows, targets = [], []
    budget = max_tokens
    with mx.stream(mx.cpu):
        for seq in corpus_sequences("llm", model, tokenizer):
            if budget is not None and budget <= 0:
                break
            seq = seq if budget is None else seq[: budget + 1]
            logits = forward(model, mx.array(np.asarray(seq[:-1], dtype=np.int32)[None]), None)
            logits = logits[0].astype(mx.float32)
            rows.append(np.array(logits - mx.logsumexp(logits, axis=-1, keepdims=True)))
            targets.append(np.asarray(seq[1:]))
            if budget is not None:
                budget -= len(seq) - 1
    target = np.concatenate(targets)
    return np.concatenate(rows), target, ~np.isin(target, quiet)


def compare(
    reference: str | Path, candidates: dict[str, str | Path], max_tokens: int | None = None
) -> dict[str, dict[str, float]]:
    """Perplexity of the reference and of each candidate (llm checkpoints of one tokenizer) over
    the corpus, and KL(reference || candidate) per scored position (mean, p99, max; nats), from
    one teacher-forced pass of each model over the same token ids."""
    import numpy as np

    ref, target, scored = _log_probs(reference, max_tokens)
    picked = np.arange(len(target))

    def ppl(logp: Any) -> float:
        return float(np.exp(-logp[picked, target][scored].mean()))

    out = {"reference": {"ppl": ppl(ref)}}
    for name, path in candidates.items():
        cand, _, _ = _log_probs(path, max_tokens)
        kl = (np.exp(ref) * (ref - cand)).sum(axis=-1)[scored]
        out[name] = {
            "ppl": ppl(cand),
            "kl_mean": float(kl.mean()),
            "kl_p99": float(np.percentile(kl, 99)),
            "kl_max": float(kl.max()),
        }
    return out
