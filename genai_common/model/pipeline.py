"""A diffusers pipeline's anatomy: the components model_index.json names, the pipeline family,
each component's config and tensors.

`md.pipeline` is a `Pipeline` built once per ModelDir (kind diffusion; on any other kind its
components are empty).
"""

from __future__ import annotations

from functools import cached_property

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from genai_common.model.model_dir import ModelDir, TensorInfo

# The denoiser's component name, in the order a pipeline has them.
DENOISERS = ("unet", "transformer", "prior")

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "spiece.model",
    "tokenizer.model",
)
# What each kind of component is saved as: the file its from_pretrained reads first (diffusers
# 0.42: CONFIG_NAME, SCHEDULER_CONFIG_NAME, GUIDER_CONFIG_NAME; transformers 5.25
# utils/__init__.py: CONFIG_NAME, FEATURE_EXTRACTOR_NAME = IMAGE_PROCESSOR_NAME =
# "preprocessor_config.json", VIDEO_PROCESSOR_NAME, PROCESSOR_NAME; a ProcessorMixin loads each
# of its parts from its own file, with or without a processor_config.json).
ROLE_FILES: dict[str, tuple[str, ...]] = {
    "tokenizer": TOKENIZER_FILES,
    "scheduler": ("scheduler_config.json",),
    "guider": ("guider_config.json",),
    "image_processor": ("preprocessor_config.json",),
    "feature_extractor": ("preprocessor_config.json",),
    "video_processor": ("video_preprocessor_config.json", "preprocessor_config.json"),
    "processor": (
        "processor_config.json",
        "preprocessor_config.json",
        "video_preprocessor_config.json",
        *TOKENIZER_FILES,
    ),
    "model": ("config.json",),
}
# Class-name endings -> role, longest first (the libraries' naming conventions: transformers'
# CLIPTokenizer / T5TokenizerFast, CLIPImageProcessor(Fast|Pil), CLIPFeatureExtractor,
# Qwen2VLVideoProcessor, Qwen2VLProcessor; diffusers' *Scheduler, *Guidance / *Guider).
ROLE_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("ImageProcessorFast", "image_processor"),
    ("ImageProcessorPil", "image_processor"),
    ("ImageProcessor", "image_processor"),
    ("VideoProcessor", "video_processor"),
    ("FeatureExtractor", "feature_extractor"),
    ("TokenizerFast", "tokenizer"),
    ("Tokenizer", "tokenizer"),
    ("Processor", "processor"),
    ("Scheduler", "scheduler"),
    ("Guidance", "guider"),
    ("Guider", "guider"),
)


# Without diffusers to read a class's __init__ from: the kinds a config key takes, by the naming
# conventions diffusers' models and schedulers follow (counts and sizes: numbers, or lists of
# them per block; names of blocks, activations and schedules: strings, or lists of them).
NUMBER_KEYS = (
    "_channels",
    "_size",
    "_dim",
    "_layers",
    "_groups",
    "_factor",
    "_eps",
    "_timesteps",
    "_heads",
    "layers_per_block",
    "beta_start",
    "beta_end",
    "shift",
)
STRING_KEYS = ("_type", "_types", "act_fn", "_schedule", "_spacing")


def json_kind(value: Any) -> str:
    """number | string | list | object | null: what a JSON value is, as annotations are judged."""
    if value is None:
        return "null"
    if isinstance(value, (bool, int, float)):
        return "number"
    return {str: "string", list: "list", dict: "object"}.get(type(value), "object")


def conventional_kinds(key: str) -> frozenset[str] | None:
    """The kinds a diffusers config key takes by its name (NUMBER_KEYS, STRING_KEYS), or None."""
    if key.startswith("_"):
        return None
    if key.startswith("num_") or key.endswith(NUMBER_KEYS):
        return frozenset({"number", "list", "null"})
    if key.endswith(STRING_KEYS):
        return frozenset({"string", "list", "null"})
    return None


def component_role(name: str, cls: str | None) -> str:
    """What a component is, from its class name's ending (the libraries' naming conventions),
    else from its folder name (tokenizer_2, scheduler): tokenizer, scheduler, guider,
    image_processor, feature_extractor, video_processor, processor or model."""
    for suffix, role in ROLE_SUFFIXES:
        if (cls or "").endswith(suffix):
            return role
    low = name.lower()
    for role in ("tokenizer", "scheduler", "feature_extractor", "image_processor", "processor"):
        if low.startswith(role):
            return role
    return "model"


class Pipeline:
    """md.pipeline: see the module docstring."""

    def __init__(self, md: ModelDir) -> None:
        self.md = md

    @cached_property
    def index(self) -> dict[str, Any]:
        """model_index.json ({} when absent or malformed)."""
        return self.md.json("model_index.json") or {}

    @cached_property
    def components(self) -> dict[str, tuple[str | None, str | None]]:
        """component -> (library, class) for every [library, class] pair in model_index.json
        ([null, null] entries included, as (None, None)); without a model_index.json, the
        component folders ModelDir.component_folders found."""
        if not self.index and "model_index.json" not in self.md.file_set:
            return dict(self.md.component_folders)  # inferred from the folders themselves
        out: dict[str, tuple[str | None, str | None]] = {}
        for key, value in self.index.items():
            if key.startswith("_") or not isinstance(value, list) or len(value) != 2:
                continue
            lib, cls = value
            out[key] = (
                lib if isinstance(lib, str) else None,
                cls if isinstance(cls, str) else None,
            )
        return out

    @cached_property
    def family(self) -> str | None:
        """flux | sd3 | sdxl | sd, from the pipeline class name; None for others."""
        name = self.index.get("_class_name")
        name = name if isinstance(name, str) else ""
        if "Flux" in name:
            return "flux"
        if "StableDiffusion3" in name:
            return "sd3"
        if "StableDiffusionXL" in name:
            return "sdxl"
        if name.startswith("StableDiffusion") or "LatentConsistency" in name:
            return "sd"
        return None

    @cached_property
    def denoiser(self) -> str | None:
        """The denoiser's component name (unet, transformer, prior), or None."""
        comps = self.components
        for name in DENOISERS:
            if comps.get(name, (None, None)) != (None, None):
                return name
        return None

    def role(self, component: str) -> str:
        """component_role of a component model_index.json names."""
        return component_role(component, self.components.get(component, (None, None))[1])

    def config_files(self, component: str) -> tuple[str, ...]:
        """The files any one of which makes the component's folder loadable (ROLE_FILES)."""
        return ROLE_FILES[self.role(component)]

    def config(self, component: str) -> dict[str, Any]:
        """A component's config.json (a scheduler's scheduler_config.json); {} when absent."""
        for name in ("config.json", "scheduler_config.json"):
            data = self.md.json(f"{component}/{name}")
            if isinstance(data, dict):
                return data
        return {}

    @cached_property
    def quantized(self) -> dict[str, dict[str, Any]]:
        """component -> the quantization_config its config.json declares (diffusers writes it
        there for bitsandbytes, GGUF, torchao, quanto, ModelOpt, SDNQ...; transformers does for a
        text encoder's bitsandbytes, GPTQ, AWQ, FP8, compressed-tensors)."""
        out: dict[str, dict[str, Any]] = {}
        for name, (lib, cls) in self.components.items():
            if lib is None and cls is None:
                continue
            qc = self.config(name).get("quantization_config")
            if isinstance(qc, dict):
                out[name] = qc
        return out

    def config_types(self, component: str) -> tuple[dict[str, frozenset[str]], str]:
        """(config key -> the JSON kinds the component's class takes for it, where that came
        from): the installed diffusers' `__init__` annotations of the class (loaders.
        component_types), else diffusers' naming conventions (conventional_kinds)."""
        from genai_common.model.loaders import component_types

        lib, cls = self.components.get(component, (None, None))
        config = self.config(component)
        declared = config.get("_class_name")
        name = cls if isinstance(cls, str) else declared if isinstance(declared, str) else None
        if lib in (None, "diffusers") and name:
            found = component_types(name)
            if found is not None:
                return found, f"{name}.__init__ (diffusers)"
        if lib not in (None, "diffusers"):
            return {}, ""
        kinds = {k: c for k in config if (c := conventional_kinds(k)) is not None}
        return kinds, "diffusers' naming conventions"

    def tensors(self, component: str) -> dict[str, TensorInfo]:
        """A component's tensors ({} when its folder has none that read)."""
        try:
            return self.md.component(component).tensors or {}
        except Exception:  # an unreadable component is the formats family's finding
            return {}

    def tensor(self, component: str, suffix: str | tuple[str, ...]) -> TensorInfo | None:
        """The first tensor of a component whose name ends with `suffix` and has a shape."""
        for name, t in self.tensors(component).items():
            if name.endswith(suffix) and t.shape:
                return t
        return None

    def all_tensors(self) -> list[TensorInfo]:
        """Every tensor of every component that names a library and class."""
        out: list[TensorInfo] = []
        for name, (lib, cls) in self.components.items():
            if lib is None and cls is None:
                continue
            out.extend(self.tensors(name).values())
        return out
