"""The check catalogue from the rules themselves: `genai doctor --list-checks [--markdown|--json]`.

reference/CHECKS.md is generated from here (`python -m genai_common.doctor.catalogue
reference/CHECKS.md`, tested to be current), so every declared code appears with its title, what
it compares, its fix, and the function that raises it.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from genai_common.findings import Rule


def _where(r: Rule) -> str:
    """`genai_common/doctor/rules/config.py::embedding` for each function that raises it."""
    out = []
    for place in r.where.split(", "):
        module, _, func = place.partition(":")
        out.append(f"{module.replace('.', '/')}.py::{func}")
    return ", ".join(out)


def _rules() -> list[tuple[Any, list[Rule]]]:
    """(family, its rules sorted by code) in the family table's order."""
    from genai_common.doctor.registry import ALL_FAMILIES, family_of, load_all

    by_family: dict[str, list[Rule]] = {}
    for r in load_all().values():
        fam = family_of(r)
        by_family.setdefault(fam.name if fam else "other", []).append(r)
    return [
        (fam, sorted(by_family[fam.name], key=lambda r: r.code))
        for fam in ALL_FAMILIES
        if fam.name in by_family
    ]


def catalogue_json() -> list[dict[str, Any]]:
    from genai_common.doctor.registry import family_of, load_all

    return [
        {
            "code": r.code,
            "family": fam.name if (fam := family_of(r)) else "other",
            "severity": r.severity,
            "title": r.title,
            "compares": r.compares,
            "hint": r.fix,
            "defined_in": _where(r),
        }
        for r in sorted(load_all().values(), key=lambda r: r.code)
    ]


def catalogue_markdown() -> str:
    groups = _rules()
    total = sum(len(rules) for _, rules in groups)
    lines = [
        "# Check catalogue",
        "",
        "Generated from the rules (`genai doctor --list-checks --markdown`); do not edit by hand.",
        "Each code is stable: family letters + number. Severity is the default; a check may lower",
        "or raise it for one finding when the message says why. Each code is declared, with this",
        "text, on the function that raises it (`defined in`).",
        "",
        f"{total} checks in {len(groups)} families.",
        "",
    ]
    for fam, rules in groups:
        lines += [f"## {fam.title}", ""]
        for r in rules:
            lines.append(f'<a id="{r.code.lower()}"></a>')
            lines.append(f"### {r.code} — {r.title}")
            lines.append("")
            lines.append(f"- severity: **{r.severity}**")
            if r.compares:
                lines.append(f"- compares: {r.compares}")
            lines.append(f"- fix: {r.fix}")
            lines.append(f"- defined in: `{_where(r)}`")
            lines.append("")
    return "\n".join(lines)


def catalogue_plain() -> str:
    """One line per code: code, severity, family, title (for a terminal or a pipe)."""
    rows = catalogue_json()
    width = max((len(r["code"]) for r in rows), default=4)
    lines = [f"{'CODE':<{width}}  {'SEVERITY':<8}  {'FAMILY':<9}  TITLE"]
    lines += [
        f"{r['code']:<{width}}  {r['severity']:<8}  {r['family']:<9}  {r['title']}" for r in rows
    ]
    lines.append(
        f"{len(rows)} checks; `--list-checks --markdown` adds what each compares and its fix."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = catalogue_markdown()
    if argv:
        from genai_common.runtime.files import write_text

        write_text(argv[0], text)  # atomic: a kill never leaves CHECKS.md cut
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
