"""The check registry: every diagnostic code, registered once, and the runner over the families.

A code is family letters + three digits (FILE001, HDR010, CFG010, TOK020, ...). Each family module
in this package registers its codes at import time with `register(...)` and exposes

    def check(md: ModelDir) -> Iterable[Finding]  # pure function over what ModelDir read

and makes its findings with `finding(code, message, file=...)`, which fills in the registered
severity and fix text (both may be overridden per finding). `run_checks(md)` runs the families
that apply to `md.kind`; a family that raises becomes a DOC001 finding, never a traceback.

The model kinds a family applies to are listed here, in FAMILY_KINDS (absent: all kinds), so
that the runner imports only the families of md.kind: a VLM or diffusion family is never
imported for an LLM.

Family modules are plain Python over dicts and tuples: importing them must stay cheap (no mlx,
torch, numpy, safetensors at module level).
"""

from __future__ import annotations

import sys
from collections import namedtuple

from genai_common.report import SEVERITY_RANK, Finding

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from genai_common.model_dir import ModelDir
    from genai_common.report import Severity

DOC_PAGE = "reference/CHECKS.md"

# family module name (in this package) -> code prefixes it owns, in run order. Readers' codes
# (JSON, HDR, IDX, GGUF header) come from formats/ through md.read_findings and are registered by
# the module that judges them. `load` runs only with --load/--infer (genai_common.doctor).
FAMILIES: dict[str, tuple[str, ...]] = {
    "files": ("FILE",),
    "formats": ("JSON", "HDR", "IDX"),
    "gguf": ("GGUF",),
    "config": ("CFG",),
    "tokenizer": ("TOK",),
    "quant": ("QNT",),
    "vlm": ("VLM",),
    "diffusion": ("DIF",),
    "compat": ("CMP",),
    "memory": ("MEM",),
    "load": ("LOAD",),
}
STATIC_FAMILIES = tuple(name for name in FAMILIES if name != "load")
# family -> the model kinds it applies to; a family not listed applies to every kind.
FAMILY_KINDS: dict[str, tuple[str, ...]] = {
    "gguf": ("gguf", "llm", "vlm", "ml", "unknown"),
    "config": ("llm", "vlm"),
    "tokenizer": ("llm", "vlm"),
    "quant": ("llm", "vlm", "ml", "unknown"),
    "vlm": ("vlm",),
    "diffusion": ("diffusion",),
    "compat": ("llm", "vlm"),
    "memory": ("llm", "vlm", "ml", "diffusion", "unknown"),
}


class Check(namedtuple("Check", "code family title severity hint compares", defaults=("",))):
    """One registered code: family (module name in this package, e.g. "files"), title (one line:
    what is wrong when it fires), default severity, hint (how to fix it), compares (what it
    compares, for the catalogue). Immutable (a named tuple: cheap to make by the hundred)."""

    __slots__ = ()
    code: str
    family: str
    title: str
    severity: Severity
    hint: str
    compares: str

    @property
    def anchor(self) -> str:
        return f"{DOC_PAGE}#{self.code.lower()}"


REGISTRY: dict[str, Check] = {}


class UnknownCheckError(KeyError):
    """A code was used that no family registered (a programming error, caught by the tests)."""


def register(
    code: str,
    title: str,
    severity: Severity,
    hint: str,
    *,
    compares: str = "",
    family: str | None = None,
) -> Check:
    """Register one code. `family` defaults to the family that owns the code's prefix."""
    prefix = code.rstrip("0123456789")
    if not prefix or not code[len(prefix) :] or len(code) - len(prefix) != 3:
        raise ValueError(f"check code {code!r} is not LETTERS + 3 digits")
    if severity not in SEVERITY_RANK:
        raise ValueError(f"{code}: severity {severity!r} is not one of {sorted(SEVERITY_RANK)}")
    owner = family or next((f for f, p in FAMILIES.items() if prefix in p), None)
    if owner is None:
        raise ValueError(f"{code}: prefix {prefix!r} belongs to no family in FAMILIES")
    check = Check(code, owner, title, severity, hint, compares)
    old = REGISTRY.get(code)
    if old is not None and old != check:
        raise ValueError(f"check code {code} registered twice with different definitions")
    REGISTRY[code] = check
    return check


def get(code: str) -> Check:
    """The registered check; imports every family module once if the code is not known yet."""
    check = REGISTRY.get(code)
    if check is None:
        load_all()
        check = REGISTRY.get(code)
    if check is None:
        raise UnknownCheckError(code)
    return check


def finding(
    code: str,
    message: str,
    *,
    file: str | None = None,
    severity: Severity | None = None,
    hint: str | None = None,
) -> Finding:
    """A Finding for a registered code, with its default severity and fix text."""
    check = get(code)
    return Finding(
        code=code,
        severity=severity or check.severity,
        message=message,
        hint=hint if hint is not None else check.hint,
        file=file,
    )


def family_module(name: str):  # -> ModuleType | None
    """The family's module, or None when it does not exist (yet)."""
    full = f"{__name__}.{name}"
    try:
        __import__(full)
        return sys.modules[full]
    except ModuleNotFoundError as exc:
        if exc.name == full:
            return None
        raise


def load_all() -> dict[str, Check]:
    """Import every family module (so all codes are registered) and return the registry."""
    for name in FAMILIES:
        family_module(name)
    return REGISTRY


def applies(family: str, kind: str) -> bool:
    kinds = FAMILY_KINDS.get(family)
    return kinds is None or kind in kinds


def run_family(name: str, md: ModelDir) -> Iterator[Finding]:
    """Run one family on md (imported only when it applies to md.kind); an exception inside it
    becomes a DOC001 finding."""
    if not applies(name, md.kind):
        return
    module = family_module(name)
    if module is None or not hasattr(module, "check"):
        return
    try:
        found = list(module.check(md))
    except Exception as exc:  # a check must never turn a bad file into a traceback
        yield finding("DOC001", f"check family {name!r} stopped: {type(exc).__name__}: {exc}")
        return
    yield from found


def run_checks(md: ModelDir, families: Iterable[str] = STATIC_FAMILIES) -> list[Finding]:
    """Run the static families that apply to md.kind, in FAMILIES order, without duplicates."""
    out: list[Finding] = []
    seen: set[tuple[str, str, str | None]] = set()
    for name in families:
        for f in run_family(name, md):
            key = (f.code, f.message, f.file)
            if key not in seen:
                seen.add(key)
                out.append(f)
    return out


# The runner's own codes (family "doctor": not a module, never run as a family), registered here
# so that the runner can always report.
register(
    "DOC001",
    "A check family stopped with an internal error",
    "warning",
    "This is a bug in genai-common, not necessarily in the model: report it with the message. "
    "The other families still ran.",
    compares="nothing: raised when a check function itself fails",
    family="doctor",
)
