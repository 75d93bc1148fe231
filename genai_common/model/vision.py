"""A VLM's vision side: which tensors are the vision tower's and the projector's, the vision
config's sizes, what the projector's first layer takes, and the image token ids.

`md.vision` is a `Vision` built once per ModelDir. The projector layouts are those of mlx-vlm
0.7.10 (patch mergers, pixel-shuffle connectors, Mllama's concatenated outputs, GLM-4V's strided
downsample, Kimi-VL's merge kernel).
"""

from __future__ import annotations

import math
import re
from functools import cached_property

from genai_common.model.values import positive_count

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from genai_common.model.model_dir import ModelDir, TensorInfo

VISION_PREFIXES = (
    "visual.",
    "vision_tower.",
    "vision_model.",
    "model.visual.",
    "model.vision_tower.",
    "vision_encoder.",
    "model.vision_model.",
    "vpm.",
)
PROJECTOR_MARKERS = ("multi_modal_projector", "mm_projector", "merger", "connector", "aligner")
VISION_LAYER_RE = re.compile(r"(?:^|\.)(?:layers|blocks)\.(\d+)\.")


def is_vision_tensor(name: str) -> bool:
    low = name.lower()
    if any(m in low for m in PROJECTOR_MARKERS):
        return False
    return name.startswith(VISION_PREFIXES) or "vision_tower" in low or "vision_model" in low


def is_projector_tensor(name: str) -> bool:
    return any(m in name for m in PROJECTOR_MARKERS)


def pixel_shuffle(cfg: dict[str, Any]) -> tuple[int, str]:
    """(factor, key): how many patches a side the connector folds into one before its first layer:
    scale_factor (Idefics3, SmolVLM), downsample_factor (Aya Vision, LFM2-VL), 1 / downsample_ratio
    (InternVL). (1, "") when the config names none."""
    for key in ("scale_factor", "downsample_factor"):
        value = positive_count(cfg.get(key))
        if value:
            return value, key
    ratio = cfg.get("downsample_ratio")
    if isinstance(ratio, int | float) and not isinstance(ratio, bool) and 0 < ratio < 1:
        inverse = 1 / ratio
        if abs(inverse - round(inverse)) < 1e-6:
            return round(inverse), "(1 / downsample_ratio)"
    return 1, ""


class Vision:
    """md.vision: see the module docstring."""

    def __init__(self, md: ModelDir) -> None:
        self.md = md

    @cached_property
    def dims(self) -> dict[str, int | None]:
        """The vision tower's sizes, each a positive int up to MAX_COUNT or None (an absurd value
        such as 10**4000 must not reach float() or a message)."""
        vc = self.md.vision_config or {}
        width = positive_count(vc.get("embed_dim")) or positive_count(vc.get("hidden_size"))
        ratio = vc.get("mlp_ratio")
        if isinstance(ratio, int) and not isinstance(ratio, bool):
            ratio = positive_count(ratio)
        inter = positive_count(vc.get("intermediate_size"))
        if (
            inter is None
            and width
            and isinstance(ratio, int | float)
            and not isinstance(ratio, bool)
            and math.isfinite(ratio)
            and ratio > 0
        ):
            inter = int(width * ratio)
        # Qwen2-VL: hidden_size is the merger's output beside embed_dim; Qwen2.5-VL: out_hidden_size.
        out = positive_count(vc.get("out_hidden_size")) or (
            positive_count(vc.get("hidden_size")) if "embed_dim" in vc else None
        )
        return {
            "depth": positive_count(
                vc.get("depth") or vc.get("num_hidden_layers") or vc.get("layers")
            ),
            "width": width,
            "intermediate": inter,
            "out": out,
            "merge": positive_count(vc.get("spatial_merge_size")),
            "image_size": positive_count(vc.get("image_size")),
            "patch_size": positive_count(vc.get("patch_size")),
            "projection_dim": positive_count(vc.get("projection_dim")),
        }

    @cached_property
    def tensors(self) -> dict[str, TensorInfo]:
        """The vision tower's tensors (projector excluded)."""
        return {n: t for n, t in self.md.tensors.items() if is_vision_tensor(n)}

    @cached_property
    def projector_layers(self) -> list[TensorInfo]:
        """2-D projector weights in order (linear_1 < linear_2, mlp.0 < mlp.2)."""
        ts = self.md.tensors
        found = [
            t
            for n, t in ts.items()
            if is_projector_tensor(n)
            and n.endswith(".weight")
            and t.shape
            and len(t.shape) == 2
            and "perceiver_resampler" not in n  # attention in the text width after the projector
        ]

        def order(t: TensorInfo) -> tuple[int, int, str]:
            layer = t.name.rsplit(".", 1)[0].rsplit(".", 1)[-1]
            nums = re.findall(r"(\d+)", layer) or re.findall(r"\.(\d+)\.", t.name)
            # a gated MLP connector (Idefics2): gate_proj and up_proj take the input, down_proj
            # gives the output
            return (int(nums[-1]) if nums else 0, layer in ("down_proj", "fc2"), t.name)

        return sorted(found, key=order)

    def projector_input(self, first: str) -> tuple[int | None, str]:
        """(in_features, how) the first projector layer takes: the vision width, times what the
        model concatenates before it (mlx-vlm 0.7.10's layouts). A patch merger takes
        spatial_merge_size^2 patches (Qwen2-VL's in vision_config, Mistral 3's at the top level);
        Idefics3/SmolVLM's connector pixel-shuffles scale_factor^2 patches; Mllama's projector takes
        vision_output_dim (the last hidden state and the intermediate layers, concatenated)."""
        dims = self.dims
        cfg = self.md.config or {}
        width = dims["width"]
        output_dim = positive_count((self.md.vision_config or {}).get("vision_output_dim"))
        if output_dim:
            return output_dim, f"vision_config.vision_output_dim {output_dim}"
        if not width:
            return None, ""
        if "merger" in first and dims["out"] and (self.md.model_type or "").startswith("glm4v"):
            # GLM-4V: a strided conv (vision_tower.downsample) merges the patches into
            # out_hidden_size before the merger
            out = dims["out"]
            return out, f"vision_config.out_hidden_size {out} (after the downsample)"
        if "merger" in first:
            merge = dims["merge"] or positive_count(cfg.get("spatial_merge_size"))
            if merge and merge > 1:
                return (
                    width * merge * merge,
                    f"vision hidden {width} x spatial_merge_size^2 {merge**2}",
                )
        kernel = (self.md.vision_config or {}).get("merge_kernel_size")
        if isinstance(kernel, list) and len(kernel) == 2 and all(positive_count(k) for k in kernel):
            # Kimi-VL: the projector takes each kh x kw window of patches, concatenated
            merged = kernel[0] * kernel[1]
            if merged > 1:
                return width * merged, f"vision hidden {width} x merge_kernel_size {kernel}"
        shuffle, key = pixel_shuffle(cfg)
        if shuffle > 1:
            return width * shuffle * shuffle, f"vision hidden {width} x {key}^2 {shuffle**2}"
        return width, f"vision hidden {width}"

    @cached_property
    def image_token_ids(self) -> dict[str, int]:
        cfg = self.md.config or {}
        tc = self.md.text_config or {}
        out: dict[str, int] = {}
        sources = [("", cfg)] + (
            [("text_config.", tc)] if isinstance(cfg.get("text_config"), dict) else []
        )
        for prefix, data in sources:
            for key in ("image_token_id", "image_token_index"):
                value = data.get(key)
                if isinstance(value, int) and not isinstance(value, bool):
                    out[prefix + key] = value
        return out
