"""Every command a generated project's README.md and AGENTS.md show, run in a generated project
(issue 16: "every command shown in README and AGENTS.md is run by a test").

One llm project is rendered from a template clone and then moved to another folder, so this is
also the move test at full size: the project's own sessions build their environments from the
vendored genai-common, offline (test_templates.py deletes the clone too; here `genai update`
needs it, at the path .copier-answers.yml records). The commands come from the
documents themselves: their fenced shell blocks and their command-like code spans. Each one is
in RUN (how it runs here: placeholders filled in, in an order that makes sense) or in NOT_RUN
with the reason; a command the documents gain without a place in either fails the test.

Slow (about 2-3 minutes on 2 cores with a warm uv cache): one render, one test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("copier", reason="copier (dev extra) renders the template")
pytest.importorskip("nox", reason="nox (dev extra) runs the generated project's sessions")

from templates_helpers import GIT_ENV, hermetic_env, render, snapshot_template

DOCS = ("README.md", "AGENTS.md")
COMMAND = re.compile(r"^(nox -s |genai |python |git |source |repo-review )")
SHELL_BLOCK = re.compile(r"^```(?:bash|sh|shell|console)\n(.*?)^```", re.M | re.S)
CODE_SPAN = re.compile(r"`([^`\n]+)`")

# What the documents show that this test does not run, and why. Keep it short and honest.
NOT_RUN = {
    "nox -s finetune -- --iters 600 --rank 16 --learning-rate 1e-5 --batch-size 2 --fuse "
    "models/fused": "the session `nox -s finetune` runs here with 50 iterations; 600 only "
    "take longer",
    "repo-review .": "repo-review is not a dependency of the project (`uvx repo-review .` "
    "needs the network); `genai review` and `nox -s review` run the same checks here",
    "genai bench": "named in prose as what `nox -s bench` runs (run here twice)",
    "genai verify": "named in prose as what `nox -s verify` runs (run here)",
    "genai doctor": "named in prose; `genai doctor PATH --kind llm` runs here",
}

SESSIONS = ("tests", "verify", "bench", "convert", "finetune", "review", "update")

# Commands that must fail here, with what their output must say (the product working).
EXPECTED = {
    # 3-bit layers leave the 64-wide tiny model too little: convert's own verify step fails it
    "nox -s convert -- --quantize mixed_3_6 --output models/mixed": (1, "QLT001"),
}

SMALL_CALIBRATION = "--num-samples 4 --sequence-length 64"

# The commands as they run here, in order: (command as the documents show it, how it runs).
# `genai` runs from the .venv that `nox -s dev` made (on PATH, as `source .venv/bin/activate`
# puts it); placeholders get this project's values.
RUN: list[tuple[str, str]] = [
    (
        'git init && git add -A && git commit -m "Start from genai-templates"',
        'git init -q -b main && git add -A && git commit -q -m "Start from genai-templates"',
    ),
    ("nox -s dev", "nox -s dev"),
    ("source .venv/bin/activate", "source .venv/bin/activate && command -v genai"),
    ("genai session start", "genai session start"),
    ("nox -s diagnostics", "nox -s diagnostics"),
    ("nox -s tests", "nox -s tests"),
    ("python test/check_config.py", "python test/check_config.py"),
    ("genai doctor PATH --kind llm", "genai doctor models/tiny-llm --kind llm"),
    ("nox -s verify", "nox -s verify"),
    ("nox -s bench", "nox -s bench -- --trials 2"),
    (
        "nox -s bench -- --prompt-tokens 128,512,2048",
        "nox -s bench -- --prompt-tokens 128,512,2048 --trials 2",
    ),
    (
        "genai bench --compare A.json B.json",
        "genai bench --compare $(ls reference/bench/*.json | head -2 | tr '\\n' ' ')",
    ),
    (
        'genai session end --completed "..." --in-progress "..." --next "..."',
        'genai session end --completed "..." --in-progress "..." --next "..."',
    ),
    (
        "genai session end --completed ... --next ...",
        "genai session end --completed ... --next ...",
    ),
    ("genai session end", "genai session end < /dev/null"),
    ("genai review", "genai review"),
    ("genai review --ignore GR101", "genai review --ignore GR101"),
    ("nox -s review", "nox -s review"),
    # the workflows change pyproject.toml ([tool.genai.convert]): after them GR101 would ask for
    # a fresh `nox -s diagnostics`, so the review runs first
    ("nox -s convert", "nox -s convert"),
    (
        "nox -s convert -- --quantize 8 --group-size 32",
        "nox -s convert -- --quantize 8 --group-size 32",
    ),
    (
        "nox -s convert -- --quantize mixed_3_6 --output models/mixed",
        "nox -s convert -- --quantize mixed_3_6 --output models/mixed",
    ),
    ("nox -s convert -- --dtype bfloat16", "nox -s convert -- --dtype bfloat16"),
    # learned quantization: the shown commands on 4 windows of 64 tokens instead of 32 x 256
    (
        "nox -s convert -- --quantize 4 --method awq",
        f"nox -s convert -- --quantize 4 --method awq {SMALL_CALIBRATION}",
    ),
    (
        "nox -s convert -- --quantize 4 --method gptq --dtype float32 "
        "--calibration data/calibration.txt",
        "cat README.md AGENTS.md > data/calibration.txt && nox -s convert -- --quantize 4 "
        f"--method gptq --dtype float32 --calibration data/calibration.txt {SMALL_CALIBRATION}",
    ),
    (
        "nox -s convert -- --quantize 4 --method dynamic --target-bpw 5",
        f"nox -s convert -- --quantize 4 --method dynamic --target-bpw 5 {SMALL_CALIBRATION}",
    ),
    ("nox -s finetune -- --check-only", "nox -s finetune -- --check-only"),
    ("nox -s finetune", "nox -s finetune"),
    # an update needs a clean tree: the session's work is committed first, as a user would
    ("git status", 'git add -A && git commit -q -m "session" && git status'),
    ("genai update", "genai update"),
    ("genai update --check", "genai update --check"),
    ("nox -s update", "nox -s update"),
    ("git diff", "git diff --stat"),
]


def shown_commands(project: Path) -> set[str]:
    """The commands README.md and AGENTS.md show: every line of their fenced shell blocks and
    every code span that starts like a command (comments and trailing spaces dropped)."""
    found = set()
    for rel in DOCS:
        text = (project / rel).read_text()
        for block in SHELL_BLOCK.findall(text):
            for line in block.splitlines():
                line = re.split(r"\s+#\s", line)[0].strip()
                if line:
                    found.add(line)
        for span in CODE_SPAN.findall(SHELL_BLOCK.sub("", text)):
            if COMMAND.match(span.strip()):
                found.add(span.strip())
    return found


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An llm project rendered from a template clone, then moved elsewhere."""
    tmp = tmp_path_factory.mktemp("commands")
    old = dict(os.environ)
    os.environ.update(hermetic_env(tmp))
    try:
        template = snapshot_template(tmp / "clone")
        rendered = render(template, tmp / "rendered", project_kind="llm")
    finally:
        os.environ.clear()
        os.environ.update(old)
    (tmp / "moved").mkdir()
    return Path(shutil.move(rendered, tmp / "moved" / "project"))


@pytest.mark.slow
def test_every_command_the_documents_show_runs(project: Path, tmp_path: Path) -> None:
    shown = shown_commands(project)
    planned = {doc for doc, _ in RUN}
    assert shown - planned - set(NOT_RUN) == set(), "commands the documents show, not run here"
    assert set(NOT_RUN) <= shown, "NOT_RUN names a command the documents no longer show"

    shims = tmp_path / "bin"  # `nox` is the nox of this interpreter
    shims.mkdir()
    (shims / "nox").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m nox "$@"\n')
    (shims / "nox").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env |= hermetic_env(tmp_path) | GIT_ENV
    env |= {"HF_HUB_OFFLINE": "1", "UV_OFFLINE": "1", "MLX_DISABLE_COMPILE": "1"}
    env["PATH"] = f"{project / '.venv/bin'}:{shims}:{env['PATH']}"

    ran, seconds = [], {}
    for doc, command in RUN:
        if doc not in shown:
            continue  # the documents of this kind do not show it
        start = time.monotonic()
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=project,
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            stdin=subprocess.DEVNULL,
        )
        out = done.stdout + done.stderr
        expected, why = EXPECTED.get(doc, (0, ""))
        assert done.returncode == expected, f"$ {command}\n{out[-5000:]}"
        assert why in out, f"$ {command}: expected {why!r}\n{out[-5000:]}"
        ran.append(doc)
        seconds[doc] = round(time.monotonic() - start, 1)
        print(f"{seconds[doc]:7.1f} s  $ {command}", flush=True)
        if doc == "source .venv/bin/activate":
            assert done.stdout.strip() == str(project / ".venv/bin/genai"), out
        if doc == "nox -s diagnostics":
            assert "All diagnostics passed." in out
            # Every session installs the same `-e .[dev]`: the others reuse this environment
            # (nox reuses an existing one; linked here to save ~25 s of building per session
            # on 2 shared cores). Each still runs its own `uv pip install -e .[dev]`.
            for name in SESSIONS:
                if not (project / ".nox" / name).exists():
                    (project / ".nox" / name).symlink_to("diagnostics")
            # the environment came from the project's own copy of genai-common
            url = project / ".nox/diagnostics/lib"
            assert any(url.glob("python3*/site-packages/genai_common-*.dist-info")), out[-2000:]
        if doc == "genai update":
            assert "no conflicts" in out, out
    print(f"{sum(seconds.values()):7.1f} s  in all", flush=True)
    assert set(ran) == shown - set(NOT_RUN)
    assert str(tmp_path) not in (project / "pyproject.toml").read_text()
