"""`genai verify MLX_DIR --against TORCH_STATE_DICT` for kind ml (issue 10 part 6): a correct port
passes; a conv weight left in PyTorch's NCHW layout (its shape happens to fit MLX: in = kernel)
fails with the layer named and the layout said; a changed weight names its layer."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.torch

torch = pytest.importorskip("torch", reason="torch is not installed")
mx = pytest.importorskip("mlx.core", reason="mlx is not installed in the torch environment")
import numpy as np  # noqa: E402

from genai_common.verify.ml import verify_ml  # noqa: E402
from genai_common.workflows import port  # noqa: E402

MLX_CODE = """
import mlx.core as mx
import mlx.nn as nn


class Net(nn.Module):
    def __init__(self, in_channels: int, channels: int, num_classes: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.bn = nn.BatchNorm(channels)
        self.up = nn.ConvTranspose2d(channels, channels, 2, stride=2)
        self.fc = nn.Linear(channels, num_classes)

    def __call__(self, x):
        h = nn.relu(self.bn(self.conv(x)))
        return self.fc(self.up(h).mean(axis=(1, 2)))
"""

TORCH_CODE = """
import torch
from torch import nn


class TorchNet(nn.Module):
    def __init__(self, in_channels: int, channels: int, num_classes: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels)
        self.up = nn.ConvTranspose2d(channels, channels, 2, stride=2)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        h = torch.relu(self.bn(self.conv(x)))
        return self.fc(self.up(h).mean(dim=(2, 3)))
"""

CONFIG = {"model_type": "conv_net", "in_channels": 3, "channels": 6, "num_classes": 4,
          "input_shape": [8, 8, 3]}  # fmt: skip


@pytest.fixture(autouse=True)
def _in_the_project(tmp_path, monkeypatch):
    """verify runs in the project: its [tool.genai] module and torch_module are imported."""
    monkeypatch.chdir(tmp_path)


def _project(root: Path) -> tuple[Path, Path, dict]:
    """A project with its MLX module and PyTorch original; ref/ holds the state dict, cand/ the
    correct port. Returns (cand, ref, the ported weights)."""
    pkg = "vnet_" + "".join(c for c in root.name if c.isalnum())
    (root / "src" / pkg).mkdir(parents=True)
    (root / "src" / pkg / "__init__.py").write_text("")
    (root / "src" / pkg / "model.py").write_text(textwrap.dedent(MLX_CODE))
    (root / "src" / pkg / "torch_ref.py").write_text(textwrap.dedent(TORCH_CODE))
    (root / "pyproject.toml").write_text(
        f'[tool.genai]\nkind = "ml"\nmodule = "{pkg}.model:Net"\n'
        f'torch_module = "{pkg}.torch_ref:TorchNet"\n'
    )
    import importlib
    import sys

    sys.path.insert(0, str(root / "src"))
    ref_net = importlib.import_module(f"{pkg}.torch_ref").TorchNet(3, 6, 4)
    mlx_net = importlib.import_module(f"{pkg}.model").Net(3, 6, 4)
    ref_net.train()
    with torch.no_grad():
        for _ in range(3):
            ref_net(torch.randn(4, 3, 8, 8))  # BatchNorm running statistics that matter
    ref = root / "ref"
    ref.mkdir()
    torch.save(ref_net.state_dict(), ref / "model.pt")
    (ref / "config.json").write_text(json.dumps(CONFIG))
    state = {k: v.numpy() for k, v in ref_net.state_dict().items()}
    weights, found = port.port_state_dict(state, mlx_net)
    assert found == []
    cand = root / "cand"
    _save(cand, weights)
    return cand, ref, weights


def _save(folder: Path, weights: dict) -> None:
    folder.mkdir(exist_ok=True)
    mx.save_safetensors(str(folder / "model.safetensors"),
                        {k: mx.array(v) for k, v in weights.items()})  # fmt: skip
    (folder / "config.json").write_text(json.dumps(CONFIG))


def test_a_correct_port_passes_layer_by_layer(tmp_path):
    torch.manual_seed(0)
    cand, ref, _ = _project(tmp_path)
    found, metrics = verify_ml(str(cand), str(ref))
    assert [f.code for f in found] == ["QLT204"], found
    assert set(metrics["per_layer"]) == {"conv", "bn", "up", "fc"}
    assert metrics["per_layer"]["conv"]["layout"] == "channels-last moved"
    assert metrics["max_rel"] < 1e-5 and metrics["first_bad_layer"] is None


def test_an_unconverted_conv_fails_and_says_so(tmp_path):
    torch.manual_seed(1)
    cand, ref, weights = _project(tmp_path)
    state = torch.load(ref / "model.pt", weights_only=True)
    weights["conv.weight"] = state["conv.weight"].numpy()  # (6, 3, 3, 3): fits MLX's shape too
    _save(cand, weights)
    found, metrics = verify_ml(str(cand), str(ref))
    codes = [f.code for f in found]
    assert codes == ["QLT201", "QLT200"], found
    assert "not converted from NCHW" in found[0].message
    assert metrics["first_bad_layer"] == "conv"
    assert "first at layer 'conv'" in found[1].message and "NCHW" in found[1].message
    assert metrics["per_layer"]["conv"]["rel"] > 0.1


def test_a_changed_weight_names_its_layer_and_float16_warns(tmp_path):
    torch.manual_seed(2)
    cand, ref, weights = _project(tmp_path)
    changed = dict(weights, **{"fc.weight": weights["fc.weight"] * 1.5})
    _save(cand, changed)
    found, metrics = verify_ml(str(cand), str(ref))
    assert [f.code for f in found] == ["QLT202", "QLT200"], found
    assert metrics["first_bad_layer"] == "fc" and found[0].message.startswith("fc.weight")
    half = {k: v.astype(np.float16) for k, v in weights.items()}
    _save(cand, half)
    found, metrics = verify_ml(str(cand), str(ref))
    assert [f.code for f in found] == ["QLT203"], (found, metrics["max_rel"])


def test_genai_verify_dispatches_ml_with_json_and_exit_code(tmp_path, capsys):
    from genai_common.cli import main

    torch.manual_seed(3)
    cand, ref, weights = _project(tmp_path)
    from safetensors.torch import save_file

    state = torch.load(ref / "model.pt", weights_only=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "torch.safetensors"))
    # a state dict saved as safetensors (PyTorch layout) is a reference file of its own
    against = str(tmp_path / "torch.safetensors")
    assert main(["verify", str(cand), "--against", against, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "pass"
    _save(cand, dict(weights, **{"conv.weight": state["conv.weight"].numpy()}))
    assert main(["verify", str(cand), "--against", str(ref), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "fail" and data["first_bad_layer"] == "conv"


def test_an_unconverted_conv_of_another_shape_fails_as_qlt201(tmp_path, capsys):
    from genai_common.cli import main

    torch.manual_seed(4)
    cand, ref, weights = _project(tmp_path)
    state = torch.load(ref / "model.pt", weights_only=True)
    # ConvTranspose 6 -> 6, 2x2: PyTorch (in, out, kh, kw) = (6, 6, 2, 2), MLX (6, 2, 2, 6)
    _save(cand, dict(weights, **{"up.weight": state["up.weight"].numpy()}))
    found, metrics = verify_ml(str(cand), str(ref))
    assert [f.code for f in found] == ["QLT201"] and "up.weight" in found[0].message
    assert "NCHW" in found[0].message and metrics["first_bad_layer"] == "up"
    assert main(["verify", str(cand), "--against", str(ref)]) == 1
    assert "QLT201" in capsys.readouterr().out


SEQ_MLX = """
import mlx.nn as nn


class Block(nn.Module):
    def __init__(self, dims: int):
        super().__init__()
        self.norm = nn.LayerNorm(dims)
        self.up = nn.Linear(dims, 4 * dims)
        self.down = nn.Linear(4 * dims, dims)

    def __call__(self, x):
        return x + self.down(nn.gelu(self.up(self.norm(x))))
"""

SEQ_TORCH = """
from torch import nn


class TorchBlock(nn.Module):
    def __init__(self, dims: int):
        super().__init__()
        self.norm = nn.LayerNorm(dims)
        self.up = nn.Linear(dims, 4 * dims)
        self.down = nn.Linear(4 * dims, dims)

    def forward(self, x):
        return x + self.down(nn.functional.gelu(self.up(self.norm(x))))
"""


def test_a_sequence_block_is_fed_batch_first_and_matches(tmp_path):
    """A (B, T, D) input is not an image: PyTorch gets it as it is, and the port matches."""
    import importlib
    import sys

    torch.manual_seed(5)
    pkg = "seq_" + "".join(c for c in tmp_path.name if c.isalnum())
    (tmp_path / "src" / pkg).mkdir(parents=True)
    (tmp_path / "src" / pkg / "__init__.py").write_text("")
    (tmp_path / "src" / pkg / "block.py").write_text(textwrap.dedent(SEQ_MLX))
    (tmp_path / "src" / pkg / "ref.py").write_text(textwrap.dedent(SEQ_TORCH))
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.genai]\nkind = "ml"\nmodule = "{pkg}.block:Block"\n'
        f'torch_module = "{pkg}.ref:TorchBlock"\n'
    )
    sys.path.insert(0, str(tmp_path / "src"))
    ref_net = importlib.import_module(f"{pkg}.ref").TorchBlock(8)
    config = {"model_type": "block", "dims": 8, "input_shape": [6, 8]}
    ref = tmp_path / "ref"
    ref.mkdir()
    torch.save(ref_net.state_dict(), ref / "model.pt")
    (ref / "config.json").write_text(json.dumps(config))
    state = {k: v.numpy() for k, v in ref_net.state_dict().items()}
    weights, found = port.port_state_dict(state, importlib.import_module(f"{pkg}.block").Block(8))
    assert found == []
    cand = tmp_path / "cand"
    cand.mkdir()
    mx.save_safetensors(str(cand / "model.safetensors"),
                        {k: mx.array(v) for k, v in weights.items()})  # fmt: skip
    (cand / "config.json").write_text(json.dumps(config))
    found, metrics = verify_ml(str(cand), str(ref))
    assert [f.code for f in found] == ["QLT204"], (found, metrics)
    assert metrics["input_shape"] == [2, 6, 8] and metrics["max_rel"] < 1e-5
