"""Documents that follow the model: the facts block of README.md and reference/LEARNINGS.md.

A generated project's documents used to name the model they were rendered with; change the
model in `[tool.genai]` and they kept naming the embedded tiny one (issue 16). The model-specific
part now lives between two markers,

    <!-- genai:facts -->
    - Model: `org/name` (llm, model_type `llama`, LlamaForCausalLM)
    ...
    <!-- /genai:facts -->

written from the static doctor's facts by `genai session start` and `genai diagnostics --record`
through the safe writer (runtime/files.edit_text), which replaces the lines between the markers
and nothing else. A document without the markers is never touched. The review's GD200 flags a
document that names another model than the project's; GD201 a facts block that no longer says
what the doctor says.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from genai_common.model.values import gib
from genai_common.project.core import Project
from genai_common.project.docs import FACTS_END as END
from genai_common.project.docs import FACTS_START as START

NOTE = "<!-- Written by `genai session start` from the doctor's facts; edit outside this block. -->"
# The documents the template gives a facts block (the ones GD201 keeps current).
FACT_DOCS = ("README.md", "reference/LEARNINGS.md")
# The documents GD200 reads for a model named outside the block.
NAMING_DOCS = ("README.md", "AGENTS.md", "reference/LEARNINGS.md")
TINY = "tiny"  # what a document names when it names the embedded tiny model


def model_label(project: Project) -> str:
    """The model as the project names it: [tool.genai] model, or the tiny model's folder."""
    return project.model.strip() or f"models/tiny-{project.kind}"


def doctor_facts(project: Project) -> dict[str, Any] | None:
    """The static doctor's view of the project's model: {"kind", "model_type", "facts"}; None
    when the model is not there (the tiny one not built yet, a hub id not in the cache)."""
    model = project.model_path
    if model is None or (project.model_is_local and not Path(model).exists()):
        return None
    from genai_common.doctor import diagnose

    try:
        report = diagnose(model, kind=project.kind)
    except Exception:  # the model cannot be read: the doctor's own command says why
        return None
    return {"kind": report.kind, "model_type": report.model_type, "facts": report.facts}


def _count(n: Any) -> str:
    return f"{n:,}" if isinstance(n, int) else str(n)


def lines(project: Project, found: dict[str, Any] | None) -> list[str]:
    """The block's lines (markers included) for these doctor facts; without facts, the model's
    name and how to fill the rest in."""
    label = model_label(project)
    if not found:
        body = [
            f"- Model: `{label}` ({project.kind})",
            "- The doctor's facts appear here once the model is there: `nox -s diagnostics`, "
            "then `genai session start`.",
        ]
        return [START, NOTE, *body, END]
    f = found["facts"]
    what = [found.get("kind") or project.kind]
    if found.get("model_type"):
        what.append(f"model_type `{found['model_type']}`")
    if f.get("architecture"):
        what.append(str(f["architecture"]))
    body = [f"- Model: `{label}` ({', '.join(what)})"]
    if f.get("parameters"):
        dtypes = ", ".join(sorted(f.get("dtypes") or {}))
        size = f"weights {gib(f['weight_bytes'])}" if f.get("weight_bytes") else ""
        extra = "; ".join(x for x in (size, dtypes) if x)
        body.append(f"- Parameters: {_count(f['parameters'])}" + (f" ({extra})" if extra else ""))
    shape = [
        f"{label_} {_count(f[key])}"
        for label_, key in (
            ("vocab", "vocab_size"),
            ("tokenizer", "tokenizer_size"),
            ("layers", "num_hidden_layers"),
            ("hidden", "hidden_size"),
            ("attention heads", "num_attention_heads"),
            ("KV heads", "num_key_value_heads"),
            ("head dim", "head_dim"),
        )
        if f.get(key) is not None
    ]
    if shape:
        body.append("- Shape: " + ", ".join(shape))
    if f.get("max_position_embeddings"):
        body.append(f"- Context: {_count(f['max_position_embeddings'])} tokens")
    if isinstance(f.get("vision"), dict):
        v = f["vision"]
        parts = [f"{k} {v[k]}" for k in ("image_size", "patch_size", "num_hidden_layers") if k in v]
        if parts:
            body.append("- Vision: " + ", ".join(parts))
    q = f.get("quantization")
    if isinstance(q, dict) and q.get("bits"):
        group = f", group size {q['group_size']}" if q.get("group_size") else ""
        body.append(f"- Quantization: {q['bits']}-bit{group} ({q.get('mode') or 'affine'})")
    else:
        body.append("- Quantization: none")
    return [START, NOTE, *body, END]


def block_span(text: str) -> tuple[int, int] | None:
    """(start, end) line indexes of the markers (inclusive) when both are there, in order."""
    rows = text.split("\n")
    starts = [i for i, r in enumerate(rows) if r.strip() == START]
    ends = [i for i, r in enumerate(rows) if r.strip() == END]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        return None
    return starts[0], ends[0]


def replace_block(text: str, new_lines: list[str]) -> str | None:
    """`text` with the lines between (and of) the markers replaced; None without one block.
    Splits on "\\n" only, so every other byte (CRLF, form feeds) stays as it was."""
    span = block_span(text)
    if span is None:
        return None
    rows = text.split("\n")
    cr = "\r" if rows[span[0]].endswith("\r") else ""
    return "\n".join([*rows[: span[0]], *(ln + cr for ln in new_lines), *rows[span[1] + 1 :]])


def block_text(text: str) -> list[str] | None:
    span = block_span(text)
    if span is None:
        return None
    return [r.rstrip("\r") for r in text.split("\n")[span[0] : span[1] + 1]]


def refresh(project: Project, found: dict[str, Any] | None = None) -> list[str]:
    """Rewrite the facts block of each FACT_DOC that has one (safe writer, lines outside the
    block untouched); the documents changed. `found`: doctor facts already computed."""
    from genai_common.runtime import files

    if found is None:
        found = doctor_facts(project)
    new = lines(project, found)
    changed = []
    for rel in FACT_DOCS:
        path = project.root / rel
        if not path.is_file():
            continue
        if files.edit_text(path, lambda old: replace_block(old or "", new), project.root):
            changed.append(rel)
    return changed


# -- what a document names, outside the block (GD200) -------------------------------------------

_MODEL_LINE = re.compile(
    r"(?:^|[.:;]\s+|\|\s*)Model:\s*(`[^`]+`|the embedded tiny \w+ model)", re.I
)
_ARCH_HEADING = re.compile(r"^#{1,6}\s+Architecture:\s*(.+?)\s*#*$", re.I)
_ITS_MODEL = re.compile(r"Its model is\s+(`[^`]+`|the embedded tiny \w+ model)", re.I)
_TINY_PHRASE = re.compile(r"the embedded tiny \w+ model", re.I)


def _named(raw: str, kind: str | None) -> str:
    raw = raw.strip().strip("`").strip()
    if _TINY_PHRASE.fullmatch(raw) or raw in {f"tiny-{kind}", f"models/tiny-{kind}"}:
        return TINY
    return raw.rstrip("/").removeprefix("./")


def _prose(text: str) -> str:
    """The text outside fenced code and outside the facts block (blanked, lines kept)."""
    from genai_common.formats.markdown import code_mask

    rows = text.split("\n")
    mask = code_mask(rows)
    span = block_span(text)
    return "\n".join(
        "" if mask[i] or (span and span[0] <= i <= span[1]) else r for i, r in enumerate(rows)
    )


def named_models(text: str, kind: str | None) -> list[tuple[int, str]]:
    """(line number, model) for each place the prose names the project's model."""
    prose = _prose(text)
    out = []
    for pattern in (_MODEL_LINE, _ITS_MODEL):
        for m in pattern.finditer(prose):
            out.append((prose.count("\n", 0, m.start(1)) + 1, _named(m.group(1), kind)))
    for i, row in enumerate(prose.split("\n")):
        m = _ARCH_HEADING.match(row.strip())
        if m:
            out.append((i + 1, _named(m.group(1), kind)))
    return sorted(set(out))


def expected_name(project: Project) -> str:
    return _named(project.model, project.kind) if project.model.strip() else TINY


def same_model(project: Project, named: str) -> bool:
    want = expected_name(project)
    if named == want:
        return True
    if TINY in (named, want):
        return False
    if project.model_is_local:  # a path: the same folder, however it is written
        here = Path(str(project.model_path)).resolve()
        return (project.root / named).resolve() == here or Path(named).resolve() == here
    return named.lower() == want.lower()
