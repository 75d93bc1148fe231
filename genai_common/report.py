"""Findings and reports: what every diagnostic returns, and the JSON contract.

A `Finding` is one judgement with a stable code (family letters + number, e.g. CFG010), a
severity, a one-line message with the numbers that disagree, and a hint that says how to fix it.
A `Report` gathers the findings and the facts (numbers without judgement) about one model path.
Renderers (terminal, JSON, Markdown) live beside the doctor command; this module stays
dependency-free so the static path is fast.
"""

from __future__ import annotations

from collections import namedtuple

TYPE_CHECKING = False  # typing costs milliseconds at start-up: imported only by type checkers
if TYPE_CHECKING:
    from typing import Any, Literal

    Severity = Literal["error", "warning", "info"]

SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "error": 2}
KINDS = ("llm", "vlm", "diffusion", "ml", "adapter", "gguf", "unknown")
SCHEMA_VERSION = 1


class Finding(namedtuple("Finding", "code severity message hint file", defaults=(None, None))):
    """code, severity ("error" | "warning" | "info"), message, hint, file (the file it is about,
    relative to the model path). Immutable and hashable (a named tuple: no dataclasses import)."""

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

    __hash__ = None  # type: ignore[assignment]  (mutable, like the dataclass it replaces)

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
        """0 when no finding reaches `fail_on`, else 1 (DESIGN.md's contract)."""
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
