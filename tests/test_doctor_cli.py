"""`genai doctor` and `genai inspect`: the JSON contract, exit codes, renderers, light imports,
clean tiny models, and --load mapping a loader error back to the static finding."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from checks_helpers import CLEAN_TINY
from malformed_corpus import base_llm, write_json

from genai_common.cli import main
from genai_common.doctor import diagnose, render
from genai_common.doctor.registry import load_all
from genai_common.findings import RULES

HEAVY = (
    "mlx",
    "torch",
    "transformers",
    "numpy",
    "safetensors",
    "mlx_lm",
    "mlx_vlm",
    "diffusers",
    "rich",
    "huggingface_hub",
)


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            rc = main(list(argv))
        except SystemExit as exc:  # argparse errors
            rc = int(exc.code or 0)
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("fixture", [*CLEAN_TINY, "tiny_ml"])
def test_clean_tiny_models_have_no_error(fixture: str, request: pytest.FixtureRequest) -> None:
    path = request.getfixturevalue(fixture)
    rc, out, _ = run_cli("doctor", str(path), "--json")
    data = json.loads(out)
    errors = [f for f in data["findings"] if f["severity"] == "error"]
    assert errors == [] and rc == 0
    assert "DOC001" not in [f["code"] for f in data["findings"]]
    expected_kind = "ml" if fixture == "tiny_ml" else "vlm" if "vlm" in fixture else "llm"
    assert data["kind"] == expected_kind


@pytest.mark.torch
def test_clean_tiny_diffusion_has_no_error(tiny_diffusion: Path) -> None:
    report = diagnose(tiny_diffusion)
    assert report.kind == "diffusion"
    assert [f for f in report.findings if f.severity == "error"] == []
    assert "DOC001" not in report.codes()


def test_json_contract(tiny_llm: Path) -> None:
    rc, out, _ = run_cli("doctor", str(tiny_llm), "--json")
    data = json.loads(out)
    assert set(data) == {"schema", "path", "kind", "model_type", "findings", "facts"}
    assert data["schema"] == 1 and data["path"] == str(tiny_llm)
    assert data["kind"] == "llm" and data["model_type"] == "llama"
    for f in data["findings"]:
        assert {"code", "severity", "message", "hint"} <= set(f)
        assert f["severity"] in ("error", "warning", "info")
        assert f["code"] in RULES
    assert data["facts"]["loader"] == "mlx-lm" and data["facts"]["num_hidden_layers"] >= 1
    assert rc == 0


def test_exit_codes(tmp_path: Path) -> None:
    base_llm(tmp_path / "ok")
    assert run_cli("doctor", str(tmp_path / "ok"), "--json")[0] == 0
    broken = base_llm(tmp_path / "broken")
    (broken / "model.safetensors").write_bytes(b"")
    assert run_cli("doctor", str(broken), "--json")[0] == 1
    rc, _, err = run_cli("doctor", str(tmp_path / "absent"))
    assert rc == 2 and "no such file" in err
    assert run_cli("doctor", str(tmp_path / "ok"), "--kind", "nonsense")[0] == 2
    assert run_cli("doctor")[0] == 2
    (tmp_path / "notes.txt").write_text("hello")
    assert run_cli("doctor", str(tmp_path / "notes.txt"))[0] == 2


def test_fail_on_warning(tmp_path: Path) -> None:
    d = base_llm(tmp_path / "m")
    (d / "model.safetensors.incomplete").write_bytes(b"\0")  # FILE011 is a warning
    assert run_cli("doctor", str(d), "--json")[0] == 0
    assert run_cli("doctor", str(d), "--json", "--fail-on", "warning")[0] == 1


def test_kind_override(tmp_path: Path) -> None:
    d = base_llm(tmp_path / "m")
    rc, out, _ = run_cli("doctor", str(d), "--json", "--kind", "ml")
    assert json.loads(out)["kind"] == "ml" and rc == 0


def test_markdown_and_plain_renderers(tmp_path: Path) -> None:
    d = base_llm(tmp_path / "m")
    (d / "model.safetensors").write_bytes(b"\1\0")
    rc, out, _ = run_cli("doctor", str(d), "--markdown")
    assert rc == 1
    assert out.startswith("## genai doctor") and "| error | HDR001 |" in out
    rc, out, _ = run_cli("doctor", str(d))  # stdout is not a terminal: plain text
    assert rc == 1 and "HDR001" in out and "fix:" in out and "\x1b[" not in out


def test_rich_table_lists_every_finding(tmp_path: Path) -> None:
    pytest.importorskip("rich", reason="rich draws the terminal table")
    d = base_llm(tmp_path / "m")
    (d / "model.safetensors").write_bytes(b"")
    report = diagnose(d)
    buf = io.StringIO()
    render.print_rich(report, file=buf)
    text = buf.getvalue()
    for code in report.codes():
        assert code in text


def test_static_path_imports_nothing_heavy(tiny_llm_4bit: Path) -> None:
    code = (
        "import json, sys, io, contextlib\n"
        "from genai_common.cli import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        f"    rc = main(['doctor', {str(tiny_llm_4bit)!r}, '--json'])\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print(json.dumps({'rc': rc, 'heavy': heavy, 'n': len(json.loads(buf.getvalue())['findings'])}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["heavy"] == [] and result["rc"] == 0


def test_list_checks_covers_the_registry() -> None:
    registry = load_all()
    rc, out, _ = run_cli("doctor", "--list-checks", "--markdown")
    assert rc == 0
    for code, check in registry.items():
        assert f"### {code} — {check.title}" in out
        assert f'<a id="{code.lower()}"></a>' in out
    rc, out, _ = run_cli("doctor", "--list-checks", "--json")
    assert {c["code"] for c in json.loads(out)} == set(registry)


def test_list_checks_plain_is_a_table_not_markdown() -> None:
    registry = load_all()
    rc, out, _ = run_cli("doctor", "--list-checks")
    assert rc == 0
    assert "###" not in out and "<a id=" not in out and "**" not in out
    lines = out.splitlines()
    assert lines[0].split() == ["CODE", "SEVERITY", "FAMILY", "TITLE"]
    rows = {line.split()[0]: line for line in lines[1:-1]}
    assert set(rows) == set(registry)
    for code, check in registry.items():
        assert rows[code].split()[1] == check.severity
        assert rows[code].endswith(check.title)


def test_every_registered_code_is_well_formed() -> None:
    for code, check in load_all().items():
        assert check.code == code and check.title and check.fix
        assert check.severity in ("error", "warning", "info")
        assert check.anchor.endswith("#" + code.lower())


def test_inspect_counts_logical_parameters(tiny_llm: Path, tiny_llm_4bit: Path) -> None:
    rc, out, _ = run_cli("inspect", str(tiny_llm), "--json")
    plain = json.loads(out)
    assert rc == 0 and plain["kind"] == "llm"
    assert plain["parameters"] == sum(
        v["bytes"] // 2 for k, v in plain["dtypes"].items() if k in ("F16", "BF16")
    ) + sum(v["bytes"] // 4 for k, v in plain["dtypes"].items() if k == "F32")
    rc, out, _ = run_cli("inspect", str(tiny_llm_4bit), "--json")
    quant = json.loads(out)
    assert quant["quantization"]["bits"] == 4
    assert quant["quantization_elements"] > 0
    # same architecture: the unpacked count of the 4-bit model equals the float model's
    same_shape = {k: plain[k] for k in ("hidden_size", "num_hidden_layers", "vocab_size")}
    if same_shape == {k: quant[k] for k in same_shape}:
        assert quant["parameters"] == plain["parameters"]
    assert quant["weight_bytes"] < plain["weight_bytes"]


def test_inspect_missing_path_exits_2(tmp_path: Path) -> None:
    assert run_cli("inspect", str(tmp_path / "nope"))[0] == 2


def test_load_maps_expected_shape_to_the_config_finding(tiny_model_factory) -> None:
    pytest.importorskip("mlx_lm", reason="the load test runs mlx-lm")
    path = tiny_model_factory("llm")
    cfg = json.loads((path / "config.json").read_text())
    cfg["vocab_size"] = cfg["vocab_size"] + 64
    write_json(path / "config.json", cfg)
    rc, out, _ = run_cli("doctor", str(path), "--json", "--load", "--timeout", "120")
    data = json.loads(out)
    load = [f for f in data["findings"] if f["code"].startswith("LOAD")]
    assert rc == 1
    assert [f["code"] for f in load] == ["LOAD012"], load
    assert "CFG010" in load[0]["message"] and "Expected shape" in load[0]["message"]


def test_load_passes_on_a_clean_model(tiny_ml: Path) -> None:
    pytest.importorskip("mlx.core", reason="the load test runs MLX")
    rc, out, _ = run_cli("doctor", str(tiny_ml), "--json", "--load", "--timeout", "120")
    data = json.loads(out)
    assert rc == 0
    assert "LOAD030" in [f["code"] for f in data["findings"]]


def test_load_is_not_run_for_gguf(tmp_path: Path) -> None:
    from malformed_corpus import write_gguf

    write_gguf(tmp_path / "m.gguf")
    rc, out, _ = run_cli("doctor", str(tmp_path / "m.gguf"), "--json", "--load")
    codes = [f["code"] for f in json.loads(out)["findings"]]
    assert "LOAD040" in codes and rc == 0


def test_checks_catalogue_document_is_current() -> None:
    from genai_common.doctor.catalogue import catalogue_markdown

    doc = Path(__file__).resolve().parent.parent / "reference" / "CHECKS.md"
    if not doc.exists():
        pytest.skip("reference/CHECKS.md is not in this checkout")
    assert doc.read_text(encoding="utf-8") == catalogue_markdown(), (
        "reference/CHECKS.md is stale: run `python -m genai_common.doctor.catalogue reference/CHECKS.md`"
    )


def test_readme_counts_the_checks_there_are() -> None:
    import re

    from genai_common.doctor.catalogue import catalogue_json

    readme = Path(__file__).resolve().parent.parent / "README.md"
    if not readme.exists():
        pytest.skip("README.md is not in this checkout")
    said = re.search(r"know (\d+) checks with stable codes", readme.read_text(encoding="utf-8"))
    assert said and int(said.group(1)) == len(catalogue_json()), "README.md's check count is stale"


def test_fetch_metadata_is_for_hub_ids(tmp_path: Path) -> None:
    base_llm(tmp_path)
    rc, _, err = run_cli("doctor", str(tmp_path), "--fetch-metadata")
    assert rc == 2 and "hub ids" in err


def test_infer_generates_on_a_clean_llm(tiny_llm: Path) -> None:
    pytest.importorskip("mlx_lm", reason="the inference test runs mlx-lm")
    rc, out, _ = run_cli("doctor", str(tiny_llm), "--json", "--infer", "--timeout", "120")
    codes = [f["code"] for f in json.loads(out)["findings"]]
    assert rc == 0 and "LOAD030" in codes and "LOAD031" in codes


def test_canonical_mlx_errors_map_to_their_static_causes() -> None:
    """The three messages come from mlx's own load_weights, so a rewording upstream shows here."""
    mx = pytest.importorskip("mlx.core", reason="the messages are mlx's")
    import mlx.nn as nn

    from genai_common.doctor.rules.load import classify
    from genai_common.findings import Report, finding

    report = Report(path="x")
    for code in ("FILE004", "CFG040", "CFG010"):
        report.add(finding(code, "static"))
    model = nn.Linear(4, 4)
    cases = {
        "LOAD010": [
            ("weight", mx.zeros((4, 4))),
            ("bias", mx.zeros((4,))),
            ("extra", mx.zeros((1,))),
        ],
        "LOAD011": [("weight", mx.zeros((4, 4)))],
        "LOAD012": [("weight", mx.zeros((4, 5))), ("bias", mx.zeros((4,)))],
    }
    explains = {"LOAD010": ["CFG040"], "LOAD011": ["FILE004"], "LOAD012": ["CFG010"]}
    for expected, weights in cases.items():
        with pytest.raises(ValueError) as err:
            model.load_weights(weights, strict=True)
        code, explained = classify(str(err.value), report)
        assert (code, explained) == (expected, explains[expected]), str(err.value)
    assert classify("Model type foo not supported.", report)[0] == "LOAD013"
    assert classify("something else", report) == ("LOAD001", [])


def test_load_is_skipped_when_the_weights_cannot_fit(tmp_path: Path) -> None:
    from genai_common.doctor.rules.load import runtime_findings
    from genai_common.findings import finding
    from genai_common.model import ModelDir

    d = base_llm(tmp_path)
    report = diagnose(d)
    report.add(finding("MEM010", "weights 141 GiB > 24 GiB", severity="error"))
    (f,) = runtime_findings(report, ModelDir.open(d))
    assert f.code == "LOAD041" and "MEM010" in f.message
    (f,) = runtime_findings(diagnose(d), ModelDir.open(d, metadata_only=True))
    assert f.code == "LOAD040"


def test_every_registered_code_is_raised_somewhere() -> None:
    """A code that only its register() call names is dead weight in the catalogue (as DOC002 was):
    each code's string appears at least once more in the package, where a finding is made."""
    import genai_common

    root = Path(genai_common.__file__).parent
    source = "\n".join(p.read_text(encoding="utf-8") for p in root.rglob("*.py"))
    unused = [code for code in load_all() if source.count(f'"{code}"') < 2]
    assert unused == []


# stdlib modules that cost a millisecond or more to import and that the static doctor avoids
# (dataclasses pulls inspect, ast, dis, tokenize; importlib.util pulls contextlib; pathlib pulls
# urllib.parse and ipaddress: 2.8 ms).
COSTLY_STDLIB = (
    "dataclasses",
    "inspect",
    "typing",
    "ast",
    "importlib.util",
    "shutil",
    "weakref",
    "pathlib",
)


def _doctor_imports(path: Path) -> set[str]:
    """The modules `genai doctor PATH --json` imports, in a fresh interpreter."""
    probe = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import contextlib, io\n"
        "from genai_common.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    main(['doctor', {str(path)!r}, '--json'])\n"
        "before |= {'contextlib', 'io'}\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(out.stdout.split())


def test_static_doctor_imports_no_costly_stdlib_module(tiny_llm: Path) -> None:
    """`genai doctor --json` on an LLM: start-up is the product (pre-commit hooks, agent loops)."""
    loaded = _doctor_imports(tiny_llm)
    assert "genai_common.doctor.rules.config" in loaded  # the probe sees the doctor's imports
    assert sorted(loaded & set(COSTLY_STDLIB)) == []
    # families of other kinds are not imported for an LLM
    assert not loaded & {"genai_common.doctor.rules.vlm", "genai_common.doctor.rules.diffusion"}


def test_static_doctor_on_an_ml_model_imports_no_costly_stdlib_module(tiny_ml: Path) -> None:
    """kind detection asks which model types mlx-lm has (tiny_ml's config has no vocab_size)."""
    loaded = _doctor_imports(tiny_ml)
    assert "genai_common.model.loaders" in loaded  # the probe sees the kind detection's import
    assert sorted(loaded & set(COSTLY_STDLIB)) == []


@pytest.mark.torch
def test_sd3_transformer_pipeline_doctor_infer_and_inspect(tiny_diffusion_sd3: Path) -> None:
    """An SD3 pipeline (transformer denoiser, no T5): clean statically, loads and makes an image
    in the child process, and inspect names its components and counts its bytes."""
    import math

    from safetensors import safe_open

    rc, out, _ = run_cli("doctor", str(tiny_diffusion_sd3), "--json", "--infer", "--timeout", "120")
    data = json.loads(out)
    assert data["kind"] == "diffusion" and rc == 0
    assert [f for f in data["findings"] if f["severity"] != "info"] == []
    codes = [f["code"] for f in data["findings"]]
    assert "LOAD030" in codes and "LOAD031" in codes, data["findings"]
    rc, out, _ = run_cli("inspect", str(tiny_diffusion_sd3), "--json")
    facts = json.loads(out)
    assert rc == 0 and facts["pipeline"] == "StableDiffusion3Pipeline"
    assert facts["components"]["transformer"] == "SD3Transformer2DModel"
    assert facts["components"]["text_encoder_2"] == "CLIPTextModelWithProjection"
    assert "text_encoder_3" not in facts["components"] and "unet" not in facts["components"]
    stored = 0
    for path in tiny_diffusion_sd3.glob("*/*.safetensors"):
        with safe_open(str(path), "pt") as f:
            stored += sum(4 * math.prod(f.get_slice(k).get_shape()) for k in f.keys())  # noqa: SIM118
    assert facts["weight_bytes"] == stored


@pytest.mark.torch
def test_inspect_counts_each_pipeline_component(tiny_diffusion: Path) -> None:
    """Parameters per component from the headers are what torch counts once loaded (SD 1.x
    stores no buffers), and the VAE decode estimate is among the facts."""
    from diffusers import DiffusionPipeline

    rc, out, _ = run_cli("inspect", str(tiny_diffusion), "--json")
    facts = json.loads(out)
    assert rc == 0
    pipe = DiffusionPipeline.from_pretrained(str(tiny_diffusion))
    for name, count in facts["parameters_by_component"].items():
        module = getattr(pipe, name)
        assert count == sum(p.numel() for p in module.parameters()), name
    assert set(facts["parameters_by_component"]) == {"unet", "vae", "text_encoder"}
    assert facts["parameters"] == sum(facts["parameters_by_component"].values())
    decode = facts["vae_decode_bytes"]
    assert decode["resolution"] == "64x64" and decode["dtype"] == "float32" and decode["bytes"] > 0


def test_tiny_deepseek_v3_is_clean_names_the_mla_cache_and_infers(
    tiny_llm_deepseek_v3: Path,
) -> None:
    pytest.importorskip("mlx_lm", reason="the inference test runs mlx-lm")
    path = str(tiny_llm_deepseek_v3)
    rc, out, _ = run_cli("doctor", path, "--json", "--infer", "--fail-on", "warning")
    data = json.loads(out)
    assert rc == 0 and data["model_type"] == "deepseek_v3"
    assert [f for f in data["findings"] if f["severity"] != "info"] == []
    [mem001] = [f["message"] for f in data["findings"] if f["code"] == "MEM001"]
    assert "MLA latent as mlx-lm caches it" in mem001
    assert data["facts"]["kv_cache_layout"].startswith("MLA latent")
    codes = [f["code"] for f in data["findings"]]
    assert "LOAD030" in codes and "LOAD031" in codes  # loaded and generated in the child


@pytest.mark.torch
def test_a_model_that_loads_and_cannot_run_is_an_inference_failure(
    tiny_model_factory, tmp_path: Path
) -> None:
    """A CLIP text encoder with 16 positions behind a tokenizer that pads to 77 (DIF050): the
    pipeline loads, then fails at its first prompt. That is LOAD020 (inference), not LOAD001."""
    from checks_helpers import edit_json, rewrite_tensors

    sd = tiny_model_factory("diffusion")
    edit_json(sd / "text_encoder/config.json", lambda c: c.update(max_position_embeddings=16))
    rewrite_tensors(
        sd,
        lambda spec: {
            **spec,
            "embeddings.position_embedding.weight": ("F32", (16, 32)),
        },
        file="text_encoder/model.safetensors",
    )
    rc, out, _ = run_cli("doctor", str(sd), "--json", "--infer", "--timeout", "300")
    findings = {f["code"]: f for f in json.loads(out)["findings"]}
    assert rc == 1
    assert "DIF050" in findings  # the static finding that explains it
    assert "LOAD020" in findings and "LOAD001" not in findings
    message = findings["LOAD020"]["message"]
    assert not message.startswith("InferenceFailed") and message.endswith("explained by DIF050")


# -- issue 14: `genai doctor PATH --json` without argparse, and without the interpreter's teardown


@pytest.mark.parametrize(
    "argv",
    [
        ["m"],
        ["m", "--json"],
        ["--json", "m"],
        ["m", "--markdown"],
        ["m", "--metadata-only"],
        ["--metadata-only", "m", "--json"],
        ["org/name@main", "--markdown", "--metadata-only"],
    ],
)
def test_fast_args_are_what_argparse_gives(argv: list[str]) -> None:
    import argparse

    from genai_common.doctor import command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    assert vars(command.fast_args(argv)) == vars(parser.parse_args(argv))


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--json"],
        ["m", "--json", "--markdown"],
        ["m", "--json", "--json"],
        ["m", "n"],
        ["m", "--js"],  # argparse's abbreviations: argparse decides
        ["m", "--load"],
        ["m", "--"],
        ["m", "-h"],
        ["m", "--select", "CFG"],
        [""],
    ],
)
def test_any_other_command_line_goes_to_argparse(argv: list[str]) -> None:
    from genai_common.doctor import command

    assert command.fast_args(argv) is None


def test_the_common_call_imports_no_argparse_and_ends_with_its_code(tmp_path: Path) -> None:
    """As a process: no argparse (with gettext and locale), the whole report on stdout even
    through a pipe, and the exit code the report gives (the teardown skipped after a flush)."""
    model = base_llm(tmp_path / "m")
    probe = (
        "import sys, atexit\n"
        "atexit.register(lambda: print('argparse' in sys.modules, file=sys.stderr))\n"
        "sys.argv = ['genai', 'doctor', sys.argv[1], '--json']\n"
        "from genai_common.cli import main\n"
        "sys.exit(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(model)], capture_output=True, text=True, timeout=60
    )
    assert done.stderr == ""  # os._exit: no atexit handler ran, so none printed
    report = json.loads(done.stdout)
    assert done.returncode == (
        1 if any(f["severity"] == "error" for f in report["findings"]) else 0
    )
    found = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "genai_common", "doctor", str(model), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "argparse" not in found.stderr and json.loads(found.stdout)["findings"] is not None
    (model / "model.safetensors").write_bytes(b"\x01\x02")  # an error: exit 1 the same way
    done = subprocess.run(
        [sys.executable, "-m", "genai_common", "doctor", str(model)], capture_output=True, text=True
    )
    assert done.returncode == 1 and "HDR001" in done.stdout
