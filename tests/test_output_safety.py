"""Names and values from model files never reach a terminal raw (issue 15, item 6).

A model can carry escape sequences (set the window title, clear the screen), bidirectional
controls (hide or reorder text) or newlines (forge a finding line in a CI log) in its config values
and file names. Every human-readable output escapes them and caps their length; --json needs
nothing (JSON escapes controls itself).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from genai_common.doctor.render import print_rich, to_markdown, to_plain
from genai_common.findings import Finding, Report, shown

HOSTILE = "llama\x1b]0;pwned\x07\x1b[2J\u202eevil\nerror   CFG999   forged line"


def _report() -> Report:
    report = Report(path=f"/models/{HOSTILE}", kind="llm", model_type=HOSTILE)
    report.add(Finding("CFG010", "error", f"value {HOSTILE}", f"fix {HOSTILE}", f"f{HOSTILE}"))
    report.facts["model_type"] = HOSTILE
    return report


def _assert_safe(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert not any(line.lstrip().startswith("error   CFG999") for line in text.splitlines())
    assert "\\x1b]0;pwned" in text  # escaped, still readable


def test_plain_markdown_and_rich_escape_control_characters() -> None:
    report = _report()
    _assert_safe(to_plain(report))
    _assert_safe(to_markdown(report))
    out = io.StringIO()
    print_rich(report, file=out)
    _assert_safe(out.getvalue())


def test_values_are_capped_with_the_rest_counted() -> None:
    long = "x" * 1_000_000
    text = shown(long)
    assert len(text) < 600 and "999,500 more characters" in text
    report = Report(path="/m", kind="llm", model_type=long)
    report.add(Finding("CFG010", "error", "y" * 1_000_000, None, None))
    assert len(to_plain(report)) < 5_000


def test_doctor_command_on_a_hostile_model_folder(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": HOSTILE}))
    (model / f"weights\n{HOSTILE}.safetensors").write_bytes(b"\x00" * 3)  # a malformed header
    cmd = [sys.executable, "-m", "genai_common.cli", "doctor", str(model)]
    plain = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 1, plain.stderr
    _assert_safe(plain.stdout)
    as_json = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=120)
    assert json.loads(as_json.stdout)["model_type"] == HOSTILE  # JSON keeps the value exactly
    assert "\x1b" not in as_json.stdout
