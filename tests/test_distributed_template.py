"""Issue 13: the copier question `distributed` (llm only, default no) in one rendered project."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("copier", reason="copier (dev extra) is needed to render the templates")

from templates_helpers import hermetic_env, render, snapshot_template


def test_llm_project_with_distributed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in hermetic_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    template = snapshot_template(tmp_path / "template")
    dst = render(
        template, tmp_path / "proj", project_name="distdemo", project_kind="llm", distributed=True
    )
    noxfile = (dst / "noxfile.py").read_text()
    sessions = {n.name for n in ast.parse(noxfile).body if isinstance(n, ast.FunctionDef)}
    assert "distributed" in sessions
    hosts = json.loads((dst / "hosts.example.json").read_text())
    assert all("ssh" in h and h["ips"] for h in hosts)
    readme = (dst / "README.md").read_text()
    assert "## Running on several Macs" in readme and "genai bench MODEL --ranks 2" in readme
    agents = (dst / "AGENTS.md").read_text()
    assert "nox -s distributed" in agents and "genai doctor --hosts hosts.json" in agents
    learnings = (dst / "reference" / "LEARNINGS.md").read_text()
    assert "## Running on several Macs" in learnings and "iogpu.wired_limit_mb" in learnings
    # what the session runs: the project's model path (adjacent literals are one constant), then
    # the preflight and plan on 2 ranks
    tree = ast.parse(noxfile)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "distributed")
    script = next(
        c.value
        for c in ast.walk(fn)
        if isinstance(c, ast.Constant) and "model_path(" in str(c.value)
    )
    model = (
        subprocess.run(
            [sys.executable, "-c", script], cwd=dst, capture_output=True, text=True, check=True
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    proc = subprocess.run(
        [sys.executable, "-m", "genai_common.cli", "doctor", model, "--ranks", "2", "--json", "--select", "DST"],
        cwd=dst, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["facts"]["distributed"]["plan"]["mode"] == "tensor"


def test_default_and_other_kinds_have_no_distributed_files(tmp_path: Path, monkeypatch) -> None:
    for key, value in hermetic_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    template = snapshot_template(tmp_path / "template")
    for kind in ("llm", "vlm"):
        dst = render(template, tmp_path / kind, project_name=f"p{kind}", project_kind=kind)
        assert not (dst / "hosts.example.json").exists()
        assert "def distributed" not in (dst / "noxfile.py").read_text()
        assert "several Macs" not in (dst / "reference" / "LEARNINGS.md").read_text()
