"""genai session start|end on project trees built inline (with git), as a new user meets them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from templates_helpers import run_genai
from test_review import commit, make_project, write

from genai_common.project import session, todo


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "proj")


def _touch_later(path: Path, seconds: float = 5.0) -> None:
    later = time.time() + seconds
    os.utime(path, (later, later))


def test_start_on_a_fresh_project(project: Path) -> None:
    report = session.start(project, doctor=False)
    assert report["kind"] == "llm"
    assert report["model"] == str(project / "models" / "tiny-llm")
    assert report["last_session_end"] is None
    assert any("first session" in a for a in report["attention"])
    assert report["todo"]["in_progress"] == ["Initial research"]
    assert report["todo"]["open"] == ["Implementation"]
    assert "python test/check_config.py" in report["tools"]
    assert report["learnings"] == []  # the template's placeholder is not an entry
    assert report["results"] == []
    assert report["changes"] == []
    assert report["environment"]["requires_python"] == ">=3.11"
    assert not any("GR101" in a for a in report["attention"])
    assert (project / ".genai" / "session.json").is_file()
    assert (project / ".genai" / ".gitignore").read_text().strip().endswith("*")


def test_start_reads_newest_learnings_and_results(project: Path) -> None:
    write(
        project,
        "reference/LEARNINGS.md",
        "# Learnings\n\n## Tokenizer\n\n_Nothing yet._\n\n## Vocab\n\nvocab 32000, embed 32064.\n"
        "\n## Quantization\n\ngroup size 64 divides 2048.\n",
    )
    rows = "".join(f"| 2026-01-0{i} 10:00 | tiny-llm | 0.{i} |\n" for i in range(1, 6))
    write(project, "reference/RESULTS.md", (project / "reference/RESULTS.md").read_text() + rows)
    report = session.start(project, doctor=False)
    assert [e["title"] for e in report["learnings"]] == ["Vocab", "Quantization"]
    assert [r["Load s"] for r in report["results"]] == ["0.3", "0.4", "0.5"]


def test_start_flags_an_edited_model_config(project: Path) -> None:
    config = write(project, "models/tiny-llm/config.json", '{"vocab_size": 64}\n')
    session.start(project, doctor=False)
    session.end(project, completed=["built the tiny model"])
    commit(project, "session end")
    report = session.start(project, doctor=False)
    assert not [c for c in report["changes"] if c["model_config"]]

    write(project, "models/tiny-llm/config.json", '{"vocab_size": 65}\n')  # ignored by git
    _touch_later(config)
    report = session.start(project, doctor=False)
    flagged = {c["path"] for c in report["changes"] if c["model_config"]}
    assert flagged == {"models/tiny-llm/config.json"}
    assert any("Model configuration changed" in a for a in report["attention"])

    text = (project / "pyproject.toml").read_text().replace('model = ""', 'model = "org/other"')
    write(project, "pyproject.toml", text)  # another model: [tool.genai] is configuration too
    report = session.start(project, doctor=False)
    assert report["model"] == "org/other"
    assert "pyproject.toml" in {c["path"] for c in report["changes"] if c["model_config"]}


def test_start_sees_the_tiny_model_config_change(project: Path) -> None:
    config = write(project, "models/tiny-llm/config.json", '{"vocab_size": 64}\n')
    session.end(project, completed=["x"])
    write(project, "models/tiny-llm/config.json", '{"vocab_size": 65}\n')
    _touch_later(config, 120)
    report = session.start(project, doctor=False)
    changed = {c["path"]: c for c in report["changes"]}
    assert changed["models/tiny-llm/config.json"]["model_config"] is True


def test_start_on_stale_results(project: Path) -> None:
    with (project / "reference/RESULTS.md").open("a") as fh:
        fh.write("| 2026-01-02 09:00 | tiny-llm | 0.10 |\n")
    commit(project, "results", date="2026-01-02T09:01:00")
    write(project, "src/demo/model.py", "X = 2\n")
    commit(project, "code", date="2026-01-05T10:00:00")
    report = session.start(project, doctor=False)
    stale = [a for a in report["attention"] if a.startswith("GR101")]
    assert stale and "src/demo/model.py" in stale[0] and "nox -s diagnostics" in stale[0]
    assert report["results"][-1]["Date"] == "2026-01-02 09:00"


def test_changes_since_the_recorded_commit_flag_living_docs(project: Path) -> None:
    session.end(project, completed=["first"])
    commit(project, "end of session 1")
    write(project, "reference/LEARNINGS.md", "# Learnings\n\n## Vocab\n\nnew\n")
    write(project, "notes.txt", "untracked\n")
    report = session.start(project, doctor=False)
    changed = {c["path"]: c for c in report["changes"]}
    assert changed["reference/LEARNINGS.md"]["living_doc"] is True
    assert "notes.txt" in changed
    assert report["last_session_end"]["commit"]


def test_the_last_sessions_own_work_committed_after_end_is_no_news(project: Path) -> None:
    """Issue 16: work is committed after `session end` (after review); the next start must not
    flag it as changed since the last session, but must flag what changed after it."""
    write(project, "reference/LEARNINGS.md", "# Learnings\n\n## Vocab\n\nsession 1\n")
    write(project, "src/demo/new.py", "X = 1\n")
    session.end(project, completed=["first"])
    commit(project, "session 1's work, committed after the session end")
    report = session.start(project, doctor=False)
    assert report["changes"] == [], report["changes"]
    write(project, "src/demo/new.py", "X = 2\n")
    report = session.start(project, doctor=False)
    assert [c["path"] for c in report["changes"]] == ["src/demo/new.py"]


def test_end_keeps_every_byte_and_appends_one_block(project: Path) -> None:
    original = (project / "TODO.md").read_bytes() + "Ünïcode notes ✓ kept\n".encode()
    (project / "TODO.md").write_bytes(original)
    when = datetime(2026, 1, 3, 17, 30)
    result = session.end(
        project,
        completed=["Model conversion working"],
        in_progress=["Performance optimization"],
        next_steps=["Benchmark against reference"],
        now=when,
    )
    new = (project / "TODO.md").read_bytes()
    assert new.startswith(original)
    text = new.decode()
    assert result["action"] == "appended" and result["block"] == "2026-01-03 17:30"
    block = todo.blocks(text)[-1]
    assert block.items["completed"] == ["Model conversion working"]
    assert block.items["in_progress"] == ["Performance optimization"]
    assert block.items["next"] == ["Benchmark against reference"]
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=project, capture_output=True, text=True
    ).stdout.strip()
    assert block.commit == head == result["commit"]


def test_end_twice_adds_to_the_same_block(project: Path) -> None:
    session.start(project, doctor=False)
    session.end(project, completed=["A"], now=datetime(2026, 1, 3, 17, 30))
    first = (project / "TODO.md").read_text()
    result = session.end(project, completed=["A", "B"], next_steps=["C"])
    second = (project / "TODO.md").read_text()
    assert result["action"] == "extended" and result["block"] == "2026-01-03 17:30"
    assert second.count("Session End:") == first.count("Session End:") == 1
    it = iter(second)
    assert all(ch in it for ch in first)  # only insertions
    block = todo.blocks(second)[-1]
    assert block.items["completed"] == ["A", "B"] and block.items["next"] == ["C"]
    # A new session (start) gets a new block.
    session.start(project, doctor=False)
    session.end(project, completed=["D"], now=datetime(2026, 1, 4, 9, 0))
    assert (project / "TODO.md").read_text().count("Session End:") == 2


def test_end_reminds_untouched_living_docs(project: Path) -> None:
    session.start(project, doctor=False)
    path = write(project, "reference/LEARNINGS.md", "# Learnings\n\n## Vocab\n\nx\n")
    _touch_later(path)
    result = session.end(project, completed=["x"])
    assert "reference/LEARNINGS.md" not in result["untouched_docs"]
    assert "reference/RESULTS.md" in result["untouched_docs"]
    assert "TODO.md" not in result["untouched_docs"]


def test_cli_start_json_and_end(project: Path) -> None:
    proc = run_genai(project, "session", "start", "--json", "--no-doctor")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["schema"] == 1 and data["todo"]["open"] == ["Implementation"]
    proc = run_genai(project / "src", "session", "start", "--no-doctor")
    assert proc.returncode == 0 and "Status (TODO.md)" in proc.stdout  # found from a subfolder
    proc = run_genai(
        project, "session", "end", "--completed", "one", "--next", "two", "--next", "three"
    )
    assert proc.returncode == 0, proc.stderr
    assert "Not touched this session" in proc.stdout
    block = todo.blocks((project / "TODO.md").read_text())[-1]
    assert block.items["next"] == ["two", "three"]


def test_cli_end_without_todo(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    proc = run_genai(tmp_path, "session", "end", "--completed", "x")
    assert proc.returncode == 2 and "TODO.md" in proc.stderr


def test_start_runs_the_doctor_on_the_project_model(tmp_path: Path, tiny_model_factory) -> None:
    pytest.importorskip("genai_common.doctor", reason="genai_common.doctor is not there yet")
    project = make_project(tmp_path / "proj")
    model_dir = project / "models" / "tiny-llm"
    shutil.copytree(tiny_model_factory("llm"), model_dir)
    report = session.start(project)
    assert report["doctor"]["ran"] is True, report["doctor"]
    assert report["doctor"]["errors"] == 0, report["doctor"]["findings"]
    session.end(project, completed=["tiny model checked"])

    config = json.loads((model_dir / "config.json").read_text())
    config["vocab_size"] = config["vocab_size"] * 2  # no longer the embedding's row count
    (model_dir / "config.json").write_text(json.dumps(config))
    _touch_later(model_dir / "config.json", 120)
    report = session.start(project)
    assert report["doctor"]["errors"] >= 1
    assert any("doctor found" in a for a in report["attention"])
    assert any("models/tiny-llm/config.json" in a for a in report["attention"])


def test_end_prompts_on_a_terminal(project: Path) -> None:
    pty = pytest.importorskip("pty", reason="no pseudo-terminals on this platform")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "genai_common", "session", "end"],
        cwd=project,
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(slave)
    # Completed: two items; In progress: none; Next steps: one.
    os.write(master, b"wrote the loader\nfixed vocab\n\n\ncheck the chat template\n\n")
    out, err = proc.communicate(timeout=60)
    os.close(master)
    assert proc.returncode == 0, err
    assert "Completed (one per line" in out
    block = todo.blocks((project / "TODO.md").read_text())[-1]
    assert block.items["completed"] == ["wrote the loader", "fixed vocab"]
    assert block.items["next"] == ["check the chat template"]
    assert "in_progress" not in block.items


def test_rich_rendering_of_start(project: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:

    report = session.start(project, doctor=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    session.print_start(report)
    out = capsys.readouterr().out
    assert "Needs attention" in out and "Initial research" in out
