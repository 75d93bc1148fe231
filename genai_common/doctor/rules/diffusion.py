"""DIF: a diffusers pipeline's components against each other.

model_index.json names the components; each lives in a folder with its own config. The facts the
pipeline combines only at call time are compared here before anything loads: the VAE's latent
channels vs the denoiser's input (4 for SD, 9 = 4+1+4 for inpainting, x4 for Flux's 2x2 packing),
the VAE scaling/shift factor vs the pipeline family, cross-attention width vs the text encoders,
the scheduler's class and enum values, tokenizer length vs text-encoder positions, and the native
resolution. Family factors: SD 1.x/2.x 0.18215 (AutoencoderKL's default in diffusers 0.42), SDXL
0.13025 and Flux 0.3611 + shift 0.1159 (diffusers' remote_utils docs), SD3 1.5305 + shift 0.0609
(the published SD3 VAE config).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from genai_common.findings import Finding, finding, rule
from genai_common.model.quant import FOREIGN_NEEDS, missing_for, quant_detail, quant_method
from genai_common.model.values import is_range, positive_int

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from genai_common.model import ModelDir


# family -> (scaling_factor, shift_factor or None)
FAMILY_FACTORS: dict[str, tuple[float, float | None]] = {
    "sd": (0.18215, None),
    "sdxl": (0.13025, None),
    "sd3": (1.5305, 0.0609),
    "flux": (0.3611, 0.1159),
}
AUTOENCODER_KL_DEFAULT_SCALING = 0.18215
SCHEDULERS = frozenset(
    [
        "AmusedScheduler",
        "CMStochasticIterativeScheduler",
        "CogVideoXDDIMScheduler",
        "CogVideoXDPMScheduler",
        "ConsistencyDecoderScheduler",
        "CosineDPMSolverMultistepScheduler",
        "DDIMInverseScheduler",
        "DDIMParallelScheduler",
        "DDIMScheduler",
        "DDPMParallelScheduler",
        "DDPMScheduler",
        "DDPMWuerstchenScheduler",
        "DEISMultistepScheduler",
        "DPMSolverMultistepInverseScheduler",
        "DPMSolverMultistepScheduler",
        "DPMSolverSDEScheduler",
        "DPMSolverSinglestepScheduler",
        "EDMDPMSolverMultistepScheduler",
        "EDMEulerScheduler",
        "EulerAncestralDiscreteScheduler",
        "EulerDiscreteScheduler",
        "FlowMatchEulerDiscreteScheduler",
        "FlowMatchHeunDiscreteScheduler",
        "FlowMatchLCMScheduler",
        "HeunDiscreteScheduler",
        "IPNDMScheduler",
        "KDPM2AncestralDiscreteScheduler",
        "KDPM2DiscreteScheduler",
        "LCMScheduler",
        "LMSDiscreteScheduler",
        "PNDMScheduler",
        "RePaintScheduler",
        "SASolverScheduler",
        "SCMScheduler",
        "ScoreSdeVeScheduler",
        "TCDScheduler",
        "UnCLIPScheduler",
        "UniPCMultistepScheduler",
        "VQDiffusionScheduler",
    ]
)
# Enum-valued scheduler fields and the values diffusers 0.42's schedulers accept.
SCHEDULER_ENUMS: dict[str, frozenset[str]] = {
    "prediction_type": frozenset(
        {"epsilon", "v_prediction", "sample", "flow_prediction", "original_sample"}
    ),
    "timestep_spacing": frozenset({"linspace", "leading", "trailing"}),
    "final_sigmas_type": frozenset({"zero", "sigma_min"}),
    "beta_schedule": frozenset(
        {"linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid", "exp", "cosine", "laplace"}
    ),
}
# The transformer's patch input, whose weight's dim 1 is its in_channels: Flux's x_embedder
# (Linear over packed latents), SD3's and PixArt's pos_embed.proj (Conv2d over the latents).
PATCH_IN = ("x_embedder.weight", "pos_embed.proj.weight")


@rule(
    "DIF001",
    "model_index.json names no components",
    severity="error",
    fix="model_index.json must list each component as [library, class]; copy it from the original "
    "pipeline ('Pipeline ... expected {...}, but only set() were passed').",
    compares="model_index.json entries that are [library, class] pairs",
)
@rule(
    "DIF002",
    "A component named by model_index.json has no folder or no config",
    severity="error",
    fix="Restore the component folder with the file its kind is saved as (named in the message), or "
    "set the entry to [null, null] if the pipeline does not need it.",
    compares="model_index.json components vs folders and the file each kind is saved as (by class-name "
    "ending: model config.json, *Scheduler scheduler_config.json, *Guidance guider_config.json, "
    "*ImageProcessor / *FeatureExtractor preprocessor_config.json, *Processor its parts or "
    "processor_config.json, *Tokenizer the tokenizer files)",
)
def index(md: ModelDir) -> Iterator[Finding]:
    if md.json("model_index.json") is None:
        return
    comps = md.pipeline.components
    live = {k: v for k, v in comps.items() if v != (None, None)}
    if not live:
        yield finding(
            "DIF001",
            "model_index.json lists no [library, class] components",
            file="model_index.json",
        )
        return
    files = set(md.files)
    for name, (lib, cls) in sorted(live.items()):
        inside = [f for f in files if f.startswith(f"{name}/")]
        if not inside:
            yield finding(
                "DIF002",
                f"component {name!r} ({lib}.{cls}) has no folder {name}/",
                file="model_index.json",
            )
            continue
        wanted = md.pipeline.config_files(name)
        ok = any(f"{name}/{f}" in files for f in wanted)
        if not ok:
            yield finding(
                "DIF002",
                f"component {name!r} ({cls}, a {md.pipeline.role(name).replace('_', ' ')}) has a "
                f"folder but none of {', '.join(wanted[:4])}{', ...' if len(wanted) > 4 else ''} "
                "in it",
                file=f"{name}/",
            )


@rule(
    "DIF004",
    "Pipeline component folders without a model_index.json",
    severity="error",
    fix="DiffusionPipeline.from_pretrained reads model_index.json first ('... does not appear to "
    "have a file named model_index.json'): copy it from the pipeline these components came from "
    "(it names the pipeline class and each component's [library, class]), or load each component "
    "alone with its class and subfolder=.",
    compares="top folders holding diffusers-written component configs vs model_index.json present",
)
def index_missing(md: ModelDir) -> Iterator[Finding]:
    found = md.component_folders
    if not found:
        return
    parts = ", ".join(f"{name}/ ({cls or lib})" for name, (lib, cls) in sorted(found.items()))
    yield finding(
        "DIF004",
        f"no model_index.json beside the component folders {parts}: "
        "DiffusionPipeline.from_pretrained cannot load this directory",
        file="model_index.json",
    )


# pipeline family -> components its class requires that a saved pipeline may set to [null, null],
# when diffusers is not installed to read the pipeline's own signature (diffusers 0.42)
REQUIRED_NULLABLE: dict[str, tuple[str, ...]] = {"sd3": ("text_encoder_3", "tokenizer_3")}


@rule(
    "DIF003",
    "A component the pipeline class requires is saved as [null, null]",
    severity="info",
    fix="DiffusionPipeline.from_pretrained(path) raises 'Pipeline ... expected [...] but only {...} "
    "were passed' unless those components are passed as None, e.g. "
    "from_pretrained(path, text_encoder_3=None, tokenizer_3=None) for SD3 without T5 "
    "(genai's loader does this).",
    compares="model_index.json [null, null] entries vs the pipeline class's __init__ parameters "
    "without a default that are not in its _optional_components (read from the installed "
    "diffusers' source; without diffusers, SD3's text_encoder_3 and tokenizer_3)",
)
def nulls(md: ModelDir) -> Iterator[Finding]:
    from genai_common.model.loaders import pipeline_signature

    comps = md.pipeline.components
    pipe = md.pipeline.index.get("_class_name")
    null = [n for n, v in comps.items() if v == (None, None)]
    if not null:
        return
    signature = pipeline_signature(pipe) if isinstance(pipe, str) else None
    if signature is not None:
        params, optional = signature
        required = [n for n in null if n in params and not params[n] and n not in optional]
    else:
        family = REQUIRED_NULLABLE.get(md.pipeline.family or "", ())
        required = [n for n in null if n in family]
    if required:
        passed = ", ".join(f"{n}=None" for n in required)
        yield finding(
            "DIF003",
            f"{', '.join(required)} saved as [null, null] but {pipe or 'the pipeline'} requires "
            f"{'it' if len(required) == 1 else 'them'}: DiffusionPipeline.from_pretrained(path) "
            f"fails; load with from_pretrained(path, {passed})",
            file="model_index.json",
        )


@rule(
    "DIF005",
    "model_index.json names a class the installed library does not have",
    severity="error",
    fix="Upgrade diffusers / transformers to a version that has the class (new pipelines land "
    "often), or fix the class name; DiffusionPipeline.from_pretrained fails on it.",
    compares="model_index.json _class_name and each component's [library, class] vs the names the "
    "installed diffusers exports (its _import_structure), a pipelines submodule's exports, and "
    "transformers model classes (the __all__ of the model folder the class name starts with)",
)
@rule(
    "DIF006",
    "Pipeline classes not checked: diffusers is not installed",
    severity="info",
    fix="Install genai-common[diffusion] to check the pipeline and component classes against "
    "the diffusers that will load them.",
    compares="find_spec('diffusers')",
)
def classes(md: ModelDir) -> Iterator[Finding]:
    from genai_common.model.loaders import (
        diffusers_names,
        diffusers_submodule_names,
        diffusers_version,
        transformers_class_known,
    )

    index = md.pipeline.index
    if not index:
        return
    names = diffusers_names()
    if names is None:
        yield finding(
            "DIF006",
            "diffusers is not installed: the pipeline and component classes in model_index.json "
            "were not checked",
        )
        return
    version = diffusers_version()
    pipe = index.get("_class_name")
    if isinstance(pipe, str) and pipe not in names:
        yield finding(
            "DIF005",
            f"_class_name {pipe!r} is not a pipeline of the installed diffusers {version}",
            file="model_index.json",
        )
    for name, (lib, cls) in sorted(md.pipeline.components.items()):
        if lib is None or cls is None:
            continue
        if lib == "diffusers":
            known, where = cls in names, f"diffusers {version}"
        elif lib == "transformers":
            known, where = transformers_class_known(cls), "transformers"
        else:  # a diffusers pipelines submodule (stable_diffusion: StableDiffusionSafetyChecker)
            exported = diffusers_submodule_names(lib)
            known = None if exported is None else cls in exported
            where = f"diffusers.pipelines.{lib}"
        if known is False:
            yield finding(
                "DIF005",
                f"component {name!r}: {cls!r} is not a class of the installed {where}",
                file="model_index.json",
            )


@rule(
    "DIF010",
    "Denoiser input channels disagree with the VAE's latent channels",
    severity="error",
    fix="Text-to-image needs in_channels == latent_channels, inpainting 2*latent+1 (9 for SD), Flux "
    "latent_channels*4; use the UNet/transformer that belongs to this pipeline.",
    compares="unet/transformer in_channels (config and conv_in/x_embedder weights) vs vae latent_channels",
)
@rule(
    "DIF011",
    "VAE latent channels in the weights differ from its config",
    severity="error",
    fix="Use the VAE config that came with the weights.",
    compares="vae decoder.conv_in weight input channels vs latent_channels",
)
def channels(md: ModelDir) -> Iterator[Finding]:
    vae = md.pipeline.config("vae")
    den = md.pipeline.denoiser
    latent = positive_int(vae.get("latent_channels"))
    if latent is None or den is None:
        return
    dc = md.pipeline.config(den)
    in_ch = positive_int(dc.get("in_channels"))
    index = md.json("model_index.json") or {}
    pipe = str(index.get("_class_name") or "")
    fam = md.pipeline.family
    den_cls = md.pipeline.components.get(den, (None, None))[1] or ""
    if in_ch is not None:
        if "Flux" in den_cls or fam == "flux":
            want, how = {latent * 4}, f"latent_channels {latent} x 4 (2x2 packing)"
            if "Fill" in pipe or "Control" in pipe:
                want = {in_ch}  # packed image/mask/control channels are added to the input
        elif "Inpaint" in pipe:
            want, how = {2 * latent + 1}, f"2 x latent_channels {latent} + 1 mask (inpainting)"
        else:
            want, how = {latent}, f"latent_channels {latent}"
        if in_ch not in want:
            hint = None
            if in_ch == 2 * latent + 1 and "Inpaint" not in pipe:
                hint = (
                    f"This is an inpainting {den} ({in_ch} = 2*{latent}+1): load it with the "
                    "inpainting pipeline class."
                )
            yield finding(
                "DIF010",
                f"{den}.in_channels = {in_ch} but {pipe or 'the pipeline'} needs {how} = "
                f"{sorted(want)[0]}",
                file=f"{den}/config.json",
                hint=hint,
            )
        conv = md.pipeline.tensor(den, "conv_in.weight" if den == "unet" else PATCH_IN)
        if conv is not None and len(conv.shape) >= 2 and conv.shape[1] != in_ch:
            yield finding(
                "DIF010",
                f"{den} {conv.name} takes {conv.shape[1]} channels but {den}.in_channels = {in_ch}",
                file=f"{den}/{conv.file.rsplit('/', 1)[-1]}",
            )
    out_ch = positive_int(dc.get("out_channels"))
    if out_ch is not None and (den == "unet" or fam == "sd3") and out_ch != latent:
        yield finding(
            "DIF010",
            f"{den}.out_channels = {out_ch} but vae latent_channels = {latent}",
            file=f"{den}/config.json",
        )
    dec = md.pipeline.tensor("vae", "decoder.conv_in.weight")
    if dec is not None and len(dec.shape) >= 2 and dec.shape[1] != latent:
        yield finding(
            "DIF011",
            f"vae {dec.name} takes {dec.shape[1]} channels but latent_channels = {latent}",
            file="vae/config.json",
        )


BLOCK_COUNTS = (
    ("num_layers", "transformer_blocks"),
    ("num_single_layers", "single_transformer_blocks"),
)


@rule(
    "DIF012",
    "Transformer blocks in the weights differ from the denoiser config",
    severity="error",
    fix="Set num_layers / num_single_layers to the blocks stored (never derive depth from the head "
    "count: it holds for SD3, not for Flux), or restore the missing shards.",
    compares="distinct transformer_blocks.N / single_transformer_blocks.N vs num_layers / num_single_layers",
)
def depth(md: ModelDir) -> Iterator[Finding]:
    if md.pipeline.denoiser != "transformer":
        return
    dc = md.pipeline.config("transformer")
    try:
        stored = md.component("transformer").tensors or {}
    except Exception:
        return
    if not stored:
        return
    for key, prefix in BLOCK_COUNTS:
        want = positive_int(dc.get(key))
        pattern = re.compile(rf"^{prefix}\.(\d+)\.")
        found = {int(m.group(1)) for n in stored if (m := pattern.match(n))}
        if want is None or not found or is_range(found, want):
            continue
        yield finding(
            "DIF012",
            f"transformer stores {len(found)} {prefix} (0..{max(found)}) but {key} = {want}",
            file="transformer/config.json",
        )


@rule(
    "DIF020",
    "VAE scaling/shift factor does not match the pipeline family",
    severity="warning",
    fix="Set vae scaling_factor (and shift_factor) to the family's value: SD 0.18215, SDXL 0.13025, "
    "SD3 1.5305 + 0.0609, Flux 0.3611 + 0.1159; a wrong one gives washed-out or saturated images.",
    compares="vae scaling_factor / shift_factor vs the family from model_index _class_name",
)
def factors(md: ModelDir) -> Iterator[Finding]:
    fam = md.pipeline.family
    vae = md.pipeline.config("vae")
    if fam is None or not vae:
        return
    want_scale, want_shift = FAMILY_FACTORS[fam]
    scale = vae.get("scaling_factor")
    shift = vae.get("shift_factor")
    label = {"sd": "SD 1.x/2.x", "sdxl": "SDXL", "sd3": "SD3", "flux": "Flux"}[fam]
    if scale is None:
        if abs(AUTOENCODER_KL_DEFAULT_SCALING - want_scale) > 1e-4:
            yield finding(
                "DIF020",
                f"vae has no scaling_factor, so AutoencoderKL's default {AUTOENCODER_KL_DEFAULT_SCALING}"
                f" applies; {label} uses {want_scale}",
                file="vae/config.json",
            )
    elif not isinstance(scale, int | float) or abs(scale - want_scale) > 1e-4:
        yield finding(
            "DIF020",
            f"vae scaling_factor = {scale} but {label} uses {want_scale}",
            file="vae/config.json",
        )
    if want_shift is not None and (
        not isinstance(shift, int | float) or abs(shift - want_shift) > 1e-4
    ):
        yield finding(
            "DIF020",
            f"vae shift_factor = {shift} but {label} uses {want_shift}",
            file="vae/config.json",
        )
    elif want_shift is None and isinstance(shift, int | float) and shift != 0:
        yield finding(
            "DIF020",
            f"vae shift_factor = {shift} but {label} uses no shift",
            file="vae/config.json",
        )


def _text_width(c: dict[str, Any]) -> int | None:
    return positive_int(c.get("hidden_size") or c.get("d_model"))


@rule(
    "DIF030",
    "Cross-attention width differs from the text encoders' hidden size",
    severity="error",
    fix="unet.cross_attention_dim must equal the text encoder hidden size (SD1.5 768, SD2 1024, SDXL "
    "768+1280 = 2048); Flux/SD3 joint_attention_dim must equal T5's d_model.",
    compares="unet cross_attention_dim / transformer joint_attention_dim, pooled_projection_dim vs "
    "text encoders' hidden_size / d_model / projection_dim",
)
def cross_attention(md: ModelDir) -> Iterator[Finding]:
    comps = md.pipeline.components
    den = md.pipeline.denoiser
    if den is None:
        return
    dc = md.pipeline.config(den)
    encoders = [
        n for n in sorted(comps) if n.startswith("text_encoder") and comps[n] != (None, None)
    ]
    widths = {n: _text_width(md.pipeline.config(n)) for n in encoders}
    if den == "unet":
        cross = dc.get("cross_attention_dim")
        values = cross if isinstance(cross, list) else [cross]
        dims = {positive_int(v) for v in values} - {None}
        known = [w for w in widths.values() if w]
        if not dims or not known or len(known) != len(widths):
            return
        want = sum(known)
        for d in sorted(dims):
            if d != want:
                parts = " + ".join(f"{n} {w}" for n, w in widths.items())
                yield finding(
                    "DIF030",
                    f"unet.cross_attention_dim = {d} but the text encoders give {parts} = {want}",
                    file="unet/config.json",
                )
        return
    joint = positive_int(dc.get("joint_attention_dim"))
    t5 = [n for n in encoders if "d_model" in md.pipeline.config(n)]
    if joint and t5:
        d_model = _text_width(md.pipeline.config(t5[-1]))
        if d_model and joint != d_model:
            yield finding(
                "DIF030",
                f"{den}.joint_attention_dim = {joint} but {t5[-1]} d_model = {d_model}",
                file=f"{den}/config.json",
            )
    pooled = positive_int(dc.get("pooled_projection_dim"))
    clips = [n for n in encoders if n not in t5]
    if md.pipeline.family == "sd3" and joint and clips:
        yield from _sd3_clip_width(
            den, joint, {n: _text_width(md.pipeline.config(n)) for n in clips}
        )
    if pooled and clips:
        fam = md.pipeline.family
        sizes = []
        for n in clips:
            c = md.pipeline.config(n)
            size = positive_int(c.get("projection_dim")) if fam == "sd3" else _text_width(c)
            sizes.append(size)
        if all(sizes) and pooled != sum(s for s in sizes if s):
            yield finding(
                "DIF030",
                f"{den}.pooled_projection_dim = {pooled} but the CLIP encoders give "
                f"{' + '.join(str(s) for s in sizes)}",
                file=f"{den}/config.json",
            )


def _sd3_clip_width(den: str, joint: int, widths: dict[str, int | None]) -> Iterator[Finding]:
    """SD3 lays the CLIP hidden states side by side and zero-pads them to the T5 width (without
    T5: joint_attention_dim); torch.nn.functional.pad with a negative width crops instead, so a
    narrower joint_attention_dim silently drops the last CLIP's features."""
    if not all(widths.values()):
        return
    total = sum(w for w in widths.values() if w)
    if joint < total:
        parts = " + ".join(f"{n} {w}" for n, w in widths.items())
        yield finding(
            "DIF030",
            f"{den}.joint_attention_dim = {joint} is narrower than the CLIP hidden states side "
            f"by side ({parts} = {total}): the pipeline crops them to {joint}",
            file=f"{den}/config.json",
        )


@rule(
    "DIF040",
    "Scheduler class or value that diffusers does not accept",
    severity="error",
    fix="Fix the value in scheduler/scheduler_config.json (diffusers raises on unknown enum values, "
    "e.g. 'final_sigmas_type must be one of ...').",
    compares="scheduler _class_name and prediction_type, timestep_spacing, final_sigmas_type, "
    "beta_schedule vs diffusers 0.42",
)
@rule(
    "DIF041",
    "Scheduler does not fit the model family",
    severity="warning",
    fix="Flux and SD3 are flow-matching models (FlowMatchEulerDiscreteScheduler); SD 1.x/2.x/XL use "
    "DDPM-family schedulers; 768-px SD 2.x needs prediction_type v_prediction.",
    compares="scheduler class and prediction_type vs pipeline family and sample size",
)
def scheduler(md: ModelDir) -> Iterator[Finding]:
    comps = md.pipeline.components
    if comps.get("scheduler", (None, None)) == (None, None):
        return
    sc = md.pipeline.config("scheduler")
    if not sc:
        return
    cls = sc.get("_class_name") or comps["scheduler"][1]
    if isinstance(cls, str) and cls not in SCHEDULERS:
        yield finding(
            "DIF040",
            f"scheduler class {cls!r} is not a diffusers 0.42 scheduler",
            file="scheduler/scheduler_config.json",
            severity="warning",
        )
    for key, allowed in SCHEDULER_ENUMS.items():
        value = sc.get(key)
        if value is not None and value not in allowed:
            yield finding(
                "DIF040",
                f"scheduler {key} = {value!r}, diffusers accepts {sorted(allowed)}",
                file="scheduler/scheduler_config.json",
            )
    fam = md.pipeline.family
    flow = isinstance(cls, str) and cls.startswith("FlowMatch")
    if fam in ("flux", "sd3") and isinstance(cls, str) and not flow:
        yield finding(
            "DIF041",
            f"{fam} is a flow-matching model but the scheduler is {cls}",
            file="scheduler/scheduler_config.json",
        )
    elif fam in ("sd", "sdxl") and flow:
        yield finding(
            "DIF041",
            f"{fam} is a noise-prediction model but the scheduler is {cls}",
            file="scheduler/scheduler_config.json",
        )
    unet = md.pipeline.config("unet")
    text = md.pipeline.config("text_encoder")
    if (
        fam == "sd"
        and unet.get("sample_size") == 96
        and _text_width(text) == 1024
        and sc.get("prediction_type", "epsilon") == "epsilon"
    ):
        yield finding(
            "DIF041",
            "SD 2.x at 768 px (sample_size 96, text width 1024) is a v_prediction model but the "
            "scheduler says epsilon",
            file="scheduler/scheduler_config.json",
        )


@rule(
    "DIF050",
    "Tokenizer length exceeds the text encoder's positions",
    severity="error",
    fix="Set tokenizer model_max_length to text_encoder max_position_embeddings (77 for CLIP), or "
    "prompts index past the position table.",
    compares="tokenizer*/ model_max_length vs text_encoder*/ max_position_embeddings",
)
def tokenizer_length(md: ModelDir) -> Iterator[Finding]:
    comps = md.pipeline.components
    for tok_name in sorted(n for n in comps if n.startswith("tokenizer")):
        enc_name = "text_encoder" + tok_name[len("tokenizer") :]
        tc = md.json(f"{tok_name}/tokenizer_config.json") or {}
        length = tc.get("model_max_length")
        if not isinstance(length, int) or isinstance(length, bool) or length > 10**9:
            continue
        positions = positive_int(md.pipeline.config(enc_name).get("max_position_embeddings"))
        if positions and length > positions:
            yield finding(
                "DIF050",
                f"{tok_name} model_max_length = {length} > {enc_name} max_position_embeddings = "
                f"{positions}",
                file=f"{tok_name}/tokenizer_config.json",
            )


@rule(
    "DIF060",
    "Native resolution: sample_size x VAE scale factor disagrees with the VAE",
    severity="warning",
    fix="unet/transformer sample_size * 2**(len(vae.block_out_channels)-1) should equal the VAE's "
    "sample_size (64 -> 512, 96 -> 768, 128 -> 1024).",
    compares="denoiser sample_size * vae scale factor vs vae sample_size",
)
def resolution(md: ModelDir) -> Iterator[Finding]:
    vae = md.pipeline.config("vae")
    den = md.pipeline.denoiser
    if den is None or not vae:
        return
    blocks = vae.get("block_out_channels")
    sample = positive_int(md.pipeline.config(den).get("sample_size"))
    vae_sample = positive_int(vae.get("sample_size"))
    if not isinstance(blocks, list) or not blocks or not sample or not vae_sample:
        return
    factor = 2 ** (len(blocks) - 1)
    if den == "transformer" and md.pipeline.family == "flux":
        return  # Flux's sample_size is not a latent size (it is 1024 in the published config)
    if sample * factor != vae_sample:
        yield finding(
            "DIF060",
            f"{den}.sample_size {sample} x VAE scale factor {factor} = {sample * factor} px but "
            f"vae.sample_size = {vae_sample}",
            file=f"{den}/config.json",
        )


@rule(
    "DIF070",
    "A component is stored in a non-MLX quantization",
    severity="warning",
    fix="diffusers loads it only with the packages and device the message names (an error when one "
    "is not installed here: from_pretrained raises ImportError); MLX runtimes (mflux, DiffusionKit) "
    "read none of these formats. Use the unquantized component, or install what it needs.",
    compares="each component's config.json quantization_config.quant_method (bitsandbytes, gguf, "
    "torchao, quanto, modelopt, sdnq, auto-round; a text encoder's gptq, awq, fp8, "
    "compressed-tensors) vs the packages diffusers' and transformers' quantizers require",
)
def quantized_components(md: ModelDir) -> Iterator[Finding]:
    for name, qc in sorted(md.pipeline.quantized.items()):
        method = quant_method(qc)
        detail = quant_detail(qc)
        groups, device = FOREIGN_NEEDS.get(method, ((), ""))
        needs = [" or ".join(g) for g in groups] + ([device] if device else [])
        missing = missing_for(method)
        lib = md.pipeline.components[name][0] or "its library"
        text = (
            f"{name}/config.json: quantization_config.quant_method = {method!r}"
            + (f" ({detail})" if detail else "")
            + (f": {lib} needs {', '.join(needs)} to load it" if needs else f": {lib} must know it")
            + (f"; not installed here: {', '.join(missing)}" if missing else "")
            + "; MLX runtimes do not read it"
        )
        yield finding(
            "DIF070",
            text,
            file=f"{name}/config.json",
            severity="error" if missing else None,
        )


@rule(
    "DIF007",
    "A component config value has a type its class does not take",
    severity="error",
    fix="Write the value as the class takes it (a count as a number, a block list as a list of "
    "strings): diffusers passes config values to the class unchanged, and the model fails to "
    "build ('four' channels) or builds wrong.",
    compares="each diffusers component's config values vs the JSON kinds its class's __init__ "
    "annotations and defaults accept (installed diffusers, read from source), else vs diffusers' "
    "naming conventions (*_channels, num_*, *_size: numbers or lists; *_types, act_fn: strings)",
)
def config_types(md: ModelDir) -> Iterator[Finding]:
    from genai_common.model.pipeline import json_kind

    for name, (lib, cls) in sorted(md.pipeline.components.items()):
        if (lib is None and cls is None) or md.pipeline.role(name) not in ("model", "scheduler"):
            continue
        kinds, source = md.pipeline.config_types(name)
        config = md.pipeline.config(name)
        file = "scheduler_config.json" if md.pipeline.role(name) == "scheduler" else "config.json"
        for key, value in config.items():
            accepted = kinds.get(key)
            kind = json_kind(value)
            if accepted is None or kind == "null" or kind in accepted:
                continue
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            yield finding(
                "DIF007",
                f"{name}/{file}: {key} = {shown} is a {kind}, but {source} takes "
                f"{' or '.join(sorted(accepted - {'null'}))}",
                file=f"{name}/{file}",
            )
