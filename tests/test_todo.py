"""Session End blocks in TODO.md: written in the methodology's format, user bytes never touched."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genai_common.formats import markdown
from genai_common.project import todo

USER_TODO = (
    "# TODO — «Qwen2 chat» 🚀\n"
    "\n"
    "## Objective\n"
    "\n"
    "Convert   the model.  Trailing spaces stay:   \n"
    "\n"
    "## Current Status\n"
    "- [x] Environment setup\n"
    "- [/] Initial research\n"
    "* [ ] odd bullet, kept as it is\n"
    "\n"
    "```markdown\n"
    "## Session End: 1999-01-01 00:00\n"
    "(an example inside a code block is not a block)\n"
    "```\n"
    "\n"
    "## Sessions\n"
    "\n"
    "### Session End: 2026-01-01 09:00\n"
    "\n"
    "**Completed:**\n"
    "- [x] first thing, hand-written\n"
    "\n"
    "**Next Steps:**\n"
    "- [ ] second thing\n"
)


def is_subsequence(original: str, new: str) -> bool:
    it = iter(new)
    return all(ch in it for ch in original)


def test_append_keeps_every_byte_as_prefix() -> None:
    new = todo.append_block(USER_TODO, "2026-01-02 10:00", {"completed": ["did A"]}, "abc1234")
    assert new.startswith(USER_TODO)
    assert new.count("Session End: 2026-01-02 10:00") == 1
    tail = new[len(USER_TODO) :]
    assert tail == (
        "\n### Session End: 2026-01-02 10:00\n\n**Completed:**\n- [x] did A\n\n"
        "**Commit:** `abc1234`\n"
    )


def test_blocks_are_read_back_and_code_blocks_ignored() -> None:
    new = todo.append_block(
        USER_TODO,
        "2026-01-02 10:00",
        {"completed": ["[x] did A"], "in_progress": ["B"], "next": ["- [ ] C"]},
        "abc1234",
    )
    blocks = todo.blocks(new)
    assert [b.title for b in blocks] == ["2026-01-01 09:00", "2026-01-02 10:00"]
    assert blocks[0].items == {"completed": ["first thing, hand-written"], "next": ["second thing"]}
    last = blocks[-1]
    assert last.items["completed"] == ["did A"]  # a checkbox the user typed is not doubled
    assert last.items["in_progress"] == ["B"] and last.items["next"] == ["C"]
    assert last.commit == "abc1234" and last.level == 3


def test_extend_adds_to_the_same_block_only_by_insertion() -> None:
    first = todo.append_block(USER_TODO, "2026-01-02 10:00", {"completed": ["did A"]}, "abc1234")
    block = todo.blocks(first)[-1]
    second = todo.extend_block(
        first,
        block,
        {"completed": ["did A", "did B"], "next": ["do C"], "in_progress": ["doing D"]},
        "def5678",
    )
    assert is_subsequence(first, second)
    assert second.startswith(USER_TODO)
    assert second.count("Session End") == first.count("Session End")
    last = todo.blocks(second)[-1]
    assert last.items["completed"] == ["did A", "did B"]  # no duplicate
    assert last.items["next"] == ["do C"] and last.items["in_progress"] == ["doing D"]
    assert last.commits == ["abc1234", "def5678"] and last.commit == "def5678"


def test_extend_a_hand_written_block() -> None:
    block = todo.blocks(USER_TODO)[-1]
    new = todo.extend_block(USER_TODO, block, {"next": ["third"], "completed": ["x"]}, "abc1234")
    assert is_subsequence(USER_TODO, new)
    again = todo.blocks(new)[-1]
    assert again.items["next"] == ["second thing", "third"]
    assert again.items["completed"] == ["first thing, hand-written", "x"]
    assert again.commit == "abc1234"


def test_sections_after_the_session_log_stay_after_it() -> None:
    text = "# TODO\n\n## Sessions\n\n### Session End: 2026-01-01 09:00\n\n- [x] a\n\n## Notes\n\nmine\n"
    new = todo.append_block(text, "2026-01-02 10:00", {"completed": ["b"]}, None)
    assert is_subsequence(text, new)
    assert new.index("Session End: 2026-01-02") < new.index("## Notes")
    assert new.endswith("## Notes\n\nmine\n")


def test_crlf_and_missing_final_newline() -> None:
    text = "# TODO\r\n\r\n## Sessions\r\n\r\nlast line without newline"
    new = todo.append_block(text, "2026-01-02 10:00", {"completed": ["b"]}, "abc1234")
    assert new.startswith(text)
    assert "\n" not in new.replace("\r\n", "")  # no bare LF was introduced
    block = todo.blocks(new)[-1]
    newer = todo.extend_block(new, block, {"next": ["c"]}, None)
    assert newer.startswith(text) and "\n" not in newer.replace("\r\n", "")


def test_level_follows_the_document() -> None:
    assert todo.append_block("# T\n", "d", {"next": ["x"]}, None).endswith(
        "# T\n\n## Session End: d\n\n**Next Steps:**\n- [ ] x\n"
    )
    with_log = "# T\n\n## Session Log\n"
    assert "\n### Session End: d\n" in todo.append_block(with_log, "d", {"next": ["x"]}, None)


def test_checklist_and_sections_reader() -> None:
    items = markdown.checklist(USER_TODO)
    assert [(i.state, i.text) for i in items[:3]] == [
        ("x", "Environment setup"),
        ("/", "Initial research"),
        (" ", "odd bullet, kept as it is"),
    ]
    assert items[0].section == "Current Status"
    assert markdown.find_section(USER_TODO, "current status") is not None
    assert [s.title for s in markdown.sections(USER_TODO)].count(
        "Session End: 1999-01-01 00:00"
    ) == 0


_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"), max_size=300
)


@settings(max_examples=60, deadline=None)
@given(
    body=_text,
    items=st.lists(st.text(min_size=1, max_size=30).filter(lambda s: s.strip()), max_size=3),
)
def test_any_user_text_is_kept(body: str, items: list[str]) -> None:
    new = todo.append_block(
        body, "2026-01-02 10:00", {"completed": items, "next": ["n"]}, "abc1234"
    )
    assert is_subsequence(body, new)
    block = todo.blocks(new)[-1] if todo.blocks(new) else None
    if block is not None and block.title == "2026-01-02 10:00":
        newer = todo.extend_block(new, block, {"in_progress": ["p"]}, "def5678")
        assert is_subsequence(new, newer)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("2026-01-02 10:00", (2026, 1, 2, 10, 0, True)), ("2026-01-02", (2026, 1, 2, 0, 0, False))],
)
def test_parse_date(cell: str, expected: tuple) -> None:
    when, has_time = markdown.parse_date(f"run of {cell} on a Mac")
    assert (when.year, when.month, when.day, when.hour, when.minute, has_time) == expected


def test_table_rows_written_are_read_back_cell_for_cell() -> None:
    cells = ["2026-01-01", "a | b", "two\nlines", 3]
    text = "\n".join(
        ["# Results", "", markdown.table_header(["w", "x", "y", "z"]), markdown.table_row(cells)]
    )
    (table,) = markdown.tables(text)
    assert table.header == ["w", "x", "y", "z"]
    assert table.rows == [["2026-01-01", "a \\| b", "two lines", "3"]]
