"""The one rule framework (genai_common/findings.py): metadata on the function that raises, the
runner that stamps it and refuses undeclared codes, repo-review's selection; and the doctor's
--select/--ignore and [tool.genai.doctor] built on it."""

from __future__ import annotations

import io
import json
import os
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from malformed_corpus import base_llm

from genai_common.cli import main
from genai_common.doctor.registry import FAMILIES, check_family, load_all, rules_for
from genai_common.findings import (
    RULES,
    Finding,
    RuleError,
    Skip,
    declared,
    finding,
    name_matches,
    rule,
    rule_functions,
    run_rule,
    selected,
)


def _doctor(*argv: str) -> tuple[int, dict]:
    out = io.StringIO()
    with redirect_stdout(out):
        rc = main(["doctor", *argv, "--json"])
    return rc, json.loads(out.getvalue())


def _broken(tmp_path: Path) -> Path:
    """An LLM with two errors of two families: vocab_size (CFG010) and a missing shard entry."""
    d = base_llm(tmp_path / "m")
    config = json.loads((d / "config.json").read_text())
    config["vocab_size"] += 64
    (d / "config.json").write_text(json.dumps(config))
    (d / "stray.safetensors").write_bytes((d / "model.safetensors").read_bytes())
    return d


def test_the_runner_stamps_the_declared_severity_and_fix() -> None:
    @rule("ZZT001", "A test rule", severity="warning", fix="Do the thing.", compares="x vs y")
    def judge(subject: int):
        if subject > 1:
            yield finding("ZZT001", f"subject = {subject}", file="f.json")

    try:
        assert run_rule(judge, 0) == []
        assert run_rule(judge, 2) == [
            Finding("ZZT001", "warning", "subject = 2", "Do the thing.", "f.json")
        ]
        assert declared(judge)["ZZT001"].where.endswith(
            ":test_the_runner_stamps_the_declared_severity_and_fix.<locals>.judge"
        )
        # a rule may raise the severity of one finding when its message says why
        raised = rule(
            "ZZT001", "A test rule", severity="warning", fix="Do the thing.", compares="x vs y"
        )(lambda s: [finding("ZZT001", "worse", severity="error")])
        assert [(f.severity, f.hint) for f in run_rule(raised, 0)] == [("error", "Do the thing.")]
    finally:
        RULES.pop("ZZT001", None)


def test_a_code_the_function_does_not_declare_is_refused() -> None:
    @rule("ZZT002", "Declared", severity="info", fix="-")
    def sloppy(_: object):
        yield finding("ZZT003", "another code")

    try:
        with pytest.raises(RuleError, match="ZZT003"):
            run_rule(sloppy, None)
    finally:
        RULES.pop("ZZT002", None)


def test_plain_messages_need_exactly_one_declared_code() -> None:
    @rule("ZZT004", "One", severity="error", fix="-")
    def one(_: object):
        yield "a message"

    @rule("ZZT005", "Two a", severity="error", fix="-")
    @rule("ZZT006", "Two b", severity="error", fix="-")
    def two(_: object):
        yield "which code?"

    try:
        assert [f.code for f in run_rule(one, None)] == ["ZZT004"]
        with pytest.raises(RuleError):
            run_rule(two, None)
    finally:
        for code in ("ZZT004", "ZZT005", "ZZT006"):
            RULES.pop(code, None)


def test_skip_reaches_the_caller_and_malformed_codes_are_refused() -> None:
    @rule("ZZT007", "Skips", severity="info", fix="-")
    def skips(_: object):
        raise Skip("no TODO.md")

    try:
        with pytest.raises(Skip, match=r"no TODO\.md"):
            run_rule(skips, None)
    finally:
        RULES.pop("ZZT007", None)
    for bad in ("CFG10", "cfg010", "CFG0100", "010"):
        with pytest.raises(RuleError):
            rule(bad, "t", severity="error", fix="-")
    with pytest.raises(RuleError):
        rule("ZZT008", "t", severity="fatal", fix="-")  # type: ignore[arg-type]


def test_one_code_declared_twice_differently_is_refused() -> None:
    rule("ZZT009", "first", severity="info", fix="-")(lambda s: ())
    try:
        with pytest.raises(RuleError, match="declared twice"):
            rule("ZZT009", "second title", severity="info", fix="-")(lambda s: ())
    finally:
        RULES.pop("ZZT009", None)


def test_selection_follows_repo_review() -> None:
    assert name_matches("CFG010", {"CFG"}) == "CFG"
    assert name_matches("CFG010", {"CFG010"}) == "CFG010"
    assert name_matches("CFG010", {"CFG01"}) == ""  # letters or the whole code, as repo-review
    assert selected("CFG010") and selected("CFG010", {"*"})
    assert selected("CFG010", {"CFG"}) and not selected("QNT010", {"CFG"})
    assert not selected("CFG010", (), {"CFG"}) and not selected("CFG010", {"CFG"}, {"CFG010"})


def test_every_doctor_rule_is_found_in_its_family_module() -> None:
    """The family table is the only list: every declared code of a static family is raised by a
    rule function the runner finds in that family's module."""
    registry = load_all()
    found: set[str] = set()
    for fam in FAMILIES:
        module = __import__(fam.module, fromlist=["_"])
        for func in rule_functions(module):
            found |= set(declared(func))
    static = {
        c for c, r in registry.items() if r.where.split(":")[0] in {f.module for f in FAMILIES}
    }
    assert static and found == static


def test_rules_of_other_kinds_are_not_imported_or_run(tiny_llm: Path) -> None:
    names = {f.__module__ for f in rules_for("llm")}
    assert "genai_common.doctor.rules.vlm" not in names
    assert "genai_common.doctor.rules.diffusion" not in names
    assert {"genai_common.doctor.rules.config", "genai_common.doctor.rules.formats"} <= names


def test_doctor_select_and_ignore_by_code_and_family(tmp_path: Path) -> None:
    d = _broken(tmp_path)
    rc, everything = _doctor(str(d))
    codes = {f["code"] for f in everything["findings"]}
    assert {"CFG010", "FILE003"} <= codes and rc == 1
    rc, only_files = _doctor(str(d), "--select", "FILE")
    assert {f["code"][:4] for f in only_files["findings"]} == {"FILE"}
    assert rc == (1 if any(f["severity"] == "error" for f in only_files["findings"]) else 0)
    rc, no_cfg = _doctor(str(d), "--ignore", "CFG010,FILE003")
    assert not {"CFG010", "FILE003"} & {f["code"] for f in no_cfg["findings"]}
    assert rc == (1 if any(f["severity"] == "error" for f in no_cfg["findings"]) else 0)
    rc, one = _doctor(str(d), "--select", "CFG010", "--select", "MEM001")
    assert {f["code"] for f in one["findings"]} == {"CFG010", "MEM001"}


def test_doctor_reads_its_selection_from_pyproject(tmp_path: Path) -> None:
    d = _broken(tmp_path)
    project = tmp_path / "proj"
    (project / "sub").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[project]\nname = "p"\n\n[tool.genai.doctor]\nignore = ["CFG"]\n'
    )
    cwd = os.getcwd()
    try:
        os.chdir(project / "sub")  # the nearest pyproject.toml above the working directory
        _, configured = _doctor(str(d))
        assert not any(f["code"].startswith("CFG") for f in configured["findings"])
        _, overridden = _doctor(str(d), "--ignore", "FILE")  # the command line wins
        codes = {f["code"] for f in overridden["findings"]}
        assert "CFG010" in codes and not any(c.startswith("FILE") for c in codes)
    finally:
        os.chdir(cwd)


def test_a_family_run_on_its_own_uses_the_same_runner(tmp_path: Path) -> None:
    from genai_common.model import ModelDir

    d = _broken(tmp_path)
    found = check_family("config", ModelDir.open(d))
    assert [f.code for f in found] == ["CFG010"]
    assert found[0].hint == RULES["CFG010"].fix and found[0].severity == "error"


def test_a_rule_repeating_one_code_is_folded_into_one_finding() -> None:
    """A rule that would emit many findings of one code (a cause repeated per layer) emits one
    with the count and the subjects; a few stay as they are."""
    from genai_common.doctor.registry import FOLD_AT, run_functions
    from genai_common.findings import finding, rule

    @rule("ZZZ901", "test", severity="warning", fix="fix it")
    def many(subject):
        for i in range(subject):
            yield finding("ZZZ901", f"layer{i} is wrong", file="config.json")

    assert len(run_functions([many], FOLD_AT)) == FOLD_AT
    (one,) = run_functions([many], 20)
    assert one.message.startswith("layer0 is wrong (and 19 more ZZZ901 findings: layer1, layer2,")
    assert one.file == "config.json" and one.severity == "warning" and one.hint == "fix it"
