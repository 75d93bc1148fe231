"""`nox -s port` in a rendered ml project (issue 11 part 4), as a user runs it. Apart from
test_templates_ml.py to keep each file under a minute (this one installs torch)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("copier", reason="copier (dev extra) is needed to render the templates")

from templates_helpers import git, hermetic_env, render, snapshot_template


@pytest.mark.slow
def test_ml_project_port_session_ports_and_verifies_the_shipped_original(tmp_path: Path) -> None:
    """`nox -s port` as a user runs it: torch installed into the session's environment only
    (the pinned CPU wheel), the shipped PyTorch original ported and verified, one RESULTS row."""
    import shutil

    pytest.importorskip("nox", reason="nox (dev extra) runs the generated project's sessions")
    links = os.environ.get("PIP_FIND_LINKS")
    if not (links and shutil.which("uv") and list(Path(links).glob("torch-2.13.0+cpu-*.whl"))):
        pytest.skip("needs uv and a torch 2.13.0 CPU wheel in PIP_FIND_LINKS (offline install)")
    template = snapshot_template(tmp_path / "template", template_only=False)
    project = render(template, tmp_path / "proj", project_kind="ml", project_name="Demo")
    git(project, "init", "-q", "-b", "main")
    env = {**os.environ, **hermetic_env(tmp_path), "HF_HUB_OFFLINE": "1"}
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(
        [sys.executable, "-m", "nox", "-s", "port"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=1500,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    assert "QLT204" in out and "verdict: pass" in out, out[-3000:]
    results = (project / "reference/RESULTS.md").read_text()
    assert "| port TorchMLP -> TinyMLP |" in results
    assert (project / "models/ported/model.safetensors").is_file()
