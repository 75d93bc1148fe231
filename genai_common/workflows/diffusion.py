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
