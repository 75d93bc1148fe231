"""Training the tiny models at build time: seconds on one CPU core, with MLX, deterministic.

The tiny language models (and the text side of the tiny VLMs) learn next-token prediction on the
package corpus (genai_common.corpus): its documents cut into chunks, plus each chat exchange
rendered through the model's own chat template and tokenizer, repeated so that a fixed prompt
greedily yields its answer. Rows are packed from whole examples, shuffled by a numpy generator
seeded by the seed, and every step runs on the CPU stream: the same seed and library versions give
the same weights.

Targets that are special or padding ids (eos, turn markers, the rows above the tokenizer) are left
out of the loss, and the output-projection rows that the builders zero stay zero: greedy decoding
never picks them, so generation always runs to `max_tokens` (the token-count and timing tests rely
on it).

    LM_RECIPE                    the hyperparameters (part of the cache key)
    lm_examples(...)             token sequences from the corpus for one tokenizer
    train_lm(model, ...)         the loop; returns its figures (losses, tokens, seconds)
    mean_nll(forward, ...)       mean next-token loss over sequences (perplexity = exp of it)

Heavy imports (mlx, numpy) stay inside the functions.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

# What each training run reported, in order (tiny.build keeps a build's in the cache entry).
RECORDS: list[dict[str, Any]] = []

# Changing any value changes the cache key (genai_common.testing.tiny_cache hashes this file).
LM_RECIPE: dict[str, Any] = {
    "init_std": 0.15,  # of the random initialisation (0.02 learns ~3x slower in this budget)
    "steps": 100,
    "batch": 8,
    "seq_len": 64,
    "lr": 1e-2,
    "final_lr": 3e-3,
    "warmup": 5,
    "chat_repeat": 8,  # each chat exchange appears this many times per pass over the corpus
    "clip": 1.0,
}

# Changes to train.LM_RECIPE per variant. Multi-head latent attention diverges at lr 1e-2 in this
# budget (its loss stalls near ppl 60 and it never learns the chat answers); at 3e-3 it trains.
RECIPE_CHANGES: dict[str, dict[str, Any]] = {"deepseek_v3": {"lr": 3e-3, "final_lr": 1e-3}}

# Changing any value changes the cache key (tiny_cache hashes this file).
ML_RECIPE: dict[str, Any] = {"examples": 4096, "steps": 200, "batch": 128, "lr": 3e-3}


def lm_examples(
    encode_text: Callable[[str], list[int]],
    chat_ids: Callable[[str, str], tuple[list[int], list[int]]],
    *,
    seq_len: int,
) -> tuple[list[list[int]], list[tuple[list[int], int]]]:
    """(text chunks, chat sequences) of the corpus for one tokenizer.

    encode_text(text) encodes a paragraph as the model reads plain text (with its bos, if any).
    chat_ids(prompt, answer) -> (the prompt's ids exactly as generation sends them, the answer's
    ids and eos); a chat sequence is (prompt + answer ids, len(prompt)): only its answer is
    trained (the prompts are in the corpus text as well). Chunks are at most seq_len + 1 tokens
    (inputs and shifted targets); exchanges longer than that are left out of the chats.
    """
    from genai_common import corpus

    texts: list[list[int]] = []
    for name in corpus.names():
        for paragraph in corpus.text(name).split("\n\n"):
            if not paragraph.strip():
                continue
            ids = encode_text(paragraph.strip("\n") + "\n")
            texts.extend(ids[i : i + seq_len + 1] for i in range(0, len(ids), seq_len))
    texts = [t for t in texts if len(t) > 1]
    chats = []
    for prompt, answer in corpus.chats():
        prompt_ids, answer_ids = chat_ids(prompt, answer)
        if len(prompt_ids) + len(answer_ids) <= seq_len + 1:
            chats.append((prompt_ids + answer_ids, len(prompt_ids)))
    return texts, chats


def pack_rows(
    examples: Sequence[tuple[Sequence[int], int]], order: Iterable[int], seq_len: int, pad_id: int
) -> tuple[Any, Any, Any]:
    """Pack whole examples (ids, prompt length), in `order`, into rows of seq_len + 1 tokens.

    Returns three [rows, seq_len + 1] arrays: tokens (int32); trained (bool), True on the tokens
    that are targets of the loss (not the padding that ends a row, not a chat prompt); prompt
    (int32), k > 0 on the tokens of the row's k-th chat prompt, 0 elsewhere (a prefix-LM such as
    PaliGemma attends both ways inside a prompt).
    """
    import numpy as np

    rows: list[tuple[list[int], list[bool], list[int]]] = []
    ids: list[int] = []
    flags: list[bool] = []
    prompts: list[int] = []
    for i in order:
        ex, start = examples[i]
        if ids and len(ids) + len(ex) > seq_len + 1:
            rows.append((ids, flags, prompts))
            ids, flags, prompts = [], [], []
        k = max(prompts, default=0) + 1 if start else 0
        ids.extend(ex)
        flags.extend(j >= start for j in range(len(ex)))
        prompts.extend(k if j < start else 0 for j in range(len(ex)))
    if ids:
        rows.append((ids, flags, prompts))
    tokens = np.full((len(rows), seq_len + 1), pad_id, dtype=np.int32)
    trained = np.zeros((len(rows), seq_len + 1), dtype=bool)
    prompt = np.zeros((len(rows), seq_len + 1), dtype=np.int32)
    for r, (row, row_flags, row_prompts) in enumerate(rows):
        tokens[r, : len(row)] = row
        trained[r, : len(row)] = row_flags
        prompt[r, : len(row)] = row_prompts
    return tokens, trained, prompt


def prefix_lm_mask(prompt: Any) -> Any:
    """[B, 1, L, L] bool: causal, and both ways between tokens of the same chat prompt (prompt
    as pack_rows returns it, inputs only), as a prefix-LM prefills its prompt."""
    import mlx.core as mx

    n = prompt.shape[-1]
    causal = mx.tril(mx.ones((n, n), dtype=mx.bool_))
    same = (prompt[:, :, None] == prompt[:, None, :]) & (prompt[:, :, None] > 0)
    return (causal[None] | same)[:, None]


def _loss_weights(tokens: Any, filled: Any, quiet: Sequence[int]) -> Any:
    """1.0 where a target is a real, non-quiet token; 0.0 elsewhere (shape [rows, seq_len])."""
    import numpy as np

    targets = tokens[:, 1:]
    keep = filled[:, 1:] & ~np.isin(targets, np.asarray(list(quiet), dtype=np.int32))
    return keep.astype(np.float32)


def _schedule(recipe: dict[str, Any]) -> Any:
    import mlx.optimizers as optim

    warmup = recipe["warmup"]
    return optim.join_schedules(
        [
            optim.linear_schedule(recipe["lr"] / warmup, recipe["lr"], warmup),
            optim.cosine_decay(recipe["lr"], recipe["steps"] - warmup, recipe["final_lr"]),
        ],
        [warmup],
    )


def _fast_linear_classes() -> tuple[type, type]:
    """nn.Linear and nn.Embedding subclasses whose products all run as plain row-major matmuls.

    The same arithmetic as the library's layers, laid out for the CPU: mlx[cpu]'s Linux wheel links
    the reference BLAS, where `x @ w.T` (a transposed operand) is about 3x slower than `x @
    contiguous(w.T)`. A custom vjp keeps the backward products untransposed too. Used only while
    training; the instances get their own classes back afterwards.
    """
    import mlx.core as mx
    import mlx.nn as nn

    @mx.custom_function
    def linear(x: Any, w: Any) -> Any:
        return x @ mx.contiguous(w.T)

    @linear.vjp
    def linear_vjp(primals: Any, cotangent: Any, output: Any) -> Any:
        x, w = primals
        dx = cotangent @ w
        g = cotangent.reshape(-1, cotangent.shape[-1])
        dw = mx.contiguous(g.T) @ x.reshape(-1, x.shape[-1])
        return dx, dw

    class FastLinear(nn.Linear):
        def __call__(self, x: Any) -> Any:
            y = linear(x, self.weight)
            return y + self.bias if "bias" in self else y

    class FastEmbedding(nn.Embedding):
        def as_linear(self, x: Any) -> Any:
            return linear(x, self.weight)

    return FastLinear, FastEmbedding


@contextlib.contextmanager
def _fast_layers(model: Any) -> Iterator[None]:
    import mlx.nn as nn

    fast_linear, fast_embedding = _fast_linear_classes()
    swapped = []
    for _, module in model.named_modules():
        if type(module) is nn.Linear:
            swapped.append((module, nn.Linear))
            module.__class__ = fast_linear
        elif type(module) is nn.Embedding:
            swapped.append((module, nn.Embedding))
            module.__class__ = fast_embedding
    try:
        yield
    finally:
        for module, cls in swapped:
            module.__class__ = cls


def _rezero(zero_rows: Sequence[tuple[Any, Sequence[int]]]) -> None:
    """Multiply the listed rows of each module's weight by 0 (keeps them exactly zero)."""
    import mlx.core as mx

    for module, rows in zero_rows:
        mask = mx.ones((module.weight.shape[0], 1), dtype=module.weight.dtype)
        mask[mx.array(list(rows))] = 0
        module.weight = module.weight * mask


def train_lm(
    model: Any,
    forward: Callable[[Any, Any], Any],
    examples: tuple[list[list[int]], list[tuple[list[int], int]]],
    *,
    quiet: Sequence[int],
    pad_id: int,
    seed: int,
    zero_rows: Sequence[tuple[Any, Sequence[int]]] = (),
    recipe: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train `model`'s trainable parameters in place on the examples; return the figures.

    forward(model, ids [B, L], prompt [B, L] or None) -> logits [B, L, V]; `prompt` marks the
    chat-prompt tokens (see pack_rows) for a prefix-LM, None means plain causal. `zero_rows`: (module, rows) whose weight rows
    are zero before training and must stay zero (the output rows of special and padding ids).
    """
    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim
    import numpy as np

    recipe = dict(LM_RECIPE if recipe is None else recipe)
    texts, chats = examples
    pool = [(t, 0) for t in texts] + list(chats) * recipe["chat_repeat"]
    seq_len, batch = recipe["seq_len"], recipe["batch"]
    rng = np.random.default_rng([seed, 0x7E57])

    def loss_fn(m: Any, x: Any, y: Any, w: Any, p: Any) -> Any:
        ce = nn.losses.cross_entropy(forward(m, x, p).astype(mx.float32), y, reduction="none")
        return (ce * w).sum() / mx.maximum(w.sum(), 1.0)

    losses: list[float] = []
    started = time.perf_counter()
    n_tokens = 0
    with mx.stream(mx.cpu), _fast_layers(model):
        optimizer = optim.Adam(learning_rate=_schedule(recipe), betas=[0.9, 0.99])
        step_fn = nn.value_and_grad(model, loss_fn)
        _rezero(zero_rows)
        rows = np.zeros((0, seq_len + 1), dtype=np.int32)
        trained = np.zeros((0, seq_len + 1), dtype=bool)
        prompts = np.zeros((0, seq_len + 1), dtype=np.int32)
        for _ in range(recipe["steps"]):
            if len(rows) < batch:  # a new pass over the pool, in a new order
                more = pack_rows(pool, rng.permutation(len(pool)), seq_len, pad_id)
                rows = np.concatenate([rows, more[0]])
                trained = np.concatenate([trained, more[1]])
                prompts = np.concatenate([prompts, more[2]])
            tok, tra, pro = rows[:batch], trained[:batch], prompts[:batch]
            rows, trained, prompts = rows[batch:], trained[batch:], prompts[batch:]
            weights = _loss_weights(tok, tra, quiet)
            x, y, p = mx.array(tok[:, :-1]), mx.array(tok[:, 1:]), mx.array(pro[:, :-1])
            loss, grads = step_fn(model, x, y, mx.array(weights), p)
            grads, _ = optim.clip_grad_norm(grads, recipe["clip"])
            optimizer.update(model, grads)
            _rezero(zero_rows)
            mx.eval(model.parameters(), optimizer.state, loss)
            losses.append(loss.item())
            n_tokens += int(weights.sum())
    seconds = time.perf_counter() - started
    tail = losses[-5:]
    record = {
        "steps": len(losses),
        "target_tokens": n_tokens,
        "seconds": round(seconds, 3),
        "first_loss": round(losses[0], 4),
        "last_loss": round(sum(tail) / len(tail), 4),
        "recipe": recipe,
    }
    RECORDS.append(record)
    return record


def mean_nll(
    model: Any,
    forward: Callable[[Any, Any], Any],
    sequences: Sequence[Sequence[int]],
    *,
    quiet: Sequence[int] = (),
    seq_len: int = 128,
) -> float:
    """Mean next-token loss (nats) over the sequences, each cut into windows of seq_len + 1,
    targets in `quiet` left out, causal attention. exp() of it is the perplexity."""
    import mlx.core as mx
    import mlx.nn as nn
    import numpy as np

    total, count = 0.0, 0
    quiet_arr = np.asarray(list(quiet), dtype=np.int32)
    with mx.stream(mx.cpu):
        for seq in sequences:
            for i in range(0, max(len(seq) - 1, 0), seq_len):
                window = np.asarray(seq[i : i + seq_len + 1], dtype=np.int32)
                if len(window) < 2:
                    continue
                keep = ~np.isin(window[1:], quiet_arr)
                logits = forward(model, mx.array(window[None, :-1]), None).astype(mx.float32)
                ce = nn.losses.cross_entropy(logits[0], mx.array(window[1:]), reduction="none")
                total += float((ce * mx.array(keep.astype(np.float32))).sum().item())
                count += int(keep.sum())
    return total / max(count, 1)
