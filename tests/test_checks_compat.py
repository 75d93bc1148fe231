"""CMP: model_type against the installed mlx-lm / mlx-vlm (read without importing them), custom code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from checks_helpers import codes, edit_json, messages, problems, run, without

from genai_common.model import loaders as compat

needs_loaders = pytest.mark.skipif(
    compat.supported("mlx_lm") is None or compat.supported("mlx_vlm") is None,
    reason="needs mlx-lm and mlx-vlm installed (genai-common[vlm])",
)


def set_config(model: Path, **values) -> None:
    edit_json(model / "config.json", lambda d: d.update(values))


@needs_loaders
@pytest.mark.parametrize(
    "fixture", ["tiny_llm", "tiny_llm_qwen2", "tiny_llm_gemma", "tiny_vlm", "tiny_vlm_paligemma"]
)
def test_clean_tiny_models_pass(fixture: str, request: pytest.FixtureRequest) -> None:
    assert problems(request.getfixturevalue(fixture), "compat") == []


def test_supported_lists_read_without_importing(tmp_path: Path) -> None:
    code = (
        "import sys; from genai_common.model import loaders as compat; "
        "info = compat.supported('mlx_lm'); "
        "print(info is None or 'llama' in info[0], 'mlx_lm' in sys.modules, 'mlx' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False", "False"]


def test_remapping_is_read_from_source_text(tmp_path: Path) -> None:
    pkg = tmp_path / "genai_fake_loader"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
    (pkg / "models" / "llama.py").write_text("")
    (pkg / "models" / "cache.py").write_text("")
    (pkg / "utils.py").write_text('MODEL_REMAPPING = {"mistral": "llama"}\n')
    sys.path.insert(0, str(tmp_path))
    try:
        compat.supported.cache_clear()
        names, remap = compat.supported("genai_fake_loader")
        assert names == frozenset({"llama"}) and remap == {"mistral": "llama"}
        assert compat.resolve("genai_fake_loader", "mistral") == "llama"
        assert compat.resolve("genai_fake_loader", "cache") is None
    finally:
        sys.path.remove(str(tmp_path))
        compat.supported.cache_clear()


def test_cmp001_no_model_type(llama: Path) -> None:
    """mlx-lm reads config["model_type"] first: without it the load stops with a KeyError, so the
    finding is an error (and says so); a model_type that is not a string resolves nowhere."""
    import json

    from mlx_lm.utils import _get_classes

    edit_json(llama / "config.json", without("model_type"))
    config = json.loads((llama / "config.json").read_text(encoding="utf-8"))
    with pytest.raises(KeyError, match="model_type"):
        _get_classes(config)
    found = [f for f in run(llama, "compat") if f.code == "CMP001"]
    assert [f.severity for f in found] == ["error"] and "KeyError" in found[0].message
    for bad in (["llama"], 7):
        edit_json(llama / "config.json", lambda d, b=bad: d.update(model_type=b))
        with pytest.raises((TypeError, ValueError)):
            _get_classes(json.loads((llama / "config.json").read_text(encoding="utf-8")))
        found = [f for f in run(llama, "compat") if f.code == "CMP001"]
        assert [f.severity for f in found] == ["error"], found


def test_cmp002_without_loaders(tiny_llm: Path) -> None:
    # `python -S`: no site-packages, so neither loader is importable (a real environment without them)
    code = (
        "import sys; from genai_common.model import ModelDir; "
        "from genai_common.doctor.registry import check_family; "
        f"md = ModelDir.open({str(tiny_llm)!r}); "
        "print(*[f.code for f in check_family('compat', md)])"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["CMP002"]


@needs_loaders
def test_cmp010_unsupported_model_type(llama: Path) -> None:
    set_config(llama, model_type="minicpmv")  # mlx-lm#425: days of conversion, then "not supported"
    [message] = messages(llama, "compat", "CMP010")
    assert message.startswith("model_type 'minicpmv' is supported by neither installed mlx-lm (")


@needs_loaders
def test_cmp010_vision_model_the_vlm_loader_lacks(llama: Path) -> None:
    only_lm = sorted(
        t for t in compat.supported("mlx_lm")[0] if compat.resolve("mlx_vlm", t) is None
    )
    set_config(llama, model_type=only_lm[0], vision_config={"hidden_size": 32})
    found = [f for f in run(llama, "compat") if f.code == "CMP010"]
    assert found and found[0].severity == "warning" and "only the text part" in found[0].message


@needs_loaders
def test_cmp020_vision_model_routed_to_mlx_vlm(tiny_vlm: Path) -> None:
    [message] = messages(tiny_vlm, "compat", "CMP020")
    assert "use mlx-vlm ('qwen2_vl')" in message and "keeps only the text model" in message


@needs_loaders
def test_cmp021_only_mlx_vlm(llama: Path) -> None:
    only_vlm = sorted(compat.supported("mlx_vlm")[0] - compat.supported("mlx_lm")[0])
    set_config(llama, model_type=only_vlm[0])
    assert codes(llama, "compat") == ["CMP021"]


def test_cmp030_model_file(llama: Path) -> None:
    set_config(llama, model_file="modeling_evil.py")
    (llama / "modeling_evil.py").write_text("raise SystemExit('executed')\n")
    [f] = [f for f in run(llama, "compat") if f.code == "CMP030"]
    assert f.severity == "warning" and "modeling_evil.py" in f.message
    assert "mlx-vlm imports and runs it" in f.message and "refuse" in f.message


def test_cmp030_auto_map(llama: Path) -> None:
    set_config(llama, auto_map={"AutoModelForCausalLM": "modeling_x.XForCausalLM"})
    [f] = [f for f in run(llama, "compat") if f.code == "CMP030"]
    # a warning since issue 15: mlx-vlm asks transformers for trust_remote_code on its own
    assert f.severity == "warning" and "modeling_x.py" in f.message
    assert "AutoModelForCausalLM" in f.message and "transformers imports it" in f.message


@pytest.mark.parametrize(
    "literal",
    [
        "{}",
        '{"a": "b"}',
        "{'a': 'b',}",
        '{"a": "b",  # comment\n  "c": \'d\'  # another\n}',
        '{"a": "b", "a": "c"}',  # the last duplicate wins, as in Python
        '{"a": "#b"}',
        '{"a": "b" "c"}',  # implicit concatenation: ast reads it
        '{"a": "b\\"c"}',  # an escape: ast reads it
        '{"a": 1}',
    ],
)
def test_remapping_reads_the_literal_as_python_does(tmp_path: Path, literal: str) -> None:
    import ast

    from genai_common.model.loaders import _remapping

    expected = {str(k): str(v) for k, v in ast.literal_eval(literal).items()}
    near = tmp_path / "near.py"
    near.write_text(f"import os\nMODEL_REMAPPING = {literal}\nX = 1\n")
    far = tmp_path / "far.py"  # past the first read: the whole file is read
    far.write_text("#" + "x" * 20_000 + f"\nMODEL_REMAPPING: dict = {literal}\n")
    assert _remapping(near) == expected
    assert _remapping(far) == expected


def test_remapping_without_a_closed_literal_is_empty(tmp_path: Path) -> None:
    from genai_common.model.loaders import _remapping

    broken = tmp_path / "utils.py"
    broken.write_text('MODEL_REMAPPING = {"a": "b",\n')
    assert _remapping(broken) == {}
    assert _remapping(tmp_path / "missing.py") == {}


def test_cmp040_half_precision_experts_on_the_cpu(tiny_model_factory) -> None:
    # MLX's CPU gather_mm runs float32 only: a bfloat16 MoE loads, then fails at its first token
    import mlx.core as mx
    from checks_helpers import read_spec, rewrite_tensors

    model = tiny_model_factory("llm", "deepseek_v3")  # float32: runs here
    assert "CMP040" not in codes(model, "compat")

    def to_bf16(spec: dict) -> dict:
        return {
            k: ("BF16" if ".experts." in k else dtype, shape) for k, (dtype, shape) in spec.items()
        }

    rewrite_tensors(model, to_bf16)
    from genai_common.runtime.machine import mlx_backend_here

    expected_here = mlx_backend_here()
    found = messages(model, "compat", "CMP040")
    if expected_here == "cpu":
        n = sum(1 for k in read_spec(model / "model.safetensors") if ".experts." in k)
        assert found == [
            f"{n} routed-expert weights are BF16 and MLX runs on the CPU here "
            "(e.g. model.layers.1.mlp.experts.0.down_proj.weight)"
        ]
        # the fact behind it, on this machine: MLX's own gather_mm refuses half precision
        a = mx.zeros((2, 1, 8), dtype=mx.bfloat16)
        b = mx.zeros((4, 8, 16), dtype=mx.bfloat16)
        with pytest.raises(RuntimeError, match="only supports float32"):
            mx.eval(mx.gather_mm(a, b, rhs_indices=mx.array([0, 1], dtype=mx.uint32)))
    else:  # Metal or CUDA run half-precision experts: nothing to say
        assert found == []
