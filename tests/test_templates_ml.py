"""The ml project kind end to end (issues 11 part 4 and 16): a rendered ml project trains its own
module with `nox -s train` (few steps, then --resume), and loads a user's conv net named in
[tool.genai] module with `genai doctor --infer` in the project's own environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("copier", reason="copier (dev extra) is needed to render the templates")
mx = pytest.importorskip("mlx.core", reason="mlx makes the conv net's weights")

from templates_helpers import git, hermetic_env, render, snapshot_template  # noqa: E402

CONV_NET = '''"""A user's own module: a small channels-last conv net."""

import mlx.core as mx
import mlx.nn as nn


class ConvNet(nn.Module):
    def __init__(self, in_channels: int, channels: int, num_classes: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.head = nn.Linear(channels, num_classes)

    def __call__(self, x: mx.array) -> mx.array:
        return self.head(nn.relu(self.conv(x)).mean(axis=(1, 2)))
'''


@pytest.mark.slow
def test_ml_project_trains_and_loads_the_users_conv_net(tmp_path: Path) -> None:
    pytest.importorskip("nox", reason="nox (dev extra) runs the generated project's sessions")
    template = snapshot_template(tmp_path / "template", template_only=False)
    project = render(template, tmp_path / "proj", project_kind="ml", project_name="Demo")
    git(project, "init", "-q", "-b", "main")
    env = {**os.environ, **hermetic_env(tmp_path), "HF_HUB_OFFLINE": "1"}
    env.pop("VIRTUAL_ENV", None)

    def run(*args: str, ok: bool = True) -> str:
        done = subprocess.run(
            list(args), cwd=project, capture_output=True, text=True, env=env, timeout=1500
        )
        output = done.stdout + done.stderr
        assert (done.returncode == 0) == ok, output[-6000:]
        return output

    nox = [sys.executable, "-m", "nox", "-s", "train", "--"]
    out = run(*nox, "--steps", "20", "--checkpoint-every", "10", "--learning-rate", "3e-3")
    assert "MLT010" in out and "verdict: pass" in out, out[-3000:]
    assert (project / "checkpoints/step_000020.safetensors").is_file()
    out = run(*nox, "--steps", "30", "--checkpoint-every", "10", "--learning-rate", "3e-3",
              "--resume", "--output", "models/trained")  # fmt: skip
    assert "steps 21-30" in out, out[-3000:]
    results = (project / "reference/RESULTS.md").read_text()
    assert "| train adam lr=0.003 bs=32 (resumed) |" in results and "models/trained" in results
    todo = (project / "TODO.md").read_text()
    assert todo.count("genai train") == 2
    # the user's own module: a conv net named in [tool.genai] module, with its weights
    (project / "src/demo/convnet.py").write_text(CONV_NET)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("demo.model:TinyMLP", "demo.convnet:ConvNet")
    )
    conv = project / "models/conv"
    conv.mkdir(parents=True)
    config = {"model_type": "conv_net", "in_channels": 3, "channels": 4, "num_classes": 2,
              "input_shape": [8, 8, 3]}  # fmt: skip
    (conv / "config.json").write_text(json.dumps(config))
    weights = {
        "conv.weight": mx.zeros((4, 3, 3, 3)),
        "conv.bias": mx.zeros((4,)),
        "head.weight": mx.zeros((2, 4)),
        "head.bias": mx.zeros((2,)),
    }
    mx.save_safetensors(str(conv / "model.safetensors"), weights)
    genai = str(project / ".nox/train/bin/genai")
    out = run(genai, "doctor", "models/conv", "--infer", "--json")
    codes = [f["code"] for f in json.loads(out[out.index("{") :])["findings"]]
    assert "LOAD030" in codes and "LOAD031" in codes, codes
    # a class the module does not define: LOAD052 with the classes it has
    pyproject.write_text(pyproject.read_text().replace("convnet:ConvNet", "convnet:ResNet"))
    out = run(genai, "doctor", "models/conv", "--load", ok=False)
    assert "LOAD052" in out and "ConvNet" in out, out[-2000:]
