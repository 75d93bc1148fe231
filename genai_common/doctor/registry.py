"""The doctor's families of rules: one table, and the runner over them.

A family is one module under genai_common/doctor/rules/ (plus the families of the commands above
the doctor, listed here so that the catalogue shows every code). Its rules are plain functions
over a ModelDir, each with its metadata on it (`@rule`, genai_common/findings.py); the runner
finds them in the module, in the order they are defined. Rule modules import genai_common.model
and genai_common.findings, never each other, and stay cheap to import (no mlx, torch, numpy or
safetensors at module level): the runner imports only the families of the model's kind.

    rules_for(kind)          the static rule functions that apply to a kind, in run order
    run_rules(md, ...)       run them (a rule that raises becomes DOC001; the others still run)
    check_family(name, md)   one family's rules on md, whatever its kind (tests)
    load_all() / get(code)   every family imported; one code's Rule
"""

from __future__ import annotations

import sys

from genai_common.findings import (
    RULES,
    SEVERITY_RANK,
    Family,
    Finding,
    RuleError,
    declared,
    finding,
    name_matches,
    rule,
    rule_functions,
    run_rule,
    stamp,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import ModuleType
    from typing import Any

    from genai_common.findings import Rule
    from genai_common.model import ModelDir


_RULES = "genai_common.doctor.rules."
_ALL_KINDS = None
_TEXT = ("llm", "vlm")

# The one family table: name, the code prefixes it owns, its catalogue title, the model kinds it
# applies to (None: every kind), the module that defines its rules. Static families run in this
# order; `formats` last, so that every problem a reader met is recorded before it is reported.
FAMILIES: tuple[Family, ...] = (
    Family("files", ("FILE", "SEC01"), "FILE: files and layout", _ALL_KINDS, _RULES + "files"),
    Family(
        "gguf",
        ("GGUF",),
        "GGUF: GGUF files and what MLX reads from them",
        ("gguf", "llm", "vlm", "ml", "unknown"),
        _RULES + "gguf",
    ),
    Family("config", ("CFG",), "CFG: text config vs tensors", _TEXT, _RULES + "config"),
    Family(
        "tokenizer",
        ("TOK",),
        "TOK: tokenizer vs vocabulary and special tokens",
        _TEXT,
        _RULES + "tokenizer",
    ),
    Family(
        "quant", ("QNT",), "QNT: quantization", ("llm", "vlm", "ml", "unknown"), _RULES + "quant"
    ),
    Family(
        "vlm", ("VLM",), "VLM: vision towers, projectors and image tokens", ("vlm",), _RULES + "vlm"
    ),
    Family("diffusion", ("DIF",), "DIF: diffusers pipelines", ("diffusion",), _RULES + "diffusion"),
    Family(
        "compat",
        ("CMP",),
        "CMP: compatibility with the installed loaders",
        _TEXT,
        _RULES + "compat",
    ),
    Family(
        "memory",
        ("MEM",),
        "MEM: memory",
        ("llm", "vlm", "ml", "diffusion", "unknown"),
        _RULES + "memory",
    ),
    Family(
        "formats",
        ("JSON", "HDR", "IDX"),
        "JSON, HDR, IDX, GGUF headers, TOK9xx: files that do not read as what they claim",
        _ALL_KINDS,
        _RULES + "formats",
    ),
)
STATIC = tuple(f.name for f in FAMILIES)
# Families whose rules run outside the static pass, and the doctor's own codes.
OTHER_FAMILIES: tuple[Family, ...] = (
    Family(
        "load",
        ("LOAD", "SEC"),
        "LOAD: load and inference tests (--load, --infer); SEC: what they refuse to run",
        _ALL_KINDS,
        _RULES + "load",
    ),
    Family(
        "distributed",
        ("DST",),
        "DST: distributed runs on mlx.launch (--hosts, --ranks)",
        _ALL_KINDS,
        "genai_common.distributed.checks",
    ),
    Family(
        "quality",
        ("QLT",),
        "QLT: output quality against a reference (genai verify)",
        ("llm",),
        "genai_common.verify.rules",
    ),
    Family(
        "weights",
        ("WGT",),
        "WGT: weight values (--weights)",
        _ALL_KINDS,
        _RULES + "weights",
    ),
    Family(  # verify-reference (issue 11 part 1): GGUF sources of genai convert
        "workflows-convert-gguf",
        ("CNV",),
        "CNV02x: GGUF sources (genai convert FILE.gguf)",
        _ALL_KINDS,
        "genai_common.workflows.convert_gguf",
    ),
    Family(
        "quality-localise",
        ("QLT",),
        "QLT1xx: where a failing llm breaks (genai verify, layer by layer)",
        ("llm",),
        "genai_common.verify.localise",
    ),
    Family(
        "quality-vlm",
        ("QLT",),
        "QLT31x: VLM output parity (genai verify, vlm)",
        ("vlm",),
        "genai_common.verify.vlm",
    ),
    Family(
        "quality-diffusion",
        ("QLT",),
        "QLT3xx: diffusion output parity (genai verify, diffusion)",
        ("diffusion",),
        "genai_common.verify.diffusion",
    ),
    Family("doctor", ("DOC",), "DOC: the doctor itself", _ALL_KINDS, __name__),
    Family(
        "workflows-data",
        ("DAT",),
        "DAT: fine-tuning data (genai finetune)",
        _ALL_KINDS,
        "genai_common.workflows.data",
    ),
    Family(
        "workflows-convert",
        ("CNV",),
        "CNV: convert and quantize (genai convert)",
        _ALL_KINDS,
        "genai_common.workflows.convert",
    ),
    Family(
        "workflows-finetune",
        ("TRN", "ADP"),
        "TRN, ADP: LoRA training runs, adapters and fuse (genai finetune)",
        _ALL_KINDS,
        "genai_common.workflows.finetune",
    ),
    Family(
        "port",
        ("PRT",),
        "PRT: porting a PyTorch state_dict to MLX (workflows/port.py)",
        ("ml",),
        "genai_common.workflows.port",
    ),
    Family(
        "quality-ml",
        ("QLT",),
        "QLT20x: an MLX module against its PyTorch original (genai verify, ml)",
        ("ml",),
        "genai_common.verify.ml",
    ),
    Family(
        "workflows-train-ml",
        ("MLT",),
        "MLT: training an ml project's MLX module (genai train)",
        ("ml",),
        "genai_common.workflows.train_ml",
    ),
    Family(
        "diffusion-workflow",
        ("DFL",),
        "DFL: diffusion LoRA and scheduler swaps (workflows/diffusion.py)",
        ("diffusion",),
        "genai_common.workflows.diffusion",
    ),
    Family(
        "vlm-data",
        ("VDT",),
        "VDT: VLM fine-tuning data, image+text records (workflows/vlm.py)",
        ("vlm",),
        "genai_common.workflows.vlm",
    ),
)
ALL_FAMILIES = FAMILIES + OTHER_FAMILIES
BY_NAME = {f.name: f for f in ALL_FAMILIES}


class UnknownCheckError(KeyError):
    """A code was used that no family declares (a programming error, caught by the tests)."""


@rule(
    "DOC001",
    "A check stopped with an internal error",
    severity="warning",
    fix="This is a bug in genai-common, not necessarily in the model: report it with the "
    "message. The other checks still ran.",
    compares="nothing: raised when a rule function itself fails",
)
def stopped(where: str, exc: BaseException) -> Finding:
    """The DOC001 finding for a rule (or a step) that raised instead of reporting."""
    message = f"{where} stopped: {type(exc).__name__}: {exc}"
    return stamp(finding("DOC001", message), declared(stopped))


def family_module(name: str) -> ModuleType | None:
    """The family's module (imported on first use), or None when the family has no module."""
    fam = BY_NAME.get(name)
    if fam is None or fam.module is None:
        return None
    __import__(fam.module)
    return sys.modules[fam.module]


def family_of(rule_: Rule) -> Family | None:
    """The family whose module defines a rule."""
    module = rule_.where.partition(":")[0]
    return next((f for f in ALL_FAMILIES if f.module == module), None)


def load_all() -> dict[str, Rule]:
    """Import every family module (so all codes are declared) and return code -> Rule."""
    for fam in ALL_FAMILIES:
        family_module(fam.name)
    mine = {f.module for f in ALL_FAMILIES}
    return {code: r for code, r in RULES.items() if r.where.partition(":")[0] in mine}


def get(code: str) -> Rule:
    """The declared rule of a code; imports every family once if the code is not known yet."""
    found = RULES.get(code)
    if found is None:
        load_all()
        found = RULES.get(code)
    if found is None:
        raise UnknownCheckError(code)
    return found


def applies(fam: Family, kind: str) -> bool:
    return fam.kinds is None or kind in fam.kinds


def _applies_to(func: Callable[..., Any], kind: str) -> bool:
    kinds = {r.kinds for r in declared(func).values()}
    return all(k is None or kind in k for k in kinds)


def rules_for(kind: str, families: Iterable[str] = STATIC) -> list[Callable[..., Any]]:
    """The rule functions of these families that apply to `kind`, in run order (a family that
    does not apply is never imported)."""
    out: list[Callable[..., Any]] = []
    for name in families:
        fam = BY_NAME[name]
        if not applies(fam, kind):
            continue
        module = family_module(name)
        if module is not None:
            out.extend(f for f in rule_functions(module) if _applies_to(f, kind))
    return out


def _wanted(codes: Iterable[str], select: frozenset[str], ignore: frozenset[str]) -> bool:
    """Whether a rule raising these codes can produce a selected finding."""
    if not select and not ignore:
        return True
    return any(_selected(code, select, ignore) for code in codes)


def _selected(code: str, select: frozenset[str], ignore: frozenset[str]) -> bool:
    if select and "*" not in select and not name_matches(code, select):
        return False
    return not name_matches(code, ignore)


def run_functions(
    functions: Iterable[Callable[..., Any]],
    md: ModelDir,
    *,
    select: Iterable[str] = (),
    ignore: Iterable[str] = (),
) -> list[Finding]:
    """Run rule functions on md: findings in order, without duplicates, selected by code
    (repo-review's semantics); a rule that raises becomes a DOC001 finding."""
    select_, ignore_ = frozenset(select), frozenset(ignore)
    out: list[Finding] = []
    seen: set[tuple[str, str, str | None]] = set()
    for func in functions:
        if not _wanted(declared(func), select_, ignore_):
            continue
        try:
            found = run_rule(func, md)
        except RuleError:
            raise  # a programming error: the tests must see it
        except Exception as exc:  # a malformed file must never stop the other rules
            name = func.__module__.rsplit(".", 1)[-1] + "." + func.__name__.lstrip("_")
            found = [stopped(name, exc)]
        for f in _folded(found):
            key = (f.code, f.message, f.file)
            if key not in seen and _selected(f.code, select_, ignore_):
                seen.add(key)
                out.append(f)
    return out


# One rule function that raises more findings of one code than this reports them as one: a cause
# repeated per layer or per file is one finding with a count and the list, not a screenful.
FOLD_AT = 8


def _folded(found: list[Finding]) -> list[Finding]:
    """found, with each code that appears more than FOLD_AT times folded into one finding: the
    first message, the count, and the subjects (file, else the first word) of the others."""
    counts: dict[str, int] = {}
    for f in found:
        counts[f.code] = counts.get(f.code, 0) + 1
    if all(n <= FOLD_AT for n in counts.values()):
        return found
    out: list[Finding] = []
    done: set[str] = set()
    for f in found:
        if counts[f.code] <= FOLD_AT:
            out.append(f)
            continue
        if f.code in done:
            continue
        done.add(f.code)
        same = [g for g in found if g.code == f.code]
        files = {g.file for g in same}
        subjects = list(
            dict.fromkeys(
                g.message.split(" ", 1)[0] if len(files) == 1 or not g.file else g.file
                for g in same[1:]
            )
        )
        shown = ", ".join(subjects[:6]) + (
            f", ... (+{len(subjects) - 6} more)" if len(subjects) > 6 else ""
        )
        worst = max((g.severity for g in same), key=SEVERITY_RANK.__getitem__)
        out.append(
            Finding(
                f.code,
                worst,
                f"{f.message} (and {len(same) - 1} more {f.code} findings: {shown})",
                f.hint,
                f.file if len(files) == 1 else None,
            )
        )
    return out


def run_rules(
    md: ModelDir, *, select: Iterable[str] = (), ignore: Iterable[str] = ()
) -> list[Finding]:
    """Run the static rules that apply to md.kind."""
    return run_functions(rules_for(md.kind), md, select=select, ignore=ignore)


def check_family(name: str, md: ModelDir) -> list[Finding]:
    """One family's rules on md, whatever md.kind is (what the family tests run)."""
    module = family_module(name)
    return run_functions(rule_functions(module) if module else (), md)
