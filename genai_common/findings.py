"""Findings, reports and rules: what every diagnostic returns, and the one rule framework.

The bottom layer: it imports nothing of ours (and nothing slow: `genai doctor` pays for every
module it imports, so no dataclasses, typing or pathlib at run time).

A `Finding` is one judgement with a stable code (family letters + three digits, e.g. CFG010), a
severity, a one-line message with the numbers that disagree, and a hint that says how to fix it.
A `Report` gathers the findings and the facts (numbers without judgement) about one model path.

A *rule* is a plain function over a subject (a `ModelDir` for the doctor, a `Project` for the
review) that yields what it found. Its metadata sits on the function, one `@rule` per code it
raises (ruff and repo-review keep a rule's text beside its logic the same way):

    @rule("CFG010", "Embedding rows differ from vocab_size", severity="error",
          fix="Make vocab_size equal the embedding's rows ...",
          compares="embed_tokens.weight rows vs text vocab_size")
    def embedding_rows(md):
        if rows != vocab:
            yield finding("CFG010", f"{name} has {rows} rows but vocab_size = {vocab}", file=...)

A rule yields `finding(code, message, ...)` (severity and hint left empty take the declared
ones), or a plain message string when it declares exactly one code. `run_rule(func, subject)`
stamps code, severity and fix and refuses a code the function does not declare: a finding can
always be traced to the one function that raised it (`Rule.where`), and the catalogue says so.
`Skip("why")` raised by a rule means it cannot judge this subject.
"""

from __future__ import annotations

from collections import namedtuple

TYPE_CHECKING = False  # typing costs milliseconds at start-up: imported only by type checkers
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any, Literal

    Severity = Literal["error", "warning", "info"]

SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "error": 2}
# What a model path can be (the doctor's `kind`, the JSON contract's values).
KINDS = ("llm", "vlm", "diffusion", "ml", "adapter", "gguf", "unknown")
# What a generated project can be (copier's project_kind; `genai tiny` builds one of each).
PROJECT_KINDS = ("llm", "vlm", "diffusion", "ml")
SCHEMA_VERSION = 1
CATALOGUE = "reference/CHECKS.md"  # the generated catalogue of every rule


class Finding(namedtuple("Finding", "code severity message hint file", defaults=(None, None))):
    """code, severity ("error" | "warning" | "info"), message, hint, file (the file it is about,
    relative to the model path or project). Immutable and hashable (a named tuple: cheap to make
    by the thousand, no dataclasses import)."""

    __slots__ = ()
    code: str
    severity: Severity
    message: str
    hint: str | None
    file: str | None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "hint": self.hint,
        }
        if self.file is not None:
            out["file"] = self.file
        return out


class Report:
    """The findings and facts (numbers without judgement) about one model path."""

    __slots__ = ("facts", "findings", "kind", "model_type", "path")

    def __init__(
        self,
        path: str,
        kind: str = "unknown",
        model_type: str | None = None,
        findings: list[Finding] | None = None,
        facts: dict[str, Any] | None = None,
    ) -> None:
        self.path = path
        self.kind = kind
        self.model_type = model_type
        self.findings: list[Finding] = [] if findings is None else findings
        self.facts: dict[str, Any] = {} if facts is None else facts

    def _fields(self) -> tuple[Any, ...]:
        return (self.path, self.kind, self.model_type, self.findings, self.facts)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]  (mutable)

    def __repr__(self) -> str:
        names = ("path", "kind", "model_type", "findings", "facts")
        inner = ", ".join(f"{n}={v!r}" for n, v in zip(names, self._fields(), strict=True))
        return f"Report({inner})"

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def extend(self, findings: Any) -> None:
        for f in findings or ():
            self.add(f)

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    def codes(self) -> list[str]:
        return [f.code for f in self.findings]

    def exit_code(self, fail_on: str = "error") -> int:
        """0 when no finding reaches `fail_on`, else 1 (the documented contract)."""
        threshold = SEVERITY_RANK[fail_on]
        return int(any(SEVERITY_RANK[f.severity] >= threshold for f in self.findings))

    def ordered(self) -> list[Finding]:
        """The findings as every renderer shows them: worst first, then by code and message."""
        return sorted(self.findings, key=lambda f: (-SEVERITY_RANK[f.severity], f.code, f.message))

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "path": self.path,
            "kind": self.kind,
            "model_type": self.model_type,
            "findings": [f.to_json() for f in self.ordered()],
            "facts": self.facts,
        }


# ---------------------------------------------------------------------------------------------
# Rules


class Rule(
    namedtuple("Rule", "code title severity fix compares kinds url where", defaults=("", None, ""))
):
    """One code's metadata, declared on the function that raises it.

    title: one line, what is wrong when it fires; severity: the default ("error" | "warning" |
    "info"); fix: how to repair it; compares: what it compares (for the catalogue); kinds: the
    model kinds it applies to (None: those of its family); url: where the rule is explained
    (empty: the catalogue's anchor); where: `module:function` of the function that raises it."""

    __slots__ = ()
    code: str
    title: str
    severity: Severity
    fix: str
    compares: str
    kinds: tuple[str, ...] | None
    url: str
    where: str

    @property
    def prefix(self) -> str:
        """The family letters of the code (CFG for CFG010)."""
        return self.code.rstrip("0123456789")

    @property
    def anchor(self) -> str:
        """Where the rule is explained: its url, else its entry in the doctor's catalogue."""
        return self.url or f"{CATALOGUE}#{self.code.lower()}"


class Family(namedtuple("Family", "name prefixes title kinds module", defaults=(None, None))):
    """A family of rules: its name, the code prefixes it owns, a catalogue title, the kinds it
    applies to (None: all), and the module that defines its rules (None: raised by a runner)."""

    __slots__ = ()
    name: str
    prefixes: tuple[str, ...]
    title: str
    kinds: tuple[str, ...] | None
    module: str | None


# code -> Rule, for every rule module imported so far (doctor and review alike: codes are unique)
RULES: dict[str, Rule] = {}


class RuleError(Exception):
    """A rule was declared or used wrongly (a programming error the tests catch): a malformed or
    doubly defined code, or a finding whose code its function does not declare."""


class Skip(Exception):
    """Raised by a rule that cannot judge this subject; the message says why."""


def check_code(code: str) -> str:
    """code when it is LETTERS + three digits, else RuleError."""
    prefix = code.rstrip("0123456789")
    if not prefix or not prefix.isalpha() or not prefix.isupper() or len(code) - len(prefix) != 3:
        raise RuleError(f"rule code {code!r} is not LETTERS + 3 digits")
    return code


def rule(
    code: str,
    title: str,
    *,
    severity: Severity,
    fix: str,
    compares: str = "",
    kinds: Iterable[str] | None = None,
    url: str = "",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare that the decorated function raises `code` (stack one per code it raises)."""
    check_code(code)
    if severity not in SEVERITY_RANK:
        raise RuleError(f"{code}: severity {severity!r} is not one of {sorted(SEVERITY_RANK)}")
    kinds_ = tuple(kinds) if kinds is not None else None

    def declare(func: Callable[..., Any]) -> Callable[..., Any]:
        where = f"{func.__module__}:{func.__qualname__}"
        new = Rule(code, title, severity, fix, compares, kinds_, url, where)
        old = RULES.get(code)
        if old is not None and old[:-1] != new[:-1]:
            raise RuleError(f"rule code {code} declared twice: {old.where} and {where}")
        if old is not None and where not in old.where.split(", "):
            # one declaration applied to several functions (`X = rule(...)`, then `@X` on each)
            new = old._replace(where=f"{old.where}, {where}")
        elif old is not None:
            new = old
        RULES[code] = new
        declared: dict[str, Rule] = func.__dict__.setdefault("__rules__", {})
        declared[code] = new
        return func

    return declare


def declared(func: Callable[..., Any]) -> dict[str, Rule]:
    """The rules a function declares (code -> Rule); empty for a plain function."""
    return getattr(func, "__rules__", None) or {}


def rule_functions(module: Any) -> list[Callable[..., Any]]:
    """The rule functions a module defines, in the order it defines them."""
    name = module.__name__
    return [
        obj
        for obj in vars(module).values()
        if callable(obj) and getattr(obj, "__module__", None) == name and declared(obj)
    ]


def finding(
    code: str,
    message: str,
    *,
    file: str | None = None,
    severity: Severity | None = None,
    hint: str | None = None,
) -> Finding:
    """A finding for `code`: severity and hint left None take the declared ones when the rule's
    runner stamps it (a rule may override either for one finding when the message says why)."""
    return Finding(code, severity, message, hint, file)  # type: ignore[arg-type]


def stamp(found: Finding, rules: dict[str, Rule]) -> Finding:
    """found with the declared severity and fix filled in; RuleError for an undeclared code."""
    declared_rule = rules.get(found.code)
    if declared_rule is None:
        raise RuleError(f"{found.code} raised by a function that declares only {sorted(rules)}")
    if found.severity is not None and found.hint is not None:
        return found
    return Finding(
        found.code,
        found.severity or declared_rule.severity,
        found.message,
        found.hint if found.hint is not None else declared_rule.fix,
        found.file,
    )


def run_rule(func: Callable[..., Any], subject: Any) -> list[Finding]:
    """Run one rule function on a subject; return its stamped findings.

    Raises Skip when the rule cannot judge the subject, RuleError when it raised a code it does
    not declare; any other exception is the rule's own (the caller decides what it becomes)."""
    rules = declared(func)
    out: list[Finding] = []
    for item in func(subject) or ():
        if isinstance(item, str):
            if len(rules) != 1:
                raise RuleError(f"{func.__qualname__} declares {sorted(rules)}: yield finding()")
            item = Finding(next(iter(rules)), None, item, None, None)  # type: ignore[arg-type]
        out.append(stamp(item, rules))
    return out


def name_matches(code: str, selectors: Iterable[str]) -> str:
    """The selector that names `code`: the code itself, or its family letters (repo-review's
    semantics: CFG selects CFG010, CFG01 selects nothing); "" when none does."""
    selectors = set(selectors)
    if code in selectors:
        return code
    prefix = code.rstrip("0123456789")
    return prefix if prefix in selectors else ""


def selected(code: str, select: Iterable[str] = (), ignore: Iterable[str] = ()) -> bool:
    """repo-review's `is_allowed`: with a `select`, only the codes it names (by code, by family
    letters, or "*" for all); never a code `ignore` names."""
    select = set(select)
    if select and "*" not in select and not name_matches(code, select):
        return False
    return not name_matches(code, ignore)


# Characters that must never reach a terminal or a log raw: C0 and C1 controls and DEL (an ESC
# sets the window title or clears the screen; a CR or newline forges a line in a CI log), and the
# Unicode line/paragraph separators and bidirectional controls (they move or hide text).
_UNSAFE = {
    *range(0x00, 0x20),
    *range(0x7F, 0xA0),
    0x2028,
    0x2029,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
}
_ESCAPES = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in _UNSAFE}
_ESCAPES.update({0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"})
SHOWN_LIMIT = 500  # characters of one value in human-readable output


def shown(text: object, limit: int = SHOWN_LIMIT) -> str:
    """`text` as it may be printed for a person (plain, Markdown, rich): control characters
    escaped (a newline shows as \\n), and at most `limit` characters, the rest counted.

    Names and values from model files, documents and user input pass through here before they
    are printed; `--json` output needs nothing (JSON escapes controls itself)."""
    text = str(text)
    if len(text) > limit:
        cut = len(text) - limit
        text = f"{text[:limit]}… ({cut:,} more characters)"
    if text.isprintable() and "\u2028" not in text and "\u2029" not in text:
        return text
    return text.translate(_ESCAPES)
