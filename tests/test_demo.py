"""`python -m tools.demo` (what `nox -s demo` runs first): the tiny Llama is built, loaded
and timed in a fresh interpreter, and the figures it reports are there and sane, ours beside
mlx-lm's own. The second half of `nox -s demo` (render a project, run its `nox -s diagnostics`)
is the flow tests/test_templates.py runs for every kind."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

MAX_TOKENS = 8
REPO = Path(__file__).resolve().parents[1]  # tools/ is this repository's, not installed


@pytest.fixture(autouse=True, scope="module")
def _needs_mlx_lm() -> None:
    # a fixture, not a module-level skip: the torch stack deselects these tests without a skip line
    pytest.importorskip("mlx_lm", reason="the demo runs the tiny Llama with mlx-lm")


def _demo(dest: Path, *args: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MLX_DISABLE_COMPILE": "1", "COLUMNS": "140"}
    cmd = [sys.executable, "-m", "tools.demo", "--max-tokens", str(MAX_TOKENS)]
    done = subprocess.run(
        [*cmd, "--dest", str(dest), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_demo_json_figures_are_sane(tmp_path: Path) -> None:
    result = json.loads(_demo(tmp_path / "tiny-llm", "--json"))
    assert result["environment"]["frameworks"]["mlx-lm"]["installed"]
    assert (tmp_path / "tiny-llm" / "config.json").is_file()
    load = result["load"]
    assert load["loader"] == "mlx_lm.load" and load["seconds"] > 0
    assert load["mlx_added"] > 0  # the weights are on the MLX heap
    for name in ("cold", "warm"):
        run = result[name]
        assert run["prompt_tokens"] > 0 and 2 <= run["n_tokens"] <= MAX_TOKENS, name
        assert 0 < run["ttft"] < run["e2e"], name
        assert run["decode_tps"] > 0 and 0 < run["itl_p50"] <= run["itl_p99"], name
        # mlx-lm's own figures, beside ours: its prompt clock starts inside our window
        assert run["mlx_lm_prompt_tps"] > 0 and run["mlx_lm_generation_tps"] > 0, name
        assert 0 < run["mlx_lm_ttft"] <= run["ttft"], name
        # memory: our scoped peak covers mlx-lm's reading of the same counter
        assert run["mlx_peak"] > 0 and run["rss_peak"] > 0, name
        assert 0 < run["mlx_lm_peak_memory_gb"] * 1e9 <= run["mlx_peak"] * 1.001, name
    after = result["memory_after"]
    assert after["mlx_active"] >= load["mlx_added"] and after["rss"] > 0
    assert result["cache_released"] >= 0


def test_demo_prints_tables_for_people(tmp_path: Path) -> None:
    out = _demo(tmp_path / "tiny-llm")
    for text in ("genai-common demo", "Frameworks", "Timing", "TTFT", "decode", "Memory"):
        assert text in out, text
    assert "tok/s" in out and " ms" in out and "MiB" in out
    assert "Reply (trained tiny model)" in out


@pytest.mark.slow
def test_templating_demo_renders_a_project_and_its_diagnostics_pass(tmp_path: Path) -> None:
    """The second half of `nox -s demo`: render an LLM project, run its `nox -s diagnostics`
    (about 12 s on 2 cores with uv's cache warm)."""
    pytest.importorskip("copier", reason="copier (dev extra) renders the project")
    pytest.importorskip("nox", reason="nox (dev extra) runs the project's session")
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.update(HF_HUB_OFFLINE="1", MLX_DISABLE_COMPILE="1")
    project = tmp_path / "demo-project"
    done = subprocess.run(
        [sys.executable, "-m", "tools.templating", "demo", str(project)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    assert f"Rendered a llm project into {project}" in out and "All diagnostics passed." in out
    last = (project / "reference/RESULTS.md").read_text().rstrip().splitlines()[-1]
    assert last.startswith("| ") and "tiny-llm" in last and "mlx-lm" in last, last
    peak = re.search(r"loaded in [\d.]+ s, MLX active peak (\d+\.\d+) [KM]iB", out)
    assert peak and float(peak.group(1)) > 0, out[-3000:]  # measured, not rounded away
