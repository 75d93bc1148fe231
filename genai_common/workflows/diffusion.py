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
