"""The text corpus shipped in the package: public-domain English prose, our own notes, code,
numbers and chat exchanges (about 15 KB; roughly 6,000 tokens of the tiny tokenizers).

    names() -> tuple[str, ...]      the documents, in a fixed order
    text(name) -> str               a document's body (its header removed)
    source(name) -> str             its header: where the text comes from and why it may be shipped
    texts() -> dict[str, str]       every body by name
    chats() -> list[tuple[str, str]]  the (prompt, answer) pairs of `chat`
    training_text() -> str          every body, joined: what the tiny tokenizers learn from
    digest() -> str                 sha256 over the names and raw bytes (a cache key)

Each file starts with a header of `# ` lines, then a blank line, then the body. The tiny models of
genai_common.testing are trained on this text, and `genai verify` feeds it to both sides of a
comparison. This package imports nothing of ours and nothing heavy.
"""

from __future__ import annotations

import hashlib
import os

_DIR = os.path.dirname(os.path.abspath(__file__))

# prose (public domain), our own prose, code, numbers, chat: the order of training_text()
NAMES = (
    "austen",
    "dickens",
    "melville",
    "carroll",
    "lincoln",
    "declaration",
    "notes",
    "code",
    "numbers",
    "chat",
)
PROSE = ("austen", "dickens", "melville", "carroll", "lincoln", "declaration", "notes")


def names() -> tuple[str, ...]:
    return NAMES


def _raw(name: str) -> str:
    if name not in NAMES:
        raise KeyError(f"no corpus document {name!r}; choose from {', '.join(NAMES)}")
    with open(os.path.join(_DIR, name + ".txt"), encoding="utf-8") as handle:
        return handle.read()


def _split(raw: str) -> tuple[str, str]:
    """(header, body): the leading `# ` lines, and what follows the blank line after them."""
    lines = raw.split("\n")
    n = 0
    while n < len(lines) and lines[n].startswith("#"):
        n += 1
    header = "\n".join(line.lstrip("# ").rstrip() for line in lines[:n])
    body = "\n".join(lines[n:]).strip("\n") + "\n"
    return header, body


def text(name: str) -> str:
    return _split(_raw(name))[1]


def source(name: str) -> str:
    return _split(_raw(name))[0]


def texts() -> dict[str, str]:
    return {name: text(name) for name in NAMES}


def chats() -> list[tuple[str, str]]:
    """The (prompt, answer) pairs of the chat document, in file order."""
    pairs: list[tuple[str, str]] = []
    for block in text("chat").split("\n\n"):
        lines = [line for line in block.strip().split("\n") if line]
        if not lines:
            continue
        if len(lines) != 2 or not (
            lines[0].startswith("user: ") and lines[1].startswith("assistant: ")
        ):
            raise ValueError(f"corpus chat: malformed exchange {block[:60]!r}")
        pairs.append((lines[0][len("user: ") :], lines[1][len("assistant: ") :]))
    return pairs


def training_text() -> str:
    """Every body, joined by blank lines (the chat exchanges as their plain lines)."""
    return "\n".join(texts().values())


def digest() -> str:
    """sha256 over each document's name and raw bytes: changes whenever the corpus does."""
    h = hashlib.sha256()
    for name in NAMES:
        h.update(name.encode() + b"\0" + _raw(name).encode("utf-8") + b"\0")
    return h.hexdigest()
