"""The ml kind loads the user's own module from [tool.genai] module (issue 16): a conv_net
project's module is imported from its src/, built from config.json, loaded strictly, run by the
doctor's --infer; each way it can go wrong is a LOAD05x finding with its fix."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

mx = pytest.importorskip("mlx.core", reason="needs an importable mlx")

from genai_common.doctor.rules.load import runtime_findings  # noqa: E402
from genai_common.findings import Report  # noqa: E402
from genai_common.model import ModelDir  # noqa: E402
from genai_common.runtime.loading import ModuleLoadError, load_ml  # noqa: E402

CONV_NET = '''
import mlx.core as mx
import mlx.nn as nn


class ConvNet(nn.Module):
    """A small NHWC conv net: conv -> relu -> conv-transpose -> pooled linear head."""

    def __init__(self, in_channels: int, channels: int, num_classes: int, image_size: int = 8):
        super().__init__()
        self.input_shape = (image_size, image_size, in_channels)
        self.conv = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.up = nn.ConvTranspose2d(channels, channels, 2, stride=2)
        self.head = nn.Linear(channels, num_classes)

    def __call__(self, x: mx.array) -> mx.array:
        h = nn.relu(self.conv(x))
        return self.head(self.up(h).mean(axis=(1, 2)))


class Configured(ConvNet):
    @classmethod
    def from_config(cls, config):
        return cls(config["channels_in"], config["width"], config["classes"])
'''

CONFIG = {"model_type": "conv_net", "in_channels": 2, "channels": 4, "num_classes": 5}


@pytest.fixture(autouse=True)
def _in_the_project(tmp_path, monkeypatch):
    """Commands run in the project: only the current folder's project module is imported."""
    monkeypatch.chdir(tmp_path)


def make_project(root: Path, module: str = "mynet.model:ConvNet", code: str = CONV_NET) -> Path:
    """A project folder with [tool.genai] module, src/<pkg>/model.py and models/conv (weights
    saved from the module itself). Returns the model folder. The package is named after the
    test's folder ("mynet" in `module` is replaced): a module stays imported in this process."""
    pkg = "net_" + "".join(c for c in root.name if c.isalnum())
    module = module.replace("mynet", pkg)
    (root / "src" / pkg).mkdir(parents=True)
    (root / "src" / pkg / "__init__.py").write_text("")
    (root / "src" / pkg / "model.py").write_text(textwrap.dedent(code))
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "mynet"\n\n[tool.genai]\nkind = "ml"\nmodel = "models/conv"\n'
        f'module = "{module}"\n'
    )
    model = root / "models" / "conv"
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps(CONFIG))
    namespace: dict = {}
    exec(compile(textwrap.dedent(CONV_NET), "conv_net", "exec"), namespace)
    net = namespace["ConvNet"](2, 4, 5)
    mx.eval(net.parameters())
    from mlx.utils import tree_flatten

    mx.save_safetensors(str(model / "model.safetensors"), dict(tree_flatten(net.parameters())))
    return model


def test_user_conv_net_loads_from_the_project_module_and_runs(tmp_path, monkeypatch):
    model = make_project(tmp_path)
    monkeypatch.chdir(tmp_path / "models")  # the project is found from a folder inside it
    loaded = load_ml(model)
    assert type(loaded.model).__name__ == "ConvNet"
    assert loaded.record.loader == "ConvNet + load_weights"
    out = loaded.model(mx.zeros((2, 8, 8, 2)))
    assert out.shape == (2, 5)


def test_doctor_infer_runs_the_user_module_with_its_input_shape(tmp_path):
    model = make_project(tmp_path)
    md = ModelDir.open(str(model))
    found = runtime_findings(Report(str(model), "ml"), md, infer=True, timeout=120)
    codes = [f.code for f in found]
    assert codes == ["LOAD030", "LOAD031"], found
    assert "input (1, 8, 8, 2)" in found[1].message and "(1, 5)" in found[1].message


@pytest.mark.parametrize(
    ("module", "code", "words"),
    [
        ("mynet.model.ConvNet", "LOAD050", "not of the form"),
        ("mynet.missing:ConvNet", "LOAD051", "ModuleNotFoundError"),
        ("mynet.model:ResNet", "LOAD052", "its classes: Configured, ConvNet"),
        ("mynet.model:Configured", "LOAD053", "from_config(config.json) raised KeyError"),
    ],
)
def test_module_errors_have_their_codes(tmp_path, module, code, words):
    model = make_project(tmp_path, module)
    with pytest.raises(ModuleLoadError) as err:
        load_ml(model)
    assert err.value.codes == [code]
    assert words in str(err.value)


def test_import_error_shows_the_first_line_of_the_exception(tmp_path):
    model = make_project(tmp_path, code=CONV_NET + "\nraise RuntimeError('cuda only\\nsecond')\n")
    with pytest.raises(ModuleLoadError, match=r"RuntimeError: cuda only$") as err:
        load_ml(model)
    assert err.value.codes == ["LOAD051"]


def test_constructor_missing_keys_are_named(tmp_path):
    model = make_project(tmp_path)
    (model / "config.json").write_text(json.dumps({"model_type": "conv_net", "channels": 4}))
    with pytest.raises(ModuleLoadError) as err:
        load_ml(model)
    assert err.value.codes == ["LOAD053"]
    assert "needs in_channels, num_classes" in str(err.value)
    assert "it gives: channels" in str(err.value)


def test_missing_unexpected_and_torch_layout_weights(tmp_path):
    import numpy as np

    model = make_project(tmp_path)
    weights = {k: np.array(v) for k, v in mx.load(str(model / "model.safetensors")).items()}
    weights["module.extra"] = np.zeros(3, dtype=np.float32)
    del weights["head.bias"]
    weights["conv.weight"] = np.moveaxis(weights["conv.weight"], -1, 1)  # (out, in, kh, kw)
    w = weights["up.weight"]  # MLX (out, kh, kw, in) -> PyTorch (in, out, kh, kw)
    weights["up.weight"] = np.transpose(w, (3, 0, 1, 2))
    mx.save_safetensors(
        str(model / "model.safetensors"), {k: mx.array(v) for k, v in weights.items()}
    )
    with pytest.raises(ModuleLoadError) as err:
        load_ml(model)
    assert err.value.codes == ["LOAD054", "LOAD055", "LOAD056"]
    text = str(err.value)
    assert "head.bias" in text and "module.extra" in text
    assert "PyTorch Conv2d layout (out, in, *k)" in text
    assert "PyTorch ConvTranspose2d layout (in, out, *k)" in text
    # the doctor turns each line into its finding, with the rule's fix
    md = ModelDir.open(str(model))
    found = runtime_findings(Report(str(model), "ml"), md, timeout=120)
    assert [f.code for f in found] == ["LOAD054", "LOAD055", "LOAD056"]
    assert all(f.severity == "error" and f.hint for f in found)


def test_unknown_model_type_without_a_module_says_where_to_name_one(tiny_ml, tmp_path):
    import shutil

    copy = tmp_path / "m"
    shutil.copytree(tiny_ml, copy)
    config = json.loads((copy / "config.json").read_text())
    config["model_type"] = "conv_net"
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModuleLoadError, match=r"\[tool.genai\] module") as err:
        load_ml(copy)
    assert err.value.codes == ["LOAD057"]


def test_doctor_infer_without_an_input_shape_is_load_only(tmp_path):
    model = make_project(tmp_path)
    code = CONV_NET.replace("self.input_shape = (image_size, image_size, in_channels)", "pass")
    (next((tmp_path / "src").iterdir()) / "model.py").write_text(textwrap.dedent(code))
    found = runtime_findings(
        Report(str(model), "ml"), ModelDir.open(str(model)), infer=True, timeout=120
    )
    assert [f.code for f in found] == ["LOAD030", "LOAD058"]
    config = dict(CONFIG, input_shape=[4, 4, 2])
    (model / "config.json").write_text(json.dumps(config))
    found = runtime_findings(
        Report(str(model), "ml"), ModelDir.open(str(model)), infer=True, timeout=120
    )
    assert [f.code for f in found] == ["LOAD030", "LOAD031"]
    assert "input (1, 4, 4, 2)" in found[1].message


def test_bench_runs_the_user_module_through_the_same_loader(tmp_path, monkeypatch):
    from genai_common.bench import ml

    model = make_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    loaded = load_ml(model)
    results = ml.bench(
        loaded.model, loaded.config, batch_size=2, trials=2, warmup=1, train_step=True
    )
    assert results and all(r["summary"] for r in results)


def test_doctor_infer_reports_a_nonfinite_output(tmp_path):
    model = make_project(tmp_path)
    weights = dict(mx.load(str(model / "model.safetensors")))
    weights["head.bias"] = mx.array([float("nan")] * 5)
    mx.save_safetensors(str(model / "model.safetensors"), weights)
    found = runtime_findings(
        Report(str(model), "ml"), ModelDir.open(str(model)), infer=True, timeout=120
    )
    assert [f.code for f in found] == ["LOAD030", "LOAD059"], found
    assert "5 NaN/Inf values" in found[1].message


def test_doctor_load_reports_a_module_that_does_not_import(tmp_path):
    model = make_project(tmp_path, code=CONV_NET + "\nimport not_installed_dependency\n")
    found = runtime_findings(Report(str(model), "ml"), ModelDir.open(str(model)), timeout=120)
    assert [f.code for f in found] == ["LOAD051"]
    assert "No module named 'not_installed_dependency'" in found[0].message and found[0].hint


def test_another_projects_module_is_imported_only_with_trust(tmp_path, monkeypatch):
    """Issue 15's trust boundary: a model folder inside someone else's project does not make
    `genai doctor --load` import that project's code."""
    model = make_project(tmp_path / "theirs")
    (tmp_path / "mine").mkdir()
    monkeypatch.chdir(tmp_path / "mine")
    with pytest.raises(ModuleLoadError, match=r"cd .*theirs") as err:
        load_ml(model)
    assert err.value.codes == ["LOAD057"]
    assert type(load_ml(model, trust_remote_code=True).model).__name__ == "ConvNet"
    found = runtime_findings(Report(str(model), "ml"), ModelDir.open(str(model)), timeout=120)
    assert [f.code for f in found] == ["LOAD057"] and "--trust-remote-code" in found[0].message
