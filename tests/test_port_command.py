"""`genai port` in an ml project (issue 11 part 4): the template's shipped PyTorch original
(torch_reference.py) ported to its MLX module (model.py) and verified layer by layer; a user's
--torch class and --state-dict file; a state dict that does not fit gives PRT findings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.torch

torch = pytest.importorskip("torch", reason="torch is not installed")
mx = pytest.importorskip("mlx.core", reason="mlx is not installed in the torch environment")

from genai_common.cli import main  # noqa: E402

SHIPPED = Path(__file__).resolve().parents[1] / "templates/project/src/{{package_name}}"


def _project(root: Path, tiny_ml: Path) -> str:
    """A project laid out as the ml template renders it, with the template's own module files."""
    pkg = "port_" + "".join(c for c in root.name if c.isalnum())
    src = root / "src" / pkg
    src.mkdir(parents=True)
    (src / "__init__.py").write_text("")
    shutil.copy(SHIPPED / "{% if project_kind == 'ml' %}model.py{% endif %}", src / "model.py")
    shutil.copy(
        SHIPPED / "{% if project_kind == 'ml' %}torch_reference.py{% endif %}",
        src / "torch_reference.py",
    )
    (root / "pyproject.toml").write_text(
        f'[tool.genai]\nkind = "ml"\nmodel = "models/tiny"\nmodule = "{pkg}.model:TinyMLP"\n'
        f'torch_module = "{pkg}.torch_reference:TorchMLP"\n'
    )
    shutil.copytree(tiny_ml, root / "models" / "tiny")
    return pkg


def test_the_shipped_torch_reference_ports_and_verifies(tmp_path, tiny_ml, monkeypatch, capsys):
    _project(tmp_path, tiny_ml)
    monkeypatch.chdir(tmp_path)
    assert main(["port"]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "QLT204" in out and "verdict: pass" in out
    assert (tmp_path / "models/ported/model.safetensors").is_file()
    assert (tmp_path / "models/torch-reference/model.pt").is_file()
    results = (tmp_path / "RESULTS.md").read_text()
    assert "| port TorchMLP -> TinyMLP |" in results and "| pass |" in results
    assert "genai port" in (tmp_path / "TODO.md").read_text()
    # and `genai verify` of the ported folder against the saved reference, any time later
    assert main(["verify", "models/ported", "--against", "models/torch-reference"]) == 0


def test_a_user_state_dict_that_does_not_fit_gives_port_findings(tmp_path, tiny_ml, monkeypatch,
                                                                  capsys):  # fmt: skip
    pkg = _project(tmp_path, tiny_ml)
    monkeypatch.chdir(tmp_path)
    config = json.loads((tmp_path / "models/tiny/config.json").read_text())
    import importlib
    import sys

    sys.path.insert(0, str(tmp_path / "src"))
    ref = importlib.import_module(f"{pkg}.torch_reference").TorchMLP(
        **{k: v for k, v in config.items() if k != "model_type"}
    )
    state = {f"module.{k}": v for k, v in ref.state_dict().items()}  # a DataParallel prefix
    torch.save(state, tmp_path / "user.pt")
    rc = main(["port", "--torch", f"{pkg}.torch_reference:TorchMLP", "--state-dict", "user.pt",
               "--no-record"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 1 and "PRT001" in out and "PRT002" in out and "module.layers.0.weight" in out
    torch.save(ref.state_dict(), tmp_path / "user.pt")
    rc = main(["port", "--torch", f"{pkg}.torch_reference:TorchMLP", "--state-dict", "user.pt",
               "--output", "models/mine", "--no-record"])  # fmt: skip
    assert rc == 0 and "verdict: pass" in capsys.readouterr().out
    assert (tmp_path / "models/mine/config.json").is_file()
