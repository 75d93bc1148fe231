"""The check catalogue from the registry: `genai doctor --list-checks [--markdown|--json]`.

reference/CHECKS.md is generated from here (`python -m genai_common.catalogue reference/CHECKS.md`)
so every registered code, whoever wrote its family, appears with its title, what it compares and
its fix.
"""

from __future__ import annotations

import sys
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

FAMILY_TITLES = {
    "files": "FILE: files and layout",
    "formats": "JSON, HDR, IDX: malformed metadata files and safetensors headers",
    "gguf": "GGUF: GGUF headers and what MLX reads from them",
    "config": "CFG: text config vs tensors",
    "tokenizer": "TOK: tokenizer vs vocabulary and special tokens",
    "quant": "QNT: quantization",
    "vlm": "VLM: vision towers, projectors and image tokens",
    "diffusion": "DIF: diffusers pipelines",
    "compat": "CMP: compatibility with the installed loaders",
    "memory": "MEM: memory",
    "load": "LOAD: load and inference tests (--load, --infer)",
    "doctor": "DOC: the doctor itself",
}


def catalogue_json() -> list[dict[str, Any]]:
    from genai_common.checks import load_all

    registry = load_all()
    return [
        {
            "code": c.code,
            "family": c.family,
            "severity": c.severity,
            "title": c.title,
            "compares": c.compares,
            "hint": c.hint,
        }
        for c in sorted(registry.values(), key=lambda c: c.code)
    ]


def catalogue_markdown() -> str:
    from genai_common.checks import FAMILIES, load_all

    registry = load_all()
    order = [*FAMILIES, "doctor"]
    lines = [
        "# Check catalogue",
        "",
        "Generated from the registry (`genai doctor --list-checks --markdown`); do not edit by hand.",
        "Each code is stable: family letters + number. Severity is the default; a check may lower",
        "or raise it for one finding when the message says why.",
        "",
    ]
    by_family: dict[str, list] = {}
    for c in registry.values():
        by_family.setdefault(c.family, []).append(c)
    lines.append(f"{len(registry)} checks in {len(by_family)} families.")
    lines.append("")
    for family in sorted(by_family, key=lambda f: order.index(f) if f in order else len(order)):
        lines += [f"## {FAMILY_TITLES.get(family, family)}", ""]
        for c in sorted(by_family[family], key=lambda c: c.code):
            lines.append(f'<a id="{c.code.lower()}"></a>')
            lines.append(f"### {c.code} — {c.title}")
            lines.append("")
            lines.append(f"- severity: **{c.severity}**")
            if c.compares:
                lines.append(f"- compares: {c.compares}")
            lines.append(f"- fix: {c.hint}")
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
        Path(argv[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
