"""Sessions of this repository: tests, lint, demo, templates, bench.

`nox -s tests` runs the suite in two environments, because MLX and PyTorch are kept apart: with
torch installed, `import mlx_lm` pays for importing torch through transformers.
  tests(stack='mlx')    mlx[cpu], mlx-lm, mlx-vlm: everything not marked `torch`
  tests(stack='torch')  torch (pinned), diffusers, transformers: the tests marked `torch`
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

TORCH_PIN = "torch==2.13.0"
EXTRAS = {"mlx": "llm,vlm,ml,dev", "torch": "diffusion,port,reference,vlm,dev"}

# Tests never touch the network and never JIT-compile MLX kernels (fast, deterministic).
TEST_ENV = {
    "MLX_DISABLE_COMPILE": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def _install(session: nox.Session, stack: str) -> None:
    """Install this package with the extras of one stack.

    uv does not read pip's configuration: pass pip's find-links on (a CPU torch wheel lives there
    on the development machines; without it a plain `torch` pulls a multi-GB CUDA build), and ask
    for byte-code since PYTHONDONTWRITEBYTECODE is set there.
    """
    env = {"UV_COMPILE_BYTECODE": "1"}
    if os.environ.get("PIP_FIND_LINKS"):
        env["UV_FIND_LINKS"] = os.environ["PIP_FIND_LINKS"]
    pins = [TORCH_PIN] if stack == "torch" else []
    session.install("-e", f".[{EXTRAS[stack]}]", *pins, env=env)


@nox.session
@nox.parametrize("stack", ["mlx", "torch"])
def tests(session: nox.Session, stack: str) -> None:
    """Run the test suite in one stack's environment (pass pytest options after --)."""
    _install(session, stack)
    marker = "not torch" if stack == "mlx" else "torch"
    session.run("pytest", "-m", marker, *session.posargs, env=TEST_ENV)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def demo(session: nox.Session) -> None:
    """The main job on the embedded tiny model: build it, load it, generate, report."""
    _install(session, "mlx")
    session.run("python", "-m", "tools.demo", *session.posargs, env={"HF_HUB_OFFLINE": "1"})
    # Then what a new user does: render an LLM project and run its own `nox -s diagnostics`.
    scratch = Path(session.create_tmp()).resolve() / "demo-project"
    session.run("python", "-m", "tools.templating", "demo", str(scratch), env=TEST_ENV)


@nox.session
def templates(session: nox.Session) -> None:
    """Render every kind x env_manager, check file sets, updates and conda files; run each uv
    project's own `nox -s tests diagnostics` offline on its embedded tiny model."""
    _install(session, "mlx")
    tests_ = ["tests/test_templates.py", "tests/test_update.py", "tests/test_templates_project.py"]
    tests_ += ["tests/test_templates_ml.py", "tests/test_templates_ml_port.py"]  # issue 11/16 ml
    session.run("pytest", *tests_, *session.posargs, env=TEST_ENV)


@nox.session
@nox.parametrize("stack", ["mlx", "torch"])
def bench(session: nox.Session, stack: str) -> None:
    """Benchmarks of this repository, each in its stack's environment (`genai bench` on every
    tiny model among them); the tables go to reference/RESULTS.md."""
    _install(session, stack)
    session.run(
        "python", "-m", "benchmarks", "--stack", stack, *session.posargs,
        env={"HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
