"""VLM output parity (issue 10 part 6): an mlx-vlm candidate against a reference on a fixed image
and prompt: the vision features (the vision tower and projector output as the language model
receives them: the input of its first decoder layer at the image-token positions) and the logits
of every position.

The reference is another MLX VLM (mlx-vlm), or the same checkpoint in transformers
(`reference_backend="transformers"`: AutoModelForImageTextToText in float32 on the CPU). MLX
sides go through mlx-vlm's own chat template and `prepare_inputs` (as mlx_vlm.generate does), so
a loader transform (sanitize applied twice, a patch-embedding layout) shows up as it does for
users; a transformers reference is fed the candidate's prepared inputs (the same ids and pixel
values), so it compares the models, not the processors. Reading the first layer's input, not
the merged embeddings, makes the two libraries comparable: transformers' PaliGemma divides the
image features by sqrt(hidden) and scales every row inside the language model, mlx-vlm's scales
the text rows before the merge; the first layer sees the same numbers in both. Codes
QLT310-QLT319.
"""

from __future__ import annotations

from types import SimpleNamespace

from genai_common.findings import Finding, finding, rule, run_rule
from genai_common.verify.localise import Side, TorchSide

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

PROMPT = "Describe this image."
IMAGE_SIZE = 64
# max |Δ| / max |reference| of the vision features; KL(ref || cand) mean over positions; top-1
# agreement over positions. Calibrated on the tiny qwen2_vl and paligemma against themselves in
# float16 / bfloat16: vision <= 7.4e-3, KL mean <= 2.8e-4, top-1 >= 0.9375 (near-ties flip on the
# untrained image positions; reference/DIAGNOSTICS.md).
VISION_REL_TOL = 0.05
KL_MEAN_TOL = 0.01
TOP1_MIN = 0.8


class VlmParity(SimpleNamespace):
    """The subject of the QLT31x rules: the numbers of one comparison."""


def fixed_image() -> Any:
    """A deterministic RGB gradient with a square (not flat: a flat image hides layout bugs)."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
    rgb = np.stack([x * 4, y * 4, (x + y) * 2], axis=-1).astype(np.uint8)
    rgb[16:40, 20:44] = (250, 30, 30)
    return Image.fromarray(rgb, "RGB")


def load_side(path: str, *, dtype: str | None = None, adapter: str | None = None) -> Any:
    """(model, processor) by mlx_vlm.load (with `adapter`, its LoRA adapter folder applied),
    floating weights cast to `dtype` when given."""
    import mlx.core as mx
    from mlx_vlm import load

    model, processor = load(path, adapter_path=adapter) if adapter else load(path)
    if dtype is not None:
        from mlx.utils import tree_map

        target = getattr(mx, dtype)
        model.update(
            tree_map(
                lambda a: a.astype(target) if mx.issubdtype(a.dtype, mx.floating) else a,
                model.parameters(),
            )
        )
    return model, processor


def fixed_inputs(model: Any, processor: Any) -> tuple[dict[str, Any], int | None]:
    """(model inputs, image token id) of the fixed prompt and image, through mlx-vlm's chat
    template and prepare_inputs as mlx_vlm.generate builds them."""
    from mlx_vlm.prompt_utils import apply_chat_template
    from mlx_vlm.utils import prepare_inputs

    prompt = apply_chat_template(processor, model.config, PROMPT, num_images=1)
    token = getattr(model.config, "image_token_index", None)
    if token is None:
        token = getattr(model.config, "image_token_id", None)
    inputs = prepare_inputs(
        processor, images=[fixed_image()], prompts=[prompt], image_token_index=token
    )
    return dict(inputs), token


def _split(inputs: dict[str, Any]) -> tuple[Any, Any, Any, dict[str, Any]]:
    """(input ids, pixel values, attention mask, the rest) of mlx-vlm's prepared inputs."""
    rest = {k: v for k, v in inputs.items() if k not in ("input_ids", "pixel_values")}
    return inputs["input_ids"], inputs.get("pixel_values"), rest.pop("attention_mask", None), rest


def forward(model: Any, inputs: dict[str, Any]) -> Any:
    """The model's logits on mlx-vlm's prepared `inputs`."""
    ids, pixels, mask, rest = _split(inputs)
    out = model(ids, pixels, mask=mask, **rest)
    return getattr(out, "logits", out)


class _FirstInput:
    """Stands in for the first decoder layer: records the hidden state it is given."""

    def __init__(self, layer: Any) -> None:
        self._layer, self.seen = layer, None

    def __call__(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        if self.seen is None:
            self.seen = x
        return self._layer(x, *args, **kwargs)

    def __getattr__(self, key: str) -> Any:
        return getattr(self._layer, key)


def _observe(ids: Any, token: int | None, first: Any, logits: Any) -> dict[str, Any]:
    """The side's numbers: ids, the first layer's input at image-token positions, logits."""
    import numpy as np

    ids = np.asarray(ids).reshape(-1)
    where = ids == token if token is not None else np.zeros_like(ids, dtype=bool)
    first = np.asarray(first, dtype=np.float32).reshape(len(ids), -1)
    return {
        "ids": ids,
        "vision": first[where] if where.any() else None,
        "logits": np.asarray(logits, dtype=np.float32).reshape(len(ids), -1),
    }


def run_side(path: str, *, dtype: str | None = None, adapter: str | None = None) -> dict[str, Any]:
    """input ids, vision features at image-token positions and logits (float32 numpy), and the
    prepared inputs (numpy, for a transformers reference); with `adapter`, mlx-vlm's LoRA
    adapter folder applied on load (mlx_vlm.load adapter_path)."""
    import mlx.core as mx
    import numpy as np

    model, processor = load_side(path, dtype=dtype, adapter=adapter)
    inputs, token = fixed_inputs(model, processor)
    layers = getattr(getattr(getattr(model, "language_model", None), "model", None), "layers", None)
    probe = None
    if layers:  # language_model.model.layers, as mlx-vlm's decoder-only VLMs keep them
        layers[0] = probe = _FirstInput(layers[0])
    logits = forward(model, inputs)
    if probe is not None and probe.seen is not None:
        first = probe.seen
    else:  # another layout: the merged input embeddings (the same up to a uniform scale)
        ids, pixels, mask, rest = _split(inputs)
        first = model.get_input_embeddings(ids, pixels, mask=mask, **rest).inputs_embeds
    mx.eval(logits, first)
    out = _observe(
        np.array(inputs["input_ids"]),
        token,
        np.array(first.astype(mx.float32)),
        np.array(logits.astype(mx.float32)),
    )
    out["inputs"] = {k: np.array(v) for k, v in inputs.items()}
    out["token"] = token
    return out


class TorchVlmSide(TorchSide):
    """The transformers reference of a VLM (AutoModelForImageTextToText, float32, CPU), fed the
    candidate's prepared inputs, with the layer walk's interface: transformers 5 keeps the
    decoder at model.language_model and the head at lm_head, mlx-vlm at language_model.model and
    language_model.lm_head; stages and tensors carry mlx-vlm's names."""

    root = "language_model."
    head = "lm_head"

    def __init__(self, path: str, inputs: dict[str, Any], token: int | None) -> None:
        import inspect
        import json
        from pathlib import Path

        import torch
        from transformers import AutoModelForImageTextToText

        self.path = path
        self.model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32).eval()
        self.modules = dict(self.model.named_modules())
        decoder = next((n for n, m in self.modules.items() if m is self.model.get_decoder()), None)
        if decoder is None or f"{decoder}.layers.0" not in self.modules:
            raise ValueError(
                f"genai verify: transformers' {type(self.model).__name__} has no decoder with "
                "layers where the comparison reads (get_decoder().layers); use "
                "--reference-backend mlx"
            )
        self.decoder = decoder
        cfg = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
        top = {k: v for k, v in cfg.items() if not isinstance(v, dict)}
        self.config = {**top, **(cfg.get("text_config") or {})}
        params = inspect.signature(self.model.forward).parameters
        self.feed: dict[str, Any] = {}
        for k, v in inputs.items():
            if k in params and k != "labels":
                t = torch.from_numpy(v.copy())
                self.feed[k] = t.long() if t.dtype in (torch.int32, torch.int64) else t.float()
        if (
            "mm_token_type_ids" in params
            and "mm_token_type_ids" not in self.feed
            and token is not None
        ):
            # Qwen2-VL's M-RoPE reads which positions are image tokens (1) from the processor
            self.feed["mm_token_type_ids"] = (self.feed["input_ids"] == token).long()
        self.token = token
        self.stages = []

    def our_name(self, hf: str) -> str:
        if hf == self.head or hf.startswith(self.head + "."):
            return self.root + hf
        if hf == self.decoder or hf.startswith(self.decoder + "."):
            return f"{self.root}model{hf[len(self.decoder) :]}"
        return hf

    def hf_name(self, ours: str) -> str:
        if ours.startswith(f"{self.root}model"):
            return self.decoder + ours[len(f"{self.root}model") :]
        return ours[len(self.root) :] if ours.startswith(self.root) else ours

    def forward(self, tokens: Any) -> Any:
        return self.model(**self.feed, use_cache=False)

    def observe(self) -> dict[str, Any]:
        """run_side's numbers from this side: the first decoder layer's input at image-token
        positions and the logits."""
        import torch

        seen: dict[str, Any] = {}

        def first_input(_module: Any, args: Any, kwargs: Any) -> None:
            seen.setdefault("x", args[0] if args else kwargs.get("hidden_states"))

        layer0 = self.modules[f"{self.decoder}.layers.0"]
        handle = layer0.register_forward_pre_hook(first_input, with_kwargs=True)
        try:
            with torch.no_grad():
                out = self.forward(None)
        finally:
            handle.remove()
        return _observe(
            self.feed["input_ids"].numpy(),
            self.token,
            seen["x"].float().numpy(),
            out.logits.float().numpy(),
        )


class VlmSide(Side):
    """An mlx-vlm checkpoint for the layer walk (verify/localise.py): the language model's stages
    under "language_model.", run on the fixed image and prompt, the image merged in as mlx-vlm
    merges it. Its config is the text config over the top-level keys (heads, tie, rope)."""

    root = "language_model."

    def __init__(self, path: str, dtype: str | None = None) -> None:
        import json
        from pathlib import Path

        self.path = path
        self.model, processor = load_side(path, dtype=dtype)
        self.inputs, _ = fixed_inputs(self.model, processor)
        self.modules = dict(self.model.named_modules())
        if "language_model" not in self.modules:
            raise AttributeError("no language_model in the mlx-vlm model")
        cfg = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
        top = {k: v for k, v in cfg.items() if not isinstance(v, dict)}
        self.config = {**top, **(cfg.get("text_config") or {})}
        self.stages = []

    def forward(self, tokens: Any) -> Any:
        """The fixed inputs (the walk's `tokens` argument is not used: both sides' processors
        built the same ids, checked by QLT313 before the walk)."""
        return forward(self.model, self.inputs)


def compare(cand: dict[str, Any], ref: dict[str, Any]) -> VlmParity:
    import numpy as np

    p = VlmParity(
        same_inputs=bool(np.array_equal(cand["ids"], ref["ids"])),
        positions=0,
        vision_rel=None,
        kl_mean=None,
        kl_max=None,
        top1=None,
        max_dlogit=None,
        nonfinite=int((~np.isfinite(cand["logits"])).sum()),
    )
    cv, rv = cand["vision"], ref["vision"]
    if cv is not None and rv is not None and cv.shape == rv.shape and np.isfinite(cv).all():
        p.vision_rel = float(np.abs(cv - rv).max() / (np.abs(rv).max() or 1.0))
    cl, rl = cand["logits"], ref["logits"]
    if p.same_inputs and cl.shape[0] == rl.shape[0] and not p.nonfinite:
        vocab = min(cl.shape[-1], rl.shape[-1])  # padding rows excluded
        cl, rl = cl[:, :vocab].astype(np.float64), rl[:, :vocab].astype(np.float64)

        def logp(x: Any) -> Any:
            x = x - x.max(-1, keepdims=True)
            return x - np.log(np.exp(x).sum(-1, keepdims=True))

        lc, lr = logp(cl), logp(rl)
        kl = (np.exp(lr) * (lr - lc)).sum(-1)
        p.positions = int(kl.shape[0])
        p.kl_mean, p.kl_max = float(kl.mean()), float(kl.max())
        p.top1 = float((cl.argmax(-1) == rl.argmax(-1)).mean())
        p.max_dlogit = float(np.abs(cl - rl).max())
    return p


@rule(
    "QLT310",
    "VLM vision features differ from the reference",
    severity="error",
    fix="The vision tower or projector computes something else: a patch-embedding weight in the "
    "wrong layout (a conv transposed, NCHW vs NHWC), a loader's sanitize applied to an already "
    "converted checkpoint, or a different image processor config. Compare vision_tower.* and "
    "preprocessor_config.json with the reference.",
    compares=f"max |Δ| / max |reference| of the image-token embeddings, tolerance {VISION_REL_TOL:g}",
)
def vision(p: VlmParity) -> Iterator[Finding]:
    if p.vision_rel is not None and p.vision_rel > VISION_REL_TOL:
        yield finding(
            "QLT310",
            f"vision features relative error {p.vision_rel:.3g} > {VISION_REL_TOL:g} on the fixed "
            f"{IMAGE_SIZE}x{IMAGE_SIZE} image",
        )


@rule(
    "QLT311",
    "VLM logits differ from the reference",
    severity="error",
    fix="Compare the language model's weights and config with the reference (and QLT310 for the "
    "vision side first: wrong image features change every logit after them).",
    compares=f"KL(reference || candidate) mean > {KL_MEAN_TOL:g} or top-1 agreement < {TOP1_MIN:g}",
)
def logits(p: VlmParity) -> Iterator[Finding]:
    if p.kl_mean is not None and (p.kl_mean > KL_MEAN_TOL or p.top1 < TOP1_MIN):
        yield finding(
            "QLT311",
            f"over {p.positions} positions: KL mean {p.kl_mean:.3g} (max {p.kl_max:.3g}), top-1 "
            f"agreement {p.top1:.1%}, max |Δ logit| {p.max_dlogit:.3g}",
        )


@rule(
    "QLT312",
    "VLM logits hold NaN or Inf",
    severity="error",
    fix="An overflow in reduced precision or corrupt weights: run `genai doctor --weights` on "
    "the candidate, and try it in float32.",
    compares="NaN/Inf count of the candidate's logits on the fixed image and prompt",
)
def nonfinite(p: VlmParity) -> Iterator[Finding]:
    if p.nonfinite:
        yield finding("QLT312", f"the candidate's logits hold {p.nonfinite:,} NaN/Inf values")


@rule(
    "QLT313",
    "VLM inputs differ between candidate and reference",
    severity="warning",
    fix="The two processors tokenise the prompt or expand the image differently (chat template, "
    "image_seq_length, image size): the logits were not compared; align the processor configs.",
    compares="input ids after mlx-vlm's prepare_inputs on both sides",
)
def inputs(p: VlmParity) -> Iterator[Finding]:
    if not p.same_inputs:
        yield finding("QLT313", "the prompt and image give different input ids on the two sides")


RULES = (vision, logits, nonfinite, inputs)


def verify_vlm(
    candidate: str,
    reference: str,
    *,
    candidate_dtype: str | None = None,
    reference_dtype: str | None = None,
    localise: bool = True,
    reference_backend: str = "mlx",
) -> tuple[list[Finding], dict[str, Any]]:
    """Compare an mlx-vlm candidate with a reference (mlx-vlm, or transformers with
    reference_backend="transformers") on the fixed image and prompt: (findings, metrics). When the
    logits fail while the vision features agree, the language model is walked layer by layer
    (verify/localise.py) and metrics["first_bad_layer"] names the stage; when the vision
    features differ, it is "vision features" (the text side only inherits them)."""
    cand = run_side(candidate, dtype=candidate_dtype)
    hf = None
    if reference_backend == "transformers":
        hf = TorchVlmSide(reference, cand["inputs"], cand["token"])
        ref = hf.observe()
    else:
        ref = run_side(reference, dtype=reference_dtype)
    p = compare(cand, ref)
    found: list[Finding] = []
    for func in RULES:
        found.extend(run_rule(func, p))
    metrics = dict(vars(p))
    metrics["reference_backend"] = reference_backend
    codes = {f.code for f in found}
    metrics["first_bad_layer"] = "vision features" if "QLT310" in codes else None
    if localise and p.same_inputs and codes & {"QLT311", "QLT312"} and "QLT310" not in codes:
        from genai_common.verify.localise import localise_sides

        try:
            cand_side = VlmSide(candidate, candidate_dtype)
            ref_side = hf or VlmSide(reference, reference_dtype)
        except (AttributeError, OSError, ValueError, KeyError) as exc:
            metrics["localise_error"] = f"{type(exc).__name__}: {exc}"
        else:
            stage, more = localise_sides(cand_side, ref_side, None)
            metrics["first_bad_layer"] = stage
            found += more
    return found, metrics
