"""VLM fine-tuning data: image+text records judged before training (issue 11 item 3).

A record is a JSON object with `images` (a list of paths, or `image`: one path) and either
`messages` (chat format; an image placeholder is a content item `{"type": "image"}` or the image
token in a string) or `text`/`prompt`. Paths are relative to the data file's folder.

- VDT001 an image file is missing; VDT002 it does not open as an image (PIL verify);
- VDT003 the image placeholders in the text do not match the number of images;
- VDT004 a record without text, or not a JSON object; VDT005 a line that is not JSON.
"""

from __future__ import annotations

import json
import os
from collections import namedtuple
from collections.abc import Iterator

from genai_common.findings import Finding, finding, rule, run_rule

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

VlmData = namedtuple("VlmData", "path root records bad_lines image_token")


def _images(rec: dict[str, Any]) -> list[str]:
    """Image paths of a record: strings, or {"path": ...} mappings (Hugging Face datasets' form,
    which mlx-vlm's VisionDataset also reads); embedded bytes and URLs count as images but have no
    file to check (returned as "")."""
    imgs = rec.get("images", rec.get("image", []))
    imgs = imgs if isinstance(imgs, list) else [imgs] if imgs else []
    out = []
    for i in imgs:
        if isinstance(i, dict):
            i = i.get("path") if isinstance(i.get("path"), str) else ""
        if isinstance(i, str):
            out.append("" if i.startswith(("http://", "https://", "data:")) else i)
    return out


def _placeholders(rec: dict[str, Any], token: str) -> int | None:
    """Image placeholders in the record's text; None when it has no text."""
    texts: list[str] = []
    count = 0
    msgs = rec.get("messages", rec.get("conversations"))
    if isinstance(msgs, list):
        for msg in msgs:
            # role/content, or the from/value form of ShareGPT-style conversations
            content = msg.get("content", msg.get("value")) if isinstance(msg, dict) else None
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                for item in content:
                    if isinstance(item, dict) and item.get("type") == "image":
                        count += 1
                    elif isinstance(item, dict) and isinstance(item.get("text"), str):
                        texts.append(item["text"])
    for key in ("text", "prompt", "question", "answer"):
        if isinstance(rec.get(key), str):
            texts.append(rec[key])
    if not texts and not count:
        return None
    return count + sum(t.count(token) for t in texts)


@rule(
    "VDT001",
    "An image file of a record is missing",
    severity="error",
    fix="Fix the path (relative to the data file's folder) or drop the record.",
    compares="each record's image paths vs the files on disk",
)
def missing_images(data: VlmData) -> Iterator[Finding]:
    for line, rec in data.records:
        for img in _images(rec):
            if img and not os.path.isfile(os.path.join(data.root, img)):
                yield finding("VDT001", f"line {line}: {img} not found", file=data.path)


@rule(
    "VDT002",
    "An image file does not open",
    severity="error",
    fix="Re-export the image (PNG/JPEG) or drop the record; the processor fails on it mid-run.",
    compares="PIL.Image.open(...).verify() on each image",
)
def unreadable_images(data: VlmData) -> Iterator[Finding]:
    from PIL import Image

    for line, rec in data.records:
        for img in _images(rec):
            path = os.path.join(data.root, img)
            if not img or not os.path.isfile(path):
                continue
            try:
                with Image.open(path) as im:
                    im.verify()
            except Exception as exc:  # PIL raises many types for a bad file
                yield finding("VDT002", f"line {line}: {img}: {exc}", file=data.path)


@rule(
    "VDT003",
    "Image placeholders in the text do not match the images",
    severity="error",
    fix="Put one image placeholder (a {'type': 'image'} content item, or the image token) per "
    "image in the record.",
    compares="placeholders in messages/text vs len(images)",
)
def placeholders(data: VlmData) -> Iterator[Finding]:
    for line, rec in data.records:
        n = _placeholders(rec, data.image_token)
        if n is not None and n != len(_images(rec)) and n > 0:
            yield finding(
                "VDT003",
                f"line {line}: {n} placeholders, {len(_images(rec))} images",
                file=data.path,
            )
        elif n == 0 and _images(rec):
            yield finding(
                "VDT003", f"line {line}: {len(_images(rec))} images, no placeholder", file=data.path
            )


@rule(
    "VDT004",
    "A record has no text or is not an object",
    severity="error",
    fix="Give each record `messages` (chat) or `text`.",
    compares="each record's messages/text/prompt keys",
)
def no_text(data: VlmData) -> Iterator[Finding]:
    for line, rec in data.records:
        if not isinstance(rec, dict) or _placeholders(rec, data.image_token) is None:
            yield finding("VDT004", f"line {line}: no messages or text", file=data.path)


@rule(
    "VDT005",
    "A line of the data file is not JSON",
    severity="error",
    fix="One JSON object per line (JSONL).",
    compares="json.loads on each line",
)
def bad_json(data: VlmData) -> Iterator[Finding]:
    for line, err in data.bad_lines:
        yield finding("VDT005", f"line {line}: {err}", file=data.path)


VLM_DATA_RULES = (bad_json, no_text, missing_images, unreadable_images, placeholders)


def check_vlm_data(path: str, image_token: str = "<image>") -> list[Finding]:
    """Judge a JSONL file of image+text records."""
    records: list[tuple[int, Any]] = []
    bad: list[tuple[int, str]] = []
    with open(path, encoding="utf-8") as fh:
        for n, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                records.append((n, json.loads(raw)))
            except json.JSONDecodeError as exc:
                bad.append((n, str(exc)))
    objects = [(n, r) for n, r in records if isinstance(r, dict)]
    data = VlmData(path, os.path.dirname(os.path.abspath(path)), objects, bad, image_token)
    out: list[Finding] = []
    for func in VLM_DATA_RULES:
        out.extend(run_rule(func, data))
    out.extend(
        finding("VDT004", f"line {n}: a record must be a JSON object", file=path)
        for n, r in records
        if not isinstance(r, dict)
    )
    return out


# -- fine-tuning through mlx-vlm's own trainer (issue 11 item 3) ---------------------------------
#
# mlx-vlm 0.7.10: `python -m mlx_vlm.train` (mlx_vlm/train.py) parses its flags into
# VLMTrainingArgs, loads the model, applies LoRA (trainer.common.model.prepare_model_for_training),
# and trains with trainer.api.Trainer. `train.run` builds the Trainer itself and returns only the
# final metrics, so this module makes the same calls (mlx-vlm's own parser, _load_model,
# _configure_model, _load_dataset, Trainer) to evaluate once before training: the validation loss
# before vs after. The trainer refuses the families in trainer.core.not_supported_for_training.


class VlmFinetuneResult(
    namedtuple("VlmFinetuneResult", "adapter findings metrics history verdict")
):
    __slots__ = ()


class _NaNLoss(Exception):
    pass


def _run(func: Any, *args: Any) -> list[Finding]:
    """A rule function over several arguments, its findings stamped (severity, fix)."""
    from genai_common.findings import declared, stamp

    return [stamp(f, declared(func)) for f in func(*args)]


TRAINER_FIELDS = ("messages", "conversations")


@rule(
    "VDT010",
    "The fine-tuning data folder has no train.jsonl, or it is empty",
    severity="error",
    fix="Put one record a line in DATA/train.jsonl (and DATA/valid.jsonl for the validation "
    "loss); images relative to that folder.",
    compares="DATA/train.jsonl exists",
)
def no_train_file(data: str) -> Iterator[Finding]:
    path = os.path.join(data, "train.jsonl")
    if not os.path.isfile(path):
        yield finding("VDT010", f"{path} not found")
        return
    with open(path, encoding="utf-8", errors="replace") as fh:
        if not any(line.strip() for line in fh):
            yield finding("VDT010", f"{path} has no records")


@rule(
    "VDT011",
    "mlx-vlm's trainer does not support this model family",
    severity="error",
    fix="mlx-vlm lists the family in trainer.core.not_supported_for_training: fine-tune another "
    "family, or the language model alone with mlx-lm (genai finetune on an llm project).",
    compares="config.json model_type vs mlx_vlm.trainer.core.not_supported_for_training",
)
def unsupported_family(model_type: str, unsupported: set[str]) -> Iterator[Finding]:
    if model_type in unsupported:
        yield finding("VDT011", f"model_type {model_type!r} is not trainable with mlx-vlm")


@rule(
    "VDT012",
    "mlx-vlm's trainer stopped with an error",
    severity="error",
    fix="The message is mlx-vlm's own; the VDT findings on the data usually explain it.",
    compares="mlx-vlm Trainer.train ran to the end",
)
def vlm_train_failed(message: str) -> Iterator[Finding]:
    yield finding("VDT012", message)


@rule(
    "VDT013",
    "The training loss became NaN or infinite",
    severity="error",
    fix="Lower --learning-rate or --lora-alpha (the LoRA scale is alpha / rank); the run was "
    "stopped at that step.",
    compares="every reported train loss is finite",
)
def vlm_nan_loss(step: int, loss: float) -> Iterator[Finding]:
    yield finding("VDT013", f"train loss {loss} at iteration {step}")


@rule(
    "VDT014",
    "The validation loss did not go down",
    severity="warning",
    fix="More iterations, a higher learning rate, or more (or cleaner) records.",
    compares="validation loss after training vs before (same records, same trainer)",
)
def vlm_val_not_down(before: float, after: float) -> Iterator[Finding]:
    if not after < before:
        yield finding("VDT014", f"validation loss {before:.4f} -> {after:.4f}")


@rule(
    "VDT015",
    "The adapter does not change the model's output",
    severity="error",
    fix="The saved adapter is inert (lora_b all zero, a scale of 0, or weights that did not load "
    "onto the named modules): check adapter_config.json's keys and retrain.",
    compares="base + adapter vs base logits on the same image and prompt (max |Δ logit| > 0)",
)
def adapter_inert(max_dlogit: float) -> Iterator[Finding]:
    if not max_dlogit > 0:
        yield finding("VDT015", f"max |Δ logit| base + adapter vs base = {max_dlogit:g}")


@rule(
    "VDT016",
    "A record mlx-vlm's trainer cannot read",
    severity="error",
    fix="mlx-vlm's VisionDataset reads `messages` (or `conversations`, or `question` + "
    "`answer`): turn text/prompt records into a user/assistant conversation.",
    compares="each record has messages, conversations, or question and answer",
)
def trainer_format(data: VlmData) -> Iterator[Finding]:
    for line, rec in data.records:
        if not any(k in rec for k in TRAINER_FIELDS) and not (
            "question" in rec and "answer" in rec
        ):
            keys = ", ".join(sorted(rec)[:4]) or "none"
            yield finding("VDT016", f"line {line}: keys {keys}", file=data.path)


@rule(
    "VDT017",
    "Image tokens written into the conversation text",
    severity="error",
    fix="Leave the image token out of the text: mlx-vlm's chat template inserts one per image "
    "itself ({'type': 'image'} items mark where), so a written token makes one image two.",
    compares="literal image-token occurrences in messages' text (mlx-vlm 0.7.10 apply_chat_template "
    "adds num_images tokens on top)",
)
def written_tokens(data: VlmData) -> Iterator[Finding]:
    for line, rec in data.records:
        msgs = rec.get("messages", rec.get("conversations"))
        if not isinstance(msgs, list) or not data.image_token:
            continue
        texts = []
        for msg in msgs:
            content = msg.get("content", msg.get("value")) if isinstance(msg, dict) else None
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                texts += [
                    i["text"]
                    for i in content
                    if isinstance(i, dict) and isinstance(i.get("text"), str)
                ]
        n = sum(t.count(data.image_token) for t in texts)
        if n:
            yield finding(
                "VDT017",
                f"line {line}: {n} x {data.image_token} in the text, {len(_images(rec))} image(s)",
                file=data.path,
            )


def _read(path: str, image_token: str = "<image>") -> VlmData:
    records: list[tuple[int, Any]] = []
    bad: list[tuple[int, str]] = []
    with open(path, encoding="utf-8") as fh:
        for n, raw in enumerate(fh, 1):
            if raw.strip():
                try:
                    records.append((n, json.loads(raw)))
                except json.JSONDecodeError as exc:
                    bad.append((n, str(exc)))
    objects = [(n, r) for n, r in records if isinstance(r, dict)]
    return VlmData(path, os.path.dirname(os.path.abspath(path)), objects, bad, image_token)


def image_token(model: str) -> str:
    """The text form of the model's image token (config image_token_id / image_token_index)."""
    try:
        with open(os.path.join(model, "config.json"), encoding="utf-8") as fh:
            cfg = json.load(fh)
        tid = cfg.get("image_token_id", cfg.get("image_token_index"))
        with open(os.path.join(model, "tokenizer.json"), encoding="utf-8") as fh:
            tok = json.load(fh)
        for item in tok.get("added_tokens", []):
            if item.get("id") == tid:
                return str(item["content"])
    except (OSError, ValueError, AttributeError):
        pass
    return "<image>"


def check_training_data(data: str, model: str) -> list[Finding]:
    """VDT010 and, for train.jsonl and valid.jsonl, VDT001-005, VDT016 and VDT017 (as mlx-vlm's
    trainer reads them: a conversation needs no written image placeholder)."""
    out = list(_run(no_train_file, data))
    if out:
        return out
    token = image_token(model)
    for name in ("train.jsonl", "valid.jsonl"):
        path = os.path.join(data, name)
        if os.path.isfile(path):
            rows = _read(path, token)
            chats = {n for n, r in rows.records if any(k in r for k in TRAINER_FIELDS)}
            # a conversation without a placeholder is fine for mlx-vlm (its template inserts one
            # per image); a written token is not (VDT017)
            out += [
                f
                for f in check_vlm_data(path, token)
                if not (
                    f.code == "VDT003"
                    and "no placeholder" in f.message
                    and int(f.message.split(":")[0].split()[-1]) in chats
                )
            ]
            out += _run(trainer_format, rows) + _run(written_tokens, rows)
    return out


def _model_type(model: str) -> str:
    try:
        with open(os.path.join(model, "config.json"), encoding="utf-8") as fh:
            return str(json.load(fh).get("model_type", ""))
    except (OSError, ValueError):
        return ""


def train_vlm(
    model: str,
    data: str,
    adapter: str,
    *,
    iters: int = 100,
    batch_size: int = 1,
    learning_rate: float = 1e-5,
    rank: int = 8,
    alpha: float = 16.0,
    max_seq_length: int = 2048,
    steps_per_report: int = 10,
    seed: int = 0,
    plot: str | None = None,
) -> VlmFinetuneResult:
    """VDT data checks, then mlx-vlm's LoRA trainer (SFT) with a NaN guard; the validation loss
    before and after, the adapter judged against the base and its effect measured."""
    found = check_training_data(data, model)
    from mlx_vlm.trainer.core import not_supported_for_training

    found += _run(unsupported_family, _model_type(model), set(not_supported_for_training))
    metrics: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    if any(f.severity == "error" for f in found):
        return VlmFinetuneResult(adapter, found, metrics, history, "fail")
    import math
    import time

    import mlx.core as mx
    import mlx.optimizers as optim
    from mlx_vlm.train import _configure_model, _load_dataset, _load_model, parse_args
    from mlx_vlm.trainer.api import Trainer
    from mlx_vlm.trainer.common.callbacks import TrainingCallback

    argv = ["--model", model, "--data", data, "--iters", str(iters)]
    argv += ["--batch-size", str(batch_size), "--learning-rate", str(learning_rate)]
    argv += ["--lora-rank", str(rank), "--lora-alpha", str(alpha)]
    argv += ["--max-seq-length", str(max_seq_length), "--steps-per-report", str(steps_per_report)]
    argv += ["--steps-per-eval", str(iters), "--steps-per-save", str(iters + 1)]
    argv += ["--val-batches", "-1", "--seed", str(seed), "--output-path", adapter]

    class Guard(TrainingCallback):
        def on_train_loss_report(self, info: dict) -> None:
            row = {k: float(v) for k, v in info.items() if isinstance(v, (int, float))}
            history.append({"kind": "train", **row})
            if not math.isfinite(row.get("train_loss", 0.0)):
                raise _NaNLoss(int(row.get("iteration", 0)), row["train_loss"])

        def on_val_loss_report(self, info: dict) -> None:
            row = {k: float(v) for k, v in info.items() if isinstance(v, (int, float))}
            history.append({"kind": "val", **row})

    start = time.perf_counter()
    try:
        args, settings = parse_args(argv)
        mx.random.seed(seed)
        base, processor = _load_model("vlm", model)
        raw = _load_dataset(args)
        val_rows = raw.get("validation", raw.get("valid"))
        base = _configure_model(base, args)
        trainer = Trainer(
            base,
            settings,
            task="vlm",
            algorithm="sft",
            optimizer=optim.AdamW(learning_rate=learning_rate, weight_decay=0.0),
            train_dataset=raw["train"],
            eval_dataset=val_rows if val_rows is not None and len(val_rows) else None,
            processing_class=processor,
            dataset_config={},
            seed=seed,
            training_callback=Guard(),
        )
        if trainer.eval_dataset is not None:
            before = trainer.evaluate()
            history.append({"kind": "val", "iteration": 0.0, "val_loss": float(before["val_loss"])})
        trainer.train()
    except _NaNLoss as exc:
        found += _run(vlm_nan_loss, *exc.args)
    except SystemExit as exc:  # mlx-vlm's argparse refused an option
        found += _run(vlm_train_failed, f"mlx-vlm refused the options (exit {exc.code})")
    except Exception as exc:  # mlx-vlm's own error as a finding
        found += _run(vlm_train_failed, f"{type(exc).__name__}: {exc}"[:500])
    metrics["train_s"] = round(time.perf_counter() - start, 2)
    vals = [h["val_loss"] for h in history if h["kind"] == "val"]
    if len(vals) >= 2:
        metrics.update(val_loss_before=round(vals[0], 4), val_loss_after=round(vals[-1], 4))
        found += _run(vlm_val_not_down, vals[0], vals[-1])
    tps = [h["tokens_per_second"] for h in history if "tokens_per_second" in h]
    if tps:
        metrics["tokens_per_second"] = round(sum(tps) / len(tps), 1)
    if plot and history:
        from genai_common.workflows.finetune import loss_plot

        loss_plot([h for h in history if "tokens_per_second" in h or h["kind"] == "val"], plot)
    if not any(f.severity == "error" for f in found):
        more, diffs = judge_vlm_adapter(adapter, model)
        found += more
        metrics.update(diffs)
    verdict = "fail" if any(f.severity == "error" for f in found) else "pass"
    if verdict == "pass" and any(f.severity == "warning" for f in found):
        verdict = "warn"  # e.g. VDT014: trained, but the validation loss did not go down
    return VlmFinetuneResult(adapter, found, metrics, history, verdict)


def judge_vlm_adapter(adapter: str, base: str) -> tuple[list[Finding], dict[str, Any]]:
    """adapter_config.json against the base (ADP001/ADP002, as for llm adapters), then base +
    adapter vs base on genai verify's fixed image and prompt (VDT015 when nothing changes)."""
    from genai_common.verify.vlm import compare, run_side
    from genai_common.workflows import finetune as ft

    try:
        with open(os.path.join(adapter, "adapter_config.json"), encoding="utf-8") as fh:
            cfg = json.load(fh)
    except (OSError, ValueError):
        cfg = None
    if cfg is None:  # mlx-vlm 0.7.10 does not write the base into it: only its absence is judged
        return _run(ft.adapter_config, adapter, None), {}
    found: list[Finding] = []
    try:
        ref = run_side(base)
        cand = run_side(base, adapter=adapter)
    except Exception as exc:  # the adapter does not load onto the base
        return [*found, *_run(vlm_train_failed, f"base + adapter: {exc}"[:500])], {}
    keys = (cfg.get("lora_parameters") or {}).get("keys") or []
    if keys:
        from mlx_vlm import load

        model, _ = load(base)
        found += _run(ft.missing_targets, list(keys), {n for n, _ in model.named_modules()})
    p = compare(cand, ref)
    if p.max_dlogit is None:  # nonfinite logits or other input ids: not an inert adapter
        return [
            *found,
            *_run(vlm_train_failed, f"base + adapter: {p.nonfinite} nonfinite logits"),
        ], {}
    found += _run(adapter_inert, float(p.max_dlogit))
    diffs = {"adapter_max_dlogit": round(p.max_dlogit, 4), "adapter_kl": round(p.kl_mean, 5)}
    return found, diffs
