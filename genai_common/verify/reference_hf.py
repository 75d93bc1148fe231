"""The transformers / PyTorch side of `genai verify` (issue 10 part 1): a Hugging Face checkpoint or
a GGUF file read by transformers, scored on the same token ids as the MLX side, teacher-forced,
torch on the CPU in float32.

    backend_of(path) -> "mlx" | "transformers" | "gguf"       (no heavy import)
    choose(candidate, reference, requested) -> (candidate backend, reference backend)
    hf_log_probs(path, token_ids) -> numpy [n, vocab]           (one sequence)
    shared_vocab(a, b) -> (a, b) over the vocabulary both have, renormalised
    rows(candidate, reference, budget, backends) -> (ref, cand, target, scored)

Layout detection (read from real files, mlx-lm 0.32.2, transformers 5.25.0): mlx-lm writes its
safetensors with `mx.save_safetensors(..., metadata={"format": "mlx"})` and a quantized
conversion declares `quantization` in config.json; `save_pretrained` writes format "pt"; a
`pytorch_model.bin` is PyTorch's pickle. Tensor names do not tell them apart: mlx-lm's llama
names are Hugging Face's (`model.layers.N.self_attn.q_proj.weight`). A checkpoint with neither
mark (no metadata) counts as MLX, which mlx-lm loads either way.

torch, transformers and numpy are imported inside the functions that use them.
"""

from __future__ import annotations

import json
import os
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

BACKENDS = ("auto", "mlx", "transformers")
EXTRA = "genai-common[reference]"


class BackendMissing(RuntimeError):
    """The transformers backend cannot run here (torch, transformers or gguf not installed)."""


def gguf_file(path: str) -> str | None:
    """The .gguf file `path` names: the file itself, or the only .gguf of a folder that has no
    config.json; else None."""
    if os.path.isfile(path):
        return path if path.endswith(".gguf") else None
    if not os.path.isdir(path) or os.path.exists(os.path.join(path, "config.json")):
        return None
    found = sorted(n for n in os.listdir(path) if n.endswith(".gguf"))
    return os.path.join(path, found[0]) if len(found) == 1 else None


def _safetensors_format(path: str) -> str | None:
    """__metadata__["format"] of a safetensors file (its JSON header only)."""
    try:
        with open(path, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            if size > 100_000_000:
                return None
            header = json.loads(fh.read(size))
    except (OSError, ValueError, struct.error):
        return None
    meta = header.get("__metadata__") or {}
    return meta.get("format") if isinstance(meta, dict) else None


def backend_of(path: str) -> str:
    """Which framework a checkpoint was written by: "gguf", "transformers" or "mlx"."""
    if gguf_file(path):
        return "gguf"
    try:
        with open(os.path.join(path, "config.json"), encoding="utf-8") as fh:
            config = json.load(fh)
    except (OSError, ValueError):
        return "mlx"
    if isinstance(config, dict) and config.get("quantization"):
        return "mlx"  # mlx-lm's quantized layout (transformers' own is `quantization_config`)
    names = os.listdir(path)
    weights = sorted(n for n in names if n.endswith(".safetensors"))
    if not weights:
        return "transformers" if any(n.startswith("pytorch_model") for n in names) else "mlx"
    formats = {_safetensors_format(os.path.join(path, n)) for n in weights}
    return "mlx" if "mlx" in formats or formats == {None} else "transformers"


def available() -> str | None:
    """None when torch and transformers import; else the name of the missing one."""
    import importlib.util

    for name in ("torch", "transformers"):
        if importlib.util.find_spec(name) is None:
            return name
    return None


def _need(what: str, *, gguf: bool = False) -> None:
    missing = available()
    if missing is None and gguf:
        import importlib.util

        missing = None if importlib.util.find_spec("gguf") else "gguf"
    if missing:
        raise BackendMissing(
            f"genai verify: {what} needs {missing} (not installed): pip install '{EXTRA}'"
        )


def choose(candidate: str, reference: str, requested: str | None = "auto") -> tuple[str, str]:
    """(candidate backend, reference backend), each "mlx", "transformers" or "gguf".

    auto: a GGUF side is read by transformers (mlx-lm cannot load one); a checkpoint written by
    transformers is scored by transformers when torch is installed, else by mlx-lm (which loads
    the same files, but cannot catch a bug in its own model code). `transformers` forces the
    reference through transformers; `mlx` forces both sides through mlx-lm (not for GGUF)."""
    requested = requested or "auto"
    if requested not in BACKENDS:
        raise ValueError(f"genai verify: --reference-backend {requested!r}: one of {BACKENDS}")
    sides = []
    for role, path in (("candidate", candidate), ("reference", reference)):
        found = backend_of(path)
        if found == "gguf":
            if requested == "mlx":
                raise ValueError(
                    f"genai verify: {path} is a GGUF file, which mlx-lm cannot load: "
                    "use --reference-backend auto or transformers"
                )
            _need(f"the GGUF {role} {path}", gguf=True)
        elif requested == "mlx":
            found = "mlx"
        elif requested == "transformers" and role == "reference":
            _need(f"--reference-backend transformers ({path})")
            found = "transformers"
        elif found == "transformers" and available() is not None:
            found = "mlx"  # auto without torch: mlx-lm reads the Hugging Face files itself
        sides.append(found)
    if "mlx" not in sides and sides[0] == "transformers":
        sides[0] = "mlx"  # two Hugging Face checkpoints: mlx-lm reads the candidate
    return sides[0], sides[1]


def load_hf(path: str) -> Any:
    """A transformers causal LM in float32 on the CPU, in eval mode, from a Hugging Face folder
    or (through transformers' `gguf_file=`, dequantized) a GGUF file."""
    import torch
    from transformers import AutoModelForCausalLM

    gguf = gguf_file(path)
    kwargs: dict[str, Any] = {"dtype": torch.float32}
    if gguf:
        folder, name = os.path.split(os.path.abspath(gguf))
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, **kwargs)
    else:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    return model.eval()


def hf_log_probs(
    path: str, token_ids: Sequence[int], *, model: Any = None, hidden: bool = False
) -> Any:
    """Log-probabilities [len(token_ids), vocab] (float32 numpy) of the transformers model at
    `path` after each position of `token_ids`, teacher-forced. With `hidden`, also the hidden
    states (embedding output, each block's output; the last is after the final norm) as a list
    of numpy arrays [len(token_ids), hidden]."""
    import numpy as np
    import torch

    model = model if model is not None else load_hf(path)
    ids = torch.tensor([list(token_ids)], dtype=torch.long)
    with torch.no_grad():
        out = model(input_ids=ids, output_hidden_states=hidden, use_cache=False)
        logp = torch.log_softmax(out.logits[0].float(), dim=-1).numpy()
    if hidden:
        return logp, [h[0].float().numpy() for h in out.hidden_states]
    return np.ascontiguousarray(logp)


def shared_vocab(a: Any, b: Any) -> tuple[Any, Any]:
    """Both rows over the vocabulary they share (the first min(width) ids), renormalised: a
    checkpoint may pad its embedding above the tokenizer (mlx-lm keeps the rows it was given;
    a GGUF's `vocab_size` comes from its token list), and the padding rows' mass is not a
    difference between the models."""
    import numpy as np

    width = min(a.shape[-1], b.shape[-1])
    if a.shape[-1] == b.shape[-1]:
        return a, b

    def renorm(x: Any) -> Any:
        x = x[..., :width]
        top = x.max(axis=-1, keepdims=True)
        return x - (top + np.log(np.exp(x - top).sum(axis=-1, keepdims=True)))

    return renorm(a), renorm(b)


def corpus_ids(mlx_path: str, budget: int | None) -> list[list[int]]:
    """The token sequences testing.quality._log_probs scores for the MLX model at `mlx_path`
    (its tokenizer, the shipped corpus, cut to `budget` positions), so both sides see the same
    ids."""
    from pathlib import Path

    from mlx_lm.utils import load_tokenizer

    from genai_common.testing.quality import corpus_sequences

    tokenizer = load_tokenizer(Path(mlx_path))
    out = []
    for seq in corpus_sequences("llm", None, tokenizer):
        if budget is not None and budget <= 0:
            break
        seq = list(seq) if budget is None else list(seq[: budget + 1])
        out.append(seq)
        if budget is not None:
            budget -= len(seq) - 1
    return out


def rows(
    candidate: str, reference: str, budget: int | None, backends: tuple[str, str]
) -> tuple[Any, Any, Any, Any]:
    """(reference log-probs, candidate log-probs, target ids, scored mask) over the shared
    vocabulary, each side through its backend, on the MLX side's token ids."""
    import numpy as np

    from genai_common.testing.quality import _log_probs

    if "mlx" not in backends:
        raise ValueError(
            "genai verify: one side must be an MLX model (its tokenizer gives the token ids); "
            f"got {backends[0]} and {backends[1]}"
        )
    mlx_path = candidate if backends[0] == "mlx" else reference
    mlx_rows, target, scored = _log_probs(mlx_path, budget)
    seqs = corpus_ids(mlx_path, budget)
    hf_path = reference if backends[0] == "mlx" else candidate
    model = load_hf(hf_path)
    hf_rows = np.concatenate([hf_log_probs(hf_path, s[:-1], model=model) for s in seqs])
    ids = np.concatenate([np.asarray(s[1:]) for s in seqs])
    if ids.shape != target.shape or not (ids == target).all():
        raise RuntimeError("genai verify: the two sides were not fed the same token ids")
    if backends[1] == "mlx":  # both MLX is verify()'s own path; here one side is transformers
        ref, cand = mlx_rows, hf_rows
    else:
        ref, cand = hf_rows, mlx_rows
    ref, cand = shared_vocab(ref, cand)
    return ref, cand, target, scored
