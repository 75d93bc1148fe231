"""VLM: the vision tower, the projector and the image tokens against the config.

Covers the two layouts seen in practice: HF names (`visual.blocks.N`, `vision_tower.vision_model.
encoder.layers.N`, `multi_modal_projector.linear_1`) and mlx-vlm's sanitized ones
(`vision_tower.blocks.N`, ...). Vision width is `embed_dim` where the config has one (Qwen2-VL,
whose `hidden_size` is then the merger's output) and `hidden_size` otherwise (SigLIP, CLIP).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

from genai_common.findings import Finding, finding, rule
from genai_common.model.values import first_missing, positive_int
from genai_common.model.vision import VISION_LAYER_RE, is_projector_tensor

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from genai_common.model import ModelDir, TensorInfo


PLACEHOLDERS = frozenset(
    {
        "<image>",
        "<|image_pad|>",
        "<IMG_CONTEXT>",
        "[IMG]",
        "<|image|>",
        "<image_soft_token>",
        "<fake_token_around_image>",
        "<|IMAGE_PLACEHOLDER|>",
        "<img>",
    }
)
WRAPPERS = frozenset(
    {
        "<|vision_start|>",
        "<|vision_end|>",
        "<start_of_image>",
        "<end_of_image>",
        "<img_start>",
        "<img_end>",
        "[IMG_BREAK]",
        "[IMG_END]",
        "<|vision_pad|>",
    }
)


@rule(
    "VLM010",
    "Vision blocks in the weights differ from the vision config's depth",
    severity="error",
    fix="Set vision_config depth/num_hidden_layers to the blocks stored, or restore the missing "
    "vision shards; a strict load reports 'Missing parameters: vision_tower...'.",
    compares="distinct vision layers.N/blocks.N indices vs vision_config depth / num_hidden_layers",
)
@rule(
    "VLM011",
    "The config declares a vision tower but no vision weights are stored",
    severity="error",
    fix="Add the vision shards (or a separate vision sidecar the loader reads); otherwise the model "
    "loads text-only or fails with 'Missing parameters'.",
    compares="vision_config present vs vision tensors in the headers",
)
def depth(md: ModelDir) -> Iterator[Finding]:
    if md.vision_config is None:
        return
    vis = md.vision.tensors
    if not vis:
        # a tower under a path no name rule knows (DeepSeek-OCR-2's model.sam_model.,
        # model.qwen2_model.) is still not the language model's: only text weights is the defect
        text = md.text.tensors
        others = [n for n in md.tensors if n not in text and not is_projector_tensor(n)]
        if md.tensors and not md.metadata_only and not others:
            yield finding(
                "VLM011",
                f"vision_config is set ({(md.vision_config or {}).get('model_type', 'vision')}) "
                f"but none of {len(md.tensors)} tensors belongs to a vision tower",
            )
        return
    depth = md.vision.dims["depth"]
    found = {int(m.group(1)) for n in vis if (m := VISION_LAYER_RE.search(n))}
    if depth is None or not found:
        return
    missing = first_missing(found, depth, limit=8)
    extra = sorted(i for i in found if i >= depth)
    if missing or extra:
        detail = []
        if missing:
            detail.append(f"missing {missing[:8]}")
        if extra:
            detail.append(f"extra {extra[:8]}")
        yield finding(
            "VLM010",
            f"vision weights hold {len(found)} blocks but vision_config depth = {depth} "
            f"({', '.join(detail)})",
        )


def _first_block(vis: dict[str, TensorInfo], suffix: str) -> TensorInfo | None:
    names = sorted(
        (n for n in vis if n.endswith(suffix)),
        key=lambda n: (int(m.group(1)) if (m := VISION_LAYER_RE.search(n)) else -1, n),
    )
    return vis[names[0]] if names else None


@rule(
    "VLM020",
    "Vision tensor widths differ from the vision hidden size",
    severity="error",
    fix="The vision weights belong to another encoder (e.g. SigLIP 1152 vs CLIP 1024): use the "
    "vision_config that came with them.",
    compares="qkv / q_proj / fc1 input width, patch embedding output vs vision hidden (embed_dim)",
)
@rule(
    "VLM021",
    "Vision MLP width differs from the vision intermediate size",
    severity="error",
    fix="Fix vision_config intermediate_size (or mlp_ratio) to the stored fc1 rows.",
    compares="fc1 output rows vs intermediate_size (or embed_dim * mlp_ratio)",
)
def widths(md: ModelDir) -> Iterator[Finding]:
    if md.vision_config is None:
        return
    dims = md.vision.dims
    width, inter = dims["width"], dims["intermediate"]
    vis = md.vision.tensors
    if not vis or width is None:
        return
    # the MLP's up projection: fc1 (CLIP, SigLIP), fc0 where the blocks count from 0 (MoonViT,
    # Kimi-VL: fc0 up, fc1 down)
    up = "mlp.fc0.weight" if any(n.endswith("mlp.fc0.weight") for n in vis) else "mlp.fc1.weight"
    for suffix in ("attn.qkv.weight", "self_attn.q_proj.weight", up):
        t = _first_block(vis, suffix)
        shape = md.quant.logical_shape(t) if t else None
        if t is None or shape is None:
            continue
        rows, cols = shape
        if not md.quant.takes(t, width):
            yield finding(
                "VLM020",
                f"{t.name} takes {cols} inputs but the vision hidden size is {width}",
                file=t.file,
            )
            return
        if suffix == up and inter is not None and rows != inter:
            yield finding(
                "VLM021",
                f"{t.name} has {rows} outputs but the vision intermediate size is {inter}",
                file=t.file,
            )
    for name, t in vis.items():
        if name.endswith(("patch_embed.proj.weight", "patch_embedding.weight")) and t.shape:
            if t.shape[0] != width:
                yield finding(
                    "VLM020",
                    f"{name} makes {t.shape[0]} channels but the vision hidden size is {width}",
                    file=t.file,
                )
            break


@rule(
    "VLM030",
    "Projector input differs from the vision output width",
    severity="error",
    fix="The projector expects another vision width (times spatial_merge_size^2 for a patch merger): "
    "fix mm_hidden_size / vision hidden size or use matching projector weights.",
    compares="first projector layer in_features vs vision hidden (x spatial_merge_size^2 for a patch "
    "merger, x scale_factor^2 / downsample_factor^2 / (1/downsample_ratio)^2 for a pixel shuffle; "
    "Mllama's vision_output_dim)",
)
@rule(
    "VLM031",
    "Projector output differs from the text hidden size",
    severity="error",
    fix="The projector must map into the language model's hidden size: fix text_config.hidden_size "
    "or projection_dim, or use the matching language model.",
    compares="last projector layer out_features vs text hidden_size (and PaliGemma's projection_dim, "
    "Qwen2-VL's merger hidden_size / out_hidden_size)",
)
def projector(md: ModelDir) -> Iterator[Finding]:
    if md.vision_config is None:
        return
    dims = md.vision.dims
    text_hidden = md.text.dims.hidden
    layers = md.vision.projector_layers
    cfg = md.config or {}
    mm_hidden = positive_int(cfg.get("mm_hidden_size"))
    width = dims["width"]
    if mm_hidden and width and mm_hidden != width:
        yield finding(
            "VLM030",
            f"mm_hidden_size = {mm_hidden} but the vision hidden size is {width}",
            file="config.json",
        )
    if not layers:
        return
    first, last = layers[0], layers[-1]
    first_shape = md.quant.logical_shape(first)
    last_shape = md.quant.logical_shape(last)
    want_in, how = md.vision.projector_input(first.name)
    if first_shape and want_in and not md.quant.takes(first, want_in):
        yield finding(
            "VLM030",
            f"{first.name} takes {first_shape[1]} inputs, expected {want_in} ({how})",
            file=first.file,
        )
    targets = [("text hidden_size", text_hidden)]
    if dims["out"] and "merger" in last.name:  # a separate projector maps to the text width
        targets.append(("vision_config.hidden_size (merger output)", dims["out"]))
    # PaliGemma's projector maps to projection_dim; CLIP's projection_dim (LLaVA) is unused there.
    if dims["projection_dim"] and md.model_type == "paligemma":
        targets.append(("vision_config.projection_dim", dims["projection_dim"]))
    if last_shape:
        for label, want in targets:
            if want and last_shape[0] != want:
                yield finding(
                    "VLM031",
                    f"{last.name} has {last_shape[0]} outputs but {label} = {want}",
                    file=last.file,
                )
                break


@rule(
    "VLM040",
    "Image token count disagrees with image_size / patch_size",
    severity="error",
    fix="Make num_image_tokens / image_seq_length / mm_tokens_per_image match (image_size / "
    "patch_size)^2 (or its pooled size), or fix image_size; otherwise image features and "
    "image tokens do not line up ('cannot be broadcast').",
    compares="(image_size/patch_size)^2 vs num_image_tokens, image_seq_length, mm_tokens_per_image, "
    "position embedding rows",
)
def image_tokens(md: ModelDir) -> Iterator[Finding]:
    if md.vision_config is None:
        return
    dims = md.vision.dims
    size, patch = dims["image_size"], dims["patch_size"]
    if not size or not patch:
        return
    if size % patch:
        yield finding(
            "VLM040",
            f"vision image_size = {size} is not a multiple of patch_size = {patch}",
            file="config.json",
        )
        return
    patches = (size // patch) ** 2
    cfg = md.config or {}
    tc = md.text_config or {}
    vc = md.vision_config or {}
    pre = md.json("preprocessor_config.json") or {}
    proc = md.json("processor_config.json") or {}
    how = f"(image_size {size} / patch_size {patch})^2 = {patches}"
    # Tokens per image: the patches, unless the config declares a reduction: Gemma 3 pools to
    # mm_tokens_per_image, Idefics3/SmolVLM pixel-shuffle by scale_factor^2.
    pooled = positive_int(cfg.get("mm_tokens_per_image"))
    shuffle = positive_int(cfg.get("scale_factor"))
    expected, what = patches, how
    if pooled is not None:
        expected, what = pooled, f"mm_tokens_per_image = {pooled}"
    elif shuffle and patches % (shuffle * shuffle) == 0:
        expected = patches // (shuffle * shuffle)
        what = f"{how} / scale_factor {shuffle}^2 = {expected}"
    counts: list[tuple[str, Any]] = [
        ("num_image_tokens", cfg.get("num_image_tokens")),
        (
            "text_config.num_image_tokens",
            tc.get("num_image_tokens") if md.text_config is not md.config else None,
        ),
        ("vision_config.num_image_tokens", vc.get("num_image_tokens")),
        ("image_seq_length", cfg.get("image_seq_length")),
        ("preprocessor image_seq_length", pre.get("image_seq_length")),
        ("processor image_seq_length", proc.get("image_seq_length")),
    ]
    for label, value in counts:
        n = positive_int(value)
        if n is not None and n not in (expected, expected + 1):
            yield finding("VLM040", f"{label} = {n} but {what}", file="config.json")
    if pooled is not None:
        ratio = patches / pooled
        side = math.isqrt(int(ratio)) if ratio >= 1 and ratio.is_integer() else 0
        if not side or side * side != ratio:
            yield finding(
                "VLM040",
                f"mm_tokens_per_image = {pooled} is not {how} pooled by a square",
                file="config.json",
            )
    vis = md.vision.tensors
    has_cls = any(n.endswith("class_embedding") for n in vis)
    for name, t in vis.items():
        if name.endswith(("position_embedding.weight", "position_embeddings.weight")) and t.shape:
            want = patches + (1 if has_cls else 0)
            if t.shape[0] != want:
                yield finding(
                    "VLM040",
                    f"{name} has {t.shape[0]} rows but {how}{' + 1 class token' if has_cls else ''}",
                    file=t.file,
                )
            break


@rule(
    "VLM041",
    "The preprocessor's image size differs from the vision config's",
    severity="error",
    fix="Set preprocessor_config.json size/crop_size to vision_config.image_size (the position "
    "embeddings were trained for it).",
    compares="preprocessor size / crop_size vs vision_config.image_size",
)
def preprocessor_size(md: ModelDir) -> Iterator[Finding]:
    if md.vision_config is None:
        return
    want = md.vision.dims["image_size"]
    pre = md.json("preprocessor_config.json")
    if not want or not isinstance(pre, dict):
        return
    if any(k in pre for k in ("min_pixels", "max_pixels", "do_image_splitting")):
        return  # dynamic resolution: no fixed size to compare
    for key in ("crop_size", "size"):
        value = pre.get(key)
        sides: list[int] = []
        if isinstance(value, dict):
            sides = [
                v
                for k, v in value.items()
                if k in ("height", "width", "shortest_edge") and positive_int(v)
            ]
        elif positive_int(value):
            sides = [value]
        bad = [s for s in sides if s != want]
        if bad:
            yield finding(
                "VLM041",
                f"preprocessor_config.json {key} = {value} but vision_config.image_size = {want}",
                file="preprocessor_config.json",
            )
            return
        if sides:
            return


@rule(
    "VLM050",
    "image_token_id and image_token_index disagree",
    severity="error",
    fix="Keep one of the two names (loaders read one or the other) with the placeholder's id.",
    compares="image_token_id vs image_token_index (top level and text_config)",
)
@rule(
    "VLM051",
    "The image token id is not an image placeholder token",
    severity="warning",
    fix="Point image_token_id at the placeholder the processor repeats (<image>, <|image_pad|>, ...), "
    "not at a wrapper such as <|vision_start|>.",
    compares="tokenizer token at image_token_id vs known placeholders and wrappers",
)
def image_token(md: ModelDir) -> Iterator[Finding]:
    ids = md.vision.image_token_ids
    if not ids:
        return
    distinct = sorted(set(ids.values()))
    if len(distinct) > 1:
        yield finding(
            "VLM050",
            "image token ids disagree: " + ", ".join(f"{k} = {v}" for k, v in sorted(ids.items())),
            file="config.json",
        )
    tok = md.tokenizer
    if tok is None:
        return
    for value in distinct:
        token = _token_of(tok, value)
        if token is None:
            size = tok.size
            if size is not None and value >= size:
                continue  # outside the tokenizer: TOK020/TOK010 judge the range
            continue
        if token in PLACEHOLDERS:
            continue
        if token in WRAPPERS:
            yield finding(
                "VLM051",
                f"image token id {value} is {token!r}, a wrapper token, not the placeholder the "
                "processor repeats",
                file="config.json",
            )
        elif not re.search(r"im(a)?g", token, re.IGNORECASE):
            yield finding(
                "VLM051",
                f"image token id {value} is {token!r}, which does not look like an image placeholder",
                file="config.json",
            )


def _token_of(tok: Any, token_id: int) -> str | None:
    lookup = getattr(tok, "token_of", None)
    if callable(lookup):
        return lookup(token_id)
    return tok.added_tokens.get(token_id)
