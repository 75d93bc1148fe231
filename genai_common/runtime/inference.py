"""The quick inference test: the smallest real run of a loaded model.

One definition serves `genai doctor --infer` and a generated project's `genai diagnostics`: a few
tokens from a short prompt (llm), the same from a 64x64 image (vlm), two denoising steps at 64x64
(diffusion), one forward pass on zeros (ml, when config.json names the input width). Heavy
imports stay inside the functions: these run in the child process of `run_isolated`.
"""

from __future__ import annotations

from typing import Any

MAX_TOKENS = 4
NONFINITE = "NaN/Inf"  # in a diffusion description: the image holds values that are not numbers
IMAGE_SIZE = 64
DIFFUSION_STEPS = 2
ML_WIDTH_KEYS = ("input_dims", "in_features", "input_size")


def ml_input_width(config: dict[str, Any] | None) -> int | None:
    """The input width a generic MLX module's config.json declares, if any."""
    for key in ML_WIDTH_KEYS:
        width = (config or {}).get(key)
        if isinstance(width, int) and not isinstance(width, bool) and width > 0:
            return width
    return None


def quick_inference(kind: str, loaded: Any) -> tuple[Any, str]:
    """Run the quick inference on a loaded model: (its raw output, a one-line description).

    For an ml model whose config names no input width it raises ValueError: there is no input to
    build (callers decide whether that is a failure or a load-only run).
    """
    return _RUNNERS[kind](loaded)


def _llm(loaded: Any) -> tuple[Any, str]:
    from mlx_lm import generate

    text = generate(
        loaded.model, loaded.tokenizer, prompt="Hello", max_tokens=MAX_TOKENS, verbose=False
    )
    return text, f"generated {text!a}"


def _vlm(loaded: Any) -> tuple[Any, str]:
    from mlx_vlm import apply_chat_template, generate
    from PIL import Image

    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (128, 128, 128))
    prompt = apply_chat_template(
        loaded.processor, loaded.model.config, "Describe this image.", num_images=1
    )
    result = generate(
        loaded.model, loaded.processor, prompt, [image], max_tokens=MAX_TOKENS, verbose=False
    )
    text = getattr(result, "text", result)
    return text, f"generated {text!a}"


def _diffusion(loaded: Any) -> tuple[Any, str]:
    import numpy as np

    images = loaded.pipeline(
        "a red square",
        num_inference_steps=DIFFUSION_STEPS,
        height=IMAGE_SIZE,
        width=IMAGE_SIZE,
        output_type="np",
    ).images
    shape = tuple(images[0].shape)
    bad = sum(int((~np.isfinite(np.asarray(im, dtype=np.float32))).sum()) for im in images)
    where = f"; {bad:,} {NONFINITE} values" if bad else ""
    return shape, f"{len(images)} image(s) of shape {shape}{where}"


def ml_input_shape(config: dict[str, Any] | None, model: Any = None) -> tuple[int, ...] | None:
    """The input shape of one example (no batch axis) of a generic MLX module: config.json's
    ``input_shape``, else the module's ``input_shape`` attribute, else (width,) from the config's
    input width; None when none says."""
    for shape in ((config or {}).get("input_shape"), getattr(model, "input_shape", None)):
        if (
            isinstance(shape, (list, tuple))
            and shape
            and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
        ):
            return tuple(shape)
    width = ml_input_width(config)
    return None if width is None else (width,)


def _ml(loaded: Any) -> tuple[Any, str]:
    import mlx.core as mx
    from mlx.utils import tree_flatten

    shape = ml_input_shape(loaded.config, loaded.model)
    if shape is None:
        raise ValueError(
            f"neither config.json (input_shape, {', '.join(ML_WIDTH_KEYS)}) nor the module "
            "(input_shape) gives an input shape: the quick inference needs one to build an input"
        )
    out = loaded.model(mx.zeros((1, *shape)))
    mx.eval(out)
    leaves = tree_flatten(out) if not isinstance(out, mx.array) else [("", out)]
    shapes = [tuple(v.shape) for _, v in leaves if isinstance(v, mx.array)]
    bad = sum(
        int((~mx.isfinite(v)).sum().item())
        for _, v in leaves
        if isinstance(v, mx.array) and mx.issubdtype(v.dtype, mx.inexact)
    )
    result = shapes[0] if len(shapes) == 1 else tuple(shapes)
    where = f"; {bad:,} {NONFINITE} values" if bad else ""
    return result, f"output {result} from input {(1, *shape)}{where}"


def garbage_reasons(text: str) -> list[str]:
    """Why a generated text looks like garbage (empty when it looks like text): replacement
    characters (undecodable bytes), nothing but whitespace, one token repeated, or mostly
    characters that are neither letters, digits, punctuation nor spaces (issue 10 part 8).

    A model with random or scrambled weights writes random byte tokens; the tiny trained models
    and any working chat model write words."""
    import unicodedata

    reasons: list[str] = []
    if "\ufffd" in text:
        reasons.append(f"{text.count(chr(0xFFFD))} replacement character(s) (undecodable bytes)")
    body = text.strip()
    if not body:
        return [*reasons, "empty output"]
    words = body.split()
    if len(words) >= 4 and len(set(words)) == 1:
        reasons.append(f"one token repeated: {words[0]!a} x{len(words)}")
    elif len(body) >= 6 and len(set(body.replace(" ", ""))) <= 1:
        reasons.append(f"one character repeated: {body[0]!a} x{len(body)}")
    odd = sum(1 for c in body if not c.isspace() and unicodedata.category(c)[0] not in "LNP")
    if odd / len(body) > 0.3:
        reasons.append(f"{odd} of {len(body)} characters are not letters, digits or punctuation")
    return reasons


_RUNNERS = {"llm": _llm, "vlm": _vlm, "diffusion": _diffusion, "ml": _ml}
