"""Markdown as the living documents write it: sections, checklists, pipe tables, dates (and the
one table-row writer).

Plain functions over text; they never raise on odd Markdown, they just find less. Fenced code
blocks are skipped everywhere, so an example heading or table inside ``` does not count.
Used by the project's documents (genai_common.project), by the benchmark records and the
diagnostics rows that are appended to RESULTS.md, and by this repository's benchmarks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t#]*$")
_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")
_ITEM = re.compile(r"^[ \t]*[-*+][ \t]+\[([ xX/])\][ \t]+(.*)$")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[ T](\d{1,2}:\d{2})(?::(\d{2}))?)?")
_COMMENT = re.compile(r"<!--.*?-->", re.S)


@dataclass
class Section:
    title: str
    level: int
    line: int  # index of the heading line
    end: int  # index one past the section's last line (next heading of same or higher level)

    def body(self, lines: list[str]) -> list[str]:
        return lines[self.line + 1 : self.end]


@dataclass
class Item:
    state: str  # " " open, "/" in progress, "x" done
    text: str
    line: int
    section: str | None


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    line: int = 0  # index of the header line

    def dicts(self) -> list[dict[str, str]]:
        return [dict(zip(self.header, row, strict=False)) for row in self.rows]


READ_CAP = 64 * 1024 * 1024  # a living document is KBs; months of notes are a few MB


def read(path: Path, cap: int = READ_CAP) -> str | None:
    """A document's text for reading only (None when absent or not readable): never opens a
    FIFO, device or folder (a FIFO would block, /dev/zero never ends), reads at most `cap`
    bytes, and decodes without newline translation. Writers use runtime/files.py."""
    import os
    import stat

    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return None
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (OSError, ValueError):
        return None
    try:
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return None
            raw = fh.read(cap)
    except OSError:
        return None
    return raw.decode("utf-8", errors="replace")


def code_mask(lines: list[str]) -> list[bool]:
    """True for every line inside (or opening/closing) a fenced code block."""
    mask, fence = [], ""
    for line in lines:
        m = _FENCE.match(line)
        if fence:
            mask.append(True)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = ""
        elif m:
            fence = m.group(1)
            mask.append(True)
        else:
            mask.append(False)
    return mask


def sections(text: str) -> list[Section]:
    lines = text.splitlines()
    mask = code_mask(lines)
    found: list[Section] = []
    for i, line in enumerate(lines):
        m = None if mask[i] else _HEADING.match(line)
        if m:
            found.append(Section(m.group(2).strip(), len(m.group(1)), i, len(lines)))
    for i, sec in enumerate(found):
        for later in found[i + 1 :]:
            if later.level <= sec.level:
                sec.end = later.line
                break
    return found


def norm_title(title: str) -> str:
    """Lower case, markup and punctuation dropped: "**Current Status**:" -> "current status"."""
    return " ".join(re.sub(r"[^a-z0-9 ]+", " ", title.lower()).split())


def find_section(text: str, *names: str) -> Section | None:
    """The first section whose normalised title starts with one of `names` (normalised)."""
    wanted = [norm_title(n) for n in names]
    for sec in sections(text):
        title = norm_title(sec.title)
        if any(title == w or title.startswith(w + " ") for w in wanted):
            return sec
    return None


def checklist(text: str) -> list[Item]:
    lines = text.splitlines()
    mask = code_mask(lines)
    secs = sections(text)
    items = []
    for i, line in enumerate(lines):
        m = None if mask[i] else _ITEM.match(line)
        if m:
            owner = [s for s in secs if s.line < i < s.end]
            title = owner[-1].title if owner else None
            items.append(Item(m.group(1).lower(), m.group(2).strip(), i, title))
    return items


def tables(text: str) -> list[Table]:
    """Pipe tables: a header row, a |---| separator row, then data rows until a non-row line."""
    lines = text.splitlines()
    mask = code_mask(lines)
    found: list[Table] = []
    i = 0
    while i < len(lines) - 1:
        head, sep = lines[i].strip(), lines[i + 1].strip()
        if (
            not mask[i]
            and head.startswith("|")
            and re.fullmatch(r"\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?", sep)
        ):
            table = Table(row_cells(head), line=i)
            i += 2
            while i < len(lines) and lines[i].strip().startswith("|") and not mask[i]:
                table.rows.append(row_cells(lines[i].strip()))
                i += 1
            found.append(table)
        else:
            i += 1
    return found


def row_cells(row: str) -> list[str]:
    """The cells of one pipe-table row, stripped (escaped pipes stay inside their cell)."""
    row = row.strip()
    row = row[1:] if row.startswith("|") else row
    row = row[:-1] if row.endswith("|") and not row.endswith("\\|") else row
    return [c.strip() for c in re.split(r"(?<!\\)\|", row)]


def table_row(cells: Iterable[object]) -> str:
    """One pipe-table row, no newline: every cell on one line, its pipes escaped (`tables` reads
    it back cell for cell). The writers of RESULTS.md rows (bench, diagnostics) use it."""
    return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


def table_header(columns: Sequence[str]) -> str:
    """A pipe table's header row and separator row, no final newline."""
    return table_row(columns) + "\n|" + "---|" * len(columns)


def parse_date(text: str) -> tuple[datetime, bool] | None:
    """The first ISO date (with optional HH:MM[:SS]) in `text` and whether it had a time."""
    m = _DATE.search(text)
    if not m:
        return None
    day, hm, sec = m.groups()
    try:
        if hm:
            return datetime.fromisoformat(f"{day} {hm.zfill(5)}:{sec or '00'}"), True
        return datetime.fromisoformat(day), False
    except ValueError:
        return None


def is_placeholder(lines: list[str]) -> bool:
    """True when a body holds nothing but blank lines, comments and _italic_ placeholders."""
    text = _COMMENT.sub("", "\n".join(lines))
    for line in text.splitlines():
        s = line.strip()
        if not s or re.fullmatch(r"[_*].*[_*]", s) or s in {"-", "*", "TBD", "TODO"}:
            continue
        if re.fullmatch(r"([-*+]|\d+\.)\s.*:", s):  # "- Vocab size:" a label awaiting its value
            continue
        return False
    return True


# -- results tables ----------------------------------------------------------------------------


def result_rows(text: str) -> list[dict[str, str]]:
    """Data rows of every table in RESULTS.md, in document order, empty rows and templates dropped."""
    rows = []
    for table in tables(text):
        for row in table.dicts():
            values = [v for v in row.values() if v and v not in {"-", "—"}]
            if values and not all(re.fullmatch(r"[_*<].*[_*>]|\.\.\.|…", v) for v in values):
                rows.append(row)
    return rows


def row_time(row: dict[str, str]) -> tuple[datetime, bool] | None:
    """The date of a results row: its Date/When/Time column, else the first date in any cell."""
    for key, value in row.items():
        if norm_title(key) in {"date", "when", "time", "timestamp", "date utc"}:
            found = parse_date(value)
            if found:
                return found
    for value in row.values():
        found = parse_date(value)
        if found:
            return found
    return None
