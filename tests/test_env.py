"""`genai env`: the JSON shape, the backend this machine has, and the reason when MLX cannot run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from genai_common.runtime import envinfo, mlx_compat

TOP_KEYS = {
    "schema", "genai_common", "python", "os", "cpu", "memory", "network", "env_vars", "frameworks"
}  # fmt: skip
ENTRY_KEYS = {"installed", "version", "usable", "backend", "error"}


def _env_json(*pre: str) -> dict:
    """`genai env --json` in a fresh interpreter; `pre` lines run before the command."""
    code = "\n".join([*pre, "from genai_common.cli import main", "main(['env', '--json'])"])
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(out.stdout)


def test_env_json_has_documented_keys():
    env = _env_json()
    assert set(env) == TOP_KEYS
    assert env["schema"] == 1
    assert set(env["python"]) == {"version", "implementation", "executable"}
    assert set(env["os"]) == {"system", "release", "machine", "platform"}
    assert set(env["cpu"]) == {"name", "logical_cores", "physical_cores"}
    assert env["memory"]["total"] >= env["memory"]["available"] > 0
    assert set(env["frameworks"]) == set(envinfo.FRAMEWORKS)
    for name, entry in env["frameworks"].items():
        assert set(entry) >= ENTRY_KEYS, name
        assert entry["backend"] in {"metal", "cuda", "cpu", None}, name
        if not entry["installed"]:
            assert entry["version"] is None and not entry["usable"], name


def test_mlx_entry_reports_backend_and_device():
    pytest.importorskip("mlx.core", reason="needs an importable mlx (mlx[cpu] on Linux)")
    mlx = _env_json()["frameworks"]["mlx"]
    assert mlx["usable"] and mlx["error"] is None
    expected = "metal" if sys.platform == "darwin" else mlx["backend"]
    assert mlx["backend"] == expected
    device = mlx["device"]
    assert device["name"]
    # normalised names only; raw MLX spellings are renamed
    assert not {"device_name", "memory_size"} & set(device)
    # keys MLX does not report stay absent instead of a fake zero
    assert all(value not in (0, None, "") for value in device.values())
    if mlx["backend"] == "cpu":
        assert "max_recommended_working_set_size" not in device


def test_blocked_mlx_is_unusable_with_a_fix():
    env = _env_json("import sys", "sys.modules['mlx'] = None")
    mlx = env["frameworks"]["mlx"]
    assert not mlx["usable"] and mlx["backend"] is None
    assert "install mlx" in mlx["error"]
    if env["frameworks"]["mlx-lm"]["installed"]:
        assert env["frameworks"]["mlx-lm"]["error"].startswith("needs mlx:")


def test_missing_backend_library_names_the_extra():
    error = ImportError("libmlx.so: cannot open shared object file: No such file or directory")
    text = mlx_compat.explain_import_error(error)
    assert "mlx[cpu]" in text and "libmlx.so" in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.32.4", (0, 32, 4)),
        ("0.24.1", (0, 24, 1)),
        ("0.30.4.dev20260101", (0, 30, 4)),
        ("1.0rc1", (1, 0)),
    ],
)
def test_version_tuple(text, expected):
    assert mlx_compat.version_tuple(text) == expected


def test_plain_output_when_not_a_terminal():
    out = subprocess.run(
        [sys.executable, "-m", "genai_common", "env"], capture_output=True, text=True, check=True
    ).stdout
    assert "framework" in out and "mlx" in out
    assert "\x1b[" not in out  # no terminal escape codes in a pipe


def test_terminal_table_keeps_the_bracketed_extra(monkeypatch, capsys):
    """The fix names `mlx[cpu]`: rich must print it, not take `[cpu]` for a style tag."""
    env = envinfo.environment()
    fix = "ModuleNotFoundError: no mlx -- install mlx[cpu] (or mlx[cuda13] for NVIDIA GPUs)"
    env["frameworks"]["mlx"].update(usable=False, backend=None, error=fix)
    monkeypatch.setenv("COLUMNS", "200")
    envinfo._print_rich(env)
    assert "install mlx[cpu] (or mlx[cuda13]" in capsys.readouterr().out


def test_env_vars_are_listed_and_tokens_redacted():
    env = _env_json(
        "import os",
        "os.environ['HF_TOKEN'] = 'hf_secret_value'",
        "os.environ['MLX_DISABLE_COMPILE'] = '1'",
    )
    assert env["env_vars"]["MLX_DISABLE_COMPILE"] == "1"
    assert env["env_vars"]["HF_TOKEN"] == "<redacted>"
    assert "hf_secret_value" not in json.dumps(env)


def test_versions_come_from_metadata_and_agree_with_the_report():
    from importlib.metadata import version

    found = envinfo.versions(("genai-common", "mlx", "no-such-dist-genai"))
    assert found["genai-common"] == version("genai-common")
    assert "no-such-dist-genai" not in found
    env = envinfo.environment()
    for name, entry in env["frameworks"].items():
        assert envinfo.versions((name,)).get(name) == entry["version"], name
