"""Localisation for `genai verify` (issue 10 part 2): when a candidate fails against its
reference, find the first stage where their hidden states part, and say what the weights of that
stage look like.

    localise(candidate, reference, tokens=None) -> (first_bad_layer | None, findings)

Capture. Each side is loaded with mlx-lm's own loader and run once over the same token ids
through its own forward (so its mask, cache, embedding scale and rope conventions are the
model's own); every direct child module of each decoder block (input_layernorm, self_attn,
post_attention_layernorm, mlp, ...), each block, model.embed_tokens, model.norm and lm_head are
wrapped so that their outputs are recorded in call order. Stage names are module paths
("model.layers.0.input_layernorm"); the last stage is "lm_head" ("logits" when the embedding is
tied). The tokens default to the first LOCALISE_TOKENS ids of the shipped corpus. A VLM's
language model is walked the same way under "language_model." (verify/vlm.py: VlmSide on
mlx-vlm, TorchVlmSide on transformers, both run on the fixed image and prompt; localise_sides).

Rule (documented in reference/DIAGNOSTICS.md). Relative error of a stage: ||c - r|| / ||r|| over
all positions (float32). The first bad stage is the first whose relative error exceeds JUMP_MIN
(1e-2) and JUMP_RATIO (10) times the previous stage's (a stage that starts the damage rather
than inherits it). When no stage jumps (damage spread thinly over every layer, as quantization
spreads it), the first stage above JUMP_MIN is named and the finding says there was no jump.

Diagnosis. The parameters under the bad stage's module path are compared between the two
checkpoints (quantized ones dequantized with mx.dequantize first): a constant offset (QLT101),
the q/k rotate-half permutation (QLT102), two tensors exchanged (QLT103), an all-zero tensor
(QLT104), a constant scale (QLT105), a low-rank difference (QLT106, an adapter fused
differently), config keys that differ while the weights are equal (QLT107), a different
quantization (QLT108), a tensor on one side only (QLT109), a difference without a pattern
(QLT110), a matrix stored transposed (QLT113); where the two layouts cannot be compared it says
so (QLT111), and when the model cannot be walked (no model.layers, ...) QLT112 says why and the
verdict stands without a stage.
"""

from __future__ import annotations

import os

from genai_common.findings import finding, rule, run_rule

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from genai_common.findings import Finding

LOCALISE_TOKENS = 256
ISOLATED_TOKENS = 64  # the isolated walk writes every stage to disk: fewer tokens, smaller files
JUMP_MIN = 1e-2  # a stage's relative error must exceed this ...
JUMP_RATIO = 10.0  # ... and this many times the previous stage's, to be where it broke
FLOOR = 1e-6  # the previous stage's error counts as at least this (identical stages are 0)
EQUAL = 1e-3  # tensors within this relative difference are equal (float16 rounding: ~5e-4)
EQUAL_CAST = 1e-2  # float16 vs bfloat16 storage (bfloat16 rounding: ~4e-3)
EQUAL_QUANTIZED = 0.2  # when either side is quantized (4-bit affine: ~0.1)
# config keys whose difference is about storage, not about the function the model computes
CONFIG_IGNORED = {
    "quantization",
    "quantization_config",
    "torch_dtype",
    "dtype",
    "transformers_version",
}


class _Recorder:
    """Stands in for a module: calls it and records its output under `name` (attributes
    delegate, so `embed_tokens.as_linear` and a block's `use_sliding` still work)."""

    def __init__(self, name: str, module: Any, out: list[tuple[str, Any]]) -> None:
        self._name, self._module, self._out = name, module, out

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        y = self._module(*args, **kwargs)
        self._out.append((self._name, y[0] if isinstance(y, tuple) else y))
        return y

    def __getattr__(self, key: str) -> Any:
        return getattr(self._module, key)


class Side:
    """One loaded checkpoint: its config, modules by path and the stages it recorded. `root` is
    the path of the module that holds model.layers and lm_head ("" for mlx-lm; mlx-vlm's
    language model is under "language_model.", verify/vlm.py's VlmSide)."""

    root = ""

    def __init__(self, path: str) -> None:
        from pathlib import Path

        from mlx_lm.utils import load_model

        self.path = path
        self.model, self.config = load_model(Path(path))
        self.modules = dict(self.model.named_modules())
        self.stages: list[tuple[str, Any]] = []

    def text_model(self) -> Any:
        """The module at `root`: the one with .model (embed_tokens, layers, norm) and lm_head."""
        return self.modules[self.root.rstrip(".")] if self.root else self.model

    def forward(self, tokens: list[int]) -> Any:
        """The logits of the whole model on `tokens` (its own forward: mask, cache, scale)."""
        import mlx.core as mx
        import numpy as np

        return self.model(mx.array(np.asarray(tokens, dtype=np.int32)[None]))

    def run(self, tokens: list[int]) -> list[tuple[str, Any]]:
        """Record every stage's output on `tokens` (the model is instrumented in place)."""
        import mlx.core as mx
        import numpy as np

        out: list[tuple[str, Any]] = []
        text, at = self.text_model(), self.root
        inner = text.model
        for i, block in enumerate(inner.layers):
            for name, child in list(block.children().items()):
                if callable(child):
                    setattr(block, name, _Recorder(f"{at}model.layers.{i}.{name}", child, out))
            inner.layers[i] = _Recorder(f"{at}model.layers.{i}", block, out)
        inner.embed_tokens = _Recorder(f"{at}model.embed_tokens", inner.embed_tokens, out)
        inner.norm = _Recorder(f"{at}model.norm", inner.norm, out)
        head = "lm_head" if "lm_head" in text else None
        if head:
            text.lm_head = _Recorder(f"{at}lm_head", text.lm_head, out)
        with mx.stream(mx.cpu):
            logits = self.forward(tokens)
            logits = getattr(logits, "logits", logits)  # mlx-vlm returns an output object
            mx.eval(logits, [y for _, y in out])
        if not head:
            out.append((f"{at}logits", logits))
        self.stages = [(n, np.array(y.astype(mx.float32))) for n, y in out]
        return self.stages

    def tensors(self, prefix: str) -> dict[str, tuple[Any, str]]:
        """Parameters under module path `prefix`: name -> (float32 array, storage), quantized
        weights dequantized with the module's own group size, bits and mode."""
        import mlx.core as mx
        import numpy as np

        out: dict[str, tuple[Any, str]] = {}
        for path, module in self.modules.items():
            if not (path == prefix or path.startswith(prefix + ".")):
                continue
            params = module.parameters()
            if not isinstance(params.get("weight"), mx.array):
                continue
            w = params["weight"]
            if "scales" in params:
                mode = getattr(module, "mode", "affine")
                w = mx.dequantize(
                    w,
                    params["scales"],
                    params.get("biases"),
                    module.group_size,
                    module.bits,
                    mode=mode,
                )
                storage = f"{module.bits}-bit (group {module.group_size})"
            else:
                storage = str(w.dtype).replace("mlx.core.", "")
            out[f"{path}.weight"] = (np.array(w.astype(mx.float32)), storage)
            if isinstance(params.get("bias"), mx.array):
                out[f"{path}.bias"] = (np.array(params["bias"].astype(mx.float32)), storage)
        return out


class TorchSide:
    """A transformers side (a Hugging Face folder or a GGUF file, read by verify/reference_hf's
    loader: float32, CPU) with Side's interface. Hugging Face and mlx-lm name the llm modules
    alike (model.embed_tokens, model.layers.N.self_attn, model.norm, lm_head), so forward hooks
    on the same paths record the same stages. A subclass whose transformers paths differ from
    the MLX side's (a VLM's decoder) maps them with hf_name / our_name."""

    root = ""
    decoder = "model"  # the transformers path of the module with embed_tokens, layers, norm
    head = "lm_head"

    def __init__(self, path: str) -> None:
        import json
        from pathlib import Path

        from genai_common.verify.reference_hf import load_hf

        self.path = path
        self.model = load_hf(path)
        cfg = Path(path) / "config.json"
        self.config = (
            json.loads(cfg.read_text(encoding="utf-8"))
            if cfg.is_file()
            else self.model.config.to_dict()
        )
        self.modules = dict(self.model.named_modules())
        self.stages: list[tuple[str, Any]] = []

    def our_name(self, hf: str) -> str:
        """The stage / tensor name the MLX side gives the transformers path `hf`."""
        return hf

    def hf_name(self, ours: str) -> str:
        return ours

    def forward(self, tokens: list[int]) -> None:
        import torch

        self.model(input_ids=torch.tensor([list(tokens)]), use_cache=False)

    def _recorded(self) -> list[str]:
        """The transformers paths of the stages Side records, in the order their outputs appear."""
        inner = self.modules.get(self.decoder)
        if inner is None or not hasattr(inner, "layers"):
            raise AttributeError(f"no {self.decoder}.layers in the transformers model")
        names = [f"{self.decoder}.embed_tokens"]
        for i, block in enumerate(inner.layers):
            names += [f"{self.decoder}.layers.{i}.{name}" for name, _ in block.named_children()]
            names.append(f"{self.decoder}.layers.{i}")
        return [*names, f"{self.decoder}.norm", self.head]

    def run(self, tokens: list[int]) -> list[tuple[str, Any]]:
        import torch

        out: list[tuple[str, Any]] = []

        def hook(name: str) -> Any:
            def record(module: Any, _inputs: Any, y: Any) -> None:
                y = y[0] if isinstance(y, tuple) else y
                if not isinstance(y, torch.Tensor):
                    return
                scale = getattr(module, "embed_scale", None)
                if isinstance(scale, torch.Tensor):
                    # Gemma's ScaledWordEmbedding multiplies by sqrt(hidden) inside the module;
                    # mlx-lm and mlx-vlm scale after it: record the lookup they record
                    y = y / scale.to(y.dtype)
                out.append((name, y[0].detach().float().numpy().copy()))

            return record

        handles = [
            self.modules[n].register_forward_hook(hook(self.our_name(n)))
            for n in self._recorded()
            if n in self.modules
        ]
        try:
            with torch.no_grad():
                self.forward(tokens)
        finally:
            for h in handles:
                h.remove()
        # with the batch axis, as Side records them ([1, positions, ...])
        self.stages = [(n, y[None]) for n, y in out]
        return self.stages

    def tensors(self, prefix: str) -> dict[str, tuple[Any, str]]:
        """Parameters under module path `prefix` (the MLX side's name): name -> (float32 array,
        the stored dtype)."""
        tied = bool(self.config.get("tie_word_embeddings"))
        hf_prefix = self.hf_name(prefix)
        if hf_prefix == self.head and tied:
            return {}  # the embedding, compared under model.embed_tokens
        stored = str(self.config.get("torch_dtype") or self.config.get("dtype") or "float32")
        out: dict[str, tuple[Any, str]] = {}
        for name, p in self.model.named_parameters():
            if name == hf_prefix or name.startswith(hf_prefix + "."):
                out[self.our_name(name)] = (p.detach().float().numpy().copy(), stored)
        return out


def open_side(path: str, backend: str = "mlx") -> Side | TorchSide:
    """One side of the layer walk: mlx-lm's loader, or transformers for the transformers and gguf
    backends of verify/llm.py."""
    return Side(path) if backend == "mlx" else TorchSide(path)


def relative_errors(
    cand: list[tuple[str, Any]], ref: list[tuple[str, Any]]
) -> list[tuple[str, float]]:
    """(stage, ||c - r|| / ||r||) for the stages both sides recorded, in the reference's order;
    logits are compared over the shared vocabulary."""
    import numpy as np

    got = dict(cand)
    rows = []
    for name, r in ref:
        c = got.get(name)
        head, _, last = name.rpartition(".")
        if c is None and last in ("lm_head", "logits"):  # a tied side against an untied one
            other = "logits" if last == "lm_head" else "lm_head"
            c = got.get(f"{head}.{other}" if head else other)
        if c is None:
            continue
        v = min(c.shape[-1], r.shape[-1])
        c, r = c[..., :v], r[..., :v]
        if c.shape != r.shape:
            continue
        rows.append((name, float(np.linalg.norm(c - r) / (np.linalg.norm(r) + 1e-12))))
    return rows


def first_jump(errors: list[tuple[str, float]]) -> tuple[str | None, bool]:
    """(the first stage that breaks, whether it jumped): the first stage with relative error
    above JUMP_MIN and JUMP_RATIO times its predecessor's; else the first above JUMP_MIN (no
    jump); else None."""
    prev = 0.0
    for name, err in errors:
        if err > JUMP_MIN and err > JUMP_RATIO * max(prev, FLOOR):
            return name, True
        prev = err
    return next(((n, False) for n, e in errors if e > JUMP_MIN), (None, False))


def _module_of(stage: str, side: Side | TorchSide) -> str:
    """The module path whose parameters explain `stage` (the tied output: the embedding)."""
    root = getattr(side, "root", "")
    if stage == f"{root}logits":
        return f"{root}model.embed_tokens"
    return stage


def default_tokens(path: str, n: int = LOCALISE_TOKENS) -> list[int]:
    """The first `n` token ids of the shipped corpus, as `genai verify` scores it."""
    from pathlib import Path

    from mlx_lm.utils import load_tokenizer

    from genai_common.testing.quality import corpus_sequences

    tokenizer = load_tokenizer(Path(path))
    ids: list[int] = []
    for seq in corpus_sequences("llm", None, tokenizer):
        ids.extend(seq)
        if len(ids) >= n:
            break
    return ids[:n]


def localise(
    candidate: str,
    reference: str,
    tokens: list[int] | None = None,
    backends: tuple[str, str] = ("mlx", "mlx"),
    isolated: bool = False,
) -> tuple[str | None, list[Finding]]:
    """(first bad stage or None, QLT1xx findings) for two llm checkpoints of one tokenizer;
    backends (candidate, reference): "mlx", or "transformers"/"gguf" for a side that
    transformers runs (the tokens then come from the MLX side's tokenizer). isolated: the two
    models do not fit together (verify's isolated mode): each side records its stages in its
    own child process, through files (localise_isolated)."""
    if tokens is None:
        n = ISOLATED_TOKENS if isolated else LOCALISE_TOKENS
        tokens = default_tokens(reference if backends[1] == "mlx" else candidate, n)
    if isolated:
        return localise_isolated(candidate, reference, tokens, backends)
    try:
        ref, cand = open_side(reference, backends[1]), open_side(candidate, backends[0])
    except (AttributeError, TypeError, ValueError, KeyError) as exc:
        return None, list(run_rule(not_localised, _reason(exc)))
    return localise_sides(cand, ref, tokens)


def localise_sides(cand: Any, ref: Any, tokens: Any) -> tuple[str | None, list[Finding]]:
    """The walk on two opened sides (Side, TorchSide or VlmSide): (first bad stage or None,
    findings); QLT112 when the models cannot be walked."""
    try:
        errors = relative_errors(cand.run(tokens), ref.run(tokens))
    except (AttributeError, TypeError, ValueError, KeyError) as exc:
        # the verdict stands without a stage: a model without model.layers, a forward that
        # does not take token ids alone, hidden states of different shapes
        return None, list(run_rule(not_localised, _reason(exc)))
    stage, jumped = first_jump(errors)
    subject = {"errors": errors, "stage": stage, "jumped": jumped, "cand": cand, "ref": ref}
    findings = list(run_rule(stage_rule, subject))
    if stage is not None:
        findings += list(run_rule(weight_patterns, subject))
    return stage, findings


class Recorded:
    """A side walked in a child process: its stages (memory-mapped files), config and
    root, and the tensors of the one module the walk asks about (fetched by another child)."""

    def __init__(self, info: dict[str, Any], stages: list[tuple[str, Any]]) -> None:
        self.config, self.root, self.stages = info["config"], info["root"], stages
        self.saved: dict[str, dict[str, tuple[Any, str]]] = {}

    def run(self, tokens: Any) -> list[tuple[str, Any]]:
        return self.stages

    def tensors(self, prefix: str) -> dict[str, tuple[Any, str]]:
        return self.saved.get(prefix, {})


def _child_record(path: str, backend: str, tokens: list[int], out: str) -> dict[str, Any]:
    """Isolated walk, one side in its child: every stage's output to OUT/NNNN.npy (float32, as
    the in-process walk compares them); returns the stage names, config and root."""
    import numpy as np

    side = open_side(path, backend)
    names = []
    for n, (name, y) in enumerate(side.run(tokens)):
        np.save(os.path.join(out, f"{n:04d}.npy"), y.astype(np.float32))
        names.append(name)
    return {"names": names, "config": side.config, "root": getattr(side, "root", "")}


def _child_tensors(path: str, backend: str, prefix: str) -> dict[str, tuple[Any, str]]:
    """Isolated walk: the parameters under one module path, from a side loaded in its child."""
    return open_side(path, backend).tensors(prefix)


def localise_isolated(
    candidate: str, reference: str, tokens: list[int], backends: tuple[str, str]
) -> tuple[str | None, list[Finding]]:
    """The walk with one model in memory at a time: each side records its stages in a child
    (files, memory-mapped back), the parent finds the jump, and one more child per side reads
    the tensors of the bad stage's module for the weight patterns. Four loads instead of two."""
    import shutil
    import tempfile

    import numpy as np

    from genai_common.runtime.isolate import run_isolated

    work = tempfile.mkdtemp(prefix="genai-localise-")
    try:
        sides = {}
        for role, path, backend in (
            ("ref", reference, backends[1]),
            ("cand", candidate, backends[0]),
        ):
            out = os.path.join(work, role)
            os.makedirs(out)
            res = run_isolated(_child_record, path, backend, list(tokens), out)
            if not res.ok:
                return None, list(run_rule(not_localised, f"the {role} side's child: {res.error}"))
            stages = [
                (name, np.load(os.path.join(out, f"{n:04d}.npy"), mmap_mode="r"))
                for n, name in enumerate(res.value["names"])
            ]
            sides[role] = Recorded(res.value, stages)
        cand, ref = sides["cand"], sides["ref"]
        errors = relative_errors(cand.stages, ref.stages)
        stage, jumped = first_jump(errors)
        subject = {"errors": errors, "stage": stage, "jumped": jumped, "cand": cand, "ref": ref}
        findings = list(run_rule(stage_rule, subject))
        if stage is not None:
            prefix = _module_of(stage, ref)
            for side, path, backend in (
                (cand, candidate, backends[0]),
                (ref, reference, backends[1]),
            ):
                res = run_isolated(_child_tensors, path, backend, prefix)
                side.saved[prefix] = res.value if res.ok else {}
            findings += list(run_rule(weight_patterns, subject))
        return stage, findings
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


@rule(
    "QLT112",
    "The failing model could not be localised layer by layer",
    severity="info",
    fix="The verdict stands; compare the two checkpoints' tensors with `genai doctor --weights` "
    "or by hand.",
    compares="mlx-lm model (or mlx-vlm's language_model) with model.embed_tokens, model.layers, "
    "model.norm",
)
def not_localised(reason: str) -> Iterator[Finding]:
    yield finding("QLT112", f"no layer-by-layer comparison ({reason})")


def _stage_table(errors: list[tuple[str, float]], stage: str | None) -> str:
    """The stage's error with its neighbours: 'a 0 -> b 0 -> [c 0.84] -> d 0.9'."""
    names = [n for n, _ in errors]
    at = names.index(stage) if stage in names else 0
    near = errors[max(0, at - 2) : at + 2]
    return " -> ".join(f"[{n} {e:.3g}]" if n == stage else f"{n} {e:.3g}" for n, e in near)


@rule(
    "QLT100",
    "First stage where the candidate's hidden states depart from the reference",
    severity="warning",
    fix="Compare that stage's tensors and config between the two checkpoints (the findings "
    "beside this one say what differs); re-convert from the source.",
    compares=f"per-stage ||cand - ref|| / ||ref|| > {JUMP_MIN} and > {JUMP_RATIO:g}x the "
    "previous stage's (else the first stage above the minimum)",
)
def stage_rule(s: dict[str, Any]) -> Iterator[Finding]:
    stage, errors = s["stage"], s["errors"]
    if stage is None:
        worst = max((e for _, e in errors), default=0.0)
        yield finding(
            "QLT100",
            f"no stage's hidden states differ by more than {JUMP_MIN:g} (largest {worst:.3g}): "
            "the difference is in the last rounding, not in one layer",
        )
        return
    how = "jumps" if s["jumped"] else "grows without a jump (spread over the layers); first above"
    yield finding(
        "QLT100",
        f"{stage}: relative error {dict(errors)[stage]:.3g} {how} "
        f"({_stage_table(errors, stage)}) over {s['cand'].stages[0][1].shape[1]} tokens",
    )


def _rel(a: Any, b: Any) -> float:
    import numpy as np

    return float(np.linalg.norm(a - b) / (np.linalg.norm(b) + 1e-12))


def _short(name: str) -> str:
    return name.rsplit(".", 2)[-2] if name.endswith((".weight", ".bias")) else name


def _heads(name: str, config: dict[str, Any]) -> int:
    heads = config.get("num_attention_heads", 1)
    return config.get("num_key_value_heads", heads) if ".k_proj." in name else heads


@rule(
    "QLT101",
    "A stage's weights equal the reference's plus a constant",
    severity="error",
    fix="A norm offset (+1) applied twice: load the checkpoint without the loader's offset "
    "(or re-convert it without adding 1 to the RMSNorm weights).",
    compares="cand - ref has the same value everywhere (std < 1e-3 x |mean|)",
)
@rule(
    "QLT102",
    "q_proj/k_proj rows equal the reference's after the rotate-half permutation",
    severity="error",
    fix="The q/k rotary permutation is reversed (applied twice or in the wrong direction): "
    "re-convert with the permutation applied once (Meta -> HF).",
    compares="cand rows == ref rows permuted per head (view(h, d/2, 2, in).swap(1, 2))",
)
@rule(
    "QLT103",
    "Two tensors of a stage are exchanged",
    severity="error",
    fix="The converter mapped the two names the wrong way round (e.g. gate_proj <-> up_proj, "
    "w1/w3): swap them back.",
    compares="cand[a] == ref[b] and cand[b] == ref[a]",
)
@rule(
    "QLT104",
    "A tensor of the candidate is all zeros",
    severity="error",
    fix="The tensor was not written (or was zeroed): re-convert; for an untied lm_head check "
    "tie_word_embeddings.",
    compares="cand == 0 everywhere while ref is not",
)
@rule(
    "QLT105",
    "A stage's weights equal the reference's times a constant",
    severity="error",
    fix="A scale was applied or dropped (e.g. a LoRA scale, an embedding multiplier): apply it "
    "once.",
    compares="cand == k x ref (residual < 1e-2), k != 1",
)
@rule(
    "QLT106",
    "The weights differ by a low-rank matrix (an adapter fused differently)",
    severity="error",
    fix="An adapter is fused with another scale, or not at all: fuse again with mlx_lm.fuse "
    "(same adapter_config.json scale) and check the fused model against the base + adapter.",
    compares="rank of cand - ref (singular values > 1e-3 x the largest) <= a quarter of its "
    "smaller side",
)
@rule(
    "QLT107",
    "config.json differs while the stage's weights are equal",
    severity="error",
    fix="Copy the reference's config values (e.g. rope_theta, rope_scaling, norm eps) into "
    "the candidate's config.json.",
    compares="config keys other than dtype/quantization, when every weight of the stage matches",
)
@rule(
    "QLT108",
    "The stage's weights are quantized differently from the reference",
    severity="warning",
    fix="Keep this tensor at more bits (mlx-lm's quant_predicate / a mixed recipe) if its error "
    "is above your budget.",
    compares="storage (dtype or bits/group) differs; the dequantized relative error is given",
)
@rule(
    "QLT109",
    "A tensor is on one side only",
    severity="error",
    fix="Write the missing tensor or fix tie_word_embeddings so both sides compute the same "
    "function.",
    compares="parameter names under the stage's module",
)
@rule(
    "QLT110",
    "The stage's weights differ without a recognised pattern",
    severity="error",
    fix="Re-convert the candidate from its source; the numbers say which tensor differs most.",
    compares="relative difference of each tensor above 1e-3 (0.2 when quantized)",
)
@rule(
    "QLT111",
    "The stage's weights could not be compared",
    severity="info",
    fix="Compare the two checkpoints' layouts by hand (shapes, names, quantization).",
    compares="shapes after dequantization",
)
@rule(
    "QLT113",
    "A weight matrix is the reference's transposed",
    severity="error",
    fix="The converter transposed this matrix (or forgot to: GPT-2 style Conv1D stores "
    "(in, out), nn.Linear (out, in)); a square matrix loads either way, so only the outputs "
    "show it. Re-convert with the transpose applied once.",
    compares="cand == ref.T (2-D tensors; square ones load silently, others the loader refuses)",
)
def weight_patterns(s: dict[str, Any]) -> Iterator[Finding]:
    import numpy as np

    cand, ref = s["cand"], s["ref"]
    prefix = _module_of(s["stage"], ref)
    ct, rt = cand.tensors(prefix), ref.tensors(prefix)
    for name in sorted(set(ct) ^ set(rt)):
        side = "candidate" if name in ct else "reference"
        ties = (cand.config.get("tie_word_embeddings"), ref.config.get("tie_word_embeddings"))
        yield finding(
            "QLT109",
            f"{name} only in the {side} (tie_word_embeddings: candidate {ties[0]}, "
            f"reference {ties[1]})",
        )
    if s["stage"].rpartition(".")[2] in ("lm_head", "logits") and set(ct) ^ set(rt):
        return
    shared = sorted(set(ct) & set(rt))
    explained: set[str] = set()
    # exchanged pairs: two same-shaped tensors of the stage, each equal to the other's
    for i, a in enumerate(shared):
        for b in shared[i + 1 :]:
            ca, cb, ra, rb = ct[a][0], ct[b][0], rt[a][0], rt[b][0]
            if ca.shape != cb.shape or ra.shape != ca.shape or _rel(ca, ra) < EQUAL:
                continue
            if _rel(ca, rb) < EQUAL and _rel(cb, ra) < EQUAL:
                explained |= {a, b}
                yield finding(
                    "QLT103",
                    f"{a} equals the reference's {_short(b)} and {b} equals its {_short(a)} "
                    f"(relative difference as stored {_rel(ca, ra):.3g})",
                )
    equal = True
    for name in shared:
        if name in explained:
            continue
        (c, cs), (r, rs) = ct[name], rt[name]
        if c.shape != r.shape:
            equal = False
            if transposed := _transposed(name, c, r, EQUAL_QUANTIZED):
                yield transposed
                continue
            yield finding(
                "QLT111",
                f"{name}: shapes {list(c.shape)} vs {list(r.shape)} after dequantization; "
                "weight comparison skipped",
            )
            continue
        quantized = "bit" in cs or "bit" in rs
        tol = EQUAL_QUANTIZED if quantized else EQUAL if cs == rs else EQUAL_CAST
        rel = _rel(c, r)
        requantized = cs != rs and quantized
        if requantized:
            yield finding(
                "QLT108",
                f"{name}: candidate {cs}, reference {rs}; dequantized relative error {rel:.3g}",
            )
        if rel <= tol:
            continue
        equal = False
        for f in _pattern(name, c, r, rel, cand.config, quantized):
            if not (requantized and f.code == "QLT110"):  # QLT108 gave the numbers already
                yield f
    if equal and not explained:
        diff = {
            k: (cand.config.get(k), ref.config.get(k))
            for k in sorted(set(cand.config) | set(ref.config))
            if k not in CONFIG_IGNORED and cand.config.get(k) != ref.config.get(k)
        }
        if diff:
            text = ", ".join(f"{k}: candidate {c!r}, reference {r!r}" for k, (c, r) in diff.items())
            yield finding("QLT107", f"weights of {prefix} equal; config differs: {text}")
        elif not any(np.size(v[0]) for v in ct.values()):
            yield finding("QLT111", f"{prefix} has no parameters to compare")


def _transposed(name: str, c: Any, r: Any, tol: float) -> Finding | None:
    """QLT113 when the 2-D candidate equals the reference transposed within tol (square or
    not), else None."""
    if c.ndim != 2 or c.shape != r.shape[::-1]:
        return None
    rel = _rel(c, r.T)
    if rel > tol:
        return None
    stored = f"; {_rel(c, r):.3g} as stored" if c.shape == r.shape else ""
    return finding(
        "QLT113",
        f"{name}: candidate {list(c.shape)} equals the reference {list(r.shape)} transposed "
        f"(relative difference {rel:.3g}{stored}): a transpose applied twice or not at all",
    )


def _pattern(
    name: str, c: Any, r: Any, rel: float, config: dict[str, Any], quantized: bool
) -> Iterator[Finding]:
    """What one differing tensor looks like (the first pattern that fits)."""
    import numpy as np

    d = c - r
    if not np.any(c) and np.any(r):
        yield finding("QLT104", f"{name} is all zeros (reference norm {np.linalg.norm(r):.3g})")
        return
    if not quantized and abs(d.mean()) > EQUAL and d.std() < 1e-3 * abs(d.mean()):
        what = (
            ": a norm offset applied twice" if "norm" in name and abs(d.mean() - 1) < 1e-2 else ""
        )
        yield finding("QLT101", f"{name}: candidate = reference {d.mean():+.4g}{what}")
        return
    if name.endswith(("q_proj.weight", "k_proj.weight", "q_proj.bias", "k_proj.bias")):
        from genai_common.testing.broken import rotate_half_permutation

        heads = _heads(name, config)
        if c.shape[0] % (2 * heads) == 0:
            once = _rel(c, rotate_half_permutation(r, heads))
            tol = EQUAL_QUANTIZED if quantized else EQUAL
            if once < tol:
                yield finding(
                    "QLT102",
                    f"{name}: rows equal the reference's after the rotate-half permutation "
                    f"({heads} heads; relative difference {once:.3g}, {rel:.3g} as stored): the "
                    "q/k permutation is reversed",
                )
                return
    if transposed := _transposed(name, c, r, EQUAL_QUANTIZED if quantized else EQUAL):
        yield transposed
        return
    k = float((c * r).sum() / ((r * r).sum() + 1e-12))
    if not quantized and abs(k - 1) > 1e-2 and _rel(c, k * r) < 1e-2:
        yield finding("QLT105", f"{name}: candidate = {k:.4g} x reference")
        return
    if not quantized and d.ndim == 2 and min(d.shape) >= 8:
        s = np.linalg.svd(d.astype(np.float64), compute_uv=False)
        rank = int((s > 1e-3 * s[0]).sum())
        if rank <= min(d.shape) // 4:
            yield finding(
                "QLT106",
                f"{name}: candidate - reference has rank {rank} of {min(d.shape)} (relative "
                f"difference {rel:.3g}): an adapter fused with another scale, or dropped",
            )
            return
    yield finding(
        "QLT110",
        f"{name}: relative difference {rel:.3g}, max |diff| {np.abs(d).max():.3g}",
    )
