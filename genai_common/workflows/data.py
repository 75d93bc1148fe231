"""DAT: fine-tuning data diagnostics for mlx-lm's LoRA trainer (issue 11 item 2).

mlx-lm 0.32.2 (mlx_lm/tuner/datasets.py create_dataset) picks the format from the FIRST record
only: ``prompt`` + ``completion`` -> completions, ``messages`` -> chat, ``text`` -> text; any
other first record is a ValueError, and a later record in another format is a KeyError in the
middle of training. A blank line is a json.loads error. Examples longer than --max-seq-length
are truncated silently (a warning printed once per batch). So every line is judged here, with
its line number, before the run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any, NamedTuple

from genai_common.findings import Finding, Report, finding, rule

FORMATS = ("chat", "completions", "text")


class Record(NamedTuple):
    line: int
    format: str
    data: dict[str, Any]


class DataSet(NamedTuple):
    """A data file read line by line, its problems kept as data."""

    path: str
    name: str
    exists: bool
    records: list[Record]
    blank: list[int]
    malformed: list[tuple[int, str]]
    unknown: list[tuple[int, str]]


def detect(obj: Any) -> str | None:
    """The mlx-lm format of one record (its own order of precedence), None when none fits."""
    if not isinstance(obj, dict):
        return None
    if "prompt" in obj and "completion" in obj:
        return "completions"
    if "messages" in obj:
        return "chat"
    if "text" in obj:
        return "text"
    return None


def read(path: str) -> DataSet:
    name = os.path.basename(path)
    if not os.path.isfile(path):
        return DataSet(path, name, False, [], [], [], [])
    records: list[Record] = []
    blank: list[int] = []
    malformed: list[tuple[int, str]] = []
    unknown: list[tuple[int, str]] = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                blank.append(number)
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                malformed.append((number, exc.msg))
                continue
            fmt = detect(obj)
            if fmt is None:
                keys = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
                unknown.append((number, str(keys)))
                continue
            records.append(Record(number, fmt, obj))
    return DataSet(path, name, True, records, blank, malformed, unknown)


def _lines(numbers: list[int], limit: int = 8) -> str:
    shown = ", ".join(str(n) for n in numbers[:limit])
    return shown + (f" and {len(numbers) - limit} more" if len(numbers) > limit else "")


@rule(
    "DAT001",
    "A fine-tuning data file is missing or has no records",
    severity="error",
    fix="mlx-lm's trainer reads data/train.jsonl and data/valid.jsonl (one JSON object a line); "
    "create the file, or point --data at the folder that holds it.",
    compares="the file exists and holds at least one record",
)
def missing(ds: DataSet) -> Iterator[Finding]:
    if not ds.exists:
        yield finding("DAT001", f"{ds.name} does not exist ({ds.path})", file=ds.name)
    elif not (ds.records or ds.malformed or ds.unknown):
        yield finding("DAT001", f"{ds.name} holds no records", file=ds.name)


@rule(
    "DAT002",
    "Blank lines in a JSONL data file",
    severity="error",
    fix="Delete the blank lines: mlx-lm parses every line with json.loads and stops on an empty "
    "one.",
    compares="every line of the file is non-blank",
)
def blank_lines(ds: DataSet) -> Iterator[Finding]:
    if ds.blank and (ds.records or ds.malformed or ds.unknown):
        yield finding("DAT002", f"{ds.name}: blank line(s) {_lines(ds.blank)}", file=ds.name)


@rule(
    "DAT003",
    "Lines that are not valid JSON",
    severity="error",
    fix="Each line must be one complete JSON object (no trailing commas, no pretty-printed "
    "objects spread over lines).",
    compares="json.loads on each line",
)
def malformed(ds: DataSet) -> Iterator[Finding]:
    if ds.malformed:
        first = ds.malformed[0]
        lines = _lines([n for n, _ in ds.malformed])
        yield finding(
            "DAT003",
            f"{ds.name}: line(s) {lines} are not JSON (line {first[0]}: {first[1]})",
            file=ds.name,
        )


@rule(
    "DAT004",
    "Records in no format mlx-lm accepts",
    severity="error",
    fix='Use one of mlx-lm\'s formats: {"messages": [{"role": ..., "content": ...}]} (chat), '
    '{"prompt": ..., "completion": ...} (completions) or {"text": ...} (text).',
    compares="each record's keys vs mlx-lm's chat / completions / text features",
)
def unknown_format(ds: DataSet) -> Iterator[Finding]:
    if ds.unknown:
        n, keys = ds.unknown[0]
        lines = _lines([n for n, _ in ds.unknown])
        yield finding(
            "DAT004",
            f"{ds.name}: line(s) {lines} fit no format (line {n} has {keys})",
            file=ds.name,
        )


@rule(
    "DAT005",
    "Records of different formats in one file",
    severity="error",
    fix="mlx-lm picks the format from the first record and fails on a later record of another "
    "format mid-run: convert every record to one format.",
    compares="the format of each record vs the first record's",
)
def mixed_formats(ds: DataSet) -> Iterator[Finding]:
    if not ds.records:
        return
    first = ds.records[0].format
    other = [r.line for r in ds.records if r.format != first]
    if other:
        yield finding(
            "DAT005",
            f"{ds.name}: line {ds.records[0].line} is {first} but line(s) {_lines(other)} are not",
            file=ds.name,
        )


@rule(
    "DAT006",
    "Chat records whose messages are malformed",
    severity="error",
    fix='Each message needs "role" (system, user, assistant, tool) and "content"; a chat record '
    "needs at least one message.",
    compares="messages is a non-empty list of objects with role and content",
)
def chat_messages(ds: DataSet) -> Iterator[Finding]:
    bad = []
    for rec in ds.records:
        if rec.format != "chat":
            continue
        msgs = rec.data.get("messages")
        if (
            not isinstance(msgs, list)
            or not msgs
            or not all(isinstance(m, dict) and "role" in m and "content" in m for m in msgs)
        ):
            bad.append(rec.line)
    if bad:
        yield finding("DAT006", f"{ds.name}: line(s) {_lines(bad)}", file=ds.name)


def tokenize(rec: Record, tokenizer: Any) -> list[int]:
    """The tokens mlx-lm's dataset class makes of one record (the same calls as its
    ChatDataset / CompletionsDataset / TextDataset in tuner/datasets.py, return_dict=False)."""
    data = rec.data
    if rec.format == "chat":
        return _ids(
            tokenizer.apply_chat_template(
                data["messages"], tools=data.get("tools"), return_dict=False
            )
        )
    if rec.format == "completions":
        msgs = [
            {"role": "user", "content": data["prompt"]},
            {"role": "assistant", "content": data["completion"]},
        ]
        return _ids(tokenizer.apply_chat_template(msgs, return_dict=False))
    ids = list(tokenizer.encode(data["text"]))
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is not None and (not ids or ids[-1] != eos):
        ids.append(eos)
    return ids


def _ids(out: Any) -> list[int]:
    if isinstance(out, dict) or hasattr(out, "input_ids"):
        out = out["input_ids"]
    return list(out)


@rule(
    "DAT010",
    "Examples longer than max_seq_length after the chat template",
    severity="warning",
    fix="mlx-lm truncates them silently to --max-seq-length (the end of the answer is lost): "
    "raise max_seq_length (memory grows with it) or shorten or split the examples.",
    compares="tokens after the tokenizer's chat template vs max_seq_length",
)
def too_long(ds: DataSet, lengths: list[tuple[int, int]], max_seq_length: int) -> Iterator[Finding]:
    over = [(n, k) for n, k in lengths if k > max_seq_length]
    if over:
        longest = max(over, key=lambda t: t[1])
        yield finding(
            "DAT010",
            f"{ds.name}: {len(over)} of {len(lengths)} example(s) exceed max_seq_length = "
            f"{max_seq_length} (line(s) {_lines([n for n, _ in over])}; the longest, line "
            f"{longest[0]}, has {longest[1]} tokens)",
            file=ds.name,
        )


@rule(
    "DAT011",
    "The pad token is the eos token",
    severity="info",
    fix="mlx-lm masks by length, not by pad id, so training is not affected; other trainers that "
    "mask pad ids also mask every eos and the model never learns to stop. Set a distinct "
    "pad_token if the data is reused elsewhere.",
    compares="tokenizer pad_token_id vs eos_token_id",
)
def pad_is_eos(tokenizer: Any) -> Iterator[Finding]:
    pad = getattr(tokenizer, "pad_token_id", None)
    eos = getattr(tokenizer, "eos_token_id", None)
    if pad is not None and pad == eos:
        yield finding("DAT011", f"pad_token_id = eos_token_id = {eos}")


@rule(
    "DAT012",
    "A record the tokenizer cannot render",
    severity="error",
    fix="The chat template refused the record (a role it does not know, a system message it does "
    "not support, content that is not a string): fix the record or the template.",
    compares="the tokenizer's chat template applied to each record",
)
def render_error(ds: DataSet, errors: list[tuple[int, str]]) -> Iterator[Finding]:
    if errors:
        n, msg = errors[0]
        yield finding(
            "DAT012",
            f"{ds.name}: line(s) {_lines([n for n, _ in errors])} (line {n}: {msg})",
            file=ds.name,
        )


@rule(
    "DAT013",
    "A data split has fewer records than the batch size",
    severity="error",
    fix="mlx-lm's trainer refuses the split before the first step ('Dataset must have at least "
    "batch_size=N examples'): add records to the split or give a smaller --batch-size.",
    compares="records in train.jsonl / valid.jsonl (/ test.jsonl) >= --batch-size "
    "(mlx_lm.tuner.trainer.iterate_batches)",
)
def fewer_than_batch(ds: DataSet, batch_size: int) -> Iterator[Finding]:
    n = len(ds.records)
    if 0 < n < batch_size:
        yield finding(
            "DAT013",
            f"{ds.name}: {n} record(s), batch size {batch_size}",
            file=ds.name,
        )


def diagnose_file(
    path: str, tokenizer: Any = None, max_seq_length: int = 2048, batch_size: int | None = None
) -> tuple[list[Finding], dict[str, Any]]:
    """Findings and facts (records, format, token counts) for one JSONL file; with batch_size,
    whether it holds at least one batch."""
    from genai_common.findings import run_rule

    ds = read(path)
    found: list[Finding] = []
    for func in (missing, blank_lines, malformed, unknown_format, mixed_formats, chat_messages):
        found += run_rule(func, ds)
    if batch_size:
        found += _run(fewer_than_batch, ds, batch_size)
    formats = sorted({r.format for r in ds.records})
    facts: dict[str, Any] = {"records": len(ds.records), "formats": formats}
    if tokenizer is not None and ds.records:
        lengths: list[tuple[int, int]] = []
        errors: list[tuple[int, str]] = []
        for rec in ds.records:
            try:
                lengths.append((rec.line, len(_ids(tokenize(rec, tokenizer)))))
            except Exception as exc:  # the template's own refusal, reported with the line
                errors.append((rec.line, f"{type(exc).__name__}: {exc}"[:200]))
        found += _run(render_error, ds, errors)
        if lengths:
            found += _run(too_long, ds, lengths, max_seq_length)
            counts = [k for _, k in lengths]
            facts.update(
                tokens=sum(counts), max_tokens=max(counts), mean_tokens=sum(counts) / len(counts)
            )
    return found, facts


def _run(func: Any, *args: Any) -> list[Finding]:
    from genai_common.findings import declared, stamp

    rules = declared(func)
    return [stamp(f, rules) for f in func(*args)]


def diagnose(
    data_dir: str,
    tokenizer: Any = None,
    max_seq_length: int = 2048,
    batch_size: int | None = None,
) -> tuple[Report, dict[str, Any]]:
    """Diagnose data_dir/train.jsonl and data_dir/valid.jsonl (test.jsonl when present);
    with batch_size, each split is checked to hold at least one batch."""
    facts: dict[str, Any] = {}
    report = Report(data_dir, kind="data", facts=facts)
    names = ["train.jsonl", "valid.jsonl"]
    if os.path.isfile(os.path.join(data_dir, "test.jsonl")):
        names.append("test.jsonl")
    for name in names:
        found, f = diagnose_file(
            os.path.join(data_dir, name), tokenizer, max_seq_length, batch_size
        )
        report.extend(found)
        facts[name] = f
    if tokenizer is not None:
        report.extend(_run(pad_is_eos, tokenizer))
    return report, facts
