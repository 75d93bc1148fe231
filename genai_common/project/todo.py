"""TODO.md's session log: find, write and extend "Session End" blocks without touching user bytes.

A block, in the methodology's format (the heading level follows the document):

    ## Session End: 2026-11-27 18:00

    **Completed:**
    - [x] Model conversion working

    **In Progress:**
    - [/] Performance optimization

    **Next Steps:**
    - [ ] Benchmark against reference

    **Commit:** `abc1234`

Every edit here only inserts text: the original document is always a subsequence of the result,
and a prefix of it when the session log is the last section (the usual layout). Line endings
follow the document's own (LF or CRLF).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from genai_common.formats.markdown import code_mask, find_section, norm_title

CATEGORIES = {
    "completed": ("Completed", "x"),
    "in_progress": ("In Progress", "/"),
    "next": ("Next Steps", " "),
}
_LABEL_NAMES = {
    "completed": "completed",
    "done": "completed",
    "in progress": "in_progress",
    "next steps": "next",
    "next": "next",
}
_BLOCK_HEADING = re.compile(r"^(#{1,6})[ \t]+Session End\b:?[ \t]*(.*?)[ \t#]*$", re.I)
_LABEL = re.compile(r"^(?:#{1,6}[ \t]+)?\**([A-Za-z ]+?):?\**:?[ \t]*$")
_ITEM = re.compile(r"^[ \t]*[-*+][ \t]+(?:\[[ xX/]\][ \t]+)?(.*\S)[ \t]*$")
_COMMIT = re.compile(r"^\**Commit:?\**:?[ \t]*(.*)$", re.I)
_HASH = re.compile(r"`([0-9a-f]{7,40})`")
SESSION_LOG_NAMES = ("Session Log", "Sessions", "Session Notes", "Session History")


@dataclass
class Block:
    title: str  # the text after "Session End:"
    level: int
    start: int  # heading line index
    end: int  # one past the last line of the block
    items: dict[str, list[str]] = field(default_factory=dict)
    label_lines: dict[str, int] = field(default_factory=dict)  # category -> its label line
    last_item_lines: dict[str, int] = field(default_factory=dict)  # category -> last item line
    commit_line: int | None = None

    @property
    def commits(self) -> list[str]:
        return self.items.get("commit", [])

    @property
    def commit(self) -> str | None:
        return self.commits[-1] if self.commits else None


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def newline_of(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def blocks(text: str) -> list[Block]:
    """Every Session End block, in document order."""
    lines = [ln.rstrip("\r\n") for ln in _lines(text)]
    mask = code_mask(lines)
    heads = [
        (i, len(m.group(1)))
        for i, ln in enumerate(lines)
        if not mask[i] and (m := re.match(r"^(#{1,6})[ \t]", ln))
    ]
    # where each heading's section ends: the next heading of its level or higher, found in one
    # pass from the bottom (nearest[lv] = the next heading of level lv): linear in the lines
    ends: dict[int, int] = {}
    nearest = [len(lines)] * 7
    for i, lv in reversed(heads):
        ends[i] = min(nearest[1 : lv + 1])
        nearest[lv] = i
    found = []
    for i, _lv in heads:
        line = lines[i]
        m = _BLOCK_HEADING.match(line)
        if not m:
            continue
        level = len(m.group(1))
        end = ends[i]
        # A category label written as a deeper heading ("#### Completed") stays inside the block.
        block = Block(m.group(2).strip(), level, i, end)
        _read_block(lines, block)
        found.append(block)
    return found


def _read_block(lines: list[str], block: Block) -> None:
    current = None
    for i in range(block.start + 1, block.end):
        line = lines[i]
        if not line.strip():
            continue
        c = _COMMIT.match(line.strip())
        if c:
            block.items.setdefault("commit", []).extend(_HASH.findall(c.group(1)))
            block.commit_line = i
            current = None
            continue
        label = _LABEL.match(line.strip())
        if label and norm_title(label.group(1)) in _LABEL_NAMES:
            current = _LABEL_NAMES[norm_title(label.group(1))]
            block.label_lines[current] = i
            block.items.setdefault(current, [])
            continue
        item = _ITEM.match(line)
        if item and current:
            block.items[current].append(item.group(1))
            block.last_item_lines[current] = i


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M")


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _item_text(text: str) -> str:
    """What the user typed, on one line (a newline, U+2028 or form feed in an item must not start
    a heading or a fake Session End block: every run of whitespace becomes one space, other
    control characters are shown escaped), without a leading list marker or checkbox."""
    text = " ".join(text.split())
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return re.sub(r"^[-*+]?\s*(\[[ xX/]\]\s*)?", "", text)


def render_block(
    title: str, entries: dict[str, list[str]], commit: str | None, level: int, nl: str = "\n"
) -> str:
    out = [f"{'#' * level} Session End: {title}", ""]
    for key, (label, mark) in CATEGORIES.items():
        items = [_item_text(t) for t in entries.get(key, []) if _item_text(t)]
        if items:
            out += [f"**{label}:**", *(f"- [{mark}] {t}" for t in items), ""]
    if commit:
        out += [f"**Commit:** `{commit}`", ""]
    return nl.join(out)


def _level_for(text: str) -> int:
    existing = blocks(text)
    if existing:
        return existing[-1].level
    log = find_section(text, *SESSION_LOG_NAMES)
    return min(log.level + 1, 6) if log else 2


def _insert_at(text: str, index: int, chunk: str) -> str:
    """Insert `chunk` before line `index` (len(lines) = at the end), keeping every byte."""
    lines = _lines(text)
    nl = newline_of(text)
    if index >= len(lines):
        head = text if not text or text.endswith(("\n", "\r")) else text + nl
        sep = "" if not head or head.endswith(nl + nl) or head == nl else nl
        return head + sep + chunk
    before = "".join(lines[:index])
    sep = "" if not before or before.endswith(nl + nl) else nl
    return before + sep + chunk + nl + "".join(lines[index:])


def append_block(text: str, title: str, entries: dict[str, list[str]], commit: str | None) -> str:
    """A new Session End block at the end of the session log (the end of the file if it is last)."""
    nl = newline_of(text)
    chunk = render_block(title, entries, commit, _level_for(text), nl)
    existing = blocks(text)
    log = find_section(text, *SESSION_LOG_NAMES)
    n = len(_lines(text))
    if log is not None:
        index = log.end
    elif existing:
        index = existing[-1].end
    else:
        index = n
    if existing and index < existing[-1].end:
        index = existing[-1].end
    # At the end of the file, trailing blank lines stay where they are and the block follows.
    return _insert_at(text, index, chunk)


def extend_block(text: str, block: Block, entries: dict[str, list[str]], commit: str | None) -> str:
    """Add new items (and a newer commit) to an existing block; items already there are skipped."""
    nl = newline_of(text)
    lines = _lines(text)
    inserts: list[tuple[int, str]] = []  # (insert before line index, text without final newline)
    tail_chunks: list[str] = []
    for key, (label, mark) in CATEGORIES.items():
        have = {norm_title(t) for t in block.items.get(key, [])}
        new = []
        for t in entries.get(key, []):
            t = _item_text(t)
            if t and norm_title(t) not in have:
                have.add(norm_title(t))
                new.append(f"- [{mark}] {t}")
        if not new:
            continue
        if key in block.label_lines:
            after = block.last_item_lines.get(key, block.label_lines[key])
            inserts.append((after + 1, nl.join(new)))
        else:
            tail_chunks.append(nl.join([f"**{label}:**", *new]))
    if commit and commit != block.commit and block.commit_line is not None:
        line = lines[block.commit_line]
        body = line.rstrip("\r\n")
        lines[block.commit_line] = body + f" -> `{commit}`" + line[len(body) :]
    elif commit and block.commit_line is None:
        tail_chunks.append(f"**Commit:** `{commit}`")
    if tail_chunks:
        joined = (nl + nl).join(tail_chunks)
        if block.commit_line is not None:
            inserts.append((block.commit_line, joined + nl))
        else:
            inserts.append((_block_content_end(lines, block), nl + joined))
    # From the bottom up, so earlier indices stay valid; at one index, in the order added.
    order = sorted(enumerate(inserts), key=lambda p: (p[1][0], p[0]), reverse=True)
    for _, (index, chunk) in order:
        lines.insert(index, chunk + nl)
    return "".join(lines)


def _block_content_end(lines: list[str], block: Block) -> int:
    """The line after the block's last non-blank line (new text goes before trailing blanks)."""
    end = block.end
    while end > block.start + 1 and not lines[end - 1].strip():
        end -= 1
    if end == len(lines) and lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += newline_of("".join(lines))
    return end
