"""Diffusion workflows (issue 11 item 5): a scheduler swap judged before a run.

A scheduler built with `NewScheduler.from_config(pipe.scheduler.config)` keeps the config's keys,
but an override (or a scheduler saved for another model) can change what the denoiser was trained
for. The checks compare the old and new scheduler configs (diffusers' `scheduler.config` dicts):

- DFL001 prediction_type differs: the UNet/transformer predicts epsilon, v or the sample; a
  scheduler reading another target makes noise, not an image.
- DFL002 timestep_spacing differs: the same step count samples other timesteps (leading, trailing,
  linspace), so images change; a warning, sometimes wanted (trailing for few steps).
- DFL003 num_train_timesteps or beta_schedule/beta_start/beta_end differ: the noise schedule is
  not the one the model was trained with.
"""

from __future__ import annotations

import os
from collections import namedtuple
from collections.abc import Iterator

from genai_common.findings import Finding, finding, rule, run_rule

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SchedulerSwap = namedtuple("SchedulerSwap", "old new old_name new_name")

SCHEDULE_KEYS = ("num_train_timesteps", "beta_schedule", "beta_start", "beta_end")


def _differs(swap: SchedulerSwap, key: str) -> bool:
    return key in swap.old and key in swap.new and swap.old[key] != swap.new[key]


@rule(
    "DFL001",
    "The new scheduler reads another prediction type",
    severity="error",
    fix="Build it with NewScheduler.from_config(pipe.scheduler.config) and no prediction_type "
    "override; the denoiser's training target (epsilon, v_prediction, sample) is fixed.",
    compares="new scheduler config prediction_type vs the pipeline's scheduler",
)
def prediction_type(swap: SchedulerSwap) -> Iterator[Finding]:
    if _differs(swap, "prediction_type"):
        yield finding(
            "DFL001",
            f"{swap.new_name} prediction_type={swap.new['prediction_type']!r} but the pipeline's "
            f"{swap.old_name} has {swap.old['prediction_type']!r}",
        )


@rule(
    "DFL002",
    "The new scheduler spaces timesteps differently",
    severity="warning",
    fix="Keep timestep_spacing from the pipeline's scheduler unless the change is wanted "
    "('trailing' for few-step sampling); images differ for the same seed and steps.",
    compares="new scheduler config timestep_spacing vs the pipeline's scheduler",
)
def timestep_spacing(swap: SchedulerSwap) -> Iterator[Finding]:
    if _differs(swap, "timestep_spacing"):
        yield finding(
            "DFL002",
            f"{swap.new_name} timestep_spacing={swap.new['timestep_spacing']!r}, pipeline's "
            f"{swap.old_name} {swap.old['timestep_spacing']!r}",
        )


@rule(
    "DFL003",
    "The new scheduler has another training noise schedule",
    severity="error",
    fix="Take num_train_timesteps and the beta schedule from the pipeline's scheduler config "
    "(from_config does), not from another model's scheduler.",
    compares="num_train_timesteps, beta_schedule, beta_start, beta_end: new vs pipeline",
)
def noise_schedule(swap: SchedulerSwap) -> Iterator[Finding]:
    for key in SCHEDULE_KEYS:
        if _differs(swap, key):
            yield finding("DFL003", f"{key}: {swap.new[key]!r} vs the pipeline's {swap.old[key]!r}")


SCHEDULER_RULES = (prediction_type, timestep_spacing, noise_schedule)


def check_scheduler_swap(old: Any, new: Any) -> list[Finding]:
    """Judge a new scheduler (or its config dict) against the pipeline's current one."""
    old_cfg = dict(getattr(old, "config", old))
    new_cfg = dict(getattr(new, "config", new))
    swap = SchedulerSwap(
        old_cfg,
        new_cfg,
        old_cfg.get("_class_name") or type(old).__name__,
        new_cfg.get("_class_name") or type(new).__name__,
    )
    out: list[Finding] = []
    for func in SCHEDULER_RULES:
        out.extend(run_rule(func, swap))
    return out


def swap_scheduler(pipe: Any, scheduler_cls: Any, **overrides: Any) -> tuple[Any, list[Finding]]:
    """Build scheduler_cls from the pipeline's scheduler config, judge it; set it only when no error."""
    new = scheduler_cls.from_config(pipe.scheduler.config, **overrides)
    found = check_scheduler_swap(pipe.scheduler, new)
    if not any(f.severity == "error" for f in found):
        pipe.scheduler = new
    return new, found


# -- LoRA adapters judged against the pipeline (before load_lora_weights) ---------------------

LoraPlan = namedtuple("LoraPlan", "modules pairs rank scale")

_A_SUFFIXES = (".lora_A.weight", ".lora.down.weight")
_B_SUFFIXES = (".lora_B.weight", ".lora.up.weight")


def lora_pairs(state: dict[str, Any]) -> dict[str, dict[str, tuple[int, ...]]]:
    """diffusers/PEFT-format LoRA keys -> {'component.module': {'A': shape, 'B': shape}}."""
    pairs: dict[str, dict[str, tuple[int, ...]]] = {}
    for key, value in state.items():
        for side, suffixes in (("A", _A_SUFFIXES), ("B", _B_SUFFIXES)):
            for suffix in suffixes:
                if key.endswith(suffix):
                    pairs.setdefault(key[: -len(suffix)], {})[side] = tuple(value.shape)
    return pairs


def pipeline_modules(pipe: Any) -> dict[str, tuple[int, int]]:
    """'component.module' -> (in_features, out_features) of every Linear/Conv in the pipeline."""
    out: dict[str, tuple[int, int]] = {}
    for comp in ("unet", "transformer", "text_encoder", "text_encoder_2"):
        model = getattr(pipe, comp, None)
        if model is None or not hasattr(model, "named_modules"):
            continue
        for name, mod in model.named_modules():
            if list(mod.children()):
                continue  # leaves only (a model's own in_channels is a deprecated config alias)
            fin = getattr(mod, "in_features", None) or getattr(mod, "in_channels", None)
            fout = getattr(mod, "out_features", None) or getattr(mod, "out_channels", None)
            if fin and fout:
                # a module wrapped by peft (an adapter loaded) keeps its weights in .base_layer
                name = name.removesuffix(".base_layer")
                out[f"{comp}.{name}"] = (int(fin), int(fout))
    return out


@rule(
    "DFL010",
    "A LoRA target module is not in the pipeline",
    severity="error",
    fix="Train or convert the adapter for this pipeline's architecture; keys must read "
    "'<component>.<module path>.lora_A.weight' with a module path of pipe.<component>.",
    compares="adapter key prefixes vs the pipeline components' named_modules()",
)
def lora_targets(plan: LoraPlan) -> Iterator[Finding]:
    missing = sorted(set(plan.pairs) - set(plan.modules))
    if missing:
        yield finding(
            "DFL010",
            f"{len(missing)} of {len(plan.pairs)} targets are not in the pipeline: "
            + ", ".join(missing[:4]),
        )


@rule(
    "DFL011",
    "A LoRA pair's rank is not the declared rank or A and B disagree",
    severity="error",
    fix="Pass the rank the adapter was trained with (its lora_A rows); a pair whose lora_A rows "
    "differ from lora_B columns is a broken adapter file.",
    compares="lora_A rows vs lora_B columns vs the declared rank",
)
def lora_rank(plan: LoraPlan) -> Iterator[Finding]:
    for name, pair in sorted(plan.pairs.items()):
        a, b = pair.get("A"), pair.get("B")
        if a is None or b is None:
            yield finding("DFL011", f"{name}: lora_{'A' if a is None else 'B'} is missing")
            continue
        if a[0] != b[1]:
            yield finding("DFL011", f"{name}: lora_A rank {a[0]} vs lora_B rank {b[1]}")
        elif plan.rank is not None and a[0] != plan.rank:
            yield finding("DFL011", f"{name}: rank {a[0]}, declared {plan.rank}")


@rule(
    "DFL012",
    "A LoRA pair does not fit its module's sizes",
    severity="error",
    fix="The adapter was made for another width of this module (another model size): use the "
    "adapter of this base model.",
    compares="lora_A columns / lora_B rows vs the module's in/out features",
)
def lora_sizes(plan: LoraPlan) -> Iterator[Finding]:
    for name, pair in sorted(plan.pairs.items()):
        io = plan.modules.get(name)
        a, b = pair.get("A"), pair.get("B")
        if io is None or a is None or b is None or len(a) != 2:
            continue
        if (a[1], b[0]) != io:
            yield finding("DFL012", f"{name}: adapter {a[1]}->{b[0]}, module {io[0]}->{io[1]}")


@rule(
    "DFL013",
    "The LoRA scale is zero",
    severity="warning",
    fix="Set the adapter weight (set_adapters(..., adapter_weights=[1.0]) or "
    "cross_attention_kwargs={'scale': 1.0}); at 0 the image is the base model's.",
    compares="the scale to be used vs 0",
)
def lora_scale(plan: LoraPlan) -> Iterator[Finding]:
    if plan.scale == 0:
        yield finding("DFL013", "scale 0: the adapter has no effect")


LORA_RULES = (lora_targets, lora_rank, lora_sizes, lora_scale)


def check_lora(
    pipe: Any, state: dict[str, Any], rank: int | None = None, scale: float = 1.0
) -> list[Finding]:
    """Judge a LoRA state dict (diffusers/PEFT keys) against a loaded pipeline."""
    plan = LoraPlan(pipeline_modules(pipe), lora_pairs(state), rank, scale)
    out: list[Finding] = []
    for func in LORA_RULES:
        out.extend(run_rule(func, plan))
    return out


# -- LoRA verified on images (issue 11 item 5): `genai lora` ----------------------------------
#
# After the static checks above, the adapter is loaded with diffusers' own load_lora_weights
# (peft underneath) and judged by what it does to an image with a fixed seed:
#   base (twice: the run-to-run noise), adapted at --scale, scale 0, after unload_lora_weights.
# Pixels are the pipeline's output_type="np" images in [0, 1]; a delta is the mean absolute
# difference over all pixels and channels. Thresholds (reference/DIAGNOSTICS.md, issue 11):
#   changed   when delta > max(CHANGE_MIN, 10 x noise)
#   unchanged when delta <= max(SAME_MAX, 2 x noise)
# Calibration, tiny SD pipeline (diffusers 0.42.1, peft 0.21.2, torch 2.13.0 CPU, 2 steps, 64 px):
# noise 0.0; rank-4 adapter on to_q/to_k/to_v/to_out.0 with lora_B ~ N(0, 0.5), seed 0
# (`genai lora --demo`): delta 0.0403;
# scale 0 and unloaded: 0.0 exactly. CHANGE_MIN = 1e-4 is 1/40 of a grey level (1/255 = 0.0039).

CHANGE_MIN = 1e-4
SAME_MAX = 1e-5
LORA_FILE = "pytorch_lora_weights.safetensors"
DEFAULT_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")

LoraRun = namedtuple("LoraRun", "findings metrics verdict")


def _run(func: Any, *args: Any) -> list[Finding]:
    from genai_common.findings import declared, stamp

    return [stamp(f, declared(func)) for f in func(*args)]


@rule(
    "DFL020",
    "The LoRA adapter file is missing or does not read",
    severity="error",
    fix=f"Give a .safetensors file or a folder holding {LORA_FILE} (what diffusers' "
    "save_lora_weights writes and load_lora_weights reads).",
    compares="the adapter path opens with safetensors and holds LoRA pairs",
)
def adapter_unreadable(message: str) -> Iterator[Finding]:
    yield finding("DFL020", message)


@rule(
    "DFL021",
    "diffusers' load_lora_weights refused the adapter",
    severity="error",
    fix="The message is diffusers'/peft's own. `peft` must be installed (genai-common[diffusion] "
    "has it); keys must be in a format load_lora_weights reads (diffusers, kohya or PEFT).",
    compares="pipe.load_lora_weights(adapter) ran and attached an adapter",
)
def load_failed(message: str) -> Iterator[Finding]:
    yield finding("DFL021", message)


@rule(
    "DFL022",
    "The adapter does not change the image",
    severity="error",
    fix="The adapter loaded but is inert: lora_B all zero (an untrained PEFT init), a scale of 0, "
    "or keys that matched no module. Retrain or re-export it.",
    compares=f"mean |Δ pixel| adapted vs base (same seed) > max({CHANGE_MIN:g}, 10 x run noise)",
)
def no_change(delta: float, limit: float) -> Iterator[Finding]:
    if not delta > limit:
        yield finding("DFL022", f"mean |Δ pixel| {delta:.3g} with the adapter (limit {limit:.3g})")


@rule(
    "DFL023",
    "At scale 0 the image differs from the pipeline without the adapter",
    severity="error",
    fix="Something besides the LoRA deltas changed the pipeline when it loaded (a fused adapter, "
    "replaced weights in the file, a text-encoder change): load only LoRA pairs.",
    compares=f"mean |Δ pixel| scale 0 vs base <= max({SAME_MAX:g}, 2 x run noise)",
)
def scale_zero_differs(delta: float, limit: float) -> Iterator[Finding]:
    if delta > limit:
        yield finding("DFL023", f"mean |Δ pixel| {delta:.3g} at scale 0 (limit {limit:.3g})")


@rule(
    "DFL024",
    "After unload_lora_weights the image is not the base image",
    severity="error",
    fix="The adapter was fused into the weights or changed them in place: reload the pipeline "
    "instead of unloading, and use fuse_lora only on purpose.",
    compares=f"mean |Δ pixel| unloaded vs base <= max({SAME_MAX:g}, 2 x run noise)",
)
def unload_differs(delta: float, limit: float) -> Iterator[Finding]:
    if delta > limit:
        yield finding("DFL024", f"mean |Δ pixel| {delta:.3g} after unload (limit {limit:.3g})")


@rule(
    "DFL025",
    "Every lora_B (up) matrix of the adapter is zero",
    severity="error",
    fix="This is PEFT's initial state (B = 0): the adapter was saved before training, or its "
    "training never updated it. Train it, or export the trained weights.",
    compares="max |lora_B| over every pair of the adapter file",
)
def zero_up(state: dict[str, Any]) -> Iterator[Finding]:
    ups = [v for k, v in state.items() if k.endswith((*_B_SUFFIXES, ".lora_up.weight"))]
    if ups and all(float(v.abs().max()) == 0.0 for v in ups):
        yield finding("DFL025", f"{len(ups)} lora_B matrices, all zero")


def adapter_file(adapter: str) -> str:
    """The .safetensors of an adapter path (the file, or LORA_FILE / the only *.safetensors)."""
    if os.path.isdir(adapter):
        named = os.path.join(adapter, LORA_FILE)
        if os.path.isfile(named):
            return named
        found = sorted(f for f in os.listdir(adapter) if f.endswith(".safetensors"))
        if len(found) == 1:
            return os.path.join(adapter, found[0])
        raise FileNotFoundError(f"{adapter} holds {len(found)} .safetensors files, no {LORA_FILE}")
    if not os.path.isfile(adapter):
        raise FileNotFoundError(f"{adapter} not found")
    return adapter


def make_test_lora(
    pipe: Any,
    out: str,
    *,
    rank: int = 4,
    targets: tuple[str, ...] = DEFAULT_TARGETS,
    std: float = 0.5,
    seed: int = 0,
) -> str:
    """A random LoRA for pipe's denoiser (peft LoraConfig on `targets`, lora_B ~ N(0, std); std 0
    leaves PEFT's zero init), written by the pipeline class's save_lora_weights into `out`;
    the pipeline itself is left without the adapter. For `genai lora --demo` and the tests."""
    import torch
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    denoiser = pipe.unet if getattr(pipe, "unet", None) is not None else pipe.transformer
    name = "unet" if getattr(pipe, "unet", None) is not None else "transformer"
    cfg = LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=True, target_modules=list(targets))
    torch.manual_seed(seed)  # peft draws lora_A from torch's global generator
    denoiser.add_adapter(cfg, adapter_name="genai_test")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, param in denoiser.named_parameters():
            if "lora_B" in key and std:
                param.copy_(torch.randn(param.shape, generator=gen) * std)
    layers = convert_state_dict_to_diffusers(
        get_peft_model_state_dict(denoiser, adapter_name="genai_test")
    )
    denoiser.unload_lora()  # unwraps the peft layers: the pipeline is as it was
    os.makedirs(out, exist_ok=True)
    type(pipe).save_lora_weights(out, **{f"{name}_lora_layers": layers}, safe_serialization=True)
    return os.path.join(out, LORA_FILE)


def _image(pipe: Any, seed: int, steps: int, size: int, **kw: Any) -> Any:
    import torch

    gen = torch.Generator().manual_seed(seed)
    return pipe(
        prompt="a red square on a blue background",
        num_inference_steps=steps,
        height=size,
        width=size,
        generator=gen,
        output_type="np",
        **kw,
    ).images[0]


def _delta(a: Any, b: Any) -> float:
    import numpy as np

    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).mean())


def verify_lora(
    pipe: Any,
    adapter: str,
    *,
    rank: int | None = None,
    scale: float = 1.0,
    steps: int = 2,
    size: int = 64,
    seed: int = 0,
) -> LoraRun:
    """The adapter judged against the pipeline (DFL010-013, DFL025), loaded with diffusers'
    load_lora_weights (DFL021), and verified on images with one seed: it changes the image
    (DFL022), scale 0 is the base image (DFL023), unload restores it (DFL024)."""
    from safetensors.torch import load_file

    metrics: dict[str, Any] = {}
    try:
        path = adapter_file(adapter)
        state = load_file(path)
    except Exception as exc:  # missing file, a header that does not parse: a finding
        return LoraRun(_run(adapter_unreadable, f"{type(exc).__name__}: {exc}"[:300]), {}, "fail")
    pairs = lora_pairs(state)
    if not pairs and not any("lora" in k.lower() for k in state):
        found = _run(adapter_unreadable, f"{path}: no LoRA keys (lora_A/lora_B, lora.down/up)")
        return LoraRun(found, {}, "fail")
    if pairs:
        ranks = sorted({p["A"][0] for p in pairs.values() if "A" in p})
        metrics.update(pairs=len(pairs), rank=ranks[0] if len(ranks) == 1 else ranks)
        found = check_lora(pipe, state, rank, scale) + _run(zero_up, state)
        if any(f.code in ("DFL010", "DFL011", "DFL012") for f in found):
            return LoraRun(found, metrics, "fail")  # the adapter cannot fit this pipeline
    else:  # kohya-style keys (lora_unet_..., .lora_down/.lora_up): load_lora_weights converts
        # them; the static checks read only diffusers/PEFT names, the images still judge it
        metrics["static_checks"] = "skipped: keys not in diffusers/PEFT form"
        found = _run(zero_up, state)
    metrics["scale"] = scale
    print(f"genai lora: images at seed {seed}, {steps} steps, {size} px", flush=True)
    base = _image(pipe, seed, steps, size)
    noise = _delta(_image(pipe, seed, steps, size), base)
    change_min, same_max = max(CHANGE_MIN, 10 * noise), max(SAME_MAX, 2 * noise)
    metrics["noise"] = round(noise, 6)
    try:
        pipe.load_lora_weights(path, adapter_name="genai_check")
        if "genai_check" not in (pipe.get_list_adapters() or {}).get(
            "unet" if getattr(pipe, "unet", None) is not None else "transformer", []
        ):
            raise ValueError("no adapter was attached to the denoiser")
    except Exception as exc:  # diffusers'/peft's own refusal
        return LoraRun(
            found + _run(load_failed, f"{type(exc).__name__}: {exc}"[:300]), metrics, "fail"
        )
    try:
        pipe.set_adapters(["genai_check"], adapter_weights=[scale])
        metrics["delta_adapter"] = round(_delta(_image(pipe, seed, steps, size), base), 6)
        pipe.set_adapters(["genai_check"], adapter_weights=[0.0])
        metrics["delta_scale0"] = round(_delta(_image(pipe, seed, steps, size), base), 6)
    finally:
        pipe.unload_lora_weights()
    metrics["delta_unloaded"] = round(_delta(_image(pipe, seed, steps, size), base), 6)
    if scale != 0:
        found += _run(no_change, metrics["delta_adapter"], change_min)
    found += _run(scale_zero_differs, metrics["delta_scale0"], same_max)
    found += _run(unload_differs, metrics["delta_unloaded"], same_max)
    verdict = "fail" if any(f.severity == "error" for f in found) else "pass"
    if verdict == "pass" and any(f.severity == "warning" for f in found):
        verdict = "warn"
    return LoraRun(found, metrics, verdict)
