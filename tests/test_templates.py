"""The Copier template family: every kind x env_manager renders the exact file set, fully rendered,
with valid pyproject/noxfile/environment.yml, kind-specific documents and the agent files asked for.

The slow test at the end renders a project of each kind and runs its own `nox -s tests
diagnostics` offline on the embedded tiny model: the out-of-the-box flow a new user meets.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytest.importorskip("copier", reason="copier (dev extra) is needed to render the templates")

from templates_helpers import (
    AGENTS,
    KINDS,
    REPO,
    expected_files,
    git,
    hermetic_env,
    render,
    snapshot_template,
    tree,
)

yaml = pytest.importorskip("yaml", reason="PyYAML (a copier dependency) parses environment.yml")

SESSIONS = {"diagnostics", "verify", "tests", "bench", "review", "update", "dev"}
KIND_DEPENDENCIES = {
    "llm": ("mlx-lm", "mlx[cpu]", "tokenizers"),
    "vlm": ("mlx-vlm", "mlx-lm", "mlx[cpu]", "pillow"),
    "diffusion": ("torch", "diffusers", "transformers", "accelerate"),
    "ml": ("mlx[cpu]", "safetensors", "numpy"),
}
KIND_WORDS = {  # sections the methodology asks for in the documents of each kind
    "llm": ("Vocab", "Context", "Tokenizer", "Quantization"),
    "vlm": ("Vision config", "Image tokens", "Preprocessor", "Projector"),
    "diffusion": ("Pipeline components", "Scheduler", "VAE scaling", "Image size"),
    "ml": ("Shapes", "Layouts", "MLX vs PyTorch"),
}
UNRENDERED = re.compile(r"\{\{|\{%|\{#|%\}|#\}")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # templating.git runs git with GIT_ENV: no developer configuration, a fixed identity
    return snapshot_template(tmp_path_factory.mktemp("tmpl") / "template", tag="v0.1.0")


@pytest.fixture(autouse=True)
def _hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in hermetic_env(tmp_path).items():
        monkeypatch.setenv(key, value)


def _sessions(noxfile: Path) -> set[str]:
    tree_ = ast.parse(noxfile.read_text())
    return {
        node.name
        for node in tree_.body
        if isinstance(node, ast.FunctionDef)
        and any("session" in ast.unparse(d) for d in node.decorator_list)
    }


@pytest.mark.parametrize("env_manager", ["uv", "conda"])
@pytest.mark.parametrize("kind", KINDS)
def test_render_file_set_and_contents(
    template: Path, tmp_path: Path, kind: str, env_manager: str
) -> None:
    dst = render(
        template,
        tmp_path / "proj",
        project_kind=kind,
        env_manager=env_manager,
        agent_files=list(AGENTS),
        project_name="Demo Project",
    )
    assert tree(dst) == expected_files(kind, env_manager, AGENTS, "demo_project")
    for rel in sorted(tree(dst)):
        if rel.startswith("vendor/genai-common/genai_common/"):  # verbatim, not rendered
            assert (dst / rel).read_bytes() == (REPO / rel.split("/", 2)[2]).read_bytes(), rel
            continue
        if rel.endswith(".png"):  # the vlm fine-tuning sample images (binary, copied verbatim)
            continue
        text = (dst / rel).read_text(encoding="utf-8")
        assert not UNRENDERED.search(text), f"unrendered Jinja in {rel}"
        assert "\n\n\n\n" not in text, f"runs of blank lines in {rel}"

    pyproject = tomllib.loads((dst / "pyproject.toml").read_text())
    modules = {  # issue 16: an ml project names its module and the module's PyTorch original
        "module": "demo_project.model:TinyMLP",
        "torch_module": "demo_project.torch_reference:TorchMLP",
    }
    assert pyproject["tool"]["genai"] == {"kind": kind, "model": "", "source": ""} | (
        modules if kind == "ml" else {}
    )
    deps = pyproject["project"]["dependencies"]
    # genai-common from the copy vendored into the project, never from the template clone
    assert f"genai-common[{kind}] @ {{root:uri}}/vendor/genai-common" in deps
    assert str(template) not in (dst / "pyproject.toml").read_text()
    for name in KIND_DEPENDENCIES[kind]:
        assert any(d.startswith(name) for d in deps), f"{name} missing from {deps}"
    if kind != "diffusion":
        assert "mlx>=0.24.1; sys_platform == 'darwin'" in deps
        assert "mlx[cpu]>=0.24.1; sys_platform == 'linux'" in deps
    assert "copier>=9.4" in pyproject["project"]["optional-dependencies"]["dev"]

    noxfile = dst / "noxfile.py"
    compile(noxfile.read_text(), str(noxfile), "exec")
    own = {
        "llm": {"convert", "finetune"},
        "vlm": {"convert", "finetune"},
        "diffusion": {"lora"},
        "ml": {"train", "port"},
    }
    assert _sessions(noxfile) == SESSIONS | own.get(kind, set())
    nox_text = noxfile.read_text()
    if env_manager == "conda":
        assert 'default_venv_backend = "conda"' in nox_text
        assert '"--file", "environment.yml"' in nox_text
        env = yaml.safe_load((dst / "environment.yml").read_text())
        assert env["name"] == "demo-project"
        assert "conda-forge" in env["channels"]
        assert "python=3.11" in env["dependencies"]
        pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
        assert pip == ["-e .[dev]"]  # genai-common comes with the project, from vendor/
        # conda's torch is pyproject's exact pin (a range resolved a CUDA build; issue 16)
        torch = [d for d in env["dependencies"] if str(d).startswith("pytorch")]
        assert torch == (["pytorch==2.13.0"] if kind == "diffusion" else [])
        if kind == "diffusion":
            assert "torch==2.13.0" in deps
    else:
        assert 'default_venv_backend = "uv|virtualenv"' in nox_text
        assert "UV_FIND_LINKS" in nox_text

    for rel in ("test/README.md", "reference/LEARNINGS.md", "AGENTS.md"):
        text = (dst / rel).read_text()
        missing = [w for w in KIND_WORDS[kind] if w.lower() not in text.lower()]
        assert not missing, f"{rel} lacks the {kind} sections {missing}"

    answers = yaml.safe_load((dst / ".copier-answers.yml").read_text())
    assert answers["_src_path"] == str(template)
    assert answers["_commit"] == "v0.1.0"
    assert answers["project_kind"] == kind


def test_living_documents_follow_the_methodology(template: Path, tmp_path: Path) -> None:
    dst = render(template, tmp_path / "p", project_kind="vlm", model="org/some-vlm")
    todo = (dst / "TODO.md").read_text()
    for heading in ("## Objective", "## Current Status", "## Session Log"):
        assert heading in todo
    assert todo.rstrip().endswith("-->"), "the session log must stay the last section"
    agents = (dst / "AGENTS.md").read_text()
    assert "### Session End: YYYY-MM-DD HH:MM" in agents
    for label in ("**Completed:**", "**In Progress:**", "**Next Steps:**"):
        assert label in agents
    for command in ("nox -s diagnostics", "nox -s tests", "genai update", "python test/check_"):
        assert command in agents
    # the model is named once, in the facts block (issue 16), not in the methodology
    assert "`org/some-vlm`" not in agents and "`org/some-vlm`" in (dst / "README.md").read_text()
    assert tomllib.loads((dst / "pyproject.toml").read_text())["tool"]["genai"]["model"] == (
        "org/some-vlm"
    )
    results = (dst / "reference/RESULTS.md").read_text()
    assert results.rstrip().splitlines()[-1].startswith("|---"), "runs table must end the file"
    diagnostics = (dst / "reference/DIAGNOSTICS.md").read_text()
    for script in sorted(p.name for p in (dst / "test").glob("check_*.py")):
        assert f"test/{script}" in diagnostics, f"{script} is not documented"
    precommit = yaml.safe_load((dst / ".pre-commit-config.yaml").read_text())
    hook_ids = {h["id"] for repo in precommit["repos"] for h in repo["hooks"]}
    assert {"check-merge-conflict", "no-rej-files"} <= hook_ids
    assert "models/" in (dst / ".gitignore").read_text().split()


def test_agent_files_follow_the_choice(template: Path, tmp_path: Path) -> None:
    everything = render(template, tmp_path / "all", agent_files=list(AGENTS))
    agents = (everything / "AGENTS.md").read_text()
    assert (everything / "CLAUDE.md").read_text().startswith("@AGENTS.md\n")
    windsurf = (everything / ".windsurf/rules/methodology.md").read_text()
    assert windsurf.startswith("---\ntrigger: always_on\n---\n")
    cursor = (everything / ".cursor/rules/methodology.mdc").read_text()
    assert cursor.startswith("---\n") and "alwaysApply: true" in cursor.split("---")[1]
    for text in (windsurf, cursor, (everything / ".github/copilot-instructions.md").read_text()):
        assert agents.strip() in text  # the same methodology, from one partial

    nothing = render(template, tmp_path / "none", agent_files=[])
    present = tree(nothing)
    assert "AGENTS.md" in present
    assert not {"CLAUDE.md", ".github/copilot-instructions.md"} & present
    assert not any(p.startswith((".cursor", ".windsurf")) for p in present)


@pytest.mark.parametrize(
    ("name", "package"),
    [("Qwen2 4-bit Chat!", "qwen2_4_bit_chat"), ("3D Diffusion", "p_3d_diffusion")],
)
def test_package_name_is_derived(template: Path, tmp_path: Path, name: str, package: str) -> None:
    dst = render(template, tmp_path / "p", project_name=name)
    assert (dst / "src" / package / "__init__.py").is_file()
    assert tomllib.loads((dst / "pyproject.toml").read_text())["project"]["name"] == (
        package.replace("_", "-")
    )


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"package_name": "my-pkg"}, "not a Python identifier"),
        ({"package_name": "1abc"}, "not a Python identifier"),
        ({"project_name": "   "}, "cannot be empty"),
        ({"package_name": "import"}, "Python keyword"),
    ],
)
def test_validators_reject_bad_answers(
    template: Path, tmp_path: Path, answers: dict[str, str], message: str
) -> None:
    with pytest.raises(Exception, match=message):
        render(template, tmp_path / "p", **answers)


def test_defaults_need_no_project_name_and_accept_a_model_path_with_a_space(
    template: Path, tmp_path: Path
) -> None:
    """README's `copier copy --defaults -d project_kind=vlm ...` (issue 16): no answer needed."""
    from copier import run_copy

    dst = tmp_path / "my-vlm"
    data = {"project_kind": "vlm", "model": "/models/my model"}
    run_copy(str(template), dst, data=data, defaults=True, vcs_ref="HEAD", quiet=True)
    answers = (dst / ".copier-answers.yml").read_text()
    assert "project_name: my-vlm" in answers
    assert tomllib.loads((dst / "pyproject.toml").read_text())["tool"]["genai"]["model"] == (
        "/models/my model"
    )


def test_question_help_fits_80_columns() -> None:
    """questionary cuts a help line at the terminal width: every help is one short line."""
    import yaml

    questions = yaml.safe_load((REPO / "copier.yml").read_text())
    for name, q in questions.items():
        if isinstance(q, dict) and "help" in q:
            assert "\n" not in q["help"].strip() and len(q["help"]) + 4 <= 80, name


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_generated_project_runs_its_own_sessions(tmp_path: Path, kind: str) -> None:
    """The whole out-of-the-box flow: render, install offline from the template commit, run the
    project's own `nox -s tests diagnostics` on its embedded tiny model, find the RESULTS.md row,
    then its `nox -s bench` (quick settings) and the benchmark row and record it writes.

    Every kind runs in every test run: about 25 s (llm), 40 s (vlm), 57 s (diffusion, a torch
    environment) and 10 s (ml) on 2 CPU cores once uv's cache holds the wheels.
    """
    pytest.importorskip("nox", reason="nox (dev extra) runs the generated project's sessions")
    template = snapshot_template(tmp_path / "template", template_only=False)
    project = render(template, tmp_path / "proj", project_kind=kind)
    git(project, "init", "-q", "-b", "main")
    env = {**os.environ, **hermetic_env(tmp_path), "HF_HUB_OFFLINE": "1"}
    env.pop("VIRTUAL_ENV", None)

    def nox(*args: str) -> str:
        """The project's own nox, offline and hermetic; its output (asserted to succeed)."""
        done = subprocess.run(
            [sys.executable, "-m", "nox", *args],
            cwd=project,
            capture_output=True,
            text=True,
            env=env,
            timeout=1500,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-6000:]
        return output

    assert "All diagnostics passed." in nox("-s", "tests", "diagnostics")
    rows = (project / "reference/RESULTS.md").read_text().rstrip().splitlines()
    assert rows[-1].startswith("| ") and f"tiny-{kind}" in rows[-1], rows[-1]
    assert any((project / f"models/tiny-{kind}").iterdir()), "the tiny model was not built"
    # `nox -s bench` finds the project's model by itself and records a benchmark row
    quick = ["--trials", "2", "--prompt-tokens", "16", "--gen-tokens", "4", "--steps", "2"]
    nox("-s", "bench", "--", *quick, "--size", "64")
    bench = (project / "reference/RESULTS.md").read_text()
    assert "## Benchmarks (`genai bench`)" in bench and f"genai bench {project}" in bench
    assert list((project / "reference/bench").glob("*.json")), "no JSON record"


def test_update_restore_brings_back_a_deleted_living_document(
    template: Path, tmp_path: Path
) -> None:
    """Issue 16: GD101's fix said `copier update` restores it; it does not (a deletion is the
    user's change). `genai update --restore PATH` does, and touches no existing file."""
    from genai_common.project import update

    dst = render(template, tmp_path / "p")
    original = (dst / "reference/LEARNINGS.md").read_text()
    (dst / "reference/LEARNINGS.md").unlink()
    (dst / "README.md").write_text("# mine\n")
    assert update.restore(dst, ["reference/LEARNINGS.md", "README.md"]) == [
        "reference/LEARNINGS.md"
    ]
    assert (dst / "reference/LEARNINGS.md").read_text() == original
    assert (dst / "README.md").read_text() == "# mine\n"


def test_diffusion_environment_resolves_the_cpu_torch_on_linux(
    template: Path, tmp_path: Path
) -> None:
    """Issue 16: `torch>=2.4` resolved the newest torch, a CUDA build, beside a CPU wheel in
    find-links. What uv would install is checked with `uv pip compile` (nothing downloaded)."""
    import shutil

    links = os.environ.get("PIP_FIND_LINKS")
    if not (links and shutil.which("uv") and list(Path(links).glob("torch-2.13.0+cpu-*.whl"))):
        pytest.skip("needs uv and a torch 2.13.0 CPU wheel in PIP_FIND_LINKS")
    dst = render(template, tmp_path / "p", project_kind="diffusion")
    deps = tomllib.loads((dst / "pyproject.toml").read_text())["project"]["dependencies"]
    torch = [d for d in deps if d.startswith("torch")]
    assert torch == ["torch==2.13.0"]
    # the kind's own dependencies (genai-common's pin points at a temporary snapshot)
    own = [d for d in deps if not d.startswith("genai-common")]
    (tmp_path / "req.txt").write_text("\n".join(own) + "\n")
    linux = ("--python-platform", "x86_64-unknown-linux-gnu", "--find-links", links)
    out = subprocess.run(
        ["uv", "pip", "compile", str(tmp_path / "req.txt"), "--python-version", "3.11", *linux],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "torch==2.13.0+cpu" in out and "nvidia" not in out, out


def test_results_gets_one_benchmarks_section(template: Path, tmp_path: Path) -> None:
    """Issue 16: the template's empty "## Benchmarks" sat beside `genai bench`'s own section."""
    from genai_common.bench.records import append_row

    dst = render(template, tmp_path / "p")
    results = dst / "reference/RESULTS.md"
    append_row(results, "| a | b | c | d | e | f | g | h |\n")
    headings = [h for h in results.read_text().splitlines() if h.startswith("## Benchmarks")]
    assert headings == ["## Benchmarks (`genai bench`)"]


@pytest.mark.slow
def test_generated_project_verify_session(tmp_path: Path) -> None:
    """Issue 10 part 8: a rendered llm project's `nox -s verify` checks the tiny model's chat
    reply (its known answer) and records one `## Verify runs` row per run in RESULTS.md."""
    pytest.importorskip("nox", reason="nox (dev extra) runs the generated project's sessions")
    template = snapshot_template(tmp_path / "template", template_only=False)
    project = render(template, tmp_path / "proj", project_kind="llm")
    git(project, "init", "-q", "-b", "main")
    env = {**os.environ, **hermetic_env(tmp_path), "HF_HUB_OFFLINE": "1"}
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(
        [sys.executable, "-m", "nox", "-s", "verify"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=1500,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "[PASS] reply" in output, output[-3000:]
    text = (project / "reference/RESULTS.md").read_text()
    section = text.split("## Verify runs", 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("| 20")]
    assert len(rows) == 1 and "tiny-llm" in rows[0] and "| ok |" in rows[0], section
    assert (project / "test/check_quality.py").is_file()


def test_project_builds_after_the_template_clone_and_the_project_move(tmp_path: Path) -> None:
    """Issue 16: a project pinned `genai-common @ git+file://<template clone>@<commit>`; moving the
    clone broke every later install. The project vendors genai-common (vendor/genai-common) and
    pins it relative to itself: render from a clone, delete the clone, move the project, and a
    fresh environment still installs genai-common offline, from the moved project's copy."""
    import shutil

    if not shutil.which("uv"):
        pytest.skip("needs uv to build the project's environment")
    template = snapshot_template(tmp_path / "clone")
    project = render(template, tmp_path / "proj", project_kind="llm")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "render")
    shutil.rmtree(template)
    moved = project.rename(tmp_path / "elsewhere")
    for rel in ("pyproject.toml", ".pre-commit-config.yaml", "noxfile.py"):
        assert str(template) not in (moved / rel).read_text(), rel
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env |= {"UV_OFFLINE": "1", "UV_FIND_LINKS": os.environ.get("PIP_FIND_LINKS", "")}

    def uv(*args: str) -> None:
        done = subprocess.run(["uv", *args], cwd=moved, capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stdout + done.stderr

    uv("venv", "-q", "--python", sys.executable, ".venv")
    uv("pip", "install", "-q", "--python", ".venv", "-e", ".")
    python = moved / ".venv/bin/python"
    code = (
        "import json, importlib.metadata as m; d = m.distribution('genai-common');"
        "print(json.loads(d.read_text('direct_url.json'))['url'])"
    )
    url = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    assert url.stdout.strip() == (moved / "vendor/genai-common").as_uri()
    # the installed runtime is the vendored copy, and it runs: the project's review
    done = subprocess.run(
        [moved / ".venv/bin/genai", "review", "--json"], cwd=moved, capture_output=True, text=True
    )
    assert done.returncode in (0, 1) and '"schema": 1' in done.stdout, done.stderr


@pytest.mark.parametrize("model", ["", "org/some-model"])
def test_rendered_documents_carry_the_facts_block(
    template: Path, tmp_path: Path, model: str
) -> None:
    """Issue 16: the model-specific lines live in the marked block `genai session start`
    rewrites (the same lines genai_common writes before the model is there), and no other line
    names the model, so nothing goes stale when [tool.genai] changes."""
    from genai_common.findings import run_rule
    from genai_common.project import checks, facts
    from genai_common.project.core import Project

    dst = render(template, tmp_path / "p", project_kind="vlm", model=model)
    project = Project.open(dst)
    for rel in facts.FACT_DOCS:
        assert facts.block_text((dst / rel).read_text()) == facts.lines(project, None), rel
    assert list(run_rule(checks.FUNCTIONS["GD200"], project)) == []
    assert list(run_rule(checks.FUNCTIONS["GD201"], project)) == []
    # the same project with another model: the block is about the old one until refreshed
    text = (dst / "pyproject.toml").read_text()
    (dst / "pyproject.toml").write_text(text.replace(f'model = "{model}"', 'model = "org/other"'))
    stale = [f.message for f in run_rule(checks.FUNCTIONS["GD201"], Project.open(dst))]
    assert len(stale) == 2 and "another model" in stale[0]
    assert list(run_rule(checks.FUNCTIONS["GD200"], Project.open(dst))) == []
