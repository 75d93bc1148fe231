"""`genai doctor --weights` (issue 10 part 5): the value scan on the tiny models, good and broken."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from genai_common.doctor.rules.weights import GROUP_RATIO, weight_findings
from genai_common.model import ModelDir


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "model"
    shutil.copytree(src, dst)
    return dst


def _edit(model: Path, edit) -> None:
    """Load each safetensors file with mlx, let `edit(name, array)` replace arrays, save back."""
    import mlx.core as mx

    for f in sorted(model.glob("*.safetensors")):
        arrays, meta = mx.load(str(f), return_metadata=True)
        out = {k: edit(k, v) for k, v in arrays.items()}
        mx.save_safetensors(str(f), out, metadata=meta)


def _six_layers(model: Path) -> None:
    """Give the 2-layer tiny model 6 layers (copies of 0 and 1) so layer groups have a median."""
    import re

    import mlx.core as mx

    for f in sorted(model.glob("*.safetensors")):
        arrays, meta = mx.load(str(f), return_metadata=True)
        extra = {}
        for k, v in arrays.items():
            m = re.search(r"\.layers\.(\d+)\.", k)
            if m:
                for n in range(2, 6):
                    if n % 2 == int(m.group(1)):
                        extra[k.replace(f".layers.{m.group(1)}.", f".layers.{n}.")] = v
        mx.save_safetensors(str(f), {**arrays, **extra}, metadata=meta)
    cfg = json.loads((model / "config.json").read_text())
    cfg["num_hidden_layers"] = 6
    (model / "config.json").write_text(json.dumps(cfg))


def _codes(model: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in weight_findings(ModelDir.open(str(model))):
        out.setdefault(f.code, []).append(f.message)
    return out


def test_good_tiny_models_are_clean(tiny_llm: Path, tiny_llm_4bit: Path) -> None:
    assert _codes(tiny_llm) == {}
    assert _codes(tiny_llm_4bit) == {}


def test_nan_zero_matrix_and_scaled_layer(tiny_llm: Path, tmp_path: Path) -> None:
    import mlx.core as mx

    model = _copy(tiny_llm, tmp_path)
    _six_layers(model)
    assert _codes(model) == {}

    def edit(name: str, a):
        if name.endswith("layers.0.self_attn.q_proj.weight"):
            return mx.where(
                mx.arange(a.size).reshape(a.shape) == 3, mx.array(float("nan"), a.dtype), a
            )
        if name.endswith("layers.1.mlp.down_proj.weight"):
            return a * (GROUP_RATIO * 4)
        if name.endswith("layers.2.self_attn.o_proj.weight"):
            return mx.zeros_like(a)
        return a

    _edit(model, edit)
    codes = _codes(model)
    assert any("layers.0.self_attn.q_proj.weight" in m and "1 NaN" in m for m in codes["WGT001"])
    assert any("layers.2.self_attn.o_proj.weight" in m for m in codes["WGT002"])
    assert [m for m in codes["WGT020"] if "layers.1.mlp.down_proj.weight" in m]
    # the zeroed o_proj is also far below its group; nothing else is flagged
    assert all(
        "layers.1.mlp.down_proj" in m or "layers.2.self_attn.o_proj" in m for m in codes["WGT020"]
    )


def test_zero_scales_in_a_quantized_model(tiny_llm_4bit: Path, tmp_path: Path) -> None:
    import mlx.core as mx

    model = _copy(tiny_llm_4bit, tmp_path)

    def edit(name: str, a):
        if name.endswith("layers.0.mlp.up_proj.scales"):
            return mx.where(mx.arange(a.size).reshape(a.shape) % 2 == 0, mx.zeros_like(a), a)
        return a

    _edit(model, edit)
    codes = _codes(model)
    assert len(codes["WGT010"]) == 1 and "layers.0.mlp.up_proj.scales" in codes["WGT010"][0]


def test_bf16_inf_and_small_chunks(tiny_llm: Path, tmp_path: Path) -> None:
    """bfloat16 is decoded (not skipped) and a chunk boundary inside a tensor loses nothing."""
    import mlx.core as mx

    model = _copy(tiny_llm, tmp_path)

    def edit(name: str, a):
        a = a.astype(mx.bfloat16)
        if name.endswith("layers.1.self_attn.k_proj.weight"):
            flat = a.reshape(-1)
            flat = mx.where(
                mx.arange(flat.size) == flat.size - 1, mx.array(float("inf"), mx.bfloat16), flat
            )
            return flat.reshape(a.shape)
        return a

    _edit(model, edit)
    found = weight_findings(ModelDir.open(str(model)), chunk_bytes=256)
    assert [f.code for f in found] == ["WGT001"]
    assert "1 Inf" in found[0].message and "k_proj" in found[0].message


def test_cli_weights_flag_exit_and_json(tiny_llm: Path, tmp_path: Path) -> None:
    import mlx.core as mx

    model = _copy(tiny_llm, tmp_path)
    _edit(
        model,
        lambda n, a: (
            mx.zeros_like(a) if n == "lm_head.weight" or n.endswith("embed_tokens.weight") else a
        ),
    )
    cmd = [sys.executable, "-m", "genai_common.cli", "doctor", str(model), "--json"]
    static = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert "WGT" not in static.stdout  # opt-in only
    run = subprocess.run([*cmd, "--weights"], capture_output=True, text=True, check=False)
    assert run.returncode == 1, run.stderr
    codes = {f["code"] for f in json.loads(run.stdout)["findings"]}
    assert "WGT002" in codes


def test_catalogue_lists_wgt_codes_without_static_import() -> None:
    from genai_common.doctor.registry import FAMILIES, load_all

    assert "weights" not in {f.name for f in FAMILIES}
    assert {"WGT001", "WGT002", "WGT003", "WGT010", "WGT020", "WGT090"} <= set(load_all())


@pytest.mark.parametrize("ratio", [GROUP_RATIO])
def test_threshold_documented(ratio: float) -> None:
    text = (Path(__file__).parents[1] / "reference" / "DIAGNOSTICS.md").read_text()
    assert "WGT020" in text and f"{ratio:g}" in text
