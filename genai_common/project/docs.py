"""What each living document of a generated project carries, read from its Markdown.

The documents the methodology keeps (LIVING_DOCS), the entries of LEARNINGS.md, the tools
DIAGNOSTICS.md lists and the scripts test/README.md documents. The Markdown primitives they
build on (sections, checklists, tables, dates) are in genai_common.formats.markdown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from genai_common.formats.markdown import (
    CODE_SPAN,
    code_mask,
    is_placeholder,
    parse_date,
    row_cells,
    sections,
)

LIVING_DOCS = (
    "README.md",
    "TODO.md",
    "reference/LEARNINGS.md",
    "reference/DIAGNOSTICS.md",
    "reference/RESULTS.md",
    "test/README.md",
)


# The facts block's markers (project/facts.py writes between them): machine-written lines,
# never a learning.
FACTS_START = "<!-- genai:facts -->"
FACTS_END = "<!-- /genai:facts -->"


def _without_facts(body: list[str]) -> list[str]:
    out, inside = [], False
    for line in body:
        s = line.strip()
        if s == FACTS_START:
            inside = True
        elif s == FACTS_END:
            inside = False
        elif not inside:
            out.append(line)
    return out


@dataclass
class Entry:
    title: str
    body: str
    date: datetime | None


def learnings(text: str) -> list[Entry]:
    """Sections with real content (not template placeholders), oldest first.

    Entries with a date in their heading are ordered by it; the rest keep document order (the
    methodology appends, so the last ones are the newest).
    """
    lines = text.splitlines()
    secs = [s for s in sections(text) if s.level >= 2]
    out = []
    for sec in secs:
        children = [s for s in secs if sec.line < s.line < sec.end]
        body_end = children[0].line if children else sec.end
        body = _without_facts(lines[sec.line + 1 : body_end])
        if is_placeholder(body):
            continue
        found = parse_date(sec.title)
        out.append(Entry(sec.title, "\n".join(body).strip(), found[0] if found else None))
    dated = [e for e in out if e.date]
    if dated and len(dated) == len(out):
        out.sort(key=lambda e: e.date or datetime.min)
    return out


def tools(text: str) -> list[str]:
    """Commands and scripts DIAGNOSTICS.md lists: code spans in list items, table rows, headings."""
    lines = text.splitlines()
    mask = code_mask(lines)
    found: list[str] = []
    for i, line in enumerate(lines):
        s = line.strip()
        if mask[i] or not (s.startswith(("-", "*", "+", "|", "#")) or re.match(r"\d+\.", s)):
            continue
        spans = [span.strip() for span in CODE_SPAN.findall(s)]
        for span in spans:
            looks_runnable = " " in span or span.endswith((".py", ".sh"))
            # A script named beside the command that runs it counts once, as the command.
            inside = any(span != other and span in other for other in spans)
            if looks_runnable and not inside and not span.startswith("-") and span not in found:
                found.append(span)
    return found


_SCRIPT = re.compile(r"(?<![\w/.-])((?:\./)?(?:test/)?[\w][\w./-]*\.(?:py|sh))\b")


def documented_scripts(text: str) -> tuple[set[str], set[str]]:
    """Scripts test/README.md names: (mentioned anywhere, named as an entry).

    An entry is a heading, the first code span of a list item, or the first cell of a table row:
    the places where a README documents one script. Names are relative to test/.
    """
    lines = text.splitlines()
    mask = code_mask(lines)
    mentioned, entries = set(), set()
    for i, line in enumerate(lines):
        if mask[i]:
            continue
        names = [_rel(n) for n in _SCRIPT.findall(line)]
        mentioned.update(names)
        s = line.strip()
        lead = None
        if s.startswith("#"):
            lead = s
        elif re.match(r"([-*+]|\d+\.)\s", s):
            spans = CODE_SPAN.findall(s)
            lead = spans[0] if spans else s.split(":")[0]
        elif s.startswith("|") and not re.fullmatch(r"[|\s:-]+", s):
            lead = row_cells(s)[0]
        if lead:
            entries.update(_rel(n) for n in _SCRIPT.findall(lead))
    return mentioned, entries


def _rel(name: str) -> str:
    return name.removeprefix("./").removeprefix("test/")
